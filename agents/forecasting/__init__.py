"""Load forecasting for the predictive scaling agent (issue 4).

Forecasts the offered load ``H`` ahead (30 min by default) as a median and upper
quantiles, from a trace brought to its working step (:mod:`.series`), features that
read only the past (:mod:`.features`), scikit-learn-style forecasters
(:mod:`.models`) and a chronological backtest (:mod:`.backtest`).
"""

from agents.forecasting.backtest import (
    BacktestResult,
    Samples,
    Split,
    make_samples,
    make_split,
    run_backtest,
)
from agents.forecasting.features import make_features
from agents.forecasting.models import (
    Forecaster,
    QuantileGBMForecaster,
    RandomForestForecaster,
    SeasonalNaiveForecaster,
)
from agents.forecasting.series import WorkingSeries, to_working_series, working_step_s

__all__ = [
    "BacktestResult",
    "Forecaster",
    "QuantileGBMForecaster",
    "RandomForestForecaster",
    "Samples",
    "SeasonalNaiveForecaster",
    "Split",
    "WorkingSeries",
    "make_features",
    "make_samples",
    "make_split",
    "run_backtest",
    "to_working_series",
    "working_step_s",
]
