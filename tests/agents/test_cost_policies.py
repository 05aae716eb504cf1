"""The cost baselines' invariants in the simulator, the rules' logic, and the saved
``cost-rl`` model's refusal of anything we did not write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fresh_python import run_script

from agents.cost.controller import Controller
from agents.cost.heuristics import PriceCapacityRule, UniformProgressRule
from agents.cost.model import METADATA_FILE, MODEL_FILE, SHIPPED_DIR, load_model
from agents.cost.plan import Layout, Tick
from bench import runner
from sim.engine import Replay
from sim.errors import InputError
from sim.summary import summarise
from sim.telemetry import MemorySink

DAYS = 2.0
POLICIES = ("on-demand", "spot-greedy", "price-capacity", "uniform-progress", "hindsight")


def _replay(policy: str, days: float = DAYS) -> tuple[dict[str, Any], MemorySink, Any]:
    prepared = runner.prepare_run("default", policy=policy, days=days)
    runner.attach_model(prepared)
    world, built = prepared.world, prepared.policy
    decisions: list[Any] = []
    decide = built.decide

    def spy(obs: Any) -> Any:
        decision = decide(obs)
        decisions.append((obs, decision))
        return decision

    built.decide = spy
    sink = MemorySink()
    replay = Replay(world, built, sink)
    truth = replay.run()
    return summarise(replay, truth, policy=policy, wall_s=0.0), sink, decisions


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[dict[str, Any], MemorySink, Any]]:
    return {p: _replay(p) for p in POLICIES}


def test_on_demand_never_buys_spot(runs: dict[str, Any]) -> None:
    _, sink, decisions = runs["on-demand"]
    events = sink.table("events").to_pylist()
    spot_launches = [
        e for e in events if e["event"] == "launch_requested" and e["capacity_type"] == "spot"
    ]
    assert all(e["reason"] == "initial fleet" for e in spot_launches)  # the simulator's warm start
    for obs, decision in decisions:
        assert decision.desired_nodes["spot"] <= obs.pools["spot"].nodes_active


def test_spot_greedy_buys_on_demand_only_when_spot_cannot_hold_the_plan(
    runs: dict[str, Any],
) -> None:
    _, _, decisions = runs["spot-greedy"]
    grew_on_demand = 0
    for obs, decision in decisions:
        od = obs.pools["on-demand"]
        if decision.desired_nodes["on-demand"] > od.nodes_active:
            grew_on_demand += 1
            spot = obs.pools["spot"]
            assert len(spot.launchable_azs) < 3 or decision.desired_nodes["spot"] >= 60
    assert grew_on_demand > 0  # the dev traces do withdraw spot capacity


def test_hindsight_is_the_cheapest_at_equal_slo(runs: dict[str, Any]) -> None:
    best = runs["hindsight"][0]
    for name, (summary, _, _) in runs.items():
        assert best["cost_usd"] <= summary["cost_usd"] + 1e-6, name
        assert best["slo_attainment"] >= summary["slo_attainment"] - 1e-9, name
    assert runs["on-demand"][0]["spot_cost_usd"] < runs["spot-greedy"][0]["spot_cost_usd"]


def test_cost_rl_replays_with_recommendations() -> None:
    summary, sink, _ = _replay("cost-rl", days=0.5)
    records = [
        json.loads(e["reason"])
        for e in sink.table("events").to_pylist()
        if e["event"] == "recommendation"
    ]
    assert summary["slo_attainment"] > 0.99
    assert {r["pool"] for r in records} == {"on-demand", "spot"}
    first = records[0]
    for key in ("instance_type", "spot_share", "nodes_by_az", "right_sizing_pods",
                "interruption_risk", "savings_vs_on_demand", "model_version"):  # fmt: skip
        assert key in first
    assert 0.0 <= first["spot_share"] <= 1.0


# --------------------------------------------------------------------------- rules


def _controller() -> Controller:
    world = runner.prepare_run("default", policy="on-demand", days=0.1).world
    layout = Layout.of(world.pools)
    return Controller(
        layout,
        pod_rate_rps=40.0,
        slo_p95_ms=200.0,
        start=world.workload.start,
        history_rps=np.empty(0),
    )


def _tick(t_s: float, *, launchable: list[bool], price: list[float], p95: float) -> Tick:
    return Tick(
        t_s=t_s,
        load_rps=1000.0,
        cpu=0.5,
        p95_ms=p95,
        error_rate=0.0,
        active=[1, 1, 1, 3, 3, 3],
        pending=[0] * 6,
        price=price,
        available=[True, True, True, *launchable],
        launchable=[True, True, True, *launchable],
    )


def test_uniform_progress_goes_on_demand_when_behind_and_back_only_when_ahead() -> None:
    ctrl, rule = _controller(), UniformProgressRule()
    rule.reset(ctrl, None)
    prices = [0.308] * 3 + [0.16] * 3
    ctrl.observe(_tick(60.0, launchable=[True] * 3, price=prices, p95=500.0))  # a violation
    assert rule.mix(ctrl).od_floor == 1.0  # behind the 99.9% line
    t = 60.0
    while (0.001 * ctrl.tracker.minutes - ctrl.tracker.violations) < rule.margin_min - 0.001:
        t += 60.0
        ctrl.observe(_tick(t, launchable=[True] * 3, price=prices, p95=100.0))
        assert rule.mix(ctrl).od_floor == 1.0  # not yet ahead by the margin
    t += 60.0
    ctrl.observe(_tick(t, launchable=[True] * 3, price=prices, p95=100.0))
    mix = rule.mix(ctrl)
    assert mix.od_floor == 0.0 and mix.keep == 1.0


def test_price_capacity_picks_the_cheapest_of_the_best_available() -> None:
    ctrl, rule = _controller(), PriceCapacityRule()
    prices = [0.308] * 3 + [0.15, 0.17, 0.16]
    for i in range(120):  # AZ 0 (cheapest) flaps: offered one tick in two
        flaky = i % 2 == 0
        ctrl.observe(_tick(60.0 * (i + 1), launchable=[flaky, True, True], price=prices, p95=90))
    assert rule.mix(ctrl).weights == (0.0, 0.0, 1.0)
    ctrl.observe(_tick(60.0 * 200, launchable=[True, True, False], price=prices, p95=90))
    assert rule.mix(ctrl).weights == (0.0, 1.0, 0.0)


# --------------------------------------------------------------------------- the model


def test_shipped_model_loads_and_acts() -> None:
    model = load_model(SHIPPED_DIR)
    action = model.act(np.zeros(model.metadata.obs_dim, dtype=np.float32))
    assert action.shape == (model.metadata.act_dim,)
    assert np.all(np.abs(action) <= 1.0)


def test_model_refused_on_sha_mismatch_and_outside_our_directories(tmp_path: Path) -> None:
    ours = tmp_path / "models" / "cost" / "default"
    shutil.copytree(SHIPPED_DIR, ours)
    load_model(ours, models_dir=tmp_path / "models")  # a faithful copy in our directory loads
    with pytest.raises(InputError, match="not inside our model directories"):
        load_model(ours)  # not under the default .opsbench/models nor the shipped folder
    payload = bytearray((ours / MODEL_FILE).read_bytes())
    payload[-30] ^= 0xFF
    (ours / MODEL_FILE).write_bytes(bytes(payload))
    with pytest.raises(InputError, match="does not match the hash recorded at save"):
        load_model(ours, models_dir=tmp_path / "models")
    meta = json.loads((ours / METADATA_FILE).read_text())
    meta["n_spot"] = "three"
    (ours / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(InputError, match="n_spot"):
        load_model(ours, models_dir=tmp_path / "models")


DECIDE_ONLY = """
import sys
from agents.cost.model import SHIPPED_DIR, load_model
from agents.cost.policies import CostRLPolicy
from sim.engine import Replay
from sim.scenario_files import find_scenario, load_scenario_file
from sim.telemetry import MemorySink
from sim.world import prepare

path = find_scenario("default")
world = prepare(load_scenario_file(path), source=path, days=0.05)
policy = CostRLPolicy()
policy.use_model(load_model(SHIPPED_DIR))
Replay(world, policy, MemorySink()).run()
loaded = ("stable_baselines3", "duckdb", "bench", "agents.cost.training", "agents.cost.env")
print(",".join(m for m in loaded if m in sys.modules) or "none")
"""


def test_cost_rl_decides_without_stable_baselines3() -> None:
    """A replay of ``cost-rl`` with the shipped model (a fresh interpreter): the weights
    are read with torch and evaluated in numpy; stable-baselines3, the environment, the
    training module and DuckDB are never imported."""
    assert run_script(DECIDE_ONLY) == "none"
