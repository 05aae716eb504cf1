"""Features of a forecast origin, built only from values at or before the origin.

A sample is an *origin* ``i`` of a regular series ``y`` (one value per working step,
bucket ``i`` covering ``[T_i, T_i + step)``) and its *target* ``y[i + h]``, the bucket
``H = h * step`` after the origin's bucket. Row ``i`` of :func:`make_features` reads
``y[j]`` only for ``j <= i`` (the origin's bucket is complete when the forecast is
made); the calendar columns describe the *target* time ``T_{i+h}``, which is known in
advance. Cells whose history lies before the series' start are ``NaN``.

Columns (all in the series' unit unless stated)
    ``lag_0 .. lag_{n_lags-1}``
        ``y[i - k]``: the last ``n_lags`` values.
    ``target_1d``, ``target_1w``
        ``y[i + h - day]``, ``y[i + h - week]``: the target's bucket one day / one week
        earlier (in the past because ``H <= 1 day``).
    ``origin_1d``, ``origin_1w``
        ``y[i - day]``, ``y[i - week]``: the origin's bucket one day / one week earlier,
        so a model can carry yesterday's change from origin to target over.
    ``target_1d_mean_1h``
        Mean of the hour ending with ``target_1d`` (a smoothed seasonal value).
    ``mean_1h, mean_6h, mean_24h``, ``max_1h, max_6h, max_24h``, ``std_1h, std_6h, std_24h``
        Rolling mean / max / standard deviation (``ddof=0``) of the windows of 1 h, 6 h
        and 24 h ending with ``y[i]`` (at least one step each; ``NaN`` until full).
    ``mean_24h_1d``
        Mean of the 24 h ending one day before the origin (with ``mean_24h``: the trend
        from one day to the next).
    ``hour_of_day``, ``day_of_week``
        Of the target's bucket start: hours ``[0, 24)`` and 0 = Monday ... 6 = Sunday.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY_S = 86_400
WEEK_S = 7 * DAY_S
HOUR_S = 3_600
DEFAULT_N_LAGS = 6
CALENDAR_COLUMNS: tuple[str, ...] = ("hour_of_day", "day_of_week")
"""Columns not in the series' unit (models must not rescale them)."""
LEVEL_COLUMN = "mean_1h"
"""The recent level a model may normalise by (series' unit)."""
SEASONAL_COLUMNS = {"1d": "target_1d", "1w": "target_1w"}
"""The seasonal-naive value of each season."""


def make_features(
    values: np.ndarray,
    timestamps: np.ndarray,
    *,
    step_s: int,
    horizon_steps: int,
    n_lags: int = DEFAULT_N_LAGS,
) -> pd.DataFrame:
    """One row of features per origin ``i``, from ``values[: i + 1]`` only.

    Parameters
    ----------
    values
        ``float64`` series without ``NaN`` (gaps filled), one value per ``step_s``.
    timestamps
        ``datetime64`` start of each bucket, same length.
    step_s
        The series' step in seconds; must divide one day.
    horizon_steps
        ``h >= 1``: the target of origin ``i`` is ``values[i + h]``; ``h * step_s``
        must not exceed one day.
    n_lags
        Number of recent values ``y[i], y[i-1], ...`` (``>= 1``).

    Returns
    -------
    pandas.DataFrame
        ``len(values)`` rows (origins ``0 .. n-1``), the columns of the module
        docstring, ``float64``.

    Raises
    ------
    ValueError
        On a step that does not divide a day, a horizon outside ``[1 step, 1 day]``,
        ``n_lags < 1`` or mismatched lengths.
    """
    y = np.asarray(values, dtype=np.float64)
    stamps = np.asarray(timestamps).astype("datetime64[s]")
    if y.ndim != 1 or stamps.shape != y.shape:
        raise ValueError("values and timestamps must be 1-D arrays of the same length")
    if step_s <= 0 or DAY_S % step_s:
        raise ValueError(f"step_s(={step_s}) must divide one day")
    day, week = DAY_S // step_s, WEEK_S // step_s
    if not 1 <= horizon_steps <= day:
        raise ValueError(f"horizon_steps(={horizon_steps}) must be in [1, {day}]")
    if n_lags < 1:
        raise ValueError(f"n_lags(={n_lags}) must be >= 1")
    h = horizon_steps
    series = pd.Series(y)
    columns: dict[str, np.ndarray] = {}
    for k in range(n_lags):
        columns[f"lag_{k}"] = _shift(y, k)
    columns["target_1d"] = _shift(y, day - h)
    columns["target_1w"] = _shift(y, week - h)
    columns["origin_1d"] = _shift(y, day)
    columns["origin_1w"] = _shift(y, week)
    hour = max(1, HOUR_S // step_s)
    mean_1h = series.rolling(hour, min_periods=hour).mean().to_numpy()
    columns["target_1d_mean_1h"] = _shift(mean_1h, day - h)
    for name, seconds in (("1h", HOUR_S), ("6h", 6 * HOUR_S), ("24h", DAY_S)):
        window = series.rolling(max(1, seconds // step_s), min_periods=max(1, seconds // step_s))
        columns[f"mean_{name}"] = window.mean().to_numpy()
        columns[f"max_{name}"] = window.max().to_numpy()
        columns[f"std_{name}"] = window.std(ddof=0).to_numpy()
    columns["mean_24h_1d"] = _shift(columns["mean_24h"], day)
    target_s = stamps.astype(np.int64) + h * step_s
    columns["hour_of_day"] = (target_s % DAY_S) / HOUR_S
    columns["day_of_week"] = ((target_s // DAY_S + 3) % 7).astype(np.float64)  # 1970-01-01: Thu
    return pd.DataFrame(columns)


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    """``out[i] = x[i - lag]`` (``lag >= 0``), ``NaN`` where ``i - lag < 0``."""
    out = np.full(x.size, np.nan)
    if lag < x.size:
        out[lag:] = x[: x.size - lag]
    return out


def feature_names(n_lags: int = DEFAULT_N_LAGS) -> tuple[str, ...]:
    """The columns of :func:`make_features`, in order."""
    stamps = np.array(["2024-01-01T00:00:00", "2024-01-01T00:05:00"], dtype="datetime64[s]")
    frame = make_features(np.zeros(2), stamps, step_s=300, horizon_steps=1, n_lags=n_lags)
    return tuple(str(c) for c in frame.columns)


def origin_features(
    values: np.ndarray,
    origin_start_s: int,
    *,
    step_s: int,
    horizon_steps: int,
    n_lags: int = DEFAULT_N_LAGS,
) -> np.ndarray:
    """The row of :func:`make_features` for the *last* origin of ``values``, in O(day).

    The streaming form used in the closed loop (one origin per working step), equal to
    ``make_features(values, ...)`` at its last row (a property test checks it).

    Parameters
    ----------
    values
        ``float64`` series without ``NaN``, oldest first; its last value is the origin.
    origin_start_s
        Start of the origin's bucket, seconds since the epoch (naive clock).
    step_s, horizon_steps, n_lags
        As in :func:`make_features`.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(len(feature_names(n_lags)),)`` in that column order.
    """
    y = np.asarray(values, dtype=np.float64)
    n = y.size
    day, week = DAY_S // step_s, WEEK_S // step_s
    h = horizon_steps
    i = n - 1

    def at(j: int) -> float:
        return float(y[j]) if 0 <= j < n else float("nan")

    def window(end: int, length: int) -> np.ndarray | None:
        return y[end - length + 1 : end + 1] if end - length + 1 >= 0 and end < n else None

    out = [at(i - k) for k in range(n_lags)]
    out += [at(i + h - day), at(i + h - week), at(i - day), at(i - week)]
    hour = max(1, HOUR_S // step_s)
    target_hour = window(i + h - day, hour)
    out.append(float(target_hour.mean()) if target_hour is not None else float("nan"))
    stats: dict[str, tuple[float, float, float]] = {}
    for name, seconds in (("1h", HOUR_S), ("6h", 6 * HOUR_S), ("24h", DAY_S)):
        w = window(i, max(1, seconds // step_s))
        stats[name] = (
            (float(w.mean()), float(w.max()), float(w.std())) if w is not None else (np.nan,) * 3
        )
    for name in ("1h", "6h", "24h"):
        out += list(stats[name])
    previous_day = window(i - day, max(1, DAY_S // step_s))
    out.append(float(previous_day.mean()) if previous_day is not None else float("nan"))
    target_s = origin_start_s + h * step_s
    out += [(target_s % DAY_S) / HOUR_S, float((target_s // DAY_S + 3) % 7)]
    return np.asarray(out, dtype=np.float64)
