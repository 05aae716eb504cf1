"""The forecasts ``predictive`` holds at every control tick of a replay, for a whole load
series at once: for environments that size capacity as the policy would (the cost
agent's) and cannot run the policy itself every step.

In a replay the policy re-forecasts at reset (the origin ending at ``start``) and at
every tick ``k >= 1`` whose minute ``k - 1`` has metrics: its pipeline
(:class:`~agents.scaling.pipeline.LoadPipeline`) adds the minute (and, first, every
minute before it without metrics, as the last value known), builds the feature row of
the origin ending now, and the model forecasts from it. A tick whose minute has no
metrics keeps the forecast it held. :func:`plan_forecasts` drives the same pipeline and
the same ``predict_row`` the same way, without the policy's online-store round trip
(which returns the row unchanged), so its result equals the policy's forecast bit for bit
(``tests/agents/test_plan_forecast.py`` replays the policy and compares). About 6,000
ticks a second (a 14-day history in ~3.5 s), computed once per training run.

(A batch twin that built every origin's row at once and walked the compiled trees for
blocks of rows ran 10x faster, also bit-identical, but re-expressed the feature and tree
code in a second place; at one call per training run the speed is not worth that.)

Ticks are 60 s apart (``control.interval_s: 60``). The load is what the policy's metrics
report: in a simulator replay the sum of the pools' ``request_rate_rps``, each pool's
share of the minute's offered requests; that sum may differ from the workload's
``offered_rps`` in the last bit (forecasts then differ by ~1e-16 relative).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from agents.forecasting.features import DAY_S
from agents.scaling.history import MIN_HISTORY_DAYS
from agents.scaling.model import ScalingModel
from agents.scaling.pipeline import LoadPipeline

MINUTE_S = 60


def plan_forecasts(
    model: ScalingModel,
    *,
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    start: datetime,
    offered_rps: np.ndarray,
    observed: np.ndarray | None = None,
    role: str = "plan",
) -> np.ndarray:
    """The quantile forecasts (requests/s) ``PredictivePolicy.forecast[role]`` holds at
    every control tick of a replay (60-s ticks) of ``offered_rps``.

    Parameters
    ----------
    model
        The policy's trained scaling model.
    history_rps
        Offered load (requests/s) per minute before ``start``, oldest first (at least
        :data:`~agents.scaling.history.MIN_HISTORY_DAYS` days, as the policy needs).
    history_gap
        ``bool``, True where a history minute was a gap (its value is not read).
    start
        Wall-clock time of tick 0 (naive UTC).
    offered_rps
        Offered load (requests/s, finite, ``>= 0``) of each replay minute ``k = 0..n-1``:
        what the policy's metrics report, summed over pools.
    observed
        ``bool`` ``(n,)``, False where the policy saw no metrics for minute ``k`` (a
        telemetry gap); None: every minute observed.
    role
        ``"plan"`` (the busiest minute of the plan window) or ``"forecast"`` (the mean
        load at the reported horizon).

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(n + 1, len(model.metadata.quantiles))``, quantiles in the
        metadata's order: row 0 the forecast after reset (origin ``start``); row ``k``
        the forecast held after deciding at tick ``k`` (sim time ``60 k`` s), having seen
        minutes ``0..k-1`` (unchanged from row ``k - 1`` when minute ``k - 1`` had no
        metrics).

    Raises
    ------
    ValueError
        Inputs of the wrong shape or type, a load that is negative or not finite, too
        little history, or an unknown role.
    """
    history, gap, offered, seen = _checked_inputs(history_rps, history_gap, offered_rps, observed)
    meta = model.metadata
    horizons = {"plan": meta.plan_horizon_min, "forecast": meta.forecast_horizon_min}
    if role not in horizons:
        raise ValueError(f"plan_forecasts: role {role!r} is not one of {sorted(horizons)}")
    horizon = horizons[role]
    pipeline = LoadPipeline(history, gap, start, step_s=meta.step_s)
    start_s = int(np.datetime64(start, "s").astype(np.int64))
    out = np.empty((offered.size + 1, len(meta.quantiles)), dtype=np.float64)
    out[0] = model.predict_row(role, pipeline.features(horizon))
    for k in range(1, offered.size + 1):
        minute = k - 1
        if seen[minute] and pipeline.observe(start_s + minute * MINUTE_S, float(offered[minute])):
            out[k] = model.predict_row(role, pipeline.features(horizon))
        else:
            out[k] = out[k - 1]
    return out


def _checked_inputs(
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    offered_rps: np.ndarray,
    observed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inputs as ``float64`` / ``bool`` 1-D arrays, or ValueError naming the bad one."""
    history = np.asarray(history_rps, dtype=np.float64)
    gap = np.asarray(history_gap)
    offered = np.asarray(offered_rps, dtype=np.float64)
    if history.ndim != 1 or gap.shape != history.shape or gap.dtype != bool:
        raise ValueError(
            f"plan_forecasts: history_rps {history.shape} and history_gap {gap.shape} "
            f"({gap.dtype}) must be 1-D of one length, history_gap bool"
        )
    known = history[~gap]
    if not np.all(np.isfinite(known) & (known >= 0)):
        raise ValueError("plan_forecasts: history_rps must be finite and >= 0 outside gaps")
    minimum = int(MIN_HISTORY_DAYS * DAY_S // MINUTE_S)
    if history.size < minimum:
        raise ValueError(
            f"plan_forecasts: history_rps has {history.size} minutes; the policy needs at "
            f"least {minimum} ({MIN_HISTORY_DAYS:g} days)"
        )
    if offered.ndim != 1:
        raise ValueError(f"plan_forecasts: offered_rps must be 1-D, not shape {offered.shape}")
    if not np.all(np.isfinite(offered) & (offered >= 0)):
        bad = int(np.flatnonzero(~(np.isfinite(offered) & (offered >= 0)))[0])
        raise ValueError(
            f"plan_forecasts: offered_rps[{bad}] = {offered[bad]}: a load must be finite "
            "and >= 0 (requests/s)"
        )
    if observed is None:
        seen = np.ones(offered.size, dtype=bool)
    else:
        seen = np.asarray(observed)
        if seen.shape != offered.shape or seen.dtype != bool:
            raise ValueError(
                f"plan_forecasts: observed must be bool of offered_rps's shape "
                f"{offered.shape}, not {seen.dtype} {seen.shape}"
            )
    return history, gap, offered, seen
