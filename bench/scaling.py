"""``opsbench bench scaling``: the predictive policy against static, reactive and the
oracle on every dev-trace scenario, with its forecast scored on the same split.

Each scenario replays its own window; ``predictive`` trains on the load before it (the
scenario's history), so the replay window is also the forecast's test part. Per
scenario the report holds each policy's cost, SLO attainment, violation minutes, wasted
node-hours and time-to-capacity, the forecast's MASE (30 min, against the one-day
seasonal naive scaled on the history: the M4 convention), and the same scores for
statsforecast's AutoETS when it is installed (a benchmark-only comparison; AutoETS is
fitted on the history and run forward over the window with fixed parameters).

Targets (issue 4), per scenario:
    ``slo``: predictive's SLO-violation minutes <= 20% of reactive's, at a cost <= reactive's;
    ``waste``: wasted node-hours <= 40% of reactive's;
    ``cost_vs_oracle``: cost <= 1.10 x the oracle's;
    ``mase``: MASE <= 0.7 at 30 minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from agents.forecasting.backtest import make_samples
from agents.forecasting.features import make_features
from agents.forecasting.metrics import coverage, mase, seasonal_naive_scale, wape
from agents.forecasting.series import WorkingSeries
from agents.scaling.training import history_series
from agents.scaling.model import ScalingModel
from bench import runner
from bench.forecast_eval import autoets_forward
from features import DEFAULT_STORE
from sim.world import World

DEV_SCENARIOS = ("nasa-diurnal", "worldcup-flash-crowd", "google-steady", "elb-spiky")
POLICIES = ("static", "reactive", "predictive", "oracle")
SLO_SHARE, WASTE_SHARE, ORACLE_COST_RATIO, MAX_MASE = 0.20, 0.40, 1.10, 0.7
MINUTE_S = 60


def replay_series(world: World) -> tuple[WorkingSeries, int]:
    """History + replayed window as one working series, and the index of the first
    bucket of the window (the split)."""
    workload = world.workload
    minutes = np.concatenate((workload.history_rps, workload.offered_rps))
    gap = np.concatenate((workload.history_filled, np.zeros(workload.offered_rps.size, dtype=bool)))
    start = np.datetime64(workload.start, "s")
    end = start + np.timedelta64(workload.offered_rps.size * MINUTE_S, "s")
    series = history_series(minutes, gap, end.astype(datetime), source=workload.source)
    return series, int(np.searchsorted(series.timestamps, start))


def forecast_scores(world: World, model: ScalingModel) -> dict[str, Any]:
    """The model's forecast (``forecast`` role) scored on the replay window."""
    series, cut = replay_series(world)
    h = model.metadata.forecast_horizon_min * MINUTE_S // series.step_s
    day = series.period_day
    frame = make_features(series.values, series.timestamps, step_s=series.step_s, horizon_steps=h)
    origins = make_samples(series, horizon_steps=h, cut=cut).test
    quantiles = model.forecasters["forecast"].predict_quantiles(
        frame.iloc[origins].reset_index(drop=True), quantiles=(0.5, 0.9)
    )
    y = series.values[origins + h]
    scale = seasonal_naive_scale(series.values, period=day, stop=cut, gap=series.gap)
    naive = series.values[origins + h - day]
    out: dict[str, Any] = {
        "horizon_min": model.metadata.forecast_horizon_min,
        "split": f"train: history before {world.workload.start.isoformat()}; test: the window",
        "n_points": int(origins.size),
        "mase": _round(mase(y, quantiles[:, 0], scale)),
        "wape": _round(wape(y, quantiles[:, 0])),
        "coverage_p90": _round(coverage(y, quantiles[:, 1])),
        "seasonal_naive_1d_mase": _round(mase(y, naive, scale)),
        "autoets": autoets_scores(series, cut, h, origins, scale),
    }
    return out


def autoets_scores(
    series: WorkingSeries, cut: int, h: int, origins: np.ndarray, scale: float
) -> dict[str, Any] | None:
    """statsforecast's AutoETS on the same split, or ``None`` when it is not installed."""
    try:
        import statsforecast
        from statsforecast.models import AutoETS
    except ImportError:
        return None
    values = series.values
    started = time.perf_counter()
    fitted = AutoETS(season_length=series.period_day).fit(values[:cut])
    p50, p90 = autoets_forward(fitted, values, origins, h)
    y = values[origins + h]
    return {
        "statsforecast": statsforecast.__version__,
        "mase": _round(mase(y, p50, scale)),
        "wape": _round(wape(y, p50)),
        "coverage_p90": _round(coverage(y, p90)),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def targets(by_policy: dict[str, dict[str, Any]], forecast: dict[str, Any]) -> dict[str, Any]:
    """Each target's threshold, value and verdict for one scenario."""
    pred, react, oracle = by_policy["predictive"], by_policy["reactive"], by_policy["oracle"]
    viol_limit = SLO_SHARE * react["slo_violation_minutes"]
    return {
        "slo": {
            "violation_minutes": pred["slo_violation_minutes"],
            "limit": round(viol_limit, 1),
            "cost_usd": pred["cost_usd"],
            "cost_limit_usd": react["cost_usd"],
            "met": pred["slo_violation_minutes"] <= viol_limit
            and pred["cost_usd"] <= react["cost_usd"],
        },
        "waste": {
            "wasted_node_hours": pred["wasted_node_hours"],
            "limit": round(WASTE_SHARE * react["wasted_node_hours"], 3),
            "met": pred["wasted_node_hours"] <= WASTE_SHARE * react["wasted_node_hours"],
        },
        "cost_vs_oracle": {
            "ratio": round(pred["cost_usd"] / oracle["cost_usd"], 4),
            "limit": ORACLE_COST_RATIO,
            "met": pred["cost_usd"] <= ORACLE_COST_RATIO * oracle["cost_usd"],
        },
        "mase": {
            "value": forecast["mase"],
            "limit": MAX_MASE,
            "met": forecast["mase"] is not None and forecast["mase"] <= MAX_MASE,
        },
    }


def run_scenario(
    scenario: str,
    *,
    models_dir: Path = runner.MODELS_DIR,
    store: Path = DEFAULT_STORE,
    policies: Sequence[str] = POLICIES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Replay one scenario with every policy; score the forecast; check the targets."""
    by_policy: dict[str, dict[str, Any]] = {}
    forecast: dict[str, Any] | None = None
    for name in policies:
        prepared = runner.prepare_run(scenario, policy=name)
        if progress is not None:
            progress(f"{scenario}: {name}")
        runner.attach_model(prepared, models_dir=models_dir, store=store, progress=progress)
        by_policy[name] = runner.run(prepared)
        model = getattr(prepared.policy, "model", None)
        if name == "predictive" and model is not None:
            forecast = forecast_scores(prepared.world, model)
    result: dict[str, Any] = {"scenario": scenario, "policies": by_policy, "forecast": forecast}
    if forecast is not None and {"reactive", "oracle", "predictive"} <= set(by_policy):
        result["targets"] = targets(by_policy, forecast)
    return result


def _round(value: float, digits: int = 4) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None
