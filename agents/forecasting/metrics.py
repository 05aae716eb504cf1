"""Point and quantile forecast scores (pure numpy, unit-free unless stated)."""

from __future__ import annotations

import numpy as np


def seasonal_naive_scale(values: np.ndarray, *, period: int, stop: int, gap: np.ndarray) -> float:
    """In-sample MAE of the seasonal naive ``y[j - period]`` over ``j in [period, stop)``.

    The M4 scale of MASE, computed on the training part only; buckets ``j`` whose value
    was a gap (filled) are left out.

    Parameters
    ----------
    values
        The (filled) series, one value per step, any unit.
    period
        Season in steps (one day).
    stop
        End (exclusive) of the training part.
    gap
        ``bool`` mask of filled buckets, same length.

    Returns
    -------
    float
        The scale in the series' unit; ``nan`` if no bucket qualifies.
    """
    j = np.arange(period, min(stop, values.size))
    j = j[~gap[j]]
    if j.size == 0:
        return float("nan")
    return float(np.mean(np.abs(values[j] - values[j - period])))


def mase(y_true: np.ndarray, y_pred: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error: ``mean|y - yhat| / scale`` (``nan`` if scale is 0)."""
    if not scale > 0 or y_true.size == 0:
        return float("nan")
    return float(np.mean(np.abs(y_true - y_pred)) / scale)


def wape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Weighted absolute percentage error ``sum|y - yhat| / sum|y|`` (a fraction)."""
    total = float(np.sum(np.abs(y_true)))
    return float(np.sum(np.abs(y_true - y_pred)) / total) if total > 0 else float("nan")


def coverage(y_true: np.ndarray, upper: np.ndarray) -> float:
    """Share of targets at or below the upper quantile forecast (a fraction)."""
    return float(np.mean(y_true <= upper)) if y_true.size else float("nan")
