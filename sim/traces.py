"""Workload traces: load, validate, fill gaps, resample and scale to requests/s.

The simulator is driven by an offered load in requests per second, one value per
simulated minute. It comes either from a real trace (a CSV file) or from a seeded
synthetic generator. This module turns both into a :class:`WorkloadSeries`.

Trace files
    UTF-8 CSV, header exactly ``timestamp,value`` (surrounding spaces, a UTF-8 BOM and
    ``\\r\\n`` line endings are tolerated; trailing blank lines are ignored).
    ``timestamp`` is the start of the bucket, ISO 8601 without a zone
    (``YYYY-MM-DDTHH:MM:SS``; a space instead of ``T``, no seconds or a bare date are
    accepted), on the trace's own naive clock. Timestamps are strictly increasing and
    lie on a regular grid ``first + k * step``; the step (seconds) is the median of the
    differences between consecutive rows, so whole missing buckets are allowed.
    ``value`` is a finite number >= 0 in any unit. An *empty* cell is a gap (no data,
    not zero load); the text ``NaN`` or ``inf`` is an error. A trace spans at most
    :data:`MAX_TRACE_POINTS` steps and as many minutes (about 8 years), since the grid and
    the replay's history are held in memory. Any problem raises
    :class:`~sim.errors.InputError` naming the file and the 1-based line (the header
    is line 1); when several lines are bad, the first one is reported.

Gap filling (:func:`fill_gaps`)
    Missing buckets are first inserted as gaps. A gap (a run of empty buckets) that
    lasts at most ``max_interpolate_min`` minutes is filled by linear interpolation
    between its two neighbours. A longer gap is filled seasonally, oldest gap first,
    bucket by bucket: each bucket takes the (already filled) value one day earlier; if
    the trace has no day before it, the value one day later (unless that bucket is
    itself in a long gap still to fill); otherwise linear interpolation. Gaps at the
    start or end of the trace hold the nearest value. A step that does not divide a
    day has no seasonal lag, and long gaps are then interpolated linearly.

Resampling to minutes (:func:`trace_rps_per_minute`)
    Minute ``m`` of the replay covers ``[start + 60 m, start + 60 (m + 1))`` seconds.
    With a step of 60 s or less it is the mean of the buckets that begin inside it
    (for a 60 s step on the same grid, the bucket itself). With a longer step it is
    the linear interpolation between bucket timestamps at the minute's start,
    holding the last value until the end of the last bucket.

Replay window and scaling
    The window starts at the ``start`` argument, else ``workload.start``, else the
    first timestamp, and lasts ``ceil(duration_s / 60)`` minutes; it must lie inside
    the trace (which ends one step after its last timestamp). The window is scaled
    linearly so that its peak equals ``peak_rps`` or its mean equals ``mean_rps``.

Regime change (:func:`spliced_rps_per_minute`)
    With ``workload.shift``, minutes from ``ceil(shift.at_h * 60)`` on replay a second
    trace from ``shift.start`` on its own clock (its daily shape keeps its recorded
    hours), scaled on that part alone to ``shift.peak_rps`` or ``shift.mean_rps``; the
    first trace is scaled on the minutes before, and the history (same scale) is the
    first trace's only.

Synthetic load (:func:`synthetic_rps_per_minute`)
    ``mean_rps * diurnal * weekly * noise * flash crowds``, each factor explained in
    the function's docstring. All randomness comes from the caller's generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sim.errors import InputError
from sim.scenario import FlashCrowds, SyntheticWorkload, TraceWorkload, WorkloadShift

MINUTE_S = 60
DAY_S = 86_400
SYNTHETIC_HISTORY_DAYS = 14
"""Days of history generated before a synthetic workload's start (own random stream)."""
AR_PHI = 0.98
"""Lag-1 autocorrelation (per minute) of the synthetic log-noise."""

_HEADER = ["timestamp", "value"]
_TS_PATTERN = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?"
_NUMBER_PATTERN = r"^\+?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_TS_ALLOWED = "an ISO 8601 date-time without a zone, e.g. 2019-05-01T00:00:00"
_VALUE_ALLOWED = "a finite number >= 0, or an empty cell to mark a gap"
_PREVIEW_CHARS = 60
MAX_TRACE_POINTS = 1 << 22
"""Grid steps (and minutes) a trace may span: 4,194,304 (32 MiB per float64 array)."""
_AR_BLOCK = 256  # 0.98**-256 ~ 176: the block-wise AR(1) stays well conditioned


@dataclass(frozen=True, slots=True)
class Trace:
    """A validated load trace, as read from its CSV file.

    Attributes
    ----------
    path
        The file it was read from.
    timestamps
        ``datetime64[s]`` bucket starts, strictly increasing, on the grid
        ``timestamps[0] + k * step_s`` (whole buckets may be missing). Read-only.
    values
        ``float64`` load per bucket in the file's unit, ``>= 0``; ``NaN`` where the
        cell was empty (a real gap). Read-only.
    step_s
        The grid step in seconds (median of the differences between timestamps).
    """

    path: Path
    timestamps: np.ndarray
    values: np.ndarray
    step_s: int


@dataclass(frozen=True, slots=True)
class WorkloadSeries:
    """The offered load of one replay, one value per simulated minute.

    Attributes
    ----------
    start
        Wall-clock time of minute 0 (naive, on the trace's or generator's clock).
    offered_rps
        ``float64`` offered load in requests/s, one value per 60 s minute, ``>= 0``.
    filled_minutes
        How many replayed minutes depend on gap-filled buckets (0 for synthetic load).
    source
        The trace path, or ``"synthetic"``.
    history_rps
        ``float64`` offered load (requests/s, same scale as ``offered_rps``) of the
        minutes *before* ``start``, oldest first, ending at ``start``: what monitoring
        recorded before the replay began (a trace's data before the window; for a
        synthetic workload, :data:`SYNTHETIC_HISTORY_DAYS` generated days). Policies
        may learn from it; it is never replayed.
    history_filled
        ``bool``, same length: True where that minute depends on gap-filled buckets.
    """

    start: datetime
    offered_rps: np.ndarray
    filled_minutes: int
    source: str
    history_rps: np.ndarray = field(default_factory=lambda: np.empty(0))
    history_filled: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))


# --------------------------------------------------------------------------- loading


def load_trace(path: Path) -> Trace:
    """Read and validate a ``timestamp,value`` trace CSV.

    Parameters
    ----------
    path
        The CSV file.

    Returns
    -------
    Trace
        Timestamps (``datetime64[s]``), values (``float64``, ``NaN`` for empty cells)
        and the grid step in seconds.

    Raises
    ------
    InputError
        The file is missing or unreadable (field ``path``), the header is not
        ``timestamp,value`` (``header``), there are fewer than 2 data rows
        (``rows``), every value is empty (``value``), or a line is malformed: wrong
        number of fields, a timestamp that is not ISO 8601, not after the previous one
        or off the grid, or a value that is not a finite number >= 0 (``line N``).
    """
    path = Path(path)
    lines = _read_lines(path)
    _check_header(path, lines[0])
    rows = lines[1:]
    if len(rows) < 2:
        found = "no data rows" if not rows else "only 1 data row"
        raise InputError(
            path,
            "rows",
            f"the file has {found} after the header",
            "at least 2 data rows (the grid step is measured between rows)",
        )
    parsed = _parse_rows(rows)
    step = _grid_step(parsed.stamps, parsed.ts_ok)
    bad = _first_bad_row(parsed, step)
    if bad is not None:
        raise _row_error(path, parsed, *bad, step=step)
    _check_span(path, parsed.stamps, step)
    if parsed.empty.all():
        raise InputError(path, "value", "every value cell is empty", "at least one value")
    stamps, values = parsed.stamps, parsed.values
    stamps.flags.writeable = False
    values.flags.writeable = False
    return Trace(path=path, timestamps=stamps, values=values, step_s=step)


def _read_lines(path: Path) -> list[str]:
    """The file's lines without line endings, trailing blank lines dropped."""
    allowed = "a readable UTF-8 CSV file with columns timestamp,value"
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(path, "path", "file not found", allowed) from exc
    except IsADirectoryError as exc:
        raise InputError(path, "path", "is a directory, not a file", allowed) from exc
    except OSError as exc:
        raise InputError(path, "path", f"cannot read: {exc.strerror or exc}", allowed) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (bad byte at offset {exc.start})"
        raise InputError(path, "path", problem, allowed) from exc
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(path, "header", "the file is empty", "columns timestamp,value")
    return lines


def _check_header(path: Path, header: str) -> None:
    """Raise unless the header names exactly the columns ``timestamp,value``."""
    if [name.strip() for name in header.split(",")] != _HEADER:
        raise InputError(path, "header", f"header is {_preview(header)}", "columns timestamp,value")


@dataclass(frozen=True, slots=True)
class _Rows:
    """The data rows of a trace file, split and parsed but not yet validated."""

    lines: list[str]
    n_commas: np.ndarray
    ts_text: pa.StringArray
    value_text: pa.StringArray
    stamps: np.ndarray
    ts_ok: np.ndarray
    values: np.ndarray
    empty: np.ndarray
    value_ok: np.ndarray


def _parse_rows(lines: list[str]) -> _Rows:
    """Split and parse the data rows (vectorised); problems are only flagged."""
    n_commas, ts_text, value_text = _split_fields(lines)
    stamps, ts_ok = _parse_timestamps(ts_text)
    values, empty, value_ok = _parse_values(value_text)
    return _Rows(lines, n_commas, ts_text, value_text, stamps, ts_ok, values, empty, value_ok)


def _split_fields(rows: list[str]) -> tuple[np.ndarray, pa.StringArray, pa.StringArray]:
    """Split data rows at the first comma: ``(comma count, timestamp, value)`` per row.

    The texts are stripped of surrounding whitespace; a row without a comma gets its
    whole text as timestamp and as value (the comma count flags it anyway).
    """
    text = pa.array(rows, type=pa.string())
    n_commas = pc.count_substring(text, ",").to_numpy()
    split = pc.split_pattern(text, ",", max_splits=1)
    has_value = pc.list_value_length(split).to_numpy() == 2
    flat = split.flatten()
    firsts = split.offsets.to_numpy()[:-1]
    ts_text = pc.take(flat, pa.array(firsts))
    value_text = pc.take(flat, pa.array(np.where(has_value, firsts + 1, firsts)))
    return n_commas, pc.utf8_trim_whitespace(ts_text), pc.utf8_trim_whitespace(value_text)


def _parse_timestamps(ts_text: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """Parse ISO 8601 texts to ``datetime64[s]`` (NaT if bad) and a validity mask."""
    well_formed = pc.match_substring_regex(ts_text, f"^{_TS_PATTERN}$").to_numpy(
        zero_copy_only=False
    )
    candidates = np.where(well_formed, ts_text.to_numpy(zero_copy_only=False), "NaT")
    try:
        stamps = candidates.astype("datetime64[s]")
    except ValueError:  # a well-formed but impossible date, e.g. month 13: find it
        stamps = np.array([_parse_one(text) for text in candidates], dtype="datetime64[s]")
    return stamps, ~np.isnat(stamps)


def _parse_one(text: str) -> np.datetime64:
    """One timestamp as ``datetime64[s]``, NaT if it does not parse."""
    try:
        return np.datetime64(text, "s")
    except ValueError:
        return np.datetime64("NaT", "s")


def _parse_values(value_text: pa.StringArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse value texts: ``(values with NaN for empty, empty mask, validity mask)``.

    Only plain decimal numbers (optionally signed ``+``, with exponent) are numbers;
    ``NaN``, ``inf`` and negative numbers are not, and an overflow to inf is rejected.
    """
    empty = pc.equal(value_text, "").to_numpy(zero_copy_only=False)
    numeric = pc.match_substring_regex(value_text, _NUMBER_PATTERN).to_numpy(zero_copy_only=False)
    cleaned = pc.if_else(pa.array(numeric), value_text, "nan")
    values = pc.cast(cleaned, pa.float64()).to_numpy(zero_copy_only=False).copy()
    ok = empty | (numeric & np.isfinite(values))
    return values, empty, ok


def _grid_step(stamps: np.ndarray, ts_ok: np.ndarray) -> int:
    """Median positive difference (s) between consecutive valid timestamps, 0 if none.

    The lower median is used, so the step is always one of the observed differences.
    """
    seconds = stamps.astype(np.int64)
    pair_ok = ts_ok[1:] & ts_ok[:-1]
    diffs = (seconds[1:] - seconds[:-1])[pair_ok]
    diffs = np.sort(diffs[diffs > 0])
    return int(diffs[(diffs.size - 1) // 2]) if diffs.size else 0


def _first_bad_row(rows: _Rows, step: int) -> tuple[int, int] | None:
    """``(row index, check index)`` of the first bad data row, or None if all are good.

    Checks, by precedence within one row: 0 number of fields, 1 timestamp syntax,
    2 timestamp order, 3 grid alignment, 4 value.
    """
    seconds = rows.stamps.astype(np.int64)
    ts_ok = rows.ts_ok
    order_bad = np.zeros(ts_ok.size, dtype=bool)
    order_bad[1:] = ts_ok[1:] & ts_ok[:-1] & (seconds[1:] <= seconds[:-1])
    grid_bad = np.zeros(ts_ok.size, dtype=bool)
    if step > 0 and ts_ok[0]:
        grid_bad = ts_ok & ((seconds - seconds[0]) % step != 0)
    checks = [rows.n_commas != 1, ~ts_ok, order_bad, grid_bad, ~rows.value_ok]
    firsts = [int(np.argmax(bad)) if bad.any() else ts_ok.size for bad in checks]
    row = min(firsts)
    return None if row == ts_ok.size else (row, firsts.index(row))


def _row_error(path: Path, rows: _Rows, row: int, check: int, *, step: int) -> InputError:
    """The one-line error for data row ``row`` failing check ``check``."""
    field = f"line {row + 2}"  # 1-based, the header is line 1
    stamp = rows.stamps[row]
    if check == 0:
        problem = _fields_problem(rows.lines[row], int(rows.n_commas[row]) + 1)
        return InputError(path, field, problem, "2 fields: timestamp,value")
    if check == 1:
        text = _preview(rows.ts_text[row].as_py())
        problem = f"timestamp {text} is not an ISO 8601 date-time without a zone"
        return InputError(path, field, problem, _TS_ALLOWED)
    if check == 2:
        previous = rows.stamps[row - 1]
        verb = "duplicates" if stamp == previous else "is before"
        problem = f"timestamp {stamp} {verb} the previous timestamp {previous} (line {row + 1})"
        return InputError(path, field, problem, "strictly increasing timestamps")
    if check == 3:
        first = rows.stamps[0]
        problem = f"timestamp {stamp} is off the {step} s grid that starts at {first}"
        return InputError(path, field, problem, f"{first} + k * {step} s")
    text = _preview(rows.value_text[row].as_py())
    problem = f"value {text} is not a finite number >= 0"
    return InputError(path, field, problem, _VALUE_ALLOWED)


def _check_span(path: Path, stamps: np.ndarray, step: int) -> None:
    """Raise unless the trace spans at most :data:`MAX_TRACE_POINTS` steps and minutes
    (a far-away timestamp would otherwise make a grid of billions of buckets)."""
    limit_s = MAX_TRACE_POINTS * min(step, MINUTE_S)
    offsets = (stamps - stamps[0]).astype(np.int64)
    if offsets[-1] < limit_s:
        return
    row = int(np.argmax(offsets >= limit_s))
    problem = (
        f"timestamp {stamps[row]} is {offsets[row] / DAY_S:,.0f} days after the first "
        f"timestamp {stamps[0]}"
    )
    allowed = (
        f"a trace spanning less than {MAX_TRACE_POINTS:,} steps and minutes "
        f"({limit_s / DAY_S:,.0f} days at its {step} s step)"
    )
    raise InputError(path, f"line {row + 2}", problem, allowed)


def _fields_problem(line: str, n_fields: int) -> str:
    """Describe a line with the wrong number of comma-separated fields."""
    if not line.strip():
        return "blank line inside the data"
    return f"expected 2 fields but found {n_fields}: {_preview(line)}"


def _preview(text: str) -> str:
    """``repr`` of ``text``, shortened to a readable length for error messages."""
    if len(text) > _PREVIEW_CHARS:
        text = text[:_PREVIEW_CHARS] + "..."
    return repr(text)


# --------------------------------------------------------------------------- gap filling


def fill_gaps(trace: Trace, *, max_interpolate_min: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill every gap of ``trace`` on its full regular grid.

    Parameters
    ----------
    trace
        A loaded trace; missing buckets are inserted as gaps first.
    max_interpolate_min
        Gaps lasting at most this many minutes are interpolated linearly; longer
        interior gaps are filled seasonally (see the module docstring).

    Returns
    -------
    values_filled
        ``float64`` values (trace unit) on the grid ``timestamps[0] + k * step_s``
        up to the last timestamp, without ``NaN``.
    was_filled
        ``bool`` mask, same length: True where the bucket was a gap.

    Raises
    ------
    InputError
        The trace has no value at all (field ``value``).
    ValueError
        ``max_interpolate_min`` is negative.
    """
    if max_interpolate_min < 0:
        raise ValueError(f"max_interpolate_min(={max_interpolate_min}) must be >= 0")
    grid_values = _on_full_grid(trace)
    gap = np.isnan(grid_values)
    if gap.all():
        raise InputError(trace.path, "value", "every value cell is empty", "at least one value")
    known = np.flatnonzero(~gap)
    filled = grid_values.copy()
    filled[gap] = np.interp(np.flatnonzero(gap), known, grid_values[known])
    period = DAY_S // trace.step_s if DAY_S % trace.step_s == 0 else 0
    long_runs = _long_interior_runs(gap, trace.step_s, max_interpolate_min)
    if period:
        pending = np.zeros(gap.size, dtype=bool)
        for start, stop in long_runs:
            pending[start:stop] = True
        for start, stop in long_runs:
            _fill_seasonal(filled, pending, start, stop, period)
    return filled, gap


def _on_full_grid(trace: Trace) -> np.ndarray:
    """The trace's values on its full grid, ``NaN`` for missing buckets."""
    offsets = (trace.timestamps - trace.timestamps[0]).astype(np.int64)
    index = offsets // trace.step_s
    grid_values = np.full(int(index[-1]) + 1, np.nan)
    grid_values[index] = trace.values
    return grid_values


def _gap_runs(gap: np.ndarray) -> np.ndarray:
    """``(start, stop)`` index pairs (stop exclusive) of the runs of True in ``gap``."""
    edges = np.diff(np.concatenate(([0], gap.astype(np.int8), [0])))
    return np.column_stack((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _long_interior_runs(
    gap: np.ndarray, step_s: int, max_interpolate_min: int
) -> list[tuple[int, int]]:
    """Gap runs that neither touch an end of the trace nor are short enough to interpolate."""
    runs = _gap_runs(gap)
    interior = (runs[:, 0] > 0) & (runs[:, 1] < gap.size)
    long = (runs[:, 1] - runs[:, 0]) * step_s > max_interpolate_min * MINUTE_S
    return [(int(a), int(b)) for a, b in runs[interior & long]]


def _fill_seasonal(
    filled: np.ndarray, pending: np.ndarray, start: int, stop: int, period: int
) -> None:
    """Fill ``filled[start:stop]`` in place from one day (``period`` buckets) away.

    Works one day-long chunk at a time so a gap longer than a day copies from its own,
    already filled, first day. Buckets with no usable day keep their linear value.
    """
    n = filled.size
    for chunk in range(start, stop, period):
        index = np.arange(chunk, min(chunk + period, stop))
        earlier = index - period
        later = index + period
        later_ok = (later < n) & ~pending[np.minimum(later, n - 1)]
        usable = (earlier >= 0) | later_ok
        source = np.where(earlier >= 0, earlier, later)
        filled[index[usable]] = filled[source[usable]]
        pending[index] = False


# --------------------------------------------------------------------------- trace replay


def trace_rps_per_minute(
    trace: Trace,
    workload: TraceWorkload,
    *,
    duration_s: float,
    start: datetime | None = None,
    field: str = "workload",
    with_history: bool = True,
    end_field: str | None = None,
) -> WorkloadSeries:
    """Offered load per simulated minute, replayed from a trace.

    Parameters
    ----------
    trace
        The loaded trace.
    workload
        Gap-filling limit and normalisation target (``peak_rps`` or ``mean_rps``).
    duration_s
        Length of the replay in seconds (> 0); ``ceil(duration_s / 60)`` minutes.
    start
        Wall-clock time (naive, trace clock) of minute 0; defaults to
        ``workload.start``, then to the trace's first timestamp.
    field
        The scenario field of ``workload``, named in errors (``workload.shift`` for the
        second trace of a regime change).
    with_history
        False: ``history_rps`` is left empty (the second trace of a regime change).
    end_field
        The field named when the window runs past the trace's end (default
        ``duration_days``, or ``{field}.start`` for a field other than ``workload``).

    Returns
    -------
    WorkloadSeries
        The window, scaled so that its peak is ``peak_rps`` or its mean ``mean_rps``
        requests/s, and the trace's minutes before the window as ``history_rps``, scaled
        by the same factor (the history and the replay are in one unit, as a service's
        own monitoring archive would be).

    Raises
    ------
    InputError
        The start is outside the trace (field ``workload.start``), the window runs
        past the trace's end (``duration_days``; ``workload.shift.start`` for a second
        trace), or the window has no load at all.
    """
    n_minutes = _n_minutes(duration_s)
    filled, was_filled = fill_gaps(trace, max_interpolate_min=workload.max_interpolate_min)
    first_s = int(trace.timestamps[0].astype(np.int64))
    bucket_s = first_s + np.arange(filled.size, dtype=np.int64) * trace.step_s
    end_s = int(bucket_s[-1]) + trace.step_s
    chosen = start if start is not None else workload.start
    start_s = (
        first_s
        if chosen is None
        else _start_seconds(trace.path, chosen, first_s, end_s, f"{field}.start")
    )
    window_field = end_field or ("duration_days" if field == "workload" else f"{field}.start")
    _check_window_end(trace.path, start_s, n_minutes, end_s, window_field)
    minute_s = start_s + np.arange(n_minutes, dtype=np.int64) * MINUTE_S
    if trace.step_s > MINUTE_S:
        rate, minute_filled = _interpolate_minutes(bucket_s, filled, was_filled, minute_s)
    else:
        rate, minute_filled = _mean_minutes(bucket_s, filled, was_filled, start_s, n_minutes)
    window = f"{_iso(start_s)} to {_iso(start_s + n_minutes * MINUTE_S)}"
    reference, target = _scale(trace.path, rate, workload, window, field)
    history_minutes = (start_s - first_s) // MINUTE_S if with_history else 0
    history_s = start_s - history_minutes * MINUTE_S + np.arange(history_minutes) * MINUTE_S
    if history_minutes == 0:
        history, history_filled = np.empty(0), np.empty(0, dtype=bool)
    elif trace.step_s > MINUTE_S:
        history, history_filled = _interpolate_minutes(bucket_s, filled, was_filled, history_s)
    else:
        history, history_filled = _mean_minutes(
            bucket_s, filled, was_filled, int(history_s[0]), int(history_minutes)
        )
    return WorkloadSeries(
        start=np.datetime64(start_s, "s").astype(datetime),
        offered_rps=_scaled(trace.path, rate, reference, target, f"the window {window}"),
        filled_minutes=int(minute_filled.sum()),
        source=str(trace.path),
        history_rps=_scaled(trace.path, history, reference, target, "the history before it"),
        history_filled=np.asarray(history_filled, dtype=bool),
    )


def _scaled(path: Path, rate: np.ndarray, reference: float, target: float, what: str) -> np.ndarray:
    """``rate / reference * target`` (requests/s), refused if float64 cannot hold it: values
    spanning hundreds of orders of magnitude (say 1e-310 in the window, 1 before it)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        scaled = rate / reference * target
    if np.isfinite(scaled).all():
        return scaled
    raise InputError(
        path,
        "value",
        f"scaled so the window's reference load {reference:g} becomes {target:g} requests/s, "
        f"{what} overflows (largest value {np.nanmax(rate):g})",
        "values within about 1e300 of each other",
    )


def _n_minutes(duration_s: float) -> int:
    """Number of simulated minutes covering ``duration_s`` seconds."""
    if not duration_s > 0:
        raise ValueError(f"duration_s(={duration_s}) must be > 0")
    # a duration computed as days * 86400 from a whole number of minutes may carry float
    # noise above it (12101 minutes -> 726060.0000000001 s): that is not another minute
    return math.ceil(duration_s / MINUTE_S - 1e-9)


def _iso(seconds: int) -> str:
    """ISO 8601 text of a time given in seconds since the epoch (naive clock)."""
    return str(np.datetime64(int(seconds), "s"))


def _start_seconds(path: Path, start: datetime, first_s: int, end_s: int, field: str) -> int:
    """Validate a replay start (scenario field ``field``) against the trace span; seconds
    since the epoch."""
    span = f"[{_iso(first_s)}, {_iso(end_s)})"
    if start.tzinfo is not None:
        raise InputError(
            path,
            field,
            f"{start.isoformat()} has a time zone but the trace clock has none",
            f"a naive date-time in {span}",
        )
    seconds = int(np.datetime64(start, "s").astype(np.int64))
    if not first_s <= seconds < end_s:
        raise InputError(
            path,
            field,
            f"{_iso(seconds)} is outside the trace, which covers {span}",
            f"a date-time in {span}",
        )
    return seconds


def _check_window_end(path: Path, start_s: int, n_minutes: int, end_s: int, field: str) -> None:
    """Raise (naming ``field``) if ``n_minutes`` from ``start_s`` run past the trace's end."""
    needed_s = start_s + n_minutes * MINUTE_S
    if needed_s <= end_s:
        return
    days = n_minutes * MINUTE_S / DAY_S
    max_days = math.floor((end_s - start_s) / DAY_S * 1000) / 1000
    raise InputError(
        path,
        field,
        f"a {days:g}-day replay from {_iso(start_s)} needs data until {_iso(needed_s)} "
        f"but the trace ends at {_iso(end_s)}",
        f"at most {max_days:g} days from {_iso(start_s)}",
    )


def _interpolate_minutes(
    bucket_s: np.ndarray, values: np.ndarray, was_filled: np.ndarray, minute_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation at each minute start (step > 60 s), holding at the ends.

    A minute counts as filled if a bucket with non-zero weight in it was a gap.
    """
    rate = np.interp(minute_s, bucket_s, values)
    last = bucket_s.size - 1
    left = np.clip(np.searchsorted(bucket_s, minute_s, side="right") - 1, 0, last)
    right = np.minimum(left + 1, last)
    between = minute_s != bucket_s[left]
    return rate, was_filled[left] | (between & was_filled[right])


def _mean_minutes(
    bucket_s: np.ndarray, values: np.ndarray, was_filled: np.ndarray, start_s: int, n_minutes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the buckets beginning inside each minute (step <= 60 s).

    A minute counts as filled if any of its buckets was a gap. Every minute inside the
    trace holds at least one bucket, because the step is at most 60 s.
    """
    offset = bucket_s - start_s
    inside = (offset >= 0) & (offset < n_minutes * MINUTE_S)
    minute = offset[inside] // MINUTE_S
    count = np.bincount(minute, minlength=n_minutes)
    total = np.bincount(minute, weights=values[inside], minlength=n_minutes)
    filled = np.bincount(minute, weights=was_filled[inside], minlength=n_minutes) > 0
    return total / count, filled


def _scale(
    path: Path,
    rate: np.ndarray,
    workload: TraceWorkload,
    window: str,
    field: str = "workload",
) -> tuple[float, float]:
    """``(reference, target)``: ``x / reference * target`` makes the peak of ``rate``
    ``peak_rps`` (exactly) or its mean ``mean_rps``."""
    if workload.peak_rps is not None:
        key, target, reference = "peak_rps", workload.peak_rps, float(rate.max())
    elif workload.mean_rps is not None:
        with np.errstate(over="ignore"):
            key, target, reference = "mean_rps", workload.mean_rps, float(rate.mean())
    else:
        raise ValueError("TraceWorkload needs exactly one of peak_rps or mean_rps")
    if not math.isfinite(reference):
        raise InputError(
            path,
            "value",
            f"the {key} reference load of the replayed window {window} overflows",
            "values whose sum over the window fits a float64 (about 1e308)",
        )
    if not reference > 0:
        raise InputError(
            path,
            f"{field}.start",
            f"the replayed window {window} has zero load everywhere, so it cannot be "
            f"scaled to {key}={target:g}",
            "a window with some non-zero load",
        )
    return reference, target


# --------------------------------------------------------------------------- regime change


def shift_minute(shift: WorkloadShift) -> int:
    """The first replayed minute that comes from the second trace: ``ceil(at_h * 60)``."""
    return math.ceil(shift.at_h * 60)


def spliced_rps_per_minute(
    trace: Trace,
    workload: TraceWorkload,
    *,
    base_dir: Path,
    duration_s: float,
    start: datetime | None = None,
) -> WorkloadSeries:
    """Offered load of a replay whose regime changes at ``workload.shift.at_h``.

    Minutes ``[0, k)``, ``k = ceil(at_h * 60)``, replay ``trace`` from ``start`` (else
    ``workload.start``) exactly as :func:`trace_rps_per_minute` would replay a
    ``k``-minute run: normalised on those minutes, with the trace before them as the
    history (same scale). Minutes ``[k, n)`` replay the second trace from
    ``shift.start`` (its own clock: hour ``h`` of the second trace keeps its load),
    normalised on those minutes alone, with the same gap filling. ``start`` and
    ``source`` are the first trace's; ``filled_minutes`` counts both parts.

    Parameters
    ----------
    trace
        The first regime's trace, loaded.
    workload
        The scenario's workload; ``workload.shift`` must be set.
    base_dir
        Directory a relative ``shift.path`` is resolved against.
    duration_s
        Length of the whole replay in seconds (> 0).
    start
        Overrides ``workload.start`` (minute 0 on the first trace's clock).

    Raises
    ------
    InputError
        ``shift.at_h`` is not before the end of the replay (field
        ``workload.shift.at_h``; also when the first trace ends before it), or the
        second trace is unreadable, lacks
        ``shift.start``, or does not cover the rest of the replay from it
        (``workload.shift.start``); the first trace's own errors as for
        :func:`trace_rps_per_minute`.
    """
    shift = workload.shift
    if shift is None:
        raise ValueError("spliced_rps_per_minute needs workload.shift")
    n_minutes = _n_minutes(duration_s)
    first_minutes = shift_minute(shift)
    if first_minutes >= n_minutes:
        hours = n_minutes * MINUTE_S / 3600
        raise InputError(
            trace.path,
            "workload.shift.at_h",
            f"{shift.at_h:g} h is not before the end of the {hours:g}-hour replay",
            f"0 < at_h < {hours:g} (duration_days * 24)",
        )
    first = trace_rps_per_minute(
        trace,
        workload,
        duration_s=first_minutes * MINUTE_S,
        start=start,
        end_field="workload.shift.at_h",
    )
    path = Path(shift.path)
    second_trace = load_trace(path if path.is_absolute() else Path(base_dir) / path)
    second_workload = TraceWorkload(
        kind="trace",
        path=shift.path,
        peak_rps=shift.peak_rps,
        mean_rps=shift.mean_rps,
        start=shift.start,
        max_interpolate_min=workload.max_interpolate_min,
    )
    second = trace_rps_per_minute(
        second_trace,
        second_workload,
        duration_s=(n_minutes - first_minutes) * MINUTE_S,
        field="workload.shift",
        with_history=False,
    )
    return replace(
        first,
        offered_rps=np.concatenate((first.offered_rps, second.offered_rps)),
        filled_minutes=first.filled_minutes + second.filled_minutes,
    )


# --------------------------------------------------------------------------- synthetic


def synthetic_rps_per_minute(
    workload: SyntheticWorkload, *, duration_s: float, rng: np.random.Generator
) -> WorkloadSeries:
    """Offered load per simulated minute from the seeded synthetic generator.

    ``rps = mean_rps * diurnal * weekly * noise * crowds``, clipped at 0, where

    - ``diurnal = 1 + diurnal_amplitude * cos(2 pi (hour - peak_hour) / 24)``;
    - ``weekly = 1 + 2/7 * weekly_amplitude`` Monday to Friday and
      ``1 - 5/7 * weekly_amplitude`` on Saturday and Sunday (mean 1 over a week);
    - ``noise = exp(x - noise**2 / 2)`` with ``x`` a stationary AR(1) process
      (``phi = 0.98`` per minute, standard deviation ``noise``), so its mean is 1;
    - ``crowds = 1 + sum of bumps``: a Poisson number (mean ``rate_per_day * days``)
      of flash crowds, each with a uniform onset in the run, a peak multiplier
      ``M ~ U(magnitude)`` and a length ``D ~ U(duration_min)`` minutes; a bump rises
      linearly from 0 to ``M - 1`` over ``ramp_min`` minutes, stays there for
      ``D / 2`` minutes and decays linearly to 0 over the last ``D / 2``.

    Parameters
    ----------
    workload
        The generator's parameters; ``workload.start`` is the clock of minute 0.
    duration_s
        Length of the run in seconds (> 0); ``ceil(duration_s / 60)`` minutes.
    rng
        The only source of randomness; equal states give equal series.

    Returns
    -------
    WorkloadSeries
        Requests/s per minute, ``>= 0``; ``filled_minutes`` is 0.
    """
    n_minutes = _n_minutes(duration_s)
    hour, weekday = _clock(workload.start, n_minutes)
    rate = (
        workload.mean_rps
        * _diurnal(hour, workload.diurnal_amplitude, workload.peak_hour)
        * _weekly(weekday, workload.weekly_amplitude)
        * _log_noise(n_minutes, workload.noise, rng)
        * _flash_crowds(n_minutes, workload.flash_crowds, rng)
    )
    return WorkloadSeries(
        start=workload.start,
        offered_rps=np.maximum(rate, 0.0),
        filled_minutes=0,
        source="synthetic",
    )


def _clock(start: datetime, n_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (float, 0-24) and weekday (0 = Monday) of each minute from ``start``."""
    first_hour = start.hour + start.minute / 60 + (start.second + start.microsecond / 1e6) / 3600
    hours = first_hour + np.arange(n_minutes) / 60
    weekday = (start.weekday() + np.floor(hours / 24).astype(np.int64)) % 7
    return hours % 24, weekday


def _diurnal(hour: np.ndarray, amplitude: float, peak_hour: float) -> np.ndarray:
    """Daily cycle factor, mean 1 over a day, maximum ``1 + amplitude`` at ``peak_hour``."""
    return 1.0 + amplitude * np.cos(2 * np.pi * (hour - peak_hour) / 24)


def _weekly(weekday: np.ndarray, amplitude: float) -> np.ndarray:
    """Weekly factor: weekdays ``1 + 2a/7``, weekends ``1 - 5a/7`` (mean 1 over a week)."""
    return np.where(weekday >= 5, 1.0 - 5 * amplitude / 7, 1.0 + 2 * amplitude / 7)


def _log_noise(n_minutes: int, sd: float, rng: np.random.Generator) -> np.ndarray:
    """``exp`` of a stationary AR(1) (phi 0.98/min, sd ``sd``), bias-corrected to mean 1.

    Always draws ``n_minutes`` normals, so later draws do not depend on ``sd``.
    """
    shocks = rng.standard_normal(n_minutes)
    shocks[1:] *= sd * math.sqrt(1 - AR_PHI**2)
    shocks[0] *= sd  # x_0 from the stationary distribution
    return np.exp(_ar1(shocks, AR_PHI) - sd**2 / 2)


def _ar1(shocks: np.ndarray, phi: float) -> np.ndarray:
    """``x[t] = phi * x[t-1] + shocks[t]`` with ``x[-1] = 0``, computed block-wise.

    Inside a block of ``_AR_BLOCK`` steps the recursion is a scaled cumulative sum;
    only the carry between blocks is a (short) Python loop.
    """
    n = shocks.size
    n_blocks = -(-n // _AR_BLOCK)
    padded = np.zeros(n_blocks * _AR_BLOCK)
    padded[:n] = shocks
    blocks = padded.reshape(n_blocks, _AR_BLOCK)
    powers = phi ** np.arange(_AR_BLOCK)
    local = np.cumsum(blocks / powers, axis=1) * powers
    carry_weights = phi * powers  # phi**(j+1): weight of the previous block's last value
    carry = 0.0
    for block in range(n_blocks):
        local[block] += carry * carry_weights
        carry = float(local[block, -1])
    flat: np.ndarray = local.reshape(-1)[:n]
    return flat


def _flash_crowds(n_minutes: int, crowds: FlashCrowds, rng: np.random.Generator) -> np.ndarray:
    """Flash-crowd multiplier per minute (1 outside crowds), see the generator docstring."""
    count = int(rng.poisson(crowds.rate_per_day * n_minutes / (DAY_S / MINUTE_S)))
    onsets = rng.uniform(0.0, n_minutes, size=count)
    magnitudes = rng.uniform(*crowds.magnitude, size=count)
    lengths = np.maximum(rng.uniform(*crowds.duration_min, size=count), 0.0)
    multiplier = np.ones(n_minutes)
    for onset, magnitude, length in zip(onsets, magnitudes, lengths, strict=True):
        end = onset + crowds.ramp_min + length
        lo, hi = int(onset), min(n_minutes, math.ceil(end) + 1)
        minute = np.arange(lo, hi, dtype=np.float64)
        rise = np.clip((minute - onset) / crowds.ramp_min, 0.0, 1.0)
        fall = np.clip((end - minute) / max(length / 2, 1e-9), 0.0, 1.0)
        multiplier[lo:hi] += (magnitude - 1.0) * rise * fall
    return np.maximum(multiplier, 0.0)


def _expected_peak_rps(workload: SyntheticWorkload) -> float:
    """Peak used when a trace replaces a synthetic workload (requests/s).

    ``mean_rps * (1 + diurnal_amplitude) * (1 + weekly_amplitude)``: an upper bound of
    the generator's noise-free peak (whose weekly factor peaks at ``1 + 2/7 * a``).
    """
    return workload.mean_rps * (1 + workload.diurnal_amplitude) * (1 + workload.weekly_amplitude)


# --------------------------------------------------------------------------- dispatch


def workload_rps_per_minute(
    workload: TraceWorkload | SyntheticWorkload,
    *,
    base_dir: Path,
    duration_s: float,
    rng: np.random.Generator,
    trace_override: Path | None = None,
    override_start: datetime | None = None,
    history_rng: np.random.Generator | None = None,
) -> WorkloadSeries:
    """Offered load per simulated minute for a scenario's workload.

    Parameters
    ----------
    workload
        The scenario's workload.
    base_dir
        Directory of the scenario file; relative trace paths are resolved against it.
    duration_s
        Length of the run in seconds (> 0).
    rng
        Generator for the synthetic workload (unused when a trace is replayed).
    trace_override
        A trace to replay instead (e.g. from ``--trace``), used as given (a relative
        path is relative to the working directory). It keeps a trace workload's
        normalisation, gap limit and ``shift`` (it replaces the first regime's trace
        only) but ignores ``workload.start`` (the replay starts
        at ``override_start``, or else the override's first timestamp); a synthetic
        workload becomes a trace replay scaled to the generator's expected peak,
        ``mean_rps * (1 + diurnal_amplitude) * (1 + weekly_amplitude)`` requests/s.
    override_start
        With ``trace_override``: the first replayed minute (the trace before it becomes
        the history).
    history_rng
        Generator for a synthetic workload's history (:data:`SYNTHETIC_HISTORY_DAYS`
        days before its start); without it a synthetic workload has no history.

    Returns
    -------
    WorkloadSeries
        Requests/s per minute, and the history before the first minute.
    """
    if trace_override is not None:
        if isinstance(workload, SyntheticWorkload):
            replay = TraceWorkload(
                kind="trace", path=str(trace_override), peak_rps=_expected_peak_rps(workload)
            )
        else:
            replay = workload.model_copy(update={"path": str(trace_override), "start": None})
        trace = load_trace(Path(trace_override))
        if replay.shift is not None:
            return spliced_rps_per_minute(
                trace, replay, base_dir=base_dir, duration_s=duration_s, start=override_start
            )
        return trace_rps_per_minute(trace, replay, duration_s=duration_s, start=override_start)
    if isinstance(workload, SyntheticWorkload):
        series = synthetic_rps_per_minute(workload, duration_s=duration_s, rng=rng)
        if history_rng is None:
            return series
        earlier = workload.model_copy(
            update={"start": workload.start - timedelta(days=SYNTHETIC_HISTORY_DAYS)}
        )
        history = synthetic_rps_per_minute(
            earlier, duration_s=SYNTHETIC_HISTORY_DAYS * DAY_S, rng=history_rng
        )
        return replace(
            series,
            history_rps=history.offered_rps,
            history_filled=np.zeros(history.offered_rps.size, dtype=bool),
        )
    path = Path(workload.path)
    trace = load_trace(path if path.is_absolute() else Path(base_dir) / path)
    if workload.shift is not None:
        return spliced_rps_per_minute(trace, workload, base_dir=base_dir, duration_s=duration_s)
    return trace_rps_per_minute(trace, workload, duration_s=duration_s)
