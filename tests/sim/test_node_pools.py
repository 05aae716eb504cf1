"""Node pools that allow several instance types (right-sizing): resolution against the
catalogue, pods per node, the simulated pools, spot prices by type, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from bench import runner
from sim.errors import InputError
from sim.market.prices import load_history, type_price_ratio
from sim.scenario import Scenario
from sim.scenario_files import load_scenario_file
from scenarios import data_path

SCENARIOS = Path(runner.__file__).resolve().parent.parent / "scenarios"


def _right_sizing() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SCENARIOS / "right-sizing.yaml").read_text())
    return data


def _absolute(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its data paths made absolute (the file is written elsewhere)."""
    root = str(SCENARIOS)
    data["workload"]["path"] = f"{root}/{data['workload']['path']}"
    pricing = data["pricing"]
    pricing["catalogue"] = f"{root}/{pricing['catalogue']}"
    pricing["spot_prices"]["path"] = f"{root}/{pricing['spot_prices']['path']}"
    files = pricing["spot_availability"]["files"]
    for az, f in files.items():
        files[az] = f"{root}/{f}"
    return data


@pytest.fixture
def scenario_file(tmp_path: Path) -> Any:
    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / "scenario.yaml"
        path.write_text(yaml.safe_dump(_absolute(data)))
        return path

    return write


def test_requirements_become_one_simulated_pool_per_type() -> None:
    world = runner.prepare_run("right-sizing", policy="on-demand", days=0.1).world
    spot = [p for p in world.pools if p.capacity_type == "spot"]
    types = sorted(p.instance_type for p in spot)
    # families c5a and c5 of at most 36 vCPUs in the shipped us-east-1 catalogue
    expected = ["c5.large", "c5.2xlarge", "c5.4xlarge", "c5.9xlarge"]
    expected += ["c5a.2xlarge", "c5a.4xlarge", "c5a.8xlarge"]
    assert types == sorted(expected)
    assert all(p.name == f"spot/{p.instance_type}" for p in spot)
    per_pod = [p.on_demand_usd_per_hour / p.pods_per_node for p in spot]
    assert per_pod == sorted(per_pod)  # cheapest on-demand pod first
    fits = {p.instance_type: p.pods_per_node for p in spot}
    assert fits["c5.large"] == 1 and fits["c5a.2xlarge"] == 7 and fits["c5a.8xlarge"] == 31
    on_demand = [p for p in world.pools if p.capacity_type == "on-demand"]
    held = {p.instance_type: p.min_nodes for p in on_demand if p.min_nodes}
    assert held == {"c5.large": 3}  # the floor of 3 nodes on the cheapest node
    assert all(p.max_nodes == 60 for p in world.pools)


def test_a_single_type_pool_keeps_its_name() -> None:
    world = runner.prepare_run("default", policy="on-demand", days=0.1).world
    assert [p.name for p in world.pools] == ["on-demand", "spot"]


def test_other_types_follow_the_replayed_series_times_their_cross_section_ratio() -> None:
    world = runner.prepare_run("right-sizing", policy="on-demand", days=1).world
    index = {p.name: i for i, p in enumerate(world.pools)}
    ref = world.prices[(index["spot/c5a.2xlarge"], "us-east-1c")]
    big = world.prices[(index["spot/c5a.8xlarge"], "us-east-1c")]
    history = load_history(data_path("spot", "spot_price_history.csv"), "path")
    ratio = type_price_ratio(history, "c5a.8xlarge", "c5a.2xlarge")
    # the shipped cross-section: the AZ IDs with both types, one record each
    per_az = [0.666 / 0.1929, 0.7067 / 0.2184, 0.6963 / 0.1969, 0.6636 / 0.1992]
    per_az += [0.7097 / 0.1739, 0.5151 / 0.1304]  # us-west-2
    assert ratio == pytest.approx(float(np.median(per_az)))
    assert np.array_equal(big.times_s, ref.times_s)
    assert np.allclose(big.prices_usd_per_hour, ref.prices_usd_per_hour * ratio)


def test_without_type_ratio_every_type_replays_the_named_series(scenario_file: Any) -> None:
    data = _right_sizing()
    del data["pricing"]["spot_prices"]["type_ratio"]
    world = runner.prepare_run(str(scenario_file(data)), policy="on-demand", days=1).world
    index = {p.name: i for i, p in enumerate(world.pools)}
    ref = world.prices[(index["spot/c5a.2xlarge"], "us-east-1d")]
    big = world.prices[(index["spot/c5a.8xlarge"], "us-east-1d")]
    assert np.array_equal(big.prices_usd_per_hour, ref.prices_usd_per_hour)


def _pool(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "spot",
        "capacity_type": "spot",
        "azs": ["us-east-1c"],
        "min_nodes": 0,
        "max_nodes": 10,
    }
    return {**base, **kw}


@pytest.mark.parametrize(
    "pool",
    [
        _pool(),
        _pool(instance_type="c5a.2xlarge", instance_types=["c5a.4xlarge"]),
        _pool(instance_type="c5a.2xlarge", requirements={"families": ["c5a"]}),
        _pool(instance_types=["c5a.2xlarge", "c5a.2xlarge"]),
        _pool(requirements={"families": ["c5a"], "min_vcpus": 16, "max_vcpus": 8}),
        _pool(requirements={"families": ["c5a"], "colour": "red"}),
    ],
)
def test_a_pool_gives_exactly_one_valid_type_choice(pool: dict[str, Any]) -> None:
    data = _right_sizing()
    data["cluster"]["pools"][1] = pool
    with pytest.raises(ValidationError):
        Scenario.model_validate(data)


def test_type_ratio_needs_the_replayed_type() -> None:
    data = _right_sizing()
    del data["pricing"]["spot_prices"]["instance_type"]
    with pytest.raises(ValidationError, match="type_ratio"):
        Scenario.model_validate(data)


@pytest.mark.parametrize(
    ("pool", "field", "problem"),
    [
        (
            {"instance_types": ["c5a.2xlarge", "a1.medium"]},
            "cluster.pools[1].instance_types",
            "fits no pod",
        ),
        (
            {"instance_types": ["c5a.2xlarge", "c9z.huge"]},
            "cluster.pools[1].instance_types",
            "c9z.huge",
        ),
        ({"requirements": {"families": ["zz9"]}}, "cluster.pools[1].requirements", "zz9"),
        (
            {"requirements": {"families": ["c5a"], "max_vcpus": 4}},
            "cluster.pools[1].requirements",
            "fits a pod",
        ),
    ],
)
def test_types_no_pod_can_use_are_one_line_naming_the_field(
    scenario_file: Any, pool: dict[str, Any], field: str, problem: str
) -> None:
    data = _right_sizing()
    spot = data["cluster"]["pools"][1]
    for key in ("requirements", "instance_types", "instance_type"):
        spot.pop(key, None)
    spot.update(pool)
    path = scenario_file(data)
    with pytest.raises(InputError) as err:
        runner.prepare_run(str(path), policy="on-demand", days=0.1)
    assert err.value.field == field and problem in err.value.problem
    assert "\n" not in str(err.value)


def test_a_type_without_price_history_is_named(scenario_file: Any) -> None:
    data = _right_sizing()
    data["cluster"]["pools"][1]["requirements"] = {"families": ["m7a"]}  # no spot rows
    with pytest.raises(InputError) as err:
        runner.prepare_run(str(scenario_file(data)), policy="on-demand", days=0.1)
    assert err.value.field == "pricing.spot_prices.type_ratio"
    assert "m7a.xlarge" in err.value.problem


def test_max_nodes_over_every_type_stay_within_a_cluster(scenario_file: Any) -> None:
    data = _right_sizing()
    for pool in data["cluster"]["pools"]:
        pool["max_nodes"] = 400  # 7 types x 2 pools x 400 = 5,600 nodes
    with pytest.raises(InputError) as err:
        runner.prepare_run(str(scenario_file(data)), policy="on-demand", days=0.1)
    assert err.value.field == "cluster.pools" and "5600" in err.value.problem


def test_the_shipped_scenario_validates() -> None:
    scenario = load_scenario_file(SCENARIOS / "right-sizing.yaml")
    assert scenario.cluster.pools[1].requirements is not None
