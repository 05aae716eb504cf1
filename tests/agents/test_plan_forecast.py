"""plan_forecasts, the batch twin of the predictive policy's forecast: equal bit for bit to
what the policy holds at every tick of a replay (telemetry gaps included), its feature
rows equal to the streaming pipeline's, its tree walk equal to the one-row path, and bad
input refused with one clear line."""

from __future__ import annotations


import numpy as np
import pytest
from opsbench_testing import SYNTHETIC_START, minute_load, train_synthetic_scaling

from agents.forecasting.features import make_features
from agents.forecasting.models import QuantileGBMForecaster, SeasonalNaiveForecaster
from agents.scaling.model import ScalingModel
from agents.scaling.pipeline import LoadPipeline
from agents.scaling.plan_forecast import plan_forecasts
from agents.scaling.policy import PredictivePolicy
from sim.control import ControlContext, Decision, Observation
from sim.engine import Replay
from sim.scenario import TelemetryGap
from sim.scenario_files import find_scenario, load_scenario_file
from sim.telemetry import MemorySink
from sim.world import World, prepare

START = SYNTHETIC_START
DAY_MIN = 1440


@pytest.fixture(scope="module")
def gbm(tmp_path_factory: pytest.TempPathFactory) -> ScalingModel:
    """A gbm-quantile model trained on 3 days of synthetic load (as test_predictive's)."""
    model, _, _ = train_synthetic_scaling(tmp_path_factory.mktemp("models"))
    assert isinstance(model.forecasters["plan"], QuantileGBMForecaster)
    return model


@pytest.fixture(scope="module")
def seasonal(gbm: ScalingModel) -> ScalingModel:
    """The same metadata with seasonal-naive forecasters: predicted row by row."""
    load = minute_load(3 * DAY_MIN, seed=1)
    buckets = load.reshape(-1, 5).mean(axis=1)
    stamps = np.datetime64("2024-01-05") + np.arange(buckets.size) * np.timedelta64(300, "s")
    X = make_features(buckets, stamps, step_s=300, horizon_steps=2)[288:-2]
    forecaster = SeasonalNaiveForecaster(season="1d").fit(X, buckets[290:])
    return ScalingModel({"plan": forecaster, "forecast": forecaster}, gbm.metadata)


class Recording(PredictivePolicy):
    """The predictive policy, recording what it saw and held at every tick."""

    def reset(self, context: ControlContext) -> None:
        super().reset(context)
        self.ticks: list[float] = []
        self.offered: list[float | None] = []  # the summed load of the tick's minute
        self.held: dict[str, list[np.ndarray]] = {"plan": [], "forecast": []}

    def decide(self, observation: Observation) -> Decision:
        decision = super().decide(observation)
        metrics = observation.metrics
        self.ticks.append(observation.sim_time_s)
        self.offered.append(
            None if metrics is None else sum(m.request_rate_rps for m in metrics.values())
        )
        for role, held in self.held.items():
            held.append(self.forecast[role].copy())
        return decision


def default_world(hours: float, gaps: list[TelemetryGap]) -> World:
    """The default scenario's first ``hours`` with telemetry gaps."""
    path = find_scenario("default")
    scenario = load_scenario_file(path)
    faults = scenario.faults.model_copy(update={"telemetry_gaps": gaps})
    return prepare(scenario.model_copy(update={"faults": faults}), source=path, days=hours / 24)


def replayed(world: World, model: ScalingModel) -> Recording:
    policy = Recording()
    policy.use_model(model)
    Replay(world, policy, MemorySink()).run()
    return policy


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize("kind", ["gbm", "seasonal"])
def test_equals_what_the_policy_holds_at_every_tick(
    kind: str, gbm: ScalingModel, seasonal: ScalingModel
) -> None:
    """A replay of the default scenario (2.5 h, metrics missing for the first 4 minutes
    and for 15 minutes from 1 h): the forecasts equal the policy's, both roles, at every
    tick, gap ticks included; with the compiled batch path and the row-by-row one."""
    model = gbm if kind == "gbm" else seasonal
    world = default_world(
        2.5,
        [TelemetryGap(start_h=0.0, duration_h=4 / 60), TelemetryGap(start_h=1, duration_h=0.25)],
    )
    policy = replayed(world, model)
    n_ticks = world.n_minutes  # ticks 0 .. n-1 (the replay ends before tick n)
    assert policy.ticks == [60.0 * k for k in range(n_ticks)]
    seen = [x is not None for x in policy.offered[1:]]  # minute k is seen at tick k + 1
    assert seen[:4] == [False] * 4 and not any(seen[60:75]) and sum(seen) == n_ticks - 20
    for role in ("plan", "forecast"):
        got = plan_forecasts(
            model,
            history_rps=world.workload.history_rps,
            history_gap=world.workload.history_filled,
            start=world.workload.start,
            offered_rps=np.array([x or 0.0 for x in policy.offered[1:]]),
            observed=np.array(seen),
            role=role,
        )
        assert got.shape == (n_ticks, 3)
        assert np.array_equal(got, np.array(policy.held[role])), role
    assert not np.array_equal(got[60], got[58])  # the forecasts do move


def test_shape_dtype_and_row_zero(gbm: ScalingModel) -> None:
    """Row 0 is the forecast at reset; with nothing seen every row is row 0; without
    replay minutes only row 0."""
    history = minute_load(3 * DAY_MIN)
    gap = np.zeros(history.size, dtype=bool)
    at_reset = gbm.predict_row(
        "plan", LoadPipeline(history, gap, START).features(gbm.metadata.plan_horizon_min)
    )
    kwargs = {"history_rps": history, "history_gap": gap, "start": START}
    only = plan_forecasts(gbm, offered_rps=np.empty(0), **kwargs)
    assert only.dtype == np.float64 and only.shape == (1, len(gbm.metadata.quantiles))
    assert np.array_equal(only[0], at_reset)
    blind = plan_forecasts(
        gbm, offered_rps=np.full(30, 5000.0), observed=np.zeros(30, dtype=bool), **kwargs
    )
    assert blind.shape == (31, 3) and np.array_equal(blind, np.tile(at_reset, (31, 1)))
    seen = plan_forecasts(gbm, offered_rps=np.full(30, 5000.0), **kwargs)
    assert np.array_equal(seen[0], at_reset) and seen[30, 0] > seen[0, 0]
    assert np.all(np.diff(seen, axis=1) >= 0)  # quantiles in order


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"observed": np.ones(9, dtype=bool)}, "observed must be bool of offered_rps's shape"),
        ({"observed": np.ones(10)}, "observed must be bool"),
        ({"offered_rps": np.array([1.0, 2.0, 3.0, -1.0])}, r"offered_rps\[3\] = -1.0"),
        ({"offered_rps": np.array([1.0, np.nan])}, r"offered_rps\[1\] = nan"),
        ({"offered_rps": np.array([np.inf])}, r"offered_rps\[0\] = inf"),
        ({"offered_rps": np.ones((2, 5))}, "offered_rps must be 1-D"),
        ({"history_rps": np.ones(100), "history_gap": np.zeros(100, bool)}, "at least 2880"),
        ({"history_gap": np.zeros(5, bool)}, "must be 1-D of one length"),
        ({"role": "peak"}, "role 'peak' is not one of"),
    ],
)
def test_bad_input_is_one_clear_error(
    change: dict[str, object], message: str, gbm: ScalingModel
) -> None:
    history = minute_load(3 * DAY_MIN)
    kwargs: dict[str, object] = {
        "history_rps": history,
        "history_gap": np.zeros(history.size, dtype=bool),
        "start": START,
        "offered_rps": np.ones(10),
    }
    with pytest.raises(ValueError, match=message):
        plan_forecasts(gbm, **{**kwargs, **change})  # type: ignore[arg-type]


def test_a_gap_minute_of_the_history_is_not_read(gbm: ScalingModel) -> None:
    """History values at gap minutes (NaN here) are interpolated, as the policy does."""
    history = minute_load(3 * DAY_MIN)
    gap = np.zeros(history.size, dtype=bool)
    gap[-100:-90] = True
    filled = history.copy()
    filled[gap] = np.nan
    kwargs = {"history_gap": gap, "start": START, "offered_rps": np.ones(20)}
    assert np.array_equal(
        plan_forecasts(gbm, history_rps=filled, **kwargs),
        plan_forecasts(gbm, history_rps=history + np.where(gap, 5.0, 0.0), **kwargs),
    )
