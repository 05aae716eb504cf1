"""Reading a corpus in NAB layout and writing NAB-format results.

Layout: ``DATA/<category>/<file>.csv``, each with the header ``timestamp,value`` (other
columns allowed) and one row per sample, plus a windows JSON keyed ``"<category>/<file>.csv"``.
Rows are kept exactly as given: no sorting, resampling or de-duplication (NAB scores row
positions, and some NAB files repeat a timestamp or step back in time).

Results: ``OUT/<detector>/<category>/<detector>_<file>.csv`` with the columns
``timestamp,value,anomaly_score,label``, one row per input row in input order; ``timestamp``
and ``value`` are copied verbatim, ``label`` is 1 on the rows of a labelled window.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.nab import FloatArray, ScoredFile, load_windows, parse_timestamp, window_rows
from sim.errors import InputError

RESULT_COLUMNS = ("timestamp", "value", "anomaly_score", "label")


@dataclass(frozen=True)
class NabSeries:
    """One data file of a corpus.

    Attributes
    ----------
    key
        ``category/file.csv``: the file's key in the windows JSON.
    timestamps_text, values_text
        The ``timestamp`` and ``value`` cells as written in the file.
    timestamps
        Parsed timestamps (naive), in row order.
    values
        The values, in row order.
    windows
        Inclusive row ranges of the labelled windows.
    """

    key: str
    timestamps_text: tuple[str, ...]
    values_text: tuple[str, ...]
    timestamps: tuple[datetime, ...]
    values: FloatArray
    windows: tuple[tuple[int, int], ...]

    @property
    def category(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def epoch_s(self) -> FloatArray:
        """Each row's timestamp in seconds since the epoch, read as UTC (NAB's timestamps
        carry no zone; reading them in the machine's zone would make a detector that uses
        the time of day score differently on another machine)."""
        return np.asarray(
            [t.replace(tzinfo=UTC).timestamp() for t in self.timestamps], dtype=np.float64
        )

    @property
    def file_name(self) -> str:
        return self.key.split("/", 1)[1]

    def labels(self) -> list[int]:
        """1 on rows inside a window, else 0."""
        out = [0] * len(self.values)
        for left, right in self.windows:
            out[left : right + 1] = [1] * (right - left + 1)
        return out


def discover(data_dir: Path) -> list[tuple[str, Path]]:
    """``(key, path)`` of every ``<category>/<file>.csv`` under ``data_dir``, sorted by key.

    A CSV anywhere else under ``data_dir`` is an error: it would otherwise be silently skipped.
    """
    if not data_dir.is_dir():
        raise InputError(data_dir, "--data", "not a folder", allowed="a folder in NAB layout")
    found: list[tuple[str, Path]] = []
    for path in sorted(data_dir.rglob("*")):
        if path.suffix.lower() != ".csv" or not path.is_file():
            continue
        rel = path.relative_to(data_dir)
        if len(rel.parts) != 2:
            raise InputError(
                path,
                "--data",
                "CSV file outside the NAB layout",
                allowed="DATA/<category>/<file>.csv",
            )
        found.append((rel.as_posix(), path))
    if not found:
        raise InputError(
            data_dir, "--data", "no CSV files found", allowed="DATA/<category>/<file>.csv"
        )
    return found


def read_series(path: Path, key: str, windows: Sequence[tuple[datetime, datetime]]) -> NabSeries:
    """Read and validate one data file; map its windows to rows."""
    ts_text: list[str] = []
    v_text: list[str] = []
    ts: list[datetime] = []
    values: list[float] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or "timestamp" not in header or "value" not in header:
                raise InputError(
                    path,
                    "line 1",
                    f"header {header} lacks timestamp or value",
                    allowed="a header with the columns timestamp,value",
                )
            ti, vi = header.index("timestamp"), header.index("value")
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputError(
                        path,
                        f"line {line}",
                        f"{len(row)} cells, header has {len(header)}",
                        allowed="one cell per header column",
                    )
                t_cell, v_cell = row[ti], row[vi]
                ts.append(parse_timestamp(t_cell, path, f"line {line}"))
                try:
                    value = float(v_cell)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise InputError(
                        path,
                        f"line {line}",
                        f"value {v_cell!r} is not a finite number",
                        allowed="a finite number",
                    )
                ts_text.append(t_cell)
                v_text.append(v_cell)
                values.append(value)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, "", f"cannot read data file: {exc}") from exc
    if not values:
        raise InputError(path, "", "no data rows", allowed="at least one row")
    return NabSeries(
        key=key,
        timestamps_text=tuple(ts_text),
        values_text=tuple(v_text),
        timestamps=tuple(ts),
        values=np.asarray(values, dtype=np.float64),
        windows=window_rows(ts, windows, path),
    )


def load_corpus(data_dir: Path, windows_path: Path) -> tuple[list[NabSeries], list[str]]:
    """Every data file of a NAB-layout folder with its windows, validated before any run.

    Returns the series and the window keys that have no data file here (reported, not an
    error: a folder may hold part of a corpus). A data file without a key is an error.
    """
    windows = load_windows(windows_path)
    files = discover(data_dir)
    series: list[NabSeries] = []
    for key, path in files:
        if key not in windows:
            raise InputError(
                windows_path,
                key,
                "no windows for this data file",
                allowed='a key for every data file ("[]" when it has no anomaly)',
            )
        series.append(read_series(path, key, windows[key]))
    keys = {k for k, _ in files}
    return series, sorted(set(windows) - keys)


def result_path(out_dir: Path, detector: str, key: str) -> Path:
    """``OUT/<detector>/<category>/<detector>_<file>.csv``."""
    category, file_name = key.split("/", 1)
    return out_dir / detector / category / f"{detector}_{file_name}"


def write_results(path: Path, series: NabSeries, scores: FloatArray) -> None:
    """One results CSV: the input rows verbatim, their score (full precision) and label."""
    if len(scores) != len(series.values):
        raise ValueError(f"{series.key}: {len(scores)} scores for {len(series.values)} rows")
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = series.labels()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(RESULT_COLUMNS)
        for t, v, s, lab in zip(
            series.timestamps_text, series.values_text, scores.tolist(), labels, strict=True
        ):
            writer.writerow((t, v, repr(float(s)), lab))


def read_results(path: Path, series: NabSeries) -> ScoredFile:
    """Read a results CSV back for scoring, checking it matches ``series`` row for row."""
    scores: list[float] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [
            c for c in ("timestamp", "value", "anomaly_score") if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise InputError(
                path, "line 1", f"missing columns {missing}", ", ".join(RESULT_COLUMNS)
            )
        for i, row in enumerate(reader):
            line = f"line {i + 2}"
            if i >= len(series.values) or row["timestamp"] != series.timestamps_text[i]:
                raise InputError(path, line, "rows do not match the data file", "one row per row")
            score = float(row["anomaly_score"])
            if not 0.0 <= score <= 1.0:
                raise InputError(path, line, f"anomaly_score {score} out of range", "[0, 1]")
            scores.append(score)
    if len(scores) != len(series.values):
        raise InputError(path, "", f"{len(scores)} rows, data has {len(series.values)}", "equal")
    return ScoredFile(series.key, np.asarray(scores, dtype=np.float64), series.windows)
