"""Streaming a replay's telemetry into the feature store while it runs.

:class:`FeatureStoreSink` is a :class:`~sim.telemetry.TelemetrySink`: every micro-batch
the replay flushes (one per stream every ``micro_batch_s`` of simulated time, as a
Kinesis Firehose buffer would) is committed to the store as one atomic, idempotent
batch (and written to the Parquet lake), and the feature views are brought up to date
at every checkpoint, so the store is current during the replay, not only at its end.
When the replay ends (:meth:`FeatureStoreSink.close`) every view is recomputed for the
whole run in one query, so a streamed store holds exactly the values a build from the
replay's files gives (:mod:`features.materialization`).

The run is entered in the store's run ledger (:mod:`features.runs`) when the sink is
made; once the replay has its telemetry hash, :meth:`FeatureStoreSink.finish` records
it. If the store already holds the complete run, the sink writes nothing and
:meth:`~FeatureStoreSink.finish` checks that the hash is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pyarrow as pa

from features.store import FeatureStore


class FeatureStoreSink:
    """Commits telemetry micro-batches to a :class:`FeatureStore` as they come.

    Parameters
    ----------
    store
        The open store.
    run_id
        Identifies the replay; re-sending a run's batch adds nothing.
    views
        Views to materialise at each checkpoint (default: every view the store computes
        from telemetry).

    Raises
    ------
    FeatureInputError
        The store holds part of ``run_id`` that came another way (a build from files
        that did not finish, or a store made before the run ledger).
    """

    def __init__(
        self, store: FeatureStore, run_id: str, views: Iterable[str] | None = None
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.views = (
            tuple(views)
            if views is not None
            else tuple(name for name, spec in store.views.items() if spec.computed)
        )
        self._seq: dict[str, int] = {}
        #: The store already holds the whole run: write nothing, check the hash at the end.
        self.already_held = store.runs.begin_stream(run_id)

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        if self.already_held:
            return
        seq = self._seq.get(stream, 0)
        self.store.ingest_batch(self.run_id, stream, seq, batch)
        self._seq[stream] = seq + 1

    def checkpoint(self, until: datetime | None = None) -> None:
        """Bring every view up to date with what has been ingested, up to ``until`` (the
        time every stream is complete to; None: everything ingested)."""
        if self.already_held:
            return
        for view in self.views:
            self.store.materialize(view, run_id=self.run_id, complete_until=until)

    def close(self) -> None:
        """The replay has ended: recompute every view for the whole run."""
        if self.already_held:
            return
        for view in self.views:
            self.store.rematerialize(view, run_id=self.run_id)

    def finish(self, telemetry_sha256: str) -> None:
        """Record the finished replay's ``telemetry_sha256`` (its summary's): the store now
        holds the complete run. Call after the replay (and :meth:`close`).

        Raises
        ------
        FeatureInputError
            The store already held this run id with other telemetry; the stream wrote
            nothing and the store is unchanged.
        """
        self.store.runs.complete(self.run_id, telemetry_sha256)
