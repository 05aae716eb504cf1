"""Golden summaries of the shipped scenarios, and the oracle as the limit.

Set ``OPSBENCH_REGEN_GOLDEN=1`` to rewrite the golden files after a deliberate change
(and say why in the commit).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from bench import runner
from sim.scenario_files import list_scenarios

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SHIPPED = [sid for sid, _ in list_scenarios()]
_cache: dict[tuple[str, str], dict[str, Any]] = {}


def summary(scenario: str, policy: str) -> dict[str, Any]:
    key = (scenario, policy)
    if key not in _cache:
        _cache[key] = runner.run(runner.prepare_run(scenario, policy=policy))
    return _cache[key]


def test_every_required_scenario_ships() -> None:
    required = {
        "default",
        "nasa-diurnal",
        "worldcup-flash-crowd",
        "google-steady",
        "elb-spiky",
        "az-outage",
        "spot-storm",
    }
    assert required <= set(SHIPPED)


WALL_KEYS = frozenset({"wall_s", "version", "champion", "challenger"})
"""Keys of the lifecycle block that vary between identical runs (wall times, registry
version numbers: the registry's numbering is local)."""


def _without_wall(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_wall(v) for k, v in value.items() if k not in WALL_KEYS}
    if isinstance(value, list):
        return [_without_wall(v) for v in value]
    return value


@pytest.mark.parametrize("scenario", SHIPPED)
def test_golden_summary(scenario: str) -> None:
    # wall time varies; the run id digests the code of the security model too (stable
    # within a checkout: tests/bench/test_run_identity.py), so it is not pinned here
    got = {k: v for k, v in summary(scenario, "reactive").items() if k not in ("wall_s", "run_id")}
    if "lifecycle" in got:
        got["lifecycle"] = _without_wall(got["lifecycle"])
    path = GOLDEN / f"{scenario}.reactive.json"
    if os.environ.get("OPSBENCH_REGEN_GOLDEN"):
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    want = json.loads(path.read_text())
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, float):
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), key
        else:
            assert got[key] == value, key


@pytest.mark.parametrize("scenario", SHIPPED)
def test_oracle_is_the_limit(scenario: str) -> None:
    reactive, oracle = summary(scenario, "reactive"), summary(scenario, "oracle")
    assert oracle["slo_attainment"] >= reactive["slo_attainment"]
    assert oracle["wasted_node_hours"] <= reactive["wasted_node_hours"]


@pytest.mark.parametrize("scenario", ["default", "nasa-diurnal"])
def test_static_fleet_meets_the_slo_at_a_high_price(scenario: str) -> None:
    static, reactive = summary(scenario, "static"), summary(scenario, "reactive")
    assert static["slo_attainment"] >= reactive["slo_attainment"]
    assert static["cost_usd"] > reactive["cost_usd"]
