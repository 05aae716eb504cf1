"""Bad input to the ``opsbench`` CLI: one line on stderr, exit code 2, nothing written.

The contract: every error a user can cause (malformed YAML, unknown keys, wrong types,
out-of-range or inverted bounds, missing or malformed trace files, unknown policy or
scenario id, bad options) prints exactly one line ``opsbench: error: ...`` on stderr
naming the file, the field path and what is allowed, exits with code 2, prints no
traceback and leaves nothing behind in ``--out`` (no folder, no hidden
``.NAME.partial-*`` sibling).

A handful of cases run the real CLI in a subprocess; the rest call
``bench.cli.main`` in-process (same code path, much faster).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsbench_testing import (
    assert_nothing_written,
    assert_one_line_error,
    run_main,
    shipped_doc,
)


REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
SHIPPED_IDS = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
POLICY_LIST = (
    "cost-rl, hindsight, on-demand, oracle, predictive, price-capacity, reactive, "
    "spot-greedy, static, uniform-progress"
)
SHORT = ("--days", "0.05")  # about an hour: any run that does start stays short
H = "timestamp,value\n"


@pytest.fixture(autouse=True)
def _shipped_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve scenario ids against the shipped folder, whatever the caller's env says."""
    monkeypatch.delenv("OPSBENCH_SCENARIOS", raising=False)


# --------------------------------------------------------------------------- helpers


def write_scenario(
    directory: Path,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    *,
    text: str | None = None,
    name: str = "bad.yaml",
) -> Path:
    """A scenario file in ``directory``: raw ``text``, or ``default.yaml`` changed by ``mutate``."""
    if text is None:
        data = shipped_doc("default")
        if mutate is not None:
            mutate(data)
        text = yaml.safe_dump(data, sort_keys=False)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def write_trace(directory: Path, text: str, name: str = "trace.csv") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def minutes(n: int, *, start_hour: int = 0, empty: tuple[int, ...] = ()) -> str:
    """``n`` one-minute rows from 2024-01-01, with empty value cells at ``empty``."""
    rows = []
    for m in range(n):
        total = start_hour * 60 + m
        value = "" if m in empty else str(100 + (m * 37) % 50)
        rows.append(f"2024-01-01T{total // 60:02d}:{total % 60:02d}:00,{value}\n")
    return "".join(rows)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (``python -m bench.cli``), shipped scenarios."""
    env = {k: v for k, v in os.environ.items() if k != "OPSBENCH_SCENARIOS"}
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def setp(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def delp(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def both(*mutations: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        for m in mutations:
            m(data)

    return mutate


# --------------------------------------------------------------------------- bad scenario files

# (id, mutation of default.yaml or raw YAML text, substrings the error line must contain)
BAD_SCENARIOS: list[tuple[str, Callable[[dict[str, Any]], None] | str, tuple[str, ...]]] = [
    ("malformed-yaml", "id: x\ncluster: [1, 2\n", ("line 3", "malformed YAML")),
    ("yaml-tab", "id: x\n\tcluster: 1\n", ("line 2", "malformed YAML")),
    ("top-level-list", "- a\n- b\n", ("(top level)", "YAML mapping")),
    ("empty-file", "", ("(top level)", "YAML mapping")),
    (
        "unknown-top-key",
        setp(("colour",), "red"),
        ("colour", "unknown key", "duration_days, cluster, workload"),
    ),
    (
        "unknown-pool-key",
        setp(("cluster", "pools", 0, "min_node"), 3),
        ("cluster.pools[0].min_node", "unknown key", "min_nodes, max_nodes"),
    ),
    (
        "unknown-workload-key",
        setp(("workload", "peak"), 3),
        ("workload.peak", "unknown key", "peak_rps"),
    ),
    (
        "unknown-spot-prices-key",
        setp(("pricing", "spot_prices", "offset"), 3),
        ("pricing.spot_prices.offset", "offset_h"),
    ),
    (
        "wrong-type-peak",
        setp(("workload", "peak_rps"), "lots"),
        ("workload.peak_rps", "valid number", "'lots'"),
    ),
    (
        "wrong-type-min-nodes",
        setp(("cluster", "pools", 0, "min_nodes"), "three"),
        ("cluster.pools[0].min_nodes", "valid integer", "'three'"),
    ),
    ("wrong-type-pools", setp(("cluster", "pools"), "x"), ("cluster.pools", "valid list")),
    (
        "negative-min-nodes",
        setp(("cluster", "pools", 0, "min_nodes"), -1),
        ("cluster.pools[0].min_nodes", "greater than or equal to 0", "-1"),
    ),
    ("negative-peak", setp(("workload", "peak_rps"), -5), ("workload.peak_rps", "greater than 0")),
    (
        "inverted-node-bounds",
        setp(("cluster", "pools", 1, "min_nodes"), 100),
        ("cluster.pools[1]", "min_nodes(=100)", "max_nodes(=60)"),
    ),
    (
        "inverted-delay",
        setp(("control", "provisioning_delay"), {"kind": "uniform", "low_s": 10, "high_s": 5}),
        ("control.provisioning_delay", "low_s", "high_s"),
    ),
    (
        "unknown-workload-kind",
        setp(("workload", "kind"), "magic"),
        ("workload", "'magic'", "'trace', 'synthetic'"),
    ),
    ("missing-slo", delp(("slo",)), ("slo", "required field is missing")),
    ("bad-id", setp(("id",), "Bad Name"), ("id", "pattern")),
    (
        "unknown-policy",
        setp(("control", "policy"), "nope"),
        ("control.policy", "'nope'", POLICY_LIST),
    ),
    (
        "unknown-policy-param",
        setp(("control", "params"), {"foo": 1}),
        ("control.params.foo", "parameters of reactive"),
    ),
    (
        "infinite-peak",
        setp(("workload", "peak_rps"), float("inf")),
        ("workload.peak_rps", "finite"),
    ),
    ("nan-peak", setp(("workload", "peak_rps"), float("nan")), ("workload.peak_rps",)),
    (
        "infinite-rps-per-vcpu",
        setp(("cluster", "rps_per_vcpu"), float("inf")),
        ("cluster.rps_per_vcpu", "finite"),
    ),
    ("duration-too-long", setp(("duration_days",), 1000), ("duration_days", "366")),
    ("interval-too-long", setp(("control", "interval_s"), 1e6), ("control.interval_s", "3600")),
    (
        "slo-below-base-latency",
        setp(("slo", "p95_latency_ms"), 5),
        ("slo.p95_latency_ms", "base_latency_ms"),
    ),
    (
        "unknown-instance-type",
        setp(("cluster", "pools", 0, "instance_type"), "zz.huge"),
        ("cluster.pools[0].instance_type", "zz.huge", "allowed: a1.2xlarge"),
    ),
    (
        "outage-in-unknown-az",
        setp(("faults", "az_outages"), [{"az": "zz-1a", "start_h": 1, "duration_h": 1}]),
        ("faults.az_outages[0].az", "us-east-1c"),
    ),
    ("spot-pool-without-prices", delp(("pricing", "spot_prices")), ("pricing.spot_prices",)),
    (
        "missing-spot-price-file",
        setp(("pricing", "spot_prices", "path"), "no-prices.csv"),
        ("no-prices.csv", "pricing.spot_prices.path", "not found"),
    ),
    (
        "unknown-region",
        setp(("cluster", "region"), "mars-1"),
        ("on_demand_prices.csv", "region", "us-east-1"),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "needles"), [pytest.param(m, n, id=i) for i, m, n in BAD_SCENARIOS]
)
def test_bad_scenario_file_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutate: Callable[[dict[str, Any]], None] | str,
    needles: tuple[str, ...],
) -> None:
    if isinstance(mutate, str):
        scenario = write_scenario(tmp_path, text=mutate)
    else:
        scenario = write_scenario(tmp_path, mutate)
    out = tmp_path / "out"
    code, stdout, stderr = run_main(capsys, ["replay", str(scenario), *SHORT, "--out", str(out)])
    line = assert_one_line_error(code, stdout, stderr, *needles)
    if not any(n.endswith(".csv") for n in needles):  # errors in a data file name that file
        assert "bad.yaml" in line
    assert_nothing_written(out)


def test_missing_trace_file_named_by_the_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write_scenario(tmp_path, setp(("workload", "path"), "data/missing.csv"))
    out = tmp_path / "out"
    code, stdout, stderr = run_main(capsys, ["replay", str(scenario), *SHORT, "--out", str(out)])
    line = assert_one_line_error(code, stdout, stderr, "missing.csv", "path", "not found")
    assert str(tmp_path / "data" / "missing.csv") in line  # resolved against the scenario's folder
    assert_nothing_written(out)


def test_bad_trace_named_by_the_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path, H + minutes(3) + "2024-01-01T00:01:00,5\n", name="steps.csv")
    scenario = write_scenario(
        tmp_path,
        both(
            setp(("workload", "path"), trace.name),
            delp(("workload", "start")),
        ),
    )
    out = tmp_path / "out"
    code, stdout, stderr = run_main(capsys, ["replay", str(scenario), *SHORT, "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, "steps.csv", "line 5", "strictly increasing")
    assert_nothing_written(out)


def test_shipped_scenario_can_be_overridden_by_a_scenario_folder_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OPSBENCH_SCENARIOS`` changes what ids mean; a bad scenario there is reported by file."""
    write_scenario(tmp_path, setp(("cluster", "pools", 0, "max_nodes"), 0), name="mine.yaml")
    monkeypatch.setenv("OPSBENCH_SCENARIOS", str(tmp_path))
    code, stdout, stderr = run_main(capsys, ["replay", "mine", *SHORT])
    assert_one_line_error(code, stdout, stderr, "mine.yaml", "cluster.pools[0].max_nodes")


# --------------------------------------------------------------------------- bad --trace files

# (id, file text or None for "no such file", substrings the error line must contain)
BAD_TRACES: list[tuple[str, str | None, tuple[str, ...]]] = [
    ("missing-file", None, ("--trace", "no such file", "timestamp,value")),
    (
        "non-monotonic",
        H + "2024-01-01T00:00:00,1\n2024-01-01T00:02:00,2\n2024-01-01T00:01:00,3\n",
        ("line 4", "before the previous timestamp", "strictly increasing"),
    ),
    (
        "duplicate-timestamp",
        H + "2024-01-01T00:00:00,1\n2024-01-01T00:00:00,2\n2024-01-01T00:01:00,3\n",
        ("line 3", "duplicates", "strictly increasing"),
    ),
    (
        "nan-value",
        H + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,NaN\n2024-01-01T00:02:00,3\n",
        ("line 3", "'NaN'", "finite number >= 0"),
    ),
    (
        "inf-value",
        H + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,inf\n2024-01-01T00:02:00,3\n",
        ("line 3", "'inf'", "finite number >= 0"),
    ),
    (
        "negative-value",
        H + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,-4\n",
        ("line 3", "'-4'", "finite number >= 0"),
    ),
    (
        "text-value",
        H + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,lots\n",
        ("line 3", "'lots'", "finite number >= 0"),
    ),
    (
        "bad-timestamp",
        H + "2024-01-01T00:00:00,1\nyesterday,2\n",
        ("line 3", "'yesterday'", "ISO 8601"),
    ),
    ("no-rows", H, ("rows", "no data rows", "at least 2 data rows")),
    ("one-row", H + "2024-01-01T00:00:00,1\n", ("rows", "only 1 data row")),
    ("empty-file", "", ("header", "empty", "timestamp,value")),
    (
        "wrong-columns",
        "time,count\n2024-01-01T00:00:00,1\n2024-01-01T00:01:00,2\n",
        ("header", "'time,count'", "timestamp,value"),
    ),
    (
        "three-columns",
        "timestamp,value,x\n2024-01-01T00:00:00,1,2\n2024-01-01T00:01:00,2,3\n",
        ("header", "timestamp,value"),
    ),
    (
        "extra-field",
        H + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,2,5\n",
        ("line 3", "expected 2 fields but found 3"),
    ),
    (
        "every-cell-empty",
        H + "2024-01-01T00:00:00,\n2024-01-01T00:01:00,\n",
        ("value", "every value cell is empty"),
    ),
    ("too-short-for-days", H + minutes(10), ("duration_days", "trace ends at", "at most")),
]


@pytest.mark.parametrize(("text", "needles"), [pytest.param(t, n, id=i) for i, t, n in BAD_TRACES])
def test_bad_trace_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, needles: tuple[str, ...]
) -> None:
    trace = tmp_path / "load.csv"
    if text is not None:
        write_trace(tmp_path, text, name=trace.name)
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, ["replay", "default", *SHORT, "--trace", str(trace), "--out", str(out)]
    )
    assert_one_line_error(code, stdout, stderr, "load.csv", *needles)
    assert_nothing_written(out)


def test_trace_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "traces.csv"
    folder.mkdir()
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, ["replay", "default", *SHORT, "--trace", str(folder), "--out", str(out)]
    )
    assert_one_line_error(code, stdout, stderr, "traces.csv", "path", "directory")
    assert_nothing_written(out)


# --------------------------------------------------------------------------- bad options / ids


@pytest.mark.parametrize("days", ["-1", "0", "-0.0", "nan", "inf", "400"])
def test_days_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str], days: str) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, ["replay", "default", "--days", days, "--out", str(out)]
    )
    assert_one_line_error(code, stdout, stderr, "--days", "a number > 0")
    assert_nothing_written(out)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        pytest.param(["--seed", "-1"], ("--seed", "-1", "x>=0"), id="negative-seed"),
        pytest.param(["--seed", "abc"], ("--seed", "'abc'"), id="text-seed"),
        pytest.param(["--days", "soon"], ("--days", "'soon'"), id="text-days"),
        pytest.param(["--colour", "red"], ("--colour",), id="unknown-option"),
        pytest.param(["--policy"], ("--policy", "requires an argument"), id="option-without-value"),
    ],
)
def test_click_usage_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needles: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_main(capsys, ["replay", "default", *SHORT, "--out", str(out), *args])
    assert_one_line_error(code, stdout, stderr, *needles)
    assert_nothing_written(out)


def test_replay_without_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr = run_main(capsys, ["replay"])
    assert_one_line_error(code, stdout, stderr, "SCENARIO")


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr = run_main(capsys, ["replai", "default"])
    assert_one_line_error(code, stdout, stderr, "replai")


def test_unknown_policy_lists_the_allowed_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, ["replay", "default", *SHORT, "--policy", "nope", "--out", str(out)]
    )
    assert_one_line_error(code, stdout, stderr, "--policy", "'nope'", f"allowed: {POLICY_LIST}")
    assert_nothing_written(out)


@pytest.mark.parametrize("command", [["replay"], ["scenarios", "show"], ["demo", "--scenario"]])
def test_unknown_scenario_id_lists_the_shipped_ids(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code, stdout, stderr = run_main(capsys, [*command, "no-such-scenario"])
    line = assert_one_line_error(code, stdout, stderr, "scenario id", "no-such-scenario")
    assert f"allowed: {', '.join(SHIPPED_IDS)}" in line


def test_demo_report_that_is_a_file_is_refused_before_any_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import runner

    def no_replay(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a replay ran before --report was checked")

    monkeypatch.setattr(runner, "prepare_run", no_replay)
    report = tmp_path / "report"
    report.write_text("keep me\n")
    code, stdout, stderr = run_main(capsys, ["demo", "--report", str(report)])
    assert_one_line_error(code, stdout, stderr, "report", "--report", "not a directory")
    assert report.read_text() == "keep me\n"


def test_missing_scenario_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.yaml"
    code, stdout, stderr = run_main(capsys, ["replay", str(missing), *SHORT])
    assert_one_line_error(code, stdout, stderr, "nowhere.yaml", "path", "no such scenario file")


def test_out_is_an_existing_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    out.write_text("keep me\n")
    code, stdout, stderr = run_main(capsys, ["replay", "default", *SHORT, "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, "results", "--out", "not a directory")
    assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_out_below_a_regular_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("keep me\n")
    out = blocker / "run1"
    code, stdout, stderr = run_main(capsys, ["replay", "default", *SHORT, "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, "run1", "--out")
    assert blocker.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_missing_spot_availability(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys,
        [
            "replay",
            "default",
            *SHORT,
            "--spot-availability",
            str(tmp_path / "none"),
            "--out",
            str(out),
        ],
    )
    assert_one_line_error(code, stdout, stderr, "--spot-availability", "does not exist")
    assert_nothing_written(out)


def test_an_empty_existing_out_dir_stays_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    scenario = write_scenario(tmp_path, setp(("cluster", "pools", 0, "min_nodes"), -1))
    code, stdout, stderr = run_main(capsys, ["replay", str(scenario), *SHORT, "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, "cluster.pools[0].min_nodes")
    assert list(out.iterdir()) == []
    assert list(tmp_path.glob(".out.partial-*")) == []


# --------------------------------------------------------------------------- the real CLI


def test_subprocess_bad_scenario_files(tmp_path: Path) -> None:
    """Malformed YAML and inverted bounds through the real entry point."""
    cases = [
        (
            write_scenario(tmp_path, text="id: x\ncluster: [1, 2\n", name="broken.yaml"),
            ("broken.yaml", "line 3", "malformed YAML"),
        ),
        (
            write_scenario(
                tmp_path, setp(("cluster", "pools", 0, "min_nodes"), 99), name="inv.yaml"
            ),
            ("inv.yaml", "cluster.pools[0]", "min_nodes(=99) must be <= max_nodes(=60)"),
        ),
        (
            write_scenario(tmp_path, setp(("workload", "peak_rps"), -3), name="neg.yaml"),
            ("neg.yaml", "workload.peak_rps", "greater than 0"),
        ),
    ]
    for scenario, needles in cases:
        done = run_cli(["replay", scenario.name, *SHORT, "--out", "out"], cwd=tmp_path)
        assert_one_line_error(done.returncode, done.stdout, done.stderr, *needles)
        assert done.stdout == ""
        assert_nothing_written(tmp_path / "out")


def test_subprocess_bad_trace_and_options(tmp_path: Path) -> None:
    write_trace(
        tmp_path,
        H + "2024-01-01T00:00:00,1\n2024-01-01T00:02:00,2\n2024-01-01T00:01:00,3\n",
        name="back.csv",
    )
    cases = [
        (["--trace", "back.csv"], ("back.csv", "line 4", "strictly increasing")),
        (["--trace", "absent.csv"], ("absent.csv", "--trace", "no such file")),
        (["--policy", "nope"], ("--policy", "'nope'", POLICY_LIST)),
        (["--seed", "-1"], ("--seed", "-1")),
    ]
    for extra, needles in cases:
        done = run_cli(["replay", "default", *SHORT, "--out", "out", *extra], cwd=tmp_path)
        assert_one_line_error(done.returncode, done.stdout, done.stderr, *needles)
        assert done.stdout == ""
        assert_nothing_written(tmp_path / "out")


def test_subprocess_unknown_scenario_id(tmp_path: Path) -> None:
    done = run_cli(["replay", "no-such-scenario", "--out", "out"], cwd=tmp_path)
    line = assert_one_line_error(done.returncode, done.stdout, done.stderr, "no-such-scenario")
    for sid in SHIPPED_IDS:
        assert sid in line
    assert_nothing_written(tmp_path / "out")
