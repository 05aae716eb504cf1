"""The Parquet data lake: every telemetry micro-batch as files partitioned by run and day.

Layout (Hive-style, readable with ``read_parquet('<lake>/<stream>/*/*/*.parquet',
hive_partitioning = true)``)::

    <lake>/<stream>/run=<run_id>/day=<YYYY-MM-DD>/batch-<seq:08d>.parquet

A batch is split by the UTC day of its time column (``timestamp``; ``period_start`` for
billing, ``eventTime`` for audit), one file per day it touches. Each file is written
under a temporary name (``.batch-...tmp``, which the glob above skips) and renamed into
place with :func:`os.replace`, so a reader never sees half a file and re-writing a batch
replaces its files with identical ones (idempotent by name). The store writes a batch's
files before it commits the batch, and deletes files of uncommitted batches (a writer
killed in between) when it opens (:meth:`Lake.sweep`), so the lake holds exactly the
committed batches. One lake belongs to one store. Files are not fsync'ed: they survive
the writer being killed, not the machine losing power.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.telemetry import SCHEMAS

#: The column each stream is partitioned (and watermarked) by.
TIME_COLUMNS: dict[str, str] = {
    "metrics": "timestamp",
    "capacity": "timestamp",
    "events": "timestamp",
    "billing": "period_start",
    "audit": "eventTime",
}

_BATCH_FILE = re.compile(r"^batch-(\d+)\.parquet$")

_STRING_COLUMNS: dict[str, list[str]] = {
    stream: [f.name for f in schema if pa.types.is_string(f.type)]
    for stream, schema in SCHEMAS.items()
}


def time_column(stream: str) -> str:
    """The time column of ``stream`` (the first timestamp column if not listed)."""
    if stream in TIME_COLUMNS:
        return TIME_COLUMNS[stream]
    for field in SCHEMAS[stream]:
        if pa.types.is_timestamp(field.type):
            return str(field.name)
    raise KeyError(stream)


class Lake:
    """Writes telemetry batches as Parquet files under ``root``.

    Parameters
    ----------
    root
        The lake's folder (created when the first file is written).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def partition(self, stream: str, run_id: str, day: str) -> Path:
        """The folder of one (stream, run, day) partition."""
        return self.root / stream / f"run={run_id}" / f"day={day}"

    def glob(self, stream: str) -> str:
        """A ``read_parquet`` pattern matching every committed-or-pending file of ``stream``."""
        return str(self.root / stream / "*" / "*" / "*.parquet")

    @staticmethod
    def file_name(seq: int) -> str:
        """The file name of batch ``seq`` inside a partition."""
        return f"batch-{seq:08d}.parquet"

    def split_by_day(self, stream: str, table: pa.Table) -> dict[str, pa.Table]:
        """``table``'s rows grouped by the UTC day (``YYYY-MM-DD``) of the stream's time column.

        Rows keep their order within a day. The time column must have no nulls.
        """
        if table.num_rows == 0:
            return {}
        days = pc.cast(table.column(time_column(stream)), pa.date32())
        lo, hi = pc.min_max(days).values()
        if lo.as_py() == hi.as_py():
            return {lo.as_py().isoformat(): table}
        codes = days.to_numpy().astype("datetime64[D]")
        out: dict[str, pa.Table] = {}
        for day in np.unique(codes):
            mask = pa.array(codes == day)
            out[str(day)] = table.filter(mask)
        return out

    def write_batch(self, stream: str, run_id: str, seq: int, table: pa.Table) -> list[Path]:
        """Write one batch (atomically per file); returns the files written.

        Re-writing the same (stream, run, seq) replaces the files with identical ones.
        """
        written: list[Path] = []
        try:
            for day, part in self.split_by_day(stream, table).items():
                folder = self.partition(stream, run_id, day)
                folder.mkdir(parents=True, exist_ok=True)
                final = folder / self.file_name(seq)
                tmp = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
                try:
                    pq.write_table(
                        part,
                        tmp,
                        compression="snappy",
                        use_dictionary=_STRING_COLUMNS.get(stream, True),
                    )
                    os.replace(tmp, final)
                finally:
                    tmp.unlink(missing_ok=True)
                written.append(final)
        except BaseException:
            self.remove(written)
            raise
        return written

    def sweep(self, committed: set[tuple[str, str, int]]) -> int:
        """Delete temporary files and batch files not in ``committed``.

        ``committed`` holds (stream, run_id, seq) of every committed batch. A writer
        killed between writing a batch's files and committing it leaves such files; the
        store sweeps them when it opens, so the lake holds exactly the committed batches.
        Returns the number of files deleted.
        """
        removed = 0
        if not self.root.is_dir():
            return 0
        for path in self.root.glob("*/run=*/day=*/*"):
            stream = path.parents[2].name
            run_id = path.parents[1].name.removeprefix("run=")
            match = _BATCH_FILE.match(path.name)
            stale = path.name.startswith(".") and path.name.endswith(".tmp")
            if match is not None and (stream, run_id, int(match.group(1))) not in committed:
                stale = True
            if stale and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    @staticmethod
    def remove(files: list[Path]) -> None:
        """Delete ``files`` (those of a batch whose commit failed); missing files are fine."""
        for path in files:
            path.unlink(missing_ok=True)
