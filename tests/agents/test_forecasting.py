"""Tests of agents.forecasting: estimator contract, determinism, no leakage, quantiles,
seasonal naive, working step and gap handling."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from opsbench_testing import registered_forecasters

from agents.forecasting import (
    Forecaster,
    QuantileGBMForecaster,
    SeasonalNaiveForecaster,
    WorkingSeries,
    make_features,
    run_backtest,
    to_working_series,
    working_step_s,
)
from agents.forecasting.features import CALENDAR_COLUMNS, LEVEL_COLUMN
from sim.errors import InputError
from sim.traces import Trace


BUILDERS = registered_forecasters()
NAMES = sorted(BUILDERS)

STEP_S = 300
DAY = 86_400 // STEP_S
H = 6  # 30 min at 5 min
T0 = np.datetime64("2024-01-01T00:00:00", "s")
# Small but real versions of the named models, so the suite stays fast.
FAST_PARAMS: dict[str, dict[str, object]] = {
    "seed-rf": {"n_estimators": 30},
    "gbm-quantile": {"max_iter": 30},
}


def synthetic_load(n_steps: int, step_s: int = STEP_S, *, seed: int = 0) -> np.ndarray:
    """A daily cycle times slowly wandering noise, plus white noise (all > 0)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps) * step_s
    daily = 1.0 + 0.5 * np.sin(2 * np.pi * t / 86_400)
    kernel = np.exp(-np.arange(24) / 8.0)
    wander = np.convolve(rng.standard_normal(n_steps + 23), kernel / kernel.sum(), "valid")
    return 100.0 * daily * (1.0 + 0.3 * wander) + rng.normal(0.0, 2.0, n_steps) + 10.0


def stamps(n_steps: int, step_s: int = STEP_S) -> np.ndarray:
    return T0 + np.arange(n_steps) * np.timedelta64(step_s, "s")


def series_of(values: np.ndarray, step_s: int = STEP_S) -> WorkingSeries:
    """A working series of already regular values without gaps."""
    values = np.asarray(values, dtype=np.float64)
    trace = Trace(Path("synthetic.csv"), stamps(values.size, step_s), values, step_s)
    return to_working_series(trace)


def training_data(n_steps: int = 5 * DAY, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and targets of every origin with a full day of history."""
    y = synthetic_load(n_steps, seed=seed)
    features = make_features(y, stamps(n_steps), step_s=STEP_S, horizon_steps=H)
    origins = np.arange(DAY, n_steps - H)
    return features.iloc[origins].reset_index(drop=True), y[origins + H]


def fast(name: str) -> Forecaster:
    return BUILDERS[name](**FAST_PARAMS.get(name, {}))


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return training_data()


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", NAMES)
def test_params_round_trip_and_clone(name: str) -> None:
    model = BUILDERS[name]()
    assert isinstance(model, Forecaster)
    params = model.get_params()
    assert params
    signature = inspect.signature(type(model).__init__)
    kinds = {p.kind for n, p in signature.parameters.items() if n != "self"}
    assert kinds == {inspect.Parameter.KEYWORD_ONLY}
    twin = clone(model)
    assert twin is not model and twin.get_params() == params
    assert model.set_params(**params) is model and model.get_params() == params
    changed = {"random_state": 7} if "random_state" in params else {"season": "1w"}
    model.set_params(**changed)
    assert model.get_params() == {**params, **changed}


@pytest.mark.parametrize("name", NAMES)
def test_fitted_attributes_only_after_fit(name: str, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    model = fast(name)
    assert [key for key in vars(model) if key.endswith("_")] == []
    with pytest.raises(NotFittedError):
        model.predict(X)
    with pytest.raises(NotFittedError):
        model.predict_quantiles(X)
    assert model.fit(X, y) is model
    fitted = [key for key in vars(model) if key.endswith("_") and not key.startswith("_")]
    assert {"n_features_in_", "feature_names_in_"} <= set(fitted)
    assert model.n_features_in_ == X.shape[1]
    prediction = model.predict(X)
    assert prediction.shape == (len(X),) and np.all(np.isfinite(prediction))
    # the unfitted parameters are untouched by fit
    assert clone(model).get_params() == fast(name).get_params()


def test_predict_rejects_other_columns(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    model = fast("gbm-quantile").fit(X, y)
    with pytest.raises(ValueError, match="lag_0"):
        model.predict(X.drop(columns=["lag_0"]))
    with pytest.raises(ValueError, match="same order"):
        model.predict(X[list(reversed(X.columns))])
    no_names = pytest.warns(UserWarning, match="does not have valid feature names")
    with no_names, pytest.raises(ValueError, match="22 features, but QuantileGBMForecaster is"):
        model.predict(X.iloc[:, 1:].to_numpy())
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        as_array = model.predict(X.to_numpy())  # the frame's values, with a warning
    np.testing.assert_array_equal(as_array, model.predict(X))


@pytest.mark.parametrize("name", NAMES)
def test_infinite_features_or_targets_are_refused(
    name: str, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """NaN feature cells are allowed (history before the start); infinities are not."""
    X, y = data
    bad = X.copy()
    bad.iloc[3, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        fast(name).fit(bad, y)
    model = fast(name).fit(X, y)
    with pytest.raises(ValueError, match="infinity"):
        model.predict(bad)
    with pytest.raises(ValueError, match="y contains NaN"):
        fast(name).fit(X, np.where(np.arange(y.size) == 5, np.nan, y))


def test_columns_by_name_need_a_frame(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    for model in (fast("gbm-quantile"), SeasonalNaiveForecaster()):
        with pytest.raises(ValueError, match="must be a DataFrame with string column names"):
            model.fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="lacks the column 'mean_1h'"):
        fast("gbm-quantile").fit(X.drop(columns=[LEVEL_COLUMN]), y)
    with pytest.raises(ValueError, match="position 99 is not a column of X, which has 23"):
        SeasonalNaiveForecaster(columns=(99,)).fit(X, y)


def test_columns_by_position_read_arrays_as_by_name_read_frames() -> None:
    """The same model, its roles given by position, on the frame's values: same forecasts.

    Nine days, so the one-week columns hold values in the last two days only.
    """
    X, y = training_data(n_steps=9 * DAY)
    X_new, _ = training_data(n_steps=9 * DAY, seed=1)
    at = {name: i for i, name in enumerate(X.columns)}
    pairs = [
        (
            fast("gbm-quantile"),
            fast("gbm-quantile").set_params(
                level_column=at[LEVEL_COLUMN],
                unscaled_columns=tuple(at[c] for c in CALENDAR_COLUMNS),
            ),
        ),
        (
            SeasonalNaiveForecaster(season="1w"),
            SeasonalNaiveForecaster(season="1w", columns=(at["target_1w"], at["target_1d"])),
        ),
    ]
    for by_name, by_position in pairs:
        expected = by_name.fit(X, y).predict_quantiles(X_new)
        got = by_position.fit(X.to_numpy(), y).predict_quantiles(X_new.to_numpy())
        assert not hasattr(by_position, "feature_names_in_")
        np.testing.assert_array_equal(got, expected)
        for row in X_new.to_numpy()[-5:]:
            np.testing.assert_array_equal(
                by_position.predict_quantiles_row(row, (0.5, 0.9)),
                by_name.predict_quantiles_row(row, (0.5, 0.9)),
            )


@pytest.mark.parametrize("name", NAMES)
def test_same_data_same_predictions(name: str, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    first = fast(name).fit(X, y).predict_quantiles(X, quantiles=(0.5, 0.9))
    second = clone(fast(name)).fit(X.copy(), y.copy()).predict_quantiles(X, quantiles=(0.5, 0.9))
    np.testing.assert_array_equal(first, second)


# --------------------------------------------------------------------------- quantiles


@pytest.mark.parametrize("name", NAMES)
def test_p90_at_least_p50(name: str, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    X_new, _ = training_data(seed=1)
    model = fast(name).fit(X, y)
    q = model.predict_quantiles(X_new, quantiles=(0.5, 0.9))
    assert q.shape == (len(X_new), 2)
    assert np.all(q[:, 1] >= q[:, 0]) and np.all(q >= 0)
    np.testing.assert_array_equal(q[:, 0], model.predict(X_new))


def test_quantile_columns_follow_the_requested_order(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    model = QuantileGBMForecaster(quantiles=(0.1, 0.5, 0.9), max_iter=30).fit(X, y)
    ordered = model.predict_quantiles(X, quantiles=(0.1, 0.5, 0.9))
    assert np.all(np.diff(ordered, axis=1) >= 0)
    shuffled = model.predict_quantiles(X, quantiles=(0.9, 0.1, 0.5))
    np.testing.assert_array_equal(shuffled, ordered[:, [2, 0, 1]])
    with pytest.raises(ValueError, match="not fitted"):
        model.predict_quantiles(X, quantiles=(0.95,))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        model.predict_quantiles(X, quantiles=(1.5,))


def test_gbm_p90_covers_most_targets(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    X_new, y_new = training_data(seed=2)
    q = QuantileGBMForecaster(max_iter=100).fit(X, y).predict_quantiles(X_new)
    assert 0.75 <= np.mean(y_new <= q[:, 1]) <= 0.99


def test_gbm_follows_a_level_never_seen_in_training(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    model = QuantileGBMForecaster(max_iter=100).fit(X, y)
    y_big = 10 * synthetic_load(5 * DAY, seed=3)
    features = make_features(y_big, stamps(y_big.size), step_s=STEP_S, horizon_steps=H)
    origins = np.arange(DAY, y_big.size - H)
    p50 = model.predict(features.iloc[origins].reset_index(drop=True))
    truth = y_big[origins + H]
    assert np.mean(np.abs(p50 - truth)) / np.mean(truth) < 0.15


# --------------------------------------------------------------------------- no leakage


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(origin=st.integers(0, 4 * DAY - 1), seed=st.integers(0, 2**16))
def test_features_ignore_values_after_the_origin(origin: int, seed: int) -> None:
    y = synthetic_load(4 * DAY, seed=1)
    perturbed = y.copy()
    rng = np.random.default_rng(seed)
    perturbed[origin + 1 :] = rng.uniform(0, 1e4, perturbed.size - origin - 1)
    a = make_features(y, stamps(y.size), step_s=STEP_S, horizon_steps=H)
    b = make_features(perturbed, stamps(y.size), step_s=STEP_S, horizon_steps=H)
    pd.testing.assert_frame_equal(a.iloc[: origin + 1], b.iloc[: origin + 1])


@pytest.mark.parametrize("name", ["gbm-quantile", "seed-rf", "seasonal-naive-1w"])
def test_backtest_prediction_ignores_values_after_the_origin(name: str) -> None:
    y = synthetic_load(10 * DAY, seed=4)
    base = run_backtest(series_of(y), fast(name), horizon_steps=H, train_fraction=0.7)
    origin = int(base.origins[len(base.origins) // 3])
    perturbed = y.copy()
    perturbed[origin + 1 :] *= 3.0  # the future, including this origin's target
    again = run_backtest(series_of(perturbed), fast(name), horizon_steps=H, train_fraction=0.7)
    upto = base.origins <= origin
    np.testing.assert_array_equal(base.origins, again.origins)
    np.testing.assert_array_equal(base.p50[upto], again.p50[upto])
    np.testing.assert_array_equal(base.p90[upto], again.p90[upto])
    assert not np.array_equal(base.y_true[upto], again.y_true[upto])  # its target did change


def test_training_never_sees_test_targets() -> None:
    y = synthetic_load(10 * DAY, seed=5)
    base = run_backtest(series_of(y), fast("gbm-quantile"), horizon_steps=H)
    changed = y.copy()
    changed[base.split.cut :] = 0.0  # every test target
    again = run_backtest(series_of(changed), fast("gbm-quantile"), horizon_steps=H)
    before_cut = base.origins < base.split.cut  # origins in the train part, targets in test
    assert before_cut.any()
    np.testing.assert_array_equal(base.p50[before_cut], again.p50[before_cut])


@settings(max_examples=25, deadline=None)
@given(
    gap_start=st.integers(1, 3 * DAY),
    gap_len=st.integers(1, DAY + 30),
    origin=st.integers(0, 4 * DAY - 1),
)
def test_clean_origins_do_not_depend_on_later_data(
    gap_start: int, gap_len: int, origin: int
) -> None:
    """Through gap filling: a clean origin's working values ignore later native data."""
    n = 4 * DAY * 5  # 4 days at 1 min
    y = np.repeat(synthetic_load(4 * DAY, seed=6), 5) + (np.arange(n) % 7).astype(np.float64)
    values = y.copy()
    gap_stop = min(gap_start + gap_len, 4 * DAY - 1)
    values[gap_start * 5 : gap_stop * 5] = np.nan
    perturbed = values.copy()
    perturbed[(origin + 1) * 5 :] *= 2.0
    a = to_working_series(Trace(Path("a.csv"), stamps(n, 60), values, 60))
    b = to_working_series(Trace(Path("b.csv"), stamps(n, 60), perturbed, 60))
    if a.clean_origin[origin]:
        np.testing.assert_array_equal(a.values[: origin + 1], b.values[: origin + 1])
    assert not a.clean_origin[gap_start:gap_stop].any()


# --------------------------------------------------------------------------- seasonal naive


def test_seasonal_naive_is_exact_on_a_periodic_series() -> None:
    day = np.sin(np.linspace(0, 2 * np.pi, DAY, endpoint=False)) + 2.0
    week = np.concatenate([day * (1 + 0.1 * k) for k in range(7)])
    y = np.tile(week, 3)
    result = run_backtest(series_of(y), SeasonalNaiveForecaster(season="1w"), horizon_steps=H)
    np.testing.assert_allclose(result.p50, result.y_true)
    assert result.mase == pytest.approx(0.0, abs=1e-12)
    daily = run_backtest(
        series_of(np.tile(day, 8)), BUILDERS["seasonal-naive-1d"](), horizon_steps=H
    )
    np.testing.assert_allclose(daily.p50, daily.y_true)


def test_seasonal_naive_mase_is_its_own_scale() -> None:
    """MASE of the one-day naive = its test MAE over its train MAE, ~1 when stationary."""
    rng = np.random.default_rng(8)
    y = np.tile(np.linspace(50, 150, DAY), 20) + rng.normal(0, 5, 20 * DAY)
    series = series_of(y)
    result = run_backtest(series, SeasonalNaiveForecaster(), horizon_steps=H)
    cut = result.split.cut
    train = np.arange(DAY, cut)
    scale = np.mean(np.abs(y[train] - y[train - DAY]))
    targets = result.origins + H
    assert result.origins.min() == cut - H and targets.max() == y.size - 1
    np.testing.assert_allclose(result.p50, y[targets - DAY])
    assert result.scale == pytest.approx(scale)
    assert result.mase == pytest.approx(np.mean(np.abs(y[targets] - y[targets - DAY])) / scale)
    assert result.mase == pytest.approx(1.0, abs=0.1)
    assert result.coverage_p90 == pytest.approx(0.9, abs=0.05)


# --------------------------------------------------------------------------- working step


@pytest.mark.parametrize(
    ("native", "working"),
    [
        (1, 300),
        (60, 300),
        (120, 360),
        (300, 300),
        (420, None),
        (900, 900),
        (1800, 1800),
        (3600, None),
        (64, 960),
        (45, 360),
    ],
)
def test_working_step(native: int, working: int | None) -> None:
    if working is None:
        with pytest.raises(InputError, match="--trace"):
            working_step_s(native)
    else:
        assert working_step_s(native) == working


def test_one_minute_trace_is_averaged_on_five_minute_boundaries() -> None:
    start = np.datetime64("2024-01-01T00:02:00", "s")  # 3 minutes before 00:05
    values = np.arange(60.0)
    trace = Trace(Path("m.csv"), start + np.arange(60) * np.timedelta64(60, "s"), values, 60)
    series = to_working_series(trace)
    assert series.step_s == 300
    assert str(series.timestamps[0]) == "2024-01-01T00:05:00"
    np.testing.assert_allclose(series.values, values[3:58].reshape(11, 5).mean(axis=1))
    assert not series.gap.any() and series.clean_origin.all()


def test_a_gap_marks_its_working_bucket_and_origins_inside() -> None:
    values = synthetic_load(2 * DAY * 5, 60)
    values[1003:1006] = np.nan  # 3 minutes in buckets 200 (1000-1004) and 201 (1005-1009)
    trace = Trace(Path("g.csv"), stamps(values.size, 60), values, 60)
    series = to_working_series(trace)
    assert np.flatnonzero(series.gap).tolist() == [200, 201]
    # bucket 200's filled minutes lean on minute 1006, known only at the end of bucket 201
    assert np.flatnonzero(~series.clean_origin).tolist() == [200]


def test_features_describe_the_target_time() -> None:
    y = synthetic_load(2 * DAY)
    features = make_features(y, stamps(y.size), step_s=STEP_S, horizon_steps=H)
    assert features["hour_of_day"].iloc[0] == pytest.approx(0.5)  # 00:00 + 30 min
    assert features["day_of_week"].iloc[0] == 0  # 2024-01-01 is a Monday
    assert features["target_1d"].iloc[DAY] == y[H]
    assert np.isnan(features["target_1w"]).all()
    assert features["mean_1h"].iloc[11] == pytest.approx(y[:12].mean())
    with pytest.raises(ValueError, match="horizon_steps"):
        make_features(y, stamps(y.size), step_s=STEP_S, horizon_steps=DAY + 1)


def test_gbm_fits_when_week_lags_exist_only_in_the_last_rows() -> None:
    """8 days: the one-week lags exist only in the calibration hold-out (last 20%)."""
    X, y = training_data(n_steps=8 * DAY, seed=9)
    assert X["target_1w"].notna().mean() < 0.2 and X["target_1w"].notna().any()
    model = QuantileGBMForecaster(max_iter=30).fit(X, y)
    assert np.all(np.isfinite(model.predict_quantiles(X)))
