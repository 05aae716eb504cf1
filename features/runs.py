"""The run ledger: which replays a store holds, identified by their telemetry.

``_runs`` has one row per run id: its ``telemetry_sha256`` (the replay summary's hash of
every telemetry row) and whether the run is ``complete`` (all its batches ingested and
its views materialised). A run enters the ledger before its first batch is written:

* a build (``features build``) knows the hash from the start;
* a streamed replay (``replay --store``) learns it only when it ends, so its row has no
  hash until :meth:`RunLedger.complete` records it.

A run id that is already complete with a *different* hash is refused (the store keeps
what it held; nothing is written), as is adding to a run whose batches came another way
(a build's batches are Parquet row groups, a stream's are micro-batches: mixing them
would duplicate rows). The same replay again is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.database import StoreDatabase
from features.errors import FeatureInputError

_AGAIN = "the same replay again (nothing is added), or another --store"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run's row of ``_runs``."""

    run_id: str
    telemetry_sha256: str | None  # None: a streamed replay still running (or interrupted)
    complete: bool


class RunLedger:
    """Reads and writes ``_runs`` of one store file (the callers hold the store's lock)."""

    def __init__(self, db: StoreDatabase) -> None:
        self._db = db

    def get(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if the ledger has none."""
        row = self._db.first(
            "SELECT telemetry_sha256, complete FROM _runs WHERE run_id = $r", {"r": run_id}
        )
        return RunRecord(run_id, row[0], bool(row[1])) if row else None

    def begin_build(self, run_id: str, telemetry_sha256: str) -> bool:
        """Start (or resume) building ``run_id`` from files whose hash is known.

        Returns True if the store already holds this very run (nothing to do).

        Raises
        ------
        FeatureInputError
            The store holds ``run_id`` with other telemetry, or batches of it that came
            from a streamed replay or from before the ledger.
        """
        with self._db.transaction():
            held = self.get(run_id)
            if held is None:
                self._refuse_unledgered(run_id)
                self._db.conn.execute(
                    "INSERT INTO _runs VALUES ($r, $h, false)", {"r": run_id, "h": telemetry_sha256}
                )
                return False
            if held.telemetry_sha256 is None:
                raise self._error(
                    run_id,
                    "holds part of a streamed replay (replay --store) that did not finish; "
                    "building it from files would mix two batchings",
                    "another --store",
                )
            self._check_same(held, telemetry_sha256)
            return held.complete

    def begin_stream(self, run_id: str) -> bool:
        """Start (or resume) streaming ``run_id``. Returns True if the store already holds
        the complete run: the stream must then write nothing, and :meth:`complete`
        compares its hash.

        Raises
        ------
        FeatureInputError
            The store holds part of ``run_id`` built from files, or batches of it from
            before the ledger.
        """
        with self._db.transaction():
            held = self.get(run_id)
            if held is None:
                self._refuse_unledgered(run_id)
                self._db.conn.execute("INSERT INTO _runs VALUES ($r, NULL, false)", {"r": run_id})
                return False
            if not held.complete and held.telemetry_sha256 is not None:
                raise self._error(
                    run_id,
                    "holds part of a build from files (features build) that did not finish; "
                    "streaming into it would mix two batchings",
                    "features build RUN_DIR again to finish it, or another --store",
                )
            return held.complete

    def complete(self, run_id: str, telemetry_sha256: str) -> None:
        """Mark ``run_id`` complete with its telemetry hash.

        Raises
        ------
        FeatureInputError
            The ledger has the run with a different hash (nothing is changed).
        """
        with self._db.transaction() as c:
            held = self.get(run_id)
            if held is not None and held.telemetry_sha256 is not None:
                self._check_same(held, telemetry_sha256)
            c.execute(
                "INSERT INTO _runs VALUES ($r, $h, true) ON CONFLICT (run_id) DO UPDATE "
                "SET telemetry_sha256 = excluded.telemetry_sha256, complete = true",
                {"r": run_id, "h": telemetry_sha256},
            )

    def _check_same(self, held: RunRecord, telemetry_sha256: str) -> None:
        if held.telemetry_sha256 != telemetry_sha256:
            raise self._error(
                held.run_id,
                f"already holds a replay with other telemetry (telemetry_sha256 "
                f"{(held.telemetry_sha256 or '')[:12]}..., this one {telemetry_sha256[:12]}...); "
                "refused, the store is unchanged",
                _AGAIN,
            )

    def _refuse_unledgered(self, run_id: str) -> None:
        """Batches of ``run_id`` without a ledger row came from a store made before the
        run ledger: their telemetry is unknown, so nothing may be added to them."""
        row = self._db.first("SELECT count(*) FROM _batches WHERE run_id = $r", {"r": run_id})
        if row and row[0]:
            raise self._error(
                run_id,
                f"holds {row[0]} batch(es) of this run id with no recorded telemetry hash "
                "(a store made by an older opsbench); refused, the store is unchanged",
                "another --store",
            )

    def _error(self, run_id: str, problem: str, allowed: str) -> FeatureInputError:
        return FeatureInputError(self._db.path, f"run {run_id}", problem, allowed)
