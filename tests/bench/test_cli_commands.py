"""The ``opsbench`` commands on good input: scenarios list|show|schema, policies, replay."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from opsbench_testing import run_main

from sim.scenario import Scenario
from sim.scenario_files import load_scenario_file

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
SHIPPED_IDS = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
SUMMARY_KEYS = {
    "scenario",
    "policy",
    "seed",
    "sim_days",
    "cost_usd",
    "on_demand_cost_usd",
    "spot_cost_usd",
    "node_hours",
    "wasted_node_hours",
    "slo_attainment",
    "slo_violation_minutes",
    "p95_latency_ms",
    "dropped_requests",
    "interruptions",
    "telemetry_sha256",
    "wall_s",
}
STREAMS = ("metrics", "capacity", "events", "billing", "audit")


@pytest.fixture(autouse=True)
def _shipped_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSBENCH_SCENARIOS", raising=False)


def run_console_script(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed ``opsbench`` script (falls back to ``python -m bench.cli``)."""
    script = Path(sys.executable).with_name("opsbench")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bench.cli"]
    full_env = {k: v for k, v in os.environ.items() if k != "OPSBENCH_SCENARIOS"} | env
    return subprocess.run(
        [*command, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )


# --------------------------------------------------------------------------- scenarios / policies


def test_scenarios_list_shows_every_shipped_id(tmp_path: Path) -> None:
    """Through the console script, piped (rich falls back to 80 columns): no id is cut."""
    done = run_console_script(["scenarios", "list"], cwd=tmp_path, COLUMNS="80")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(SHIPPED_IDS) >= 2
    for sid in SHIPPED_IDS:
        assert f" {sid} " in done.stdout, sid


def test_scenarios_show_default_revalidates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, ["scenarios", "show", "default"])
    assert (code, err) == (0, "")
    first, rest = out.split("\n", 1)
    assert first.startswith("# ") and first.endswith("default.yaml")
    shown = Scenario.model_validate(yaml.safe_load(rest))
    assert shown == load_scenario_file(SCENARIOS / "default.yaml")


def test_scenarios_show_a_file_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, ["scenarios", "show", str(SCENARIOS / "spot-storm.yaml")])
    assert code == 0
    assert Scenario.model_validate(yaml.safe_load(out.split("\n", 1)[1])).id == "spot-storm"


def test_scenarios_schema_is_json_with_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, ["scenarios", "schema"])
    assert (code, err) == (0, "")
    schema = json.loads(out)
    assert {"cluster", "workload", "slo", "pricing", "control", "faults"} <= set(
        schema["properties"]
    )
    assert {"id", "duration_days", "cluster", "workload", "slo", "pricing"} <= set(
        schema["required"]
    )


def test_policies_lists_the_baselines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, ["policies"])
    assert (code, err) == (0, "")
    for name in ("static", "reactive", "oracle"):
        assert f" {name} " in out, name


# --------------------------------------------------------------------------- replay


def test_replay_json_prints_one_object(tmp_path: Path) -> None:
    done = run_console_script(["replay", "default", "--days", "0.1", "--json"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    summary = json.loads(lines[0])
    assert isinstance(summary, dict)
    assert SUMMARY_KEYS <= set(summary)
    assert summary["scenario"] == "default"
    assert summary["policy"] == "reactive"  # the scenario's own
    assert summary["seed"] == 42
    assert summary["sim_days"] == pytest.approx(0.1)
    assert summary["cost_usd"] == pytest.approx(
        summary["on_demand_cost_usd"] + summary["spot_cost_usd"], abs=1e-5
    )
    assert 0.0 <= summary["slo_attainment"] <= 1.0
    assert len(summary["telemetry_sha256"]) == 64
    assert list(tmp_path.iterdir()) == []  # nothing written without --out


def test_replay_options_reach_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(
        capsys,
        ["replay", "default", "--days", "0.05", "--policy", "static", "--seed", "7", "--json"],
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["policy"], summary["seed"]) == ("static", 7)
    assert summary["sim_days"] == pytest.approx(0.05)


def test_replay_out_writes_telemetry_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs" / "first"  # parents are created
    code, stdout, err = run_main(
        capsys, ["replay", "default", "--days", "0.1", "--out", str(out), "--json"]
    )
    assert code == 0, err
    printed = json.loads(stdout)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [*(f"{s}.parquet" for s in STREAMS), "summary.json", "run_context.json", "overview.png"]
    )
    for stream in STREAMS:
        table = pq.read_table(out / f"{stream}.parquet")
        assert table.num_rows == printed["telemetry_rows"][stream], stream
    written = json.loads((out / "summary.json").read_text())
    written.pop("wall_s")
    printed.pop("wall_s")
    assert written == printed
    assert list(out.parent.glob(".first.partial-*")) == []


def test_replay_out_table_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, stdout, err = run_main(capsys, ["replay", "default", "--days", "0.05", "--out", str(out)])
    assert code == 0, err
    assert "cost $" in stdout and "SLO attainment" in stdout
    assert "written to" in stdout
    assert (out / "summary.json").is_file()


def test_replay_same_seed_same_telemetry(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["replay", "default", "--days", "0.05", "--json"]
    hashes = []
    for _ in range(2):
        code, out, err = run_main(capsys, args)
        assert code == 0, err
        hashes.append(json.loads(out)["telemetry_sha256"])
    assert hashes[0] == hashes[1]


def test_trace_with_empty_cells_is_gap_filled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Empty cells are real gaps: filled by the documented rule, not an error. With
    ``--trace`` the replay is the trace's last 30% (working steps of 5 min)."""
    rows = []
    for m in range(600):
        value = "" if m in (3, 4, 500, 501, 540, 541, 542) else str(200 + (m * 37) % 90)
        rows.append(f"2024-01-01T{m // 60:02d}:{m % 60:02d}:00,{value}")
    trace = tmp_path / "gappy.csv"
    trace.write_text("timestamp,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run_main(capsys, ["replay", "default", "--trace", str(trace), "--json"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["workload_filled_minutes"] == 5  # the two early gaps are history
    assert summary["start"] == "2024-01-01T07:00:00"  # bucket 84 of 120
    assert summary["sim_days"] == pytest.approx(180 / 1440)
    assert summary["cost_usd"] > 0


def test_trace_relative_to_the_working_directory(tmp_path: Path) -> None:
    """``--trace`` is relative to the cwd (the real CLI, in tmp_path); a gap replays fine."""
    shutil.copy(SCENARIOS / "data" / "traces" / "nasa_http_1995_requests_per_min.csv", tmp_path)
    lines = (tmp_path / "nasa_http_1995_requests_per_min.csv").read_text().splitlines()
    lines[190] = lines[190].split(",")[0] + ","  # one empty cell, in the replayed 30%
    (tmp_path / "load.csv").write_text("\n".join(lines[:200]) + "\n")
    done = run_console_script(
        ["replay", "default", "--days", "0.04", "--trace", "load.csv", "--json"], cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["workload_filled_minutes"] == 1
