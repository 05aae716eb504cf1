"""Backtest a load forecaster on a trace: MASE, WAPE and p90 coverage against a baseline.

``python -m bench.forecast_eval --trace CSV [--horizon 30m] [--model gbm-quantile]
[--train-fraction 0.7]`` prints one JSON object (:func:`evaluate`); bad input prints one
line on stderr and exits with code 2. ``--autoets`` prints the AutoETS comparison
instead (:func:`compare_autoets`, needs ``statsforecast``, which is not a dependency of
opsbench: install it by hand).

Rules (see :mod:`agents.forecasting.series` and :mod:`agents.forecasting.backtest`)
    Working step: the native step if it is >= 5 min (and divides a day), else the
    smallest multiple of it that is >= 5 min and divides a day, by the mean of the
    buckets (1-min traces become 5-min). The horizon must be a multiple of the working
    step and at most one day. Gaps are filled by :func:`sim.traces.fill_gaps` (60 min
    linear limit) for features; targets that were gaps are not scored
    (``excluded_gap_points``), nor are origins inside a gap
    (``excluded_origin_points``). Split: the first ``train_fraction`` of the working
    steps are the train part; a sample belongs to the part its target falls in.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.forecasting.backtest import BacktestResult, make_samples, make_split, run_backtest
from agents.forecasting.metrics import coverage, mase, seasonal_naive_scale, wape
from agents.registry import DEFAULT_FORECASTER, FORECASTERS, make_forecaster
from agents.forecasting.series import DAY_S, WorkingSeries, to_working_series
from sim.errors import InputError
from sim.traces import load_trace

BASELINE_MODEL = "seasonal-naive-1d"
MAX_HORIZON_MIN = DAY_S // 60
_HORIZON_ALLOWED = "whole minutes as 30, 30m, 90min or 1h, from 1 min to 1 day"
_HORIZON_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minute|minutes|h|hr|hrs|hour|hours)?\s*$", re.I
)


def parse_horizon(text: str) -> int:
    """A horizon as whole minutes.

    Parameters
    ----------
    text
        ``"30"``, ``"30m"``, ``"90min"``, ``"1h"``, ``"1.5h"`` (a bare number is minutes).

    Returns
    -------
    int
        Minutes, ``1 .. 1440``.

    Raises
    ------
    InputError
        Anything else (field ``--horizon``).
    """
    match = _HORIZON_RE.match(text)
    if match is None:
        raise InputError("--horizon", "", f"{text!r} is not a duration", _HORIZON_ALLOWED)
    number, unit = float(match.group(1)), (match.group(2) or "m").lower()
    minutes = number * 60 if unit.startswith("h") else number
    if not minutes.is_integer() or not 1 <= minutes <= MAX_HORIZON_MIN:
        raise InputError("--horizon", "", f"{text!r} is {minutes:g} min", _HORIZON_ALLOWED)
    return int(minutes)


def evaluate(
    trace_path: Path,
    *,
    horizon_min: int = 30,
    model: str = DEFAULT_FORECASTER,
    train_fraction: float = 0.7,
) -> dict[str, Any]:
    """Backtest ``model`` on a trace and score it with its one-day seasonal-naive baseline.

    The trace is brought to its working step (1-min traces to 5 min by the mean; 5 to
    30 min kept), gaps filled for features. The first ``train_fraction`` of the working
    steps are the train part and the rest the test part; a sample (origin ``t``, target
    ``t + H``) belongs to the part its *target* falls in, so the model never sees a test
    target, and the features of every origin use only values at or before it. Test
    targets that were gaps are not scored.

    Parameters
    ----------
    trace_path
        CSV ``timestamp,value`` at a step of 1 to 30 minutes.
    horizon_min
        ``H`` in minutes: a multiple of the working step, at most one day.
    model
        A name of :data:`agents.registry.FORECASTERS`.
    train_fraction
        Share of the working steps in the train part, in ``(0, 1)``.

    Returns
    -------
    dict
        JSON-able: ``trace, model, horizon_min, step_min, native_step_min, split`` (text
        and ``[start, end)`` of each part), ``mase`` (test MAE / train in-sample MAE of
        the one-day seasonal naive), ``wape``, ``coverage_p90`` (share of test targets
        ``<=`` p90), ``n_points``, ``n_train``, ``excluded_gap_points``,
        ``excluded_origin_points``, ``train_s`` (seconds to fit), ``scale`` (the MASE
        denominator, trace unit) and ``baseline``: the same scores for
        ``seasonal-naive-1d``. Undefined scores are ``None``.

    Raises
    ------
    InputError
        Unknown model (``--model``), a bad horizon (``--horizon``), a bad train fraction
        (``--train-fraction``), a missing, malformed, too coarse or too short trace
        (``--trace``, or the file and line for malformed rows).
    """
    series = _prepare(trace_path, horizon_min=horizon_min, model=model)
    h = horizon_min * 60 // series.step_s
    result = run_backtest(
        series, make_forecaster(model), horizon_steps=h, train_fraction=train_fraction
    )
    if model == BASELINE_MODEL:
        baseline = result
    else:
        baseline = run_backtest(
            series, make_forecaster(BASELINE_MODEL), horizon_steps=h, train_fraction=train_fraction
        )
    return {
        "trace": str(trace_path),
        "model": model,
        "horizon_min": horizon_min,
        "step_min": series.step_s // 60,
        "native_step_min": series.native_step_s / 60,
        "split": result.split.as_dict(),
        **_scores(result),
        "n_train": result.n_train,
        "excluded_gap_points": result.excluded_gap_points,
        "excluded_origin_points": result.excluded_origin_points,
        "scale": _json_float(result.scale, 6),
        "baseline": {"model": BASELINE_MODEL, **_scores(baseline)},
    }


def compare_autoets(
    trace_path: Path, *, horizon_min: int = 30, train_fraction: float = 0.7
) -> dict[str, Any]:
    """Score statsforecast's AutoETS (season = one day) on the split of :func:`evaluate`.

    AutoETS is fitted once on the train part's working series (season one day in
    working steps), then for every scored test origin ``t`` its fitted model is run
    forward over the series up to ``t`` (``AutoETS.forward``: parameters fixed, states
    re-filtered) and forecasts ``t + H``; p90 is its 80% prediction interval's upper
    bound. Needs ``statsforecast`` (imported here only; not an opsbench dependency).

    Parameters
    ----------
    trace_path, horizon_min, train_fraction
        As in :func:`evaluate`.

    Returns
    -------
    dict
        ``trace, model ("autoets"), statsforecast (version), horizon_min, season_steps,
        mase, wape, coverage_p90, n_points, train_s, predict_s``, plus ``ets`` (the
        chosen model string).
    """
    import statsforecast  # optional: benchmark only
    from statsforecast.models import AutoETS

    series = _prepare(trace_path, horizon_min=horizon_min, model=BASELINE_MODEL)
    h = horizon_min * 60 // series.step_s
    split = make_split(series, horizon_steps=h, train_fraction=train_fraction)
    day = series.period_day
    values = series.values
    origins = make_samples(series, horizon_steps=h, cut=split.cut).test
    started = time.perf_counter()
    fitted = AutoETS(season_length=day).fit(values[: split.cut])
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    p50, p90 = autoets_forward(fitted, values, origins, h)
    predict_s = time.perf_counter() - started
    y_true = values[origins + h]
    scale = seasonal_naive_scale(values, period=day, stop=split.cut, gap=series.gap)
    model_info = getattr(fitted, "model_", {})
    return {
        "trace": str(trace_path),
        "model": "autoets",
        "statsforecast": statsforecast.__version__,
        "ets": str(model_info.get("method", "?")) if isinstance(model_info, dict) else "?",
        "horizon_min": horizon_min,
        "season_steps": day,
        "mase": _json_float(mase(y_true, p50, scale)),
        "wape": _json_float(wape(y_true, p50)),
        "coverage_p90": _json_float(coverage(y_true, p90)),
        "n_points": int(origins.size),
        "train_s": round(train_s, 3),
        "predict_s": round(predict_s, 3),
    }


def autoets_forward(
    fitted: Any, values: np.ndarray, origins: np.ndarray, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """A fitted AutoETS run forward (parameters fixed, states re-filtered) over
    ``values[: t + 1]`` for every origin ``t``: its mean and 80%-interval upper bound
    ``h`` steps ahead (the p50 and p90 forecasts)."""
    p50 = np.empty(origins.size)
    p90 = np.empty(origins.size)
    for k, origin in enumerate(origins):
        out = fitted.forward(y=values[: origin + 1], h=h, level=[80])
        p50[k] = out["mean"][h - 1]
        p90[k] = out["hi-80"][h - 1]
    return p50, p90


def _prepare(trace_path: Path, *, horizon_min: int, model: str) -> WorkingSeries:
    """Validate the model name and the horizon, load the trace as a working series."""
    FORECASTERS.spec(model, source="--model")
    if isinstance(horizon_min, bool) or not isinstance(horizon_min, int | np.integer):
        raise InputError("--horizon", "", f"{horizon_min!r} is not whole minutes", _HORIZON_ALLOWED)
    if not 1 <= horizon_min <= MAX_HORIZON_MIN:
        raise InputError("--horizon", "", f"{horizon_min} min", _HORIZON_ALLOWED)
    path = Path(trace_path)
    if not path.is_file():
        raise InputError(path, "--trace", "no such file", "a CSV with columns timestamp,value")
    series = to_working_series(load_trace(path))
    step_min = series.step_s // 60
    if (horizon_min * 60) % series.step_s:
        raise InputError(
            "--horizon",
            "",
            f"{horizon_min} min is not a multiple of the working step ({step_min} min) of {path}",
            f"multiples of {step_min} min up to {MAX_HORIZON_MIN} min",
        )
    return series


def _scores(result: BacktestResult) -> dict[str, Any]:
    """The scores shared by a model and its baseline."""
    return {
        "mase": _json_float(result.mase),
        "wape": _json_float(result.wape),
        "coverage_p90": _json_float(result.coverage_p90),
        "n_points": result.n_points,
        "train_s": round(result.train_s, 3),
    }


def _json_float(value: float, digits: int = 4) -> float | None:
    """``value`` rounded, or ``None`` when it is not finite (JSON has no NaN)."""
    return round(float(value), digits) if math.isfinite(value) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: one JSON object on stdout, or one error line on stderr (exit 2)."""
    parser = argparse.ArgumentParser(prog="python -m bench.forecast_eval", description=__doc__)
    parser.add_argument("--trace", required=True, type=Path, help="CSV timestamp,value")
    parser.add_argument("--horizon", default="30m", help="e.g. 30m, 1h (default 30m)")
    parser.add_argument("--model", default=DEFAULT_FORECASTER, help=", ".join(sorted(FORECASTERS)))
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--autoets", action="store_true", help="AutoETS comparison instead")
    args = parser.parse_args(argv)
    try:
        horizon = parse_horizon(args.horizon)
        if args.autoets:
            out = compare_autoets(
                args.trace, horizon_min=horizon, train_fraction=args.train_fraction
            )
        else:
            out = evaluate(
                args.trace,
                horizon_min=horizon,
                model=args.model,
                train_fraction=args.train_fraction,
            )
    except InputError as exc:
        print(f"forecast_eval: error: {exc.one_line()}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
