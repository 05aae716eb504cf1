"""CLI conventions: help on stdout with exit 0 for a bare command or group, ``-h``,
``--version``, and ``--json`` on every listing."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from opsbench_testing import run_main

from agents.registry import POLICIES
from bench.cli import cli
from sim.scenario_files import list_scenarios

GROUPS = sorted(name for name, command in cli.commands.items() if hasattr(command, "commands"))


def test_bare_opsbench_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, [])
    assert (code, err) == (0, "")
    assert out.startswith("Usage: opsbench")
    for name in cli.commands:
        assert name in out


@pytest.mark.parametrize("group", GROUPS)
def test_bare_group_prints_its_help_and_exits_0(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, [group])
    assert (code, err) == (0, "")
    assert out.startswith(f"Usage: opsbench {group}")
    for name in cli.commands[group].commands:  # type: ignore[attr-defined]
        assert name in out


@pytest.mark.parametrize(
    "args", [["-h"], ["--help"], ["replay", "-h"], ["features", "build", "-h"]]
)
def test_short_and_long_help(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, args)
    assert (code, err) == (0, "")
    assert out.startswith("Usage: opsbench")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, ["--version"])
    assert (code, err) == (0, "")
    assert out.strip() == f"opsbench, version {version('opsbench')}"


def test_scenarios_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, ["scenarios", "list", "--json"])
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [sid for sid, _ in list_scenarios()]
    default = next(r for r in rows if r["id"] == "default")
    assert default["days"] == 7 and {p["capacity_type"] for p in default["pools"]} == {
        "on-demand",
        "spot",
    }


def test_policies_json_lists_every_registered_policy_with_its_needs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(capsys, ["policies", "--json"])
    assert (code, err) == (0, "")
    rows = {r["name"]: r for r in json.loads(out)}
    assert list(rows) == list(POLICIES.ids())
    assert rows["oracle"]["needs"] == {"foresight": True, "model": None}
    assert rows["predictive"]["needs"] == {"foresight": False, "model": "scaling"}
    assert rows["cost-rl"]["needs"] == {"foresight": False, "model": "cost"}
    reactive = {p["name"]: p for p in rows["reactive"]["parameters"]}
    assert reactive["tolerance"]["default"] == 0.1


def test_features_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    from features.views import VIEWS

    code, out, err = run_main(capsys, ["features", "list", "--json"])
    assert (code, err) == (0, "")
    views = {v["name"]: v for v in json.loads(out)}
    assert set(views) == set(VIEWS)
    for name, view in VIEWS.items():
        assert [f["name"] for f in views[name]["features"]] == list(view.feature_names)
        assert views[name]["ttl_s"] == view.ttl.total_seconds()


def test_a_usage_error_is_one_line_naming_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, ["replay"])
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "Missing argument 'SCENARIO'" in err and "opsbench replay --help" in err
