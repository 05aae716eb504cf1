"""cost-rl under the ``predictive`` sizing it runs with: the environment's plan is the
predictive rule over the scaling model's forecasts, the observation is feature version 2
(the forecast and each AZ's drop hazard), a model trained so records it and runs only as
``predictive+cost-rl``, where the composed controller hands it the sizing's forecast.
(The scaling model is trained once for the module on ``default``'s history.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.cost.env import SpotFleetEnv, prepare_world
from agents.cost.env_sizing import SizingSource
from agents.cost.model import load_model
from agents.cost.training import train
from agents.cost.view import features_for, n_features
from agents.scaling.policy import PredictiveParams
from bench import runner
from sim.errors import InputError
from sim.world import World

DAYS = 1.0


@pytest.fixture(scope="module")
def models(default_scaling_models: Path) -> Path:
    return default_scaling_models


@pytest.fixture(scope="module")
def world() -> World:
    return prepare_world("default", DAYS)


@pytest.fixture(scope="module")
def source(world: World, models: Path) -> SizingSource:
    prepared = runner.prepare_run("default", policy="predictive", days=DAYS)
    runner.attach_model(prepared, models_dir=models, store=models / "store.duckdb")
    model = prepared.policy.model  # type: ignore[attr-defined]
    return SizingSource.for_world(world, model, PredictiveParams(quantile=0.9))


def test_feature_version_2_adds_the_forecast_and_one_hazard_per_spot_slot(world: World) -> None:
    env = SpotFleetEnv(world)
    n_spot = len(env.layout.spot_slots)
    assert n_features(env.layout) == features_for(n_spot, 1) == 11 + 5 * n_spot
    assert features_for(n_spot, 2) == features_for(n_spot, 1) + 2 + n_spot
    with pytest.raises(ValueError, match="feature version 3"):
        features_for(n_spot, 3)


def test_the_environment_holds_the_predictive_rule_over_the_forecasts(
    world: World, source: SizingSource
) -> None:
    env = SpotFleetEnv(world, sizing_source=source)
    assert env.observation_space.shape == (features_for(len(env.layout.spot_slots), 2),)
    obs, _ = env.reset(seed=3)
    sizing, ctrl = env.sizing, env.ctrl
    assert sizing is not None and ctrl is not None
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    plans, uppers = [], []
    for _ in range(240):
        assert env.observation_space.contains(obs)
        median, upper = ctrl.forecast_pods or (0.0, 0.0)
        assert 0 < median <= upper
        plans.append(ctrl.plan_pods)
        uppers.append(upper)
        obs, _, _, _, _ = env.step(zero)
    # the plan is never below the provisioned quantile (pods_target's floor) and follows it
    assert all(p >= np.ceil(u - 1e-9) for p, u in zip(plans, uppers, strict=True))
    assert np.corrcoef(plans, uppers)[0, 1] > 0.8
    # the plan is not the controller's own rule (the 30-minute peak + 20%)
    own = SpotFleetEnv(world)
    own.reset(seed=3)
    assert own.ctrl is not None
    own_plans = []
    for _ in range(240):
        own_plans.append(own.ctrl.plan_pods)
        own.step(zero)
    assert own_plans != plans


def test_train_mode_windows_read_the_forecasts_of_their_own_minutes(
    world: World, source: SizingSource
) -> None:
    env = SpotFleetEnv(world, sizing_source=source)
    env.reset(seed=11)
    sizing = env.sizing
    assert sizing is not None
    assert env.model is not None
    offset = env.window_start_min(env.model.market) - source.history_start_min
    assert sizing.offset == offset >= 0
    row = source.history_forecasts[offset]
    median, upper = sizing.forecast_pods(0)
    assert median == pytest.approx(row[sizing.median_index] / env.pod_rate)
    assert upper == pytest.approx(row[sizing.q_index] / env.pod_rate)


def test_a_model_trained_under_predictive_sizing_records_it_and_runs_only_composed(
    world: World, source: SizingSource, models: Path, tmp_path: Path
) -> None:
    model = train(world, tmp_path / "model", timesteps=4096, seed=0, sizing_source=source)
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    recorded = (meta["feature_version"], meta["sizing"], meta["sizing_quantile"])
    assert recorded == (2, "predictive", 0.9)
    assert meta["hazard_prior"]["shape"] > 0 and meta["hazard_prior"]["window_min"] > 0
    assert load_model(tmp_path / "model", roots=(tmp_path.resolve(),)).metadata == model.metadata

    def run(policy: str) -> dict[str, Any]:
        params = {"sizing": {"quantile": 0.9}} if policy.startswith("predictive") else None
        prepared = runner.prepare_run("default", policy=policy, params=params, days=0.25)
        prepared.policy.mix.use_model(model)  # type: ignore[attr-defined]
        runner.attach_model(
            prepared, models_dir=models, store=models / "store.duckdb", kinds=frozenset({"scaling"})
        )
        prepared.model_version = "test"
        return runner.run(prepared)

    summary = run("predictive+cost-rl")
    assert summary["cost_usd"] > 0
    for policy in ("reactive+cost-rl", "oracle+cost-rl"):
        with pytest.raises(InputError, match="trained under predictive sizing"):
            run(policy)
    other = runner.prepare_run(
        "default", policy="predictive+cost-rl", params={"sizing": {"quantile": 0.75}}, days=0.25
    )
    other.policy.mix.use_model(model)  # type: ignore[attr-defined]
    runner.attach_model(
        other, models_dir=models, store=models / "store.duckdb", kinds=frozenset({"scaling"})
    )
    other.model_version = "test"
    with pytest.raises(InputError, match=r"control\.params\.sizing\.quantile"):
        runner.run(other)
    alone = runner.prepare_run("default", policy="cost-rl", days=0.25)
    alone.policy.use_model(model)  # type: ignore[attr-defined]
    alone.model_version = "test"
    with pytest.raises(InputError, match="runs alone"):
        runner.run(alone)


def test_version_2_metadata_without_predictive_sizing_is_refused(
    world: World, source: SizingSource, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    train(world, folder, timesteps=4096, seed=1, sizing_source=source)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["sizing"] = "controller"
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="sizing"):
        load_model(folder, roots=(tmp_path.resolve(),))


def test_the_environment_under_predictive_sizing_bills_what_the_simulator_bills(
    world: World, source: SizingSource, models: Path
) -> None:
    """Fidelity: the zero action (spot-greedy) over the replay in the env under predictive
    sizing, against ``predictive+spot-greedy`` in the SimPy replay: cost and SLO within 2%
    (measured: 0.02% on 2 days, 0.01% on 7)."""
    prepared = runner.prepare_run(
        "default", policy="predictive+spot-greedy", params={"sizing": {"quantile": 0.9}}, days=DAYS
    )
    runner.attach_model(prepared, models_dir=models, store=models / "store.duckdb")
    truth = runner.run(prepared)
    env = SpotFleetEnv(world, mode="replay", sizing_source=source)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    done, info = False, {}
    while not done:
        _, _, term, trunc, info = env.step(zero)
        done = term or trunc
    totals = info["totals"]
    assert totals["cost_usd"] == pytest.approx(truth["cost_usd"], rel=0.02)
    assert totals["slo_attainment"] == pytest.approx(truth["slo_attainment"], rel=0.02)


def test_a_lifecycle_managed_sizing_hands_the_mix_the_applied_forecast(models: Path) -> None:
    """Under a scenario's lifecycle loop the sizing is the loop; it forwards the forecast of
    the policy whose decision it applied, so a predictive-trained cost-rl can run there."""
    from agents.lifecycle.loop import ManagedPredictive

    prepared = runner.prepare_run("bad-model", policy="predictive+spot-greedy", days=0.05)
    runner.attach_model(prepared, models_dir=models, store=models / "store.duckdb")
    composed = prepared.policy
    loop = composed.sizing  # type: ignore[attr-defined]
    assert isinstance(loop, ManagedPredictive)
    runner.run(prepared)
    assert composed.mix.sized_by.forecasts  # type: ignore[attr-defined]
    forecast = loop.plan_forecast_pods
    assert forecast is not None and forecast == loop.applied.plan_forecast_pods
    assert composed.mix.ctrl.forecast_pods == forecast  # type: ignore[attr-defined]
