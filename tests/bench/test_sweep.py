"""``opsbench bench all``'s replay sweep: the serial, process and Ray executors give the same
rows (apart from wall time), a row is what ``opsbench replay`` gives for its run spec,
models are prepared once before the fan-out, and bad options write nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bench import runner, sweep
from bench.executors import RayUnavailable, executor
from bench.ray_head import ray_env
from bench.sweep_results import RESULT_FILES, SCHEMA
from opsbench_testing import assert_nothing_written, assert_one_line_error, run_main
from sim.errors import InputError

DAYS = 0.1
"""Simulated days per replay: the test sweeps are a few seconds of work."""
SPECS = sweep.plan_sweep(["default"], ["reactive", "static"], seeds=2, days=DAYS).specs


def sweep_rows(name: str, tmp: Path) -> list[dict[str, object]]:
    with executor(name, workers=2) as ex:  # type: ignore[arg-type]
        rows = sweep.run_sweep(SPECS, ex, models_dir=str(tmp / "models"), store=tmp / "s.duckdb")
    return [row.without_wall_time() for row in rows]


@pytest.fixture(scope="module")
def serial_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    return sweep_rows("serial", tmp_path_factory.mktemp("serial"))


def test_the_plan_is_scenario_x_policy_x_seed_from_the_scenario_seed() -> None:
    assert [(s.policy, s.seed) for s in SPECS] == [
        ("reactive", 42), ("reactive", 43), ("static", 42), ("static", 43),
    ]  # fmt: skip
    assert all(s.scenario == "default" and s.days == DAYS for s in SPECS)


def test_serial_rows_are_what_opsbench_replay_gives(
    serial_rows: list[dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = run_main(
        capsys, ["replay", "default", "--policy", "static", "--seed", "43", "--days", str(DAYS),
                 "--json"],
    )  # fmt: skip
    assert code == 0
    summary = json.loads(stdout)
    row = serial_rows[3]
    assert (row["policy"], row["seed"]) == ("static", 43)
    assert row["telemetry_sha256"] == summary["telemetry_sha256"]
    assert row["run_id"] == summary["run_id"]
    assert row["metrics"] == sweep.headline_metrics(summary)
    assert row["metrics"]["cost_usd"] == summary["cost_usd"]  # type: ignore[index]
    assert len({r["telemetry_sha256"] for r in serial_rows}) == len(SPECS)


def test_process_executor_gives_the_serial_rows(
    serial_rows: list[dict[str, object]], tmp_path: Path
) -> None:
    assert sweep_rows("process", tmp_path) == serial_rows


def listening_addresses() -> set[str]:
    """The addresses this process's descendants (a local Ray's GCS, raylet, workers)
    listen on."""
    psutil = pytest.importorskip("psutil")
    addresses = set()
    for child in psutil.Process().children(recursive=True):
        try:
            connections = child.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        addresses |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}
    return addresses


def test_ray_executor_gives_the_serial_rows(
    serial_rows: list[dict[str, object]], tmp_path: Path
) -> None:
    """A local Ray (2 CPUs, listening on 127.0.0.1 only) started by the executor and
    stopped after."""
    ray = pytest.importorskip("ray")
    try:
        with executor("ray", workers=2) as ex:
            rows = sweep.run_sweep(
                SPECS, ex, models_dir=str(tmp_path / "models"), store=tmp_path / "s.duckdb"
            )
            listening = listening_addresses()
    except RayUnavailable as exc:
        pytest.skip(f"Ray cannot start here: {exc}")
    assert [row.without_wall_time() for row in rows] == serial_rows
    assert listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening
    assert not ray.is_initialized()


@pytest.fixture
def ray_head() -> Iterator[str]:
    """A ``ray start --head`` cluster on 127.0.0.1 (:mod:`bench.ray_head`)."""
    pytest.importorskip("ray")
    from bench.ray_head import RayHeadUnavailable
    from bench.ray_head import ray_head as started_head

    try:
        with started_head(num_cpus=2) as address:
            yield address
    except RayHeadUnavailable as exc:
        pytest.skip(str(exc))


def test_bench_all_joins_a_running_cluster_and_leaves_it_running(
    serial_rows: list[dict[str, object]], tmp_path: Path, ray_head: str
) -> None:
    """``opsbench bench all --executor ray --address`` of a ``ray start --head`` cluster
    (run as a user runs it, in its own process): the serial executor's rows, the cluster
    listening on 127.0.0.1 only and still up after the sweep."""
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "bench", "all", "--executor", "ray", "--address",
         ray_head, "--scenario", "default", "--policy", "reactive", "--policy", "static",
         "--days", str(DAYS), "--seeds", "2", "--evaluations", "none", "--out", str(out),
         "--models", str(tmp_path / "models"), "--store", str(tmp_path / "s.duckdb"),
         "--json"],
        env=ray_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    listening = listening_addresses()
    assert done.returncode == 0, done.stderr[-2000:]
    runs = json.loads(done.stdout)["runs"]
    assert [{k: v for k, v in run.items() if k != "wall_s"} for run in runs] == [
        {k: v for k, v in row.items() if k != "series"} for row in serial_rows
    ]
    assert listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening
    host, _, port = ray_head.rpartition(":")
    socket.create_connection((host, int(port)), timeout=5).close()  # joined, not stopped


def test_models_are_prepared_once_before_the_fan_out(tmp_path: Path) -> None:
    """cost-rl's model is registered by prepare_models; the replays only read it (serial
    here: what a replay does to the registry does not depend on where it runs)."""
    from agents.lifecycle.open import open_registry

    models = tmp_path / "models"
    specs = sweep.plan_sweep(["default"], ["cost-rl"], seeds=2, days=DAYS).specs
    sweep.prepare_models(specs, models_dir=str(models), store=tmp_path / "s.duckdb")
    registry = open_registry(models)
    before = [v.ref for v in registry.versions()]
    assert len(before) == 1, before
    with executor("serial", workers=1) as ex:
        rows = sweep.run_sweep(specs, ex, models_dir=str(models), store=tmp_path / "s.duckdb")
    assert [v.ref for v in registry.versions()] == before
    assert {row.model_version for row in rows} == set(before)


def test_cost_policies_are_skipped_where_no_spot_pool_and_listed() -> None:
    plan = sweep.plan_sweep(["default", "nasa-diurnal"], ["reactive", "on-demand"], seeds=1,
                            days=DAYS)  # fmt: skip
    assert [(s.scenario, s.policy) for s in plan.specs] == [
        ("default", "reactive"), ("default", "on-demand"), ("nasa-diurnal", "reactive"),
    ]  # fmt: skip
    assert plan.skipped == (("nasa-diurnal", "on-demand", "no spot and on-demand pools"),)


def test_markets_are_measured_where_a_mix_policy_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.bench_all import market_of_scenarios
    from bench.cost import market_figures

    prepared: list[str] = []
    real_prepare = runner.prepare_run

    def spy(scenario: str, **kwargs: Any) -> Any:
        prepared.append(scenario)
        return real_prepare(scenario, **kwargs)

    monkeypatch.setattr(runner, "prepare_run", spy)

    # one day: default's spot traces offer no spot in its first hours
    specs = sweep.plan_sweep(
        ["default", "nasa-diurnal"], ["reactive", "on-demand"], seeds=2, days=1.0
    ).specs
    markets = market_of_scenarios(specs)
    assert list(markets) == ["default"]  # on-demand is skipped on nasa-diurnal
    assert prepared == ["default"]  # one world per scenario, not one per seed
    monkeypatch.undo()
    world = runner.prepare_run("default", policy="on-demand", seed=42, days=1.0).world
    expected = market_figures(world)
    assert markets["default"] == {
        k: expected[k] for k in ("spot_on_offer_share", "cheapest_spot_saving")
    }
    assert 0 < markets["default"]["spot_on_offer_share"] <= 1


def test_composed_pairs_with_a_mix_are_skipped_where_no_spot_pool() -> None:
    plan = sweep.plan_sweep(["default", "nasa-diurnal"], ["predictive+spot-greedy"], seeds=1,
                            days=DAYS)  # fmt: skip
    assert [(s.scenario, s.policy) for s in plan.specs] == [("default", "predictive+spot-greedy")]
    assert plan.skipped == (
        ("nasa-diurnal", "predictive+spot-greedy", "no spot and on-demand pools"),
    )


@pytest.mark.parametrize(
    ("scenarios", "policies", "needles"),
    [
        (["nasa-diurnal"], ["hindsight"], ("--policy", "'hindsight' applies to none")),
        (["default"], ["no-such-policy"], ("--policy", "unknown policy 'no-such-policy'")),
        (["regime-shift"], ["reactive"], ("regime-shift.yaml", "lifecycle", "bench lifecycle")),
    ],
)
def test_bad_plans_are_input_errors(
    scenarios: list[str], policies: list[str], needles: tuple[str, ...]
) -> None:
    with pytest.raises(InputError) as caught:
        sweep.plan_sweep(scenarios, policies, seeds=1, days=DAYS)
    assert all(needle in str(caught.value) for needle in needles), str(caught.value)


def test_bench_all_writes_the_four_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys,
        ["bench", "all", "--executor", "serial", "--scenario", "default", "--policy", "reactive",
         "--days", str(DAYS), "--seeds", "2", "--evaluations", "none", "--out", str(out),
         "--models", str(tmp_path / "models"), "--json"],
    )  # fmt: skip
    assert code == 0, stderr
    document = json.loads(stdout)
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_FILES)
    assert document == json.loads((out / "results.json").read_text())
    table = pq.read_table(out / "results.parquet")
    assert table.schema.remove_metadata() == SCHEMA
    runs = document["runs"]
    assert table.num_rows == sum(len(run["metrics"]) for run in runs)
    frame = table.to_pandas()
    assert set(frame.kind) == {"replay"} and frame.unit.isna().all()
    # the first seed's series only, ending at that run's bill
    (series,) = document["series"]
    assert (series["policy"], series["seed"]) == ("reactive", 42)
    assert series["cost_usd"][-1] == pytest.approx(runs[0]["metrics"]["cost_usd"], rel=1e-4)
    assert "series" not in runs[0]
    assert document["evaluations"] is None
    assert document["markets"] == {}  # no mix policy ran
    assert "<html" in (out / "report.html").read_text().lower()
    cost = frame[(frame.metric == "cost_usd") & (frame.seed == 43)]
    assert cost.value.tolist() == [runs[1]["metrics"]["cost_usd"]]
    assert set(frame.telemetry_sha256) == {run["telemetry_sha256"] for run in runs}
    assert document["git_commit"] in set(frame.git_commit)
    assert "| default | reactive | 2 | 0.1 |" in (out / "REPORT.md").read_text()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--executor", "process", "--address", "127.0.0.1:1"], ("--address", "--executor ray")),
        (["--executor", "ray", "--address", "127.0.0.1:1"], ("--address", "nothing answers")),
        (["--days", "0"], ("--days", "> 0")),
        (["--scenario", "no-such-scenario"], ("no-such-scenario",)),
        (["--policy", "hindsight", "--scenario", "nasa-diurnal"], ("--policy", "hindsight")),
        (["--seeds", "0"], ("--seeds",)),
        (["--executor", "dask"], ("--executor",)),
        (["--evaluations", "forecast,nope"], ("--evaluations", "hdfs")),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needles: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, ["bench", "all", "--quick", "--policy", "reactive", "--out", str(out), *args]
    )
    assert_one_line_error(code, stdout, stderr, *needles)
    assert_nothing_written(out)


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.write_text("mine\n")
    code, stdout, stderr = run_main(
        capsys, ["bench", "all", "--quick", "--policy", "reactive", "--out", str(out)]
    )
    assert_one_line_error(code, stdout, stderr, "--out", "not a directory")
    assert out.read_text() == "mine\n"


def test_ray_executor_without_ray_installed_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys,
        ["bench", "all", "--executor", "ray", "--scenario", "default", "--policy", "reactive",
         "--days", str(DAYS), "--seeds", "1", "--out", str(out)],
    )  # fmt: skip
    assert_one_line_error(code, stdout, stderr, "--executor", "ray is not installed")
    assert_nothing_written(out)
