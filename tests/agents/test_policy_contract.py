"""The Policy contract, checked on every registered policy (compare scikit-learn's
``parametrize_with_checks``): it declares its needs on itself, runs a short replay, keeps
every decision within each pool's [min, max], is handed foresight only if it declares
it, and replays deterministically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.registry import POLICIES
from bench import runner
from opsbench_testing import Recorded
from sim.control import (
    ModelPolicy,
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


@pytest.mark.parametrize("name", POLICIES.ids())
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
