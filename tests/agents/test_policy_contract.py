"""The Policy contract, checked on every registered policy (compare scikit-learn's
``parametrize_with_checks``): it declares its needs on itself, runs a short replay, keeps
every decision within each pool's [min, max], is handed foresight only if it declares
it, and replays deterministically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.cost.composed import ComposedPolicy
from agents.registry import POLICIES
from bench import runner
from opsbench_testing import Recorded
from sim.control import (
    Decision,
    ModelPolicy,
    Observation,
    Policy,
    PolicyNeeds,
)

SCENARIO = "default"  # on-demand and spot pools, replayed spot availability
DAYS = 0.25


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def replay(name: str, models: Path) -> tuple[dict[str, Any], Recorded, runner.PreparedRun]:
    prepared = runner.prepare_run(SCENARIO, policy=name, days=DAYS)
    runner.attach_model(prepared, models_dir=models, store=models / "store.duckdb")
    recorded = Recorded(prepared.policy)
    prepared.policy = recorded
    return runner.run(prepared), recorded, prepared


COMPOSED = (
    "reactive+spot-greedy",
    "reactive+uniform-progress",
    "predictive+cost-rl",
    "predictive+price-capacity",
    "predictive+on-demand",
    "oracle+hindsight",
)
"""Composed controllers run here: every sizing and every mix policy at least once (all 18
pairs would add ~36 replays; tests/agents/test_composed.py builds every pair)."""


@pytest.mark.parametrize("name", [n for n in POLICIES.ids() if "+" not in n] + list(COMPOSED))
def test_policy_contract(name: str, models: Path) -> None:
    built = POLICIES.make(name)
    assert isinstance(built, Policy)
    assert built.name == name
    assert isinstance(built.needs, PolicyNeeds)
    if built.needs.model is not None:
        assert isinstance(built, ModelPolicy)

    summary, recorded, prepared = replay(name, models)
    (context,) = recorded.contexts
    assert (context.foresight is not None) == built.needs.foresight
    assert (prepared.model_version is not None) == (built.needs.model is not None)
    bounds = {p.name: (p.min_nodes, p.max_nodes) for p in prepared.world.pools}
    assert recorded.decisions, "no decision in the whole replay"
    for decision in recorded.decisions:
        assert set(decision.desired_nodes) <= set(bounds)
        for pool, count in decision.desired_nodes.items():
            lo, hi = bounds[pool]
            assert lo <= count <= hi, (pool, count, (lo, hi))
        for pool, by_az in decision.desired_by_az.items():
            assert all(n >= 0 for n in by_az.values())
            lo, hi = bounds[pool]
            assert lo <= sum(by_az.values()) <= hi, (pool, dict(by_az))

    again, _, _ = replay(name, models)
    assert again["telemetry_sha256"] == summary["telemetry_sha256"]
    assert again["run_id"] == summary["run_id"]


# --------------------------------------------------------------------------- composed


class Probe:
    """Wraps a composed policy; after each decision keeps the sizing's target and the
    plan the mix's controller executed."""

    def __init__(self, inner: ComposedPolicy) -> None:
        self.inner = inner
        self.name, self.needs, self.params = inner.name, inner.needs, inner.params
        self.seen: list[tuple[float | None, float, Decision]] = []

    def reset(self, context: Any) -> None:
        self.inner.reset(context)

    def decide(self, observation: Observation) -> Decision:
        decision = self.inner.decide(observation)
        ctrl = self.inner.mix.ctrl
        assert ctrl is not None
        self.seen.append((self.inner.sizing.last_target_pods, ctrl.plan_pods, decision))
        return decision


def probed(name: str, models: Path) -> tuple[Probe, dict[str, Any]]:
    prepared = runner.prepare_run("default", policy=name, days=DAYS)
    runner.attach_model(prepared, models_dir=models, store=models / "store.duckdb")
    assert isinstance(prepared.policy, ComposedPolicy)
    probe = Probe(prepared.policy)
    prepared.policy = probe
    return probe, runner.run(prepared)


@pytest.mark.parametrize("name", ["reactive+spot-greedy", "predictive+on-demand"])
def test_the_mix_holds_the_sizing_target(name: str, models: Path) -> None:
    probe, summary = probed(name, models)
    targets = [(t, plan) for t, plan, _ in probe.seen if t is not None]
    assert len(targets) >= len(probe.seen) - 1  # reactive: no target before its metrics
    assert all(plan == float(t) for t, plan in targets)
    assert len({t for t, _ in targets}) > 1  # the target moves with the load
    assert summary["policy"] == name
    if name.endswith("on-demand"):
        assert summary["spot_cost_usd"] == 0.0


def test_records_name_both_parts_and_both_models_are_attached(models: Path) -> None:
    probe, summary = probed("predictive+cost-rl", models)
    version = summary["model_version"]
    assert version.startswith("scaling-default/") and " + cost-rl-" in version
    parts = {r["part"] for _, _, d in probe.seen for r in d.records}
    assert parts == {"sizing", "mix", "composed"}
    composed = [r for _, _, d in probe.seen for r in d.records if r["part"] == "composed"]
    assert {(r["sizing"], r["mix"]) for r in composed} == {("predictive", "cost-rl")}
    for target, plan, decision in probe.seen:
        for r in decision.records:
            if r["part"] == "composed":
                assert r["plan_pods"] == plan == float(target)  # type: ignore[arg-type]
                assert r["target_nodes"] == decision.desired_nodes[r["pool"]]  # type: ignore[index]
            if r["part"] == "mix":
                assert r["right_sizing_pods"] == plan  # cost-rl saw the sizing's plan
            json.dumps(r)
