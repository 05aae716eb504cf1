"""Ingestion: telemetry micro-batches committed atomically and at most once.

A batch is identified by ``(run_id, stream, seq)``. Its raw rows (``raw_<stream>``) and
its row in the ledger ``_batches`` (row count, time range) are committed in one
transaction, so the ledger is the exact list of what the store holds and re-sending a
batch adds nothing. With a Parquet lake (:mod:`features.lake`), the batch's files are
written before the commit and removed if it fails, and files of batches that were never
committed (a writer killed in between) are swept when the store opens.

:func:`check_batch` is every check :meth:`Ingestion.ingest_batch` makes before it
writes, so a whole run can be validated before its first batch is committed.
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.database import StoreDatabase, quote
from features.errors import FeatureInputError
from features.lake import Lake, time_column
from sim.telemetry import SCHEMAS

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
RUN_ID_ALLOWED = "1-200 of A-Z a-z 0-9 . _ - (not first . _ -)"


def check_run_id(run_id: object, *, where: str) -> str:
    """``run_id`` if it is a valid run id (it names lake folders), else an error."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise FeatureInputError(where, "run_id", f"bad run id {run_id!r}", RUN_ID_ALLOWED)
    return run_id


def check_batch(stream: str, batch: pa.RecordBatch | pa.Table, where: str) -> pa.Table:
    """``batch`` as a table in ``stream``'s column order, checked.

    Raises
    ------
    FeatureInputError
        Unknown stream; a missing, extra, repeated or mistyped column; nulls in the time
        column. Names ``where`` and the column.
    """
    if stream not in SCHEMAS:
        raise FeatureInputError(
            "ingest_batch", "stream", f"unknown stream {stream!r}", ", ".join(SCHEMAS)
        )
    if isinstance(batch, pa.RecordBatch):
        table = pa.Table.from_batches([batch])
    elif isinstance(batch, pa.Table):
        table = batch
    else:
        raise FeatureInputError(
            where, "", f"a {type(batch).__name__}", "a pyarrow RecordBatch or Table"
        )
    expected = SCHEMAS[stream]
    names = table.schema.names
    for name in names:
        if names.count(name) > 1:
            raise FeatureInputError(where, f"column {name}", "appears twice", "unique names")
    for field in expected:
        if field.name not in names:
            raise FeatureInputError(
                where, f"column {field.name}", "missing", f"a {field.type} column"
            )
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise FeatureInputError(
                where,
                f"column {field.name}",
                f"has type {actual}, the stream's schema says {field.type}",
                f"{field.type}",
            )
    for name in names:
        if name not in expected.names:
            raise FeatureInputError(
                where, f"column {name}", "is not in the stream's schema", ", ".join(expected.names)
            )
    if names != expected.names:
        table = table.select(expected.names)
    tcol = time_column(stream)
    times = table.column(tcol)
    if times.null_count:
        raise FeatureInputError(
            where, f"column {tcol}", f"{times.null_count} null time(s)", "a time on every row"
        )
    return table


class Ingestion:
    """Commits telemetry batches to one store file (and its lake).

    Parameters
    ----------
    db
        The open store file.
    lake
        The Parquet lake every batch is also written to, or None.
    """

    def __init__(self, db: StoreDatabase, lake: Lake | None) -> None:
        self._db = db
        self.lake = lake
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsbench-lake")
            if lake is not None
            else None
        )
        self._sql = {
            stream: (
                f"INSERT INTO {quote('raw_' + stream)} SELECT $run_id, $seq, "
                + ", ".join(quote(f.name) for f in schema)
                + " FROM _ingest_in"
            )
            for stream, schema in SCHEMAS.items()
        }

    def sweep_lake(self) -> None:
        """Delete lake files of batches the ledger does not hold (see :meth:`Lake.sweep`)."""
        if self.lake is not None:
            committed = self._db.conn.execute("SELECT stream, run_id, seq FROM _batches").fetchall()
            self.lake.sweep({(str(a), str(b), int(c)) for a, b, c in committed})

    def ingest_batch(
        self, run_id: str, stream: str, seq: int, batch: pa.RecordBatch | pa.Table
    ) -> bool:
        """Commit one batch; False if ``(run_id, stream, seq)`` was committed before
        (nothing is written again). See :meth:`features.store.FeatureStore.ingest_batch`."""
        where = f"stream {stream} (run {run_id}, seq {seq})"
        if stream not in SCHEMAS:
            check_batch(stream, batch, where)  # raises: unknown stream
        check_run_id(run_id, where=where)
        if isinstance(seq, bool) or not isinstance(seq, int | np.integer) or seq < 0:
            raise FeatureInputError(where, "seq", f"bad sequence number {seq!r}", "an integer >= 0")
        seq = int(seq)
        table = check_batch(stream, batch, where)
        lo_hi = pc.min_max(table.column(time_column(stream)))
        lo, hi = lo_hi["min"].as_py(), lo_hi["max"].as_py()
        key = {"run_id": run_id, "stream": stream, "seq": seq}
        with self._db.lock:
            done = self._db.first(
                "SELECT 1 FROM _batches WHERE run_id = $run_id AND stream = $stream AND seq = $seq",
                key,
            )
            if done is not None:
                return False
            lake_job: Future[list[Path]] | None = None
            if self.lake is not None and self._pool is not None:
                lake_job = self._pool.submit(self.lake.write_batch, stream, run_id, seq, table)
            try:
                with self._db.transaction() as c:
                    c.execute(
                        "INSERT INTO _batches VALUES ($run_id, $stream, $seq, $rows, $lo, $hi)",
                        {**key, "rows": table.num_rows, "lo": lo, "hi": hi},
                    )
                    c.register("_ingest_in", table)
                    try:
                        c.execute(self._sql[stream], {"run_id": run_id, "seq": seq})
                    finally:
                        c.unregister("_ingest_in")
                    if lake_job is not None:
                        lake_job.result()  # every file in place before the commit
            except BaseException:
                if lake_job is not None:
                    try:
                        Lake.remove(lake_job.result())
                    except Exception:  # the lake write failed itself and cleaned up
                        pass
                raise
        return True

    def batches(self, run_id: str | None = None) -> pd.DataFrame:
        """The ledger of committed batches (one run's if ``run_id`` is given)."""
        sql = "SELECT * FROM _batches"
        params: dict[str, Any] = {}
        if run_id is not None:
            sql += " WHERE run_id = $r"
            params["r"] = run_id
        with self._db.lock:
            return self._db.conn.sql(sql + " ORDER BY run_id, stream, seq", params=params).df()

    def close(self) -> None:
        """Wait for pending lake writes and stop the lake thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
