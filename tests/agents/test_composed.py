"""Composed controllers (``SIZING+MIX``): the sizing policy's pod target is what the mix
places, each part gets what it needs, the records name both parts, and a bad name or
parameter is one clear line. (The policy contract runs on every pair in
``test_policy_contract.py``.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.cost.composed import ComposedPolicy
from agents.registry import MIX_POLICIES, POLICIES, SIZING_POLICIES, make_policy
from bench import runner
from opsbench_testing import assert_one_line_error, run_main
from sim.control import Decision, Observation
from sim.errors import InputError

DAYS = 0.25


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


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
    prepared.policy = probe  # type: ignore[assignment]
    return probe, runner.run(prepared)


def test_every_sizing_and_mix_pair_is_registered() -> None:
    pairs = [f"{s}+{m}" for s in SIZING_POLICIES for m in MIX_POLICIES]
    assert [p for p in POLICIES.ids() if "+" in p] == pairs
    for pair in pairs:
        sizing, mix = pair.split("+")
        built = POLICIES.make(pair)
        assert isinstance(built, ComposedPolicy)
        assert (built.sizing.name, built.mix.name) == (sizing, mix)
        parts = (POLICIES.make(sizing).needs, POLICIES.make(mix).needs)
        assert built.needs.foresight == any(n.foresight for n in parts)
        assert built.needs.model == (parts[0].model or parts[1].model)


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


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("predictive+foo", ["unknown mix policy 'foo'", "cost-rl", "spot-greedy"]),
        ("static+spot-greedy", ["unknown sizing policy 'static'", "reactive, predictive"]),
        ("reactive+", ["unknown mix policy ''", "on-demand"]),
    ],
)
def test_an_unknown_part_is_one_line_naming_what_is_allowed(
    name: str, needles: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_main(capsys, ["replay", "default", "--policy", name, "--days", "0.01",
                                       "--models", str(tmp_path)])  # fmt: skip
    assert_one_line_error(code, out, err, "--policy", *needles)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sizing": {"tolerance": 2}}, "control.params.sizing.tolerance"),
        ({"mix": {"record_every_min": 0}}, "control.params.mix.record_every_min"),
        ({"mix": {"nope": 1}}, "control.params.mix.nope"),
        ({"buffer": 1}, "control.params.buffer"),
    ],
)
def test_bad_parameters_of_a_part_name_the_part(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        make_policy("reactive+cost-rl", params, source="s.yaml", field="control.policy")
    assert err.value.field == field
    assert "s.yaml" in str(err.value)


def test_hindsight_as_a_mix_does_not_plan() -> None:
    with pytest.raises(InputError, match="sizing policy plans"):
        make_policy("predictive+hindsight", {"mix": {"foresee_load": True}},
                    source="--policy", field="")  # fmt: skip


def test_one_model_reference_for_two_models_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_main(
        capsys,
        ["replay", "default", "--policy", "predictive+cost-rl", "--model", "cost-rl-shipped",
         "--days", "0.01", "--models", str(tmp_path)],
    )  # fmt: skip
    assert_one_line_error(code, out, err, "--model", "2 models (scaling, cost)")


def test_policies_lists_the_pairs_with_their_parameters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(capsys, ["policies", "--json"])
    assert (code, err) == (0, "")
    rows = {r["name"]: r for r in json.loads(out)}
    row = rows["predictive+cost-rl"]
    assert row["needs"] == {"foresight": False, "model": "scaling"}
    assert row["models"] == ["scaling", "cost"]
    assert [p["name"] for p in row["parameters"]] == ["sizing", "mix"]
    assert rows["oracle+hindsight"]["needs"]["foresight"] is True
