"""The predictive scaling agent: streaming features equal training features, the compiled
trees equal scikit-learn's, the policy's plan is monotone and bounded, its records are
valid, and a saved model round-trips or is refused with one clear line."""

from __future__ import annotations

import functools

import json
import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from fresh_python import run_script
from hypothesis import strategies as st
from opsbench_testing import SYNTHETIC_START, minute_load, train_synthetic_scaling
from sklearn.ensemble import HistGradientBoostingRegressor

from agents.forecasting.compiled import CompiledTrees
from agents.forecasting.features import feature_names, make_features, origin_features
from agents.forecasting.models import QuantileGBMForecaster
from agents.forecasting.series import to_working_series
from agents.scaling.model import METADATA_FILE, MODEL_FILE, ScalingModel, load_model
from agents.scaling.pipeline import LoadPipeline
from agents.scaling.policy import PredictiveParams, PredictivePolicy
from agents.scaling.recommendation import Recommendation
from agents.scaling.training import (
    history_series,
    peak_targets,
)
from features.views import VIEWS
from sim.control import ControlContext, Observation, PoolMetrics, PoolSpec, PoolState
from sim.errors import InputError
from sim.traces import Trace

START = SYNTHETIC_START
AZS = ("a", "b")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A gbm-quantile model trained on 3 days of history (folder, history)."""
    _, folder, history = train_synthetic_scaling(tmp_path_factory.mktemp("models"))
    return folder, history


def context(history: np.ndarray, *, min_nodes: int = 1, max_nodes: int = 30) -> ControlContext:
    spec = PoolSpec(
        name="on-demand",
        instance_type="c5a.2xlarge",
        capacity_type="on-demand",
        azs=AZS,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        vcpus=8,
        memory_gib=16.0,
        pods_per_node=7,
        on_demand_usd_per_hour=0.308,
        rps_per_node_at_target=350.0,
    )
    return ControlContext(
        scenario_id="test",
        pools=(spec,),
        start=START,
        duration_s=86400.0,
        interval_s=60.0,
        target_utilization=0.6,
        pod_vcpu=1,
        rps_per_vcpu=50.0,
        service_rate_per_vcpu_rps=50.0 / 0.6,
        slo_p95_latency_ms=200.0,
        provisioning_delay_median_s=120.0,
        provisioning_delay_max_s=300.0,
        pod_start_delay_s=15.0,
        interruption_notice_s=120.0,
        seed=1,
        history_offered_rps=history,
        history_gap=np.zeros(history.size, dtype=bool),
    )


def observation(minute: int, offered: float, nodes: dict[str, int]) -> Observation:
    pods = 7.0 * sum(nodes.values())
    state = PoolState(
        name="on-demand",
        nodes_pending=0,
        nodes_running=sum(nodes.values()),
        nodes_leaving=0,
        nodes_by_az=nodes,
        pending_by_az=dict.fromkeys(AZS, 0),
        price_usd_per_hour=dict.fromkeys(AZS, 0.308),
        spot_available=dict.fromkeys(AZS, True),
        launchable_azs=AZS,
        interruptions_last_interval=0,
        launch_failures_last_interval=0,
    )
    cpu = offered / (pods * 50.0 / 0.6) if pods else 0.0
    metrics = PoolMetrics(offered, cpu, 100.0, 0.0, 0.0, pods)
    return Observation(
        sim_time_s=60.0 * minute,
        now=START + timedelta(minutes=minute),
        metrics={"on-demand": metrics},
        metrics_age_s=0.0,
        pools={"on-demand": state},
    )


@functools.cache
def loaded(folder: Path) -> ScalingModel:
    """The model in ``folder``, loaded once (a skops load takes about a second; the
    model is immutable, so policies share it)."""
    return load_model(folder)


def ready_policy(folder: Path, history: np.ndarray, **params: float) -> PredictivePolicy:
    policy = PredictivePolicy(PredictiveParams(**params))
    policy.use_model(loaded(folder))
    policy.reset(context(history))
    return policy


# --------------------------------------------------------------------------- features


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2400),
    h=st.sampled_from([1, 2, 6]),
    seed=st.integers(0, 2**16),
)
def test_streaming_features_equal_training_features(n: int, h: int, seed: int) -> None:
    y = np.random.default_rng(seed).random(n) * 100
    stamps = np.datetime64("2024-01-01T00:00:00") + np.arange(n) * np.timedelta64(300, "s")
    frame = make_features(y, stamps, step_s=300, horizon_steps=h)
    origin_s = int(stamps[-1].astype("datetime64[s]").astype(np.int64))
    row = origin_features(y, origin_s, step_s=300, horizon_steps=h)
    np.testing.assert_allclose(row, frame.iloc[-1].to_numpy(), rtol=1e-9, atol=1e-9)


def test_view_declares_the_forecaster_features() -> None:
    assert VIEWS["load_forecast"].feature_names == feature_names()


def test_pipeline_rebuilds_the_working_series_minute_by_minute() -> None:
    """Minutes observed one by one give, at every bucket boundary, the buckets and the
    feature row of the working series of the whole load (train/serve consistency); in
    between, the series ending at that minute."""
    load = minute_load(4 * 1440 + 3, seed=3)  # the replay starts 3 minutes into a bucket
    n_hist = 3 * 1440 + 3
    history = load[:n_hist]
    pipeline = LoadPipeline(history, np.zeros(n_hist, dtype=bool), START)
    first_s = int(np.datetime64(START, "s").astype(np.int64))
    stamps = (
        np.datetime64(START, "s")
        - np.timedelta64(n_hist * 60, "s")
        + np.arange(load.size) * np.timedelta64(60, "s")
    )
    checked = 0
    for m in range(n_hist, load.size):
        assert pipeline.observe(first_s + (m - n_hist) * 60, float(load[m]))
        if (m - 2) % 5 == 0 and m % 97 < 5:  # minute m ends on a 5-minute boundary
            seen = Trace(Path("t"), stamps[: m + 1], load[: m + 1], 60)
            whole = to_working_series(seen)
            values = pipeline.values()
            np.testing.assert_allclose(values, whole.values[-values.size :])
            expected = make_features(whole.values, whole.timestamps, step_s=300, horizon_steps=2)
            np.testing.assert_allclose(
                pipeline.features(10), expected.iloc[-1].to_numpy(), rtol=1e-9
            )
            checked += 1
    assert checked >= 3
    values = pipeline.values()  # off a boundary: the means of the last whole 5-minute runs
    np.testing.assert_allclose(values[-1], load[-5:].mean())


def test_a_missing_minute_repeats_the_last_value() -> None:
    history = minute_load(3 * 1440)
    pipeline = LoadPipeline(history, np.zeros(history.size, dtype=bool), START)
    first_s = int(np.datetime64(START, "s").astype(np.int64))
    pipeline.observe(first_s, 100.0)
    assert pipeline.observe(first_s + 4 * 60, None)  # minutes 1..3 never observed
    assert pipeline.values()[-1] == pytest.approx(100.0)
    assert not pipeline.observe(first_s, 5.0)  # an old minute changes nothing
    assert pipeline.values()[-1] == pytest.approx(100.0)


def test_history_gaps_are_filled_from_the_history_alone() -> None:
    history = minute_load(3 * 1440)
    gap = np.zeros(history.size, dtype=bool)
    gap[-3:] = True  # the last minutes before the replay: held at the last known value
    pipeline = LoadPipeline(history, gap, START)
    np.testing.assert_allclose(pipeline.values()[-1], (history[-5:-3].sum() + 3 * history[-4]) / 5)


def test_peak_targets_are_the_busiest_minute_and_never_read_past_the_history() -> None:
    history = minute_load(3 * 1440, seed=5)
    series = history_series(history, np.zeros(history.size, dtype=bool), START, source="t")
    window = (2, 8)
    peaks = peak_targets(series, history, np.zeros(history.size, dtype=bool), START, window)
    ends = np.arange(1, series.values.size + 1) * 5  # minute index of each bucket end
    for i in (0, 100, series.values.size - 2, series.values.size - 1):
        lo, hi = ends[i] + window[0], ends[i] + window[1]
        if hi <= history.size:
            assert peaks[i] == history[lo:hi].max()
        else:
            assert np.isnan(peaks[i])


# --------------------------------------------------------------------------- model


def test_compiled_trees_equal_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((800, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nansum(X, axis=1) + rng.random(800)
    boosters = [
        HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=40, max_depth=3).fit(
            X, y
        )
        for q in (0.5, 0.9)
    ]
    compiled = CompiledTrees.from_boosters(boosters)
    test = rng.random((50, 6))
    test[rng.random(test.shape) < 0.2] = np.nan
    got = np.array([compiled.predict_one(row) for row in test])
    want = np.column_stack([b.predict(test) for b in boosters])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_gbm_row_path_equals_frame_path() -> None:
    y = minute_load(3000, seed=2)[::1]
    stamps = np.datetime64("2024-01-01") + np.arange(y.size) * np.timedelta64(300, "s")
    X = make_features(y, stamps, step_s=300, horizon_steps=6)
    model = QuantileGBMForecaster(max_iter=60).fit(X.iloc[300:-6], y[306:])
    frame = model.predict_quantiles(X.iloc[-50:], quantiles=(0.5, 0.9))
    rows = np.array([model.predict_quantiles_row(r, (0.5, 0.9)) for r in X.iloc[-50:].to_numpy()])
    np.testing.assert_allclose(rows, frame, rtol=1e-10)


def test_model_round_trips_with_its_metadata(trained: tuple[Path, np.ndarray]) -> None:
    folder, _ = trained
    model = load_model(folder)
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert meta["feature_columns"] == list(feature_names())
    assert meta["forecast_horizon_min"] == 30 and meta["plan_window_min"] == [2, 8]
    assert meta["training"]["end"] == "2024-01-08T00:00:00"
    assert set(meta["libraries"]) >= {"python", "numpy", "pandas", "scikit-learn"}
    assert model.version == meta["model_sha256"][:12]
    row = np.linspace(1.0, 2.0, len(feature_names())) * 1000
    again = load_model(folder)
    np.testing.assert_array_equal(model.predict_row("plan", row), again.predict_row("plan", row))


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    target.mkdir()
    for name in (METADATA_FILE, MODEL_FILE):
        (target / name).write_bytes((folder / name).read_bytes())
    return target


def test_a_tampered_model_file_is_refused(trained: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    folder = _copy(trained[0], tmp_path)
    payload = bytearray((folder / MODEL_FILE).read_bytes())
    payload[-2] ^= 0xFF
    (folder / MODEL_FILE).write_bytes(bytes(payload))
    with pytest.raises(InputError, match=r"model_sha256.*does not match"):
        load_model(folder)


def test_a_feature_schema_mismatch_is_refused(
    trained: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    folder = _copy(trained[0], tmp_path)
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta["feature_columns"] = [*meta["feature_columns"][:-1], "cpu_utilization"]
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(InputError) as caught:
        load_model(folder)
    message = str(caught.value)
    assert "feature_columns" in message and "cpu_utilization" in message
    assert "\n" not in message


def test_a_model_from_another_scikit_learn_is_refused(
    trained: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    folder = _copy(trained[0], tmp_path)
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta["libraries"]["scikit-learn"] = "0.1"
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"libraries\.scikit-learn"):
        load_model(folder)


def test_malformed_metadata_names_the_file(
    trained: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    folder = _copy(trained[0], tmp_path)
    (folder / METADATA_FILE).write_text("{not json")
    with pytest.raises(InputError, match=METADATA_FILE):
        load_model(folder)


def test_too_little_history_is_one_clear_error() -> None:
    with pytest.raises(InputError, match=r"workload\.start.*days"):
        history_series(minute_load(1440), np.zeros(1440, dtype=bool), START, source="s")


# --------------------------------------------------------------------------- policy


@settings(max_examples=40, deadline=None)
@given(
    low=st.floats(0, 20_000),
    extra=st.floats(0, 20_000),
    offered=st.floats(0, 10_000),
    running=st.integers(0, 12),
)
def test_more_forecast_load_never_yields_fewer_nodes(
    trained: tuple[Path, np.ndarray], low: float, extra: float, offered: float, running: int
) -> None:
    folder, history = trained
    nodes = {"a": running // 2, "b": running - running // 2}
    totals = []
    for level in (low, low + extra):
        policy = ready_policy(folder, history)
        policy.decide(observation(1, offered, nodes))
        policy.forecast["plan"] = np.full(3, level)
        totals.append(sum(policy.plan(observation(1, offered, nodes)).desired_nodes.values()))
    assert totals[1] >= totals[0]


@settings(max_examples=40, deadline=None)
@given(
    offered=st.lists(st.floats(0, 50_000), min_size=1, max_size=12),
    running=st.integers(0, 40),
)
def test_bounds_respected_and_records_valid(
    trained: tuple[Path, np.ndarray], offered: list[float], running: int
) -> None:
    folder, history = trained
    policy = ready_policy(folder, history)
    nodes = {"a": running // 2, "b": running - running // 2}
    for minute, load in enumerate(offered, start=1):
        decision = policy.decide(observation(minute, load, nodes))
        by_az = decision.desired_by_az["on-demand"]
        total = decision.desired_nodes["on-demand"]
        assert total == sum(by_az.values())
        assert 1 <= total <= 30  # the pool's [min, max], even from a fleet above its max
        assert len(decision.records) == 1
        record = Recommendation.model_validate(decision.records[0])
        assert record.target_nodes == total
        active = sum(nodes.values())
        expected = "scale_up" if total > active else "scale_down" if total < active else "maintain"
        assert record.action == expected
        assert record.time_horizon == 30 and record.model_version == policy.model.version
        nodes = dict(by_az)


def test_the_reactive_guard_covers_a_surprise(trained: tuple[Path, np.ndarray]) -> None:
    """Load far above any forecast: the policy asks at least what the load needs now."""
    folder, history = trained
    policy = ready_policy(folder, history)
    decision = policy.decide(observation(1, 9_000.0, {"a": 2, "b": 2}))
    pod_rate = 50.0 / 0.6 * 0.6
    assert decision.desired_nodes["on-demand"] >= min(30, math.ceil(9_000 / pod_rate / 7))
    assert decision.records[0]["urgency"] == "critical"


def _slow(obs: Observation) -> Observation:
    """``obs`` with its minute over the 200 ms SLO (p95 500 ms)."""
    assert obs.metrics is not None
    return obs._replace(
        metrics={k: m._replace(response_time_p95_ms=500.0) for k, m in obs.metrics.items()}
    )


def test_the_budget_quantile_plans_while_the_error_budget_is_overspent(
    trained: tuple[Path, np.ndarray],
) -> None:
    """Uniform Progress on the error budget: at the base quantile while the violation
    minutes are within 0.1% of the minutes so far, at the budget quantile while beyond."""
    folder, history = trained
    policy = ready_policy(folder, history, quantile=0.5, budget_quantile=0.9)
    plain = ready_policy(folder, history, quantile=0.5)
    nodes = {"a": 3, "b": 3}
    for minute in range(1, 31):
        decision = policy.decide(observation(minute, 1_200.0, nodes))
        plain.decide(observation(minute, 1_200.0, nodes))
    assert "p50 forecast" in decision.records[0]["reasoning"]
    decision = policy.decide(_slow(observation(31, 1_200.0, nodes)))  # 1 > 0.1% of 31
    assert policy.violation_minutes == 1 and "p90 forecast" in decision.records[0]["reasoning"]
    assert policy.forecast["plan"][policy.q_index] > plain.forecast["plan"][plain.q_index]
    for minute in range(32, 1000):  # still behind: 1 > 0.001 x 999
        decision = policy.decide(observation(minute, 1_200.0, nodes))
    assert "p90 forecast" in decision.records[0]["reasoning"]
    decision = policy.decide(observation(1000, 1_200.0, nodes))  # 1 <= 0.001 x 1000: on line
    assert "p50 forecast" in decision.records[0]["reasoning"]
    plain.decide(_slow(observation(31, 1_200.0, nodes)))
    assert "p50 forecast" in plain.plan(observation(32, 1_200.0, nodes)).records[0]["reasoning"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [({"quantile": 0.75, "budget_quantile": 0.5}, "must be above quantile 0.75"),
     ({"quantile": 0.5, "budget_quantile": 0.95}, "budget_quantile 0.95 is not among")],
)  # fmt: skip
def test_a_budget_quantile_must_be_a_higher_quantile_of_the_model(
    trained: tuple[Path, np.ndarray], params: dict[str, float], needle: str
) -> None:
    folder, _ = trained
    with pytest.raises(ValueError, match=needle):
        PredictivePolicy(PredictiveParams(**params)).use_model(loaded(folder))


def test_scale_in_is_stabilised(trained: tuple[Path, np.ndarray]) -> None:
    folder, history = trained
    policy = ready_policy(folder, history, scale_in_stabilization_s=300.0)
    nodes = {"a": 10, "b": 10}
    high = policy.decide(observation(1, 6_000.0, nodes)).desired_nodes["on-demand"]
    policy.forecast.clear()
    after = policy.decide(observation(2, 100.0, nodes)).desired_nodes["on-demand"]
    assert after == high  # the high target of one minute ago still holds
    later = [policy.decide(observation(m, 100.0, nodes)) for m in range(3, 10)]
    assert later[-1].desired_nodes["on-demand"] < high


def test_training_set_rows_are_the_features_at_their_origins(tmp_path: Path) -> None:
    """The store round trip (write features, point-in-time join) returns exactly the
    forecaster features of each origin, and nothing dated after its label."""
    from agents.scaling.training import mean_targets, training_set
    from features.store import FeatureStore

    history = minute_load(3 * 1440, seed=9)
    series = history_series(history, np.zeros(history.size, dtype=bool), START, source="t")
    with FeatureStore(tmp_path / "s.duckdb", views=VIEWS, lake=tmp_path / "lake") as store:
        X, y = training_set(store, series, mean_targets(series, 6), series_id="t", horizon_min=30)
    frame = make_features(series.values, series.timestamps, step_s=300, horizon_steps=6)
    origins = np.arange(288, series.values.size - 6)
    np.testing.assert_allclose(X.to_numpy(), frame.iloc[origins].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(y, series.values[origins + 6])
    assert isinstance(X, pd.DataFrame) and list(X.columns) == list(feature_names())


DECIDE_ONLY = """
import sys
from pathlib import Path
from agents.scaling.model import load_model
from agents.scaling.policy import PredictivePolicy
from sim.engine import Replay
from sim.scenario_files import find_scenario, load_scenario_file
from sim.telemetry import MemorySink
from sim.world import prepare

path = find_scenario("nasa-diurnal")
world = prepare(load_scenario_file(path), source=path, days=0.05)
policy = PredictivePolicy()
policy.use_model(load_model(Path(sys.argv[1])))
Replay(world, policy, MemorySink()).run()
loaded = ("duckdb", "agents.scaling.training", "features.store", "bench")
print(",".join(m for m in loaded if m in sys.modules) or "none")
"""


def test_deciding_with_a_loaded_model_imports_no_training_code(
    trained: tuple[Path, np.ndarray],
) -> None:
    """A replay of ``predictive`` with a saved model (a fresh interpreter) needs neither
    the training module nor DuckDB."""
    folder, _ = trained
    assert run_script(DECIDE_ONLY, str(folder)) == "none"
