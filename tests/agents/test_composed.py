"""Composed controllers (``SIZING+MIX``): every pair is registered with its parts' needs,
a bad name or parameter is one clear line, ``opsbench policies`` lists the pairs, the
``bench cost`` target picks the best pair. (The replays — the contract, the sizing's target
held by the mix, records naming both parts — are in ``test_policy_contract.py``, which
trains its scaling model once.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.cost.composed import ComposedPolicy
from agents.registry import MIX_POLICIES, POLICIES, SIZING_POLICIES, make_policy
from opsbench_testing import assert_one_line_error, run_main, shipped_doc, write_scenario
from sim.errors import InputError


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


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("predictive+foo", ["unknown mix policy 'foo'", "cost-rl", "spot-greedy"]),
        ("static+spot-greedy", ["unknown sizing policy 'static'", "reactive, predictive"]),
        ("reactive+", ["unknown mix policy ''", "on-demand"]),
        ("nope", ["unknown policy 'nope'", "static, uniform-progress, or SIZING+MIX"]),
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


def _row(cost: float, slo: float) -> dict[str, Any]:
    return {"cost_usd": cost, "slo_attainment": slo}


def test_the_composed_target_takes_the_cheapest_pair_at_the_slo_floor() -> None:
    from bench.cost import composed_target

    rows = {
        "reactive": _row(100.0, 0.98),
        "predictive+spot-greedy": _row(60.0, 0.9985),  # cheapest, below 99.9%
        "predictive+cost-rl": _row(80.0, 0.9995),
        "predictive+on-demand": _row(90.0, 1.0),
        "oracle+spot-greedy": _row(10.0, 1.0),  # foresight: not a controller
    }
    found = composed_target(rows)
    assert found is not None
    assert (found["policy"], found["met"]) == ("predictive+cost-rl", True)
    rows["reactive"] = _row(70.0, 0.9999)  # now the floor is reactive's SLO
    found = composed_target(rows)
    assert found is not None
    assert (found["policy"], found["met"]) == ("predictive+on-demand", False)
    assert composed_target({"reactive": _row(1.0, 1.0)}) is None


def test_the_demo_shows_registered_composed_controllers() -> None:
    from bench.cli.replay import COMPOSED_DEMO_POLICIES, SPOT_DEMO_POLICIES

    assert {"predictive+spot-greedy", "predictive+cost-rl"} <= set(COMPOSED_DEMO_POLICIES)
    assert all(name in POLICIES for name in SPOT_DEMO_POLICIES + COMPOSED_DEMO_POLICIES)


def test_a_scenario_names_a_pair_and_its_parts_parameters(tmp_path: Path) -> None:
    from bench import runner

    doc = shipped_doc()
    doc["control"]["policy"] = "reactive+price-capacity"
    doc["control"]["params"] = {"sizing": {"tolerance": 0.2}, "mix": {}}
    path = write_scenario(tmp_path, doc)
    prepared = runner.prepare_run(str(path), days=0.02)
    policy = prepared.policy
    assert isinstance(policy, ComposedPolicy)
    assert policy.sizing.params.tolerance == 0.2  # type: ignore[attr-defined]
    assert runner.run(prepared)["policy"] == "reactive+price-capacity"
    doc["control"]["params"] = {"sizing": {"tolerance": 5}}
    with pytest.raises(InputError) as err:
        runner.prepare_run(str(write_scenario(tmp_path, doc)), days=0.02)
    assert (err.value.source, err.value.field) == (str(path), "control.params.sizing.tolerance")
