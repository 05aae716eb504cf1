"""The working series a forecaster sees: a trace on its working step, gaps filled.

Working step
    A trace's native step ``s`` (seconds) must be at most 30 minutes. The working step
    is the smallest multiple ``k * s`` (``k >= 1``) that is at least 5 minutes, a whole
    number of minutes and divides one day, so that a one-day and a one-week season are
    whole numbers of steps. A trace at 5 min or more whose step divides a day keeps its native step
    (``k = 1``: Google and ELB at 5 min); a finer one is aggregated by the **mean** of
    ``k`` consecutive buckets (load is a rate): 1-min NASA and WorldCup become 5 min, a
    2-min trace becomes 6 min. Aggregated buckets start where the time of day is a
    multiple of the working step (the first native bucket at or after such an instant);
    the incomplete buckets at either end are dropped. A step with no such multiple
    (e.g. 7 min) is rejected.

Gaps
    Empty cells and missing buckets are filled on the native grid by
    :func:`sim.traces.fill_gaps` (the documented rule: linear up to
    ``max_interpolate_min``, one day earlier beyond, nearest value at the ends) before
    aggregation. A working bucket is a *gap* when any of its native buckets was.

Availability (no leakage through gap filling)
    A filled value may depend on data *after* it (interpolation towards the next
    observed value, the first observed value for a leading gap, the value one day
    later in a first-day gap). ``available_at[i]`` is a conservative bound on the last
    working bucket whose data the value of bucket ``i`` depends on (``i`` itself for
    observed data). Features at origin ``i`` read only buckets ``<= i``; they are free
    of look-ahead when ``max(available_at[: i + 1]) <= i``, which
    :attr:`WorkingSeries.clean_origin` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.traces import Trace, fill_gaps

DAY_S = 86_400
WEEK_S = 7 * DAY_S
MIN_WORKING_STEP_S = 300
MAX_NATIVE_STEP_S = 1_800
DEFAULT_MAX_INTERPOLATE_MIN = 60
"""Same default as ``workload.max_interpolate_min`` of the scenarios."""


@dataclass(frozen=True, slots=True)
class WorkingSeries:
    """A trace on its working step, gaps filled.

    Attributes
    ----------
    source
        The trace file.
    timestamps
        ``datetime64[s]`` start of each working bucket, regular with ``step_s``.
    values
        ``float64`` mean load per bucket in the trace's unit (a rate), no ``NaN``.
    gap
        ``bool``: True where any native bucket inside was an empty cell or missing.
    clean_origin
        ``bool``: True where every bucket up to and including this one depends only on
        data up to this one (see the module docstring).
    step_s
        Working step in seconds.
    native_step_s
        The trace's own step in seconds.
    """

    source: Path
    timestamps: np.ndarray
    values: np.ndarray
    gap: np.ndarray
    clean_origin: np.ndarray
    step_s: int
    native_step_s: int

    @property
    def period_day(self) -> int:
        """One day in working steps."""
        return DAY_S // self.step_s


def working_step_s(native_step_s: int, *, source: str | Path = "--trace") -> int:
    """The working step (seconds) for a native step (seconds).

    Parameters
    ----------
    native_step_s
        The trace's grid step in seconds, ``1 <= native_step_s <= 1800``.
    source
        Named in the error message.

    Returns
    -------
    int
        The smallest multiple of ``native_step_s`` that is ``>= 300`` s, a multiple of
        60 s and a divisor of 86,400 s.

    Raises
    ------
    InputError
        The step is above 30 minutes, or no multiple of it up to 30 minutes divides a
        day (field ``--trace``).
    """
    allowed = "a step of at most 30 min with a multiple of whole minutes (>= 5) dividing a day"
    if not 0 < native_step_s <= MAX_NATIVE_STEP_S:
        problem = f"the trace's step is {native_step_s} s"
        raise InputError(source, "--trace", problem, "a step of 1 s to 30 min")
    k = -(-MIN_WORKING_STEP_S // native_step_s)
    while k * native_step_s <= MAX_NATIVE_STEP_S:
        if DAY_S % (k * native_step_s) == 0 and (k * native_step_s) % 60 == 0:
            return k * native_step_s
        k += 1
    problem = f"the trace's step of {native_step_s} s has no multiple of 5-30 min dividing a day"
    raise InputError(source, "--trace", problem, allowed)


def to_working_series(
    trace: Trace, *, max_interpolate_min: int = DEFAULT_MAX_INTERPOLATE_MIN
) -> WorkingSeries:
    """Fill the trace's gaps and bring it to its working step.

    Parameters
    ----------
    trace
        A trace loaded by :func:`sim.traces.load_trace`.
    max_interpolate_min
        Gaps up to this many minutes are interpolated linearly (see
        :func:`sim.traces.fill_gaps`).

    Returns
    -------
    WorkingSeries
        The series on the working step (see the module docstring).

    Raises
    ------
    InputError
        The step is not usable (field ``--trace``) or the trace has no complete
        working bucket.
    """
    step = working_step_s(trace.step_s, source=trace.path)
    filled, gap = fill_gaps(trace, max_interpolate_min=max_interpolate_min)
    depends = _native_dependency(gap, trace.step_s, max_interpolate_min)
    k = step // trace.step_s
    first_s = int(trace.timestamps[0].astype(np.int64))
    phase = (first_s % step) // trace.step_s if k > 1 else 0
    j0 = (k - phase) % k
    n = (filled.size - j0) // k
    if n < 1:
        raise InputError(trace.path, "--trace", "no complete working bucket", "a longer trace")
    stop = j0 + n * k
    values = filled[j0:stop].reshape(n, k).mean(axis=1)
    was_gap = np.asarray(gap[j0:stop].reshape(n, k).any(axis=1), dtype=bool)
    depends_working = (depends[j0:stop].reshape(n, k).max(axis=1) - j0) // k
    clean = np.maximum.accumulate(depends_working) <= np.arange(n)
    stamps = trace.timestamps[0] + (j0 + np.arange(n) * k) * np.timedelta64(trace.step_s, "s")
    return WorkingSeries(
        source=trace.path,
        timestamps=stamps,
        values=values,
        gap=was_gap,
        clean_origin=clean,
        step_s=step,
        native_step_s=trace.step_s,
    )


def _native_dependency(gap: np.ndarray, step_s: int, max_interpolate_min: int) -> np.ndarray:
    """Per native bucket, the last native bucket its filled value may depend on.

    Observed buckets depend on themselves. A gap run ``[a, b)`` depends on ``b`` (the
    next observed bucket, used by interpolation and by a leading gap), a trailing run
    on ``a - 1``. A long run inside the first day may copy the value one day later
    (``j + day``), so it also depends on whatever that bucket depends on. Conservative:
    seasonally filled runs that only read earlier days are still marked with ``b``.
    """
    n = gap.size
    depends = np.arange(n)
    period = DAY_S // step_s if DAY_S % step_s == 0 else 0
    edges = np.diff(np.concatenate(([0], gap.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs = [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]
    for a, b in runs:
        depends[a:b] = b if b < n else max(a - 1, 0)
    first_pass = depends.copy()
    for a, b in runs:
        long = (b - a) * step_s > max_interpolate_min * 60
        if b < n and long and period and a < period:
            index = np.arange(a, min(b, period))
            later = first_pass[np.minimum(index + period, n - 1)]
            depends[index] = np.maximum(depends[index], later)
    return depends
