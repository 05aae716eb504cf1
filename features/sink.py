"""Streaming a replay's telemetry into the feature store while it runs.

:class:`FeatureStoreSink` is a :class:`~sim.telemetry.TelemetrySink`: every micro-batch
the replay flushes (one per stream every ``micro_batch_s`` of simulated time, as a
Kinesis Firehose buffer would) is committed to the store as one atomic, idempotent
batch (and written to the Parquet lake), and the feature views are brought up to date
at every checkpoint, so the store is current during the replay, not only at its end.
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

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        seq = self._seq.get(stream, 0)
        self.store.ingest_batch(self.run_id, stream, seq, batch)
        self._seq[stream] = seq + 1

    def checkpoint(self, until: datetime | None = None) -> None:
        """Bring every view up to date with what has been ingested, up to ``until`` (the
        time every stream is complete to; None: everything ingested)."""
        for view in self.views:
            self.store.materialize(view, run_id=self.run_id, complete_until=until)

    def close(self) -> None:
        self.checkpoint()
