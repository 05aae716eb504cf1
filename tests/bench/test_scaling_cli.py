"""``replay --trace`` on a never-seen trace (the 70/30 split, same for every policy),
``train scaling`` and ``bench scaling`` end to end, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelRef
import yaml
from opsbench_testing import run_main

REPO = Path(__file__).resolve().parents[2]


def write_unseen_trace(path: Path, days: int = 4, step_min: int = 5) -> Path:
    """A trace no scenario ships: weekday-shaped load at ``step_min`` minutes, one gap."""
    n = days * 1440 // step_min
    t = np.arange(n) * step_min
    rng = np.random.default_rng(11)
    value = 300 + 200 * np.sin(2 * np.pi * (t / 1440 - 0.3)) + rng.normal(0, 15, n)
    rows = []
    for i in range(n):
        stamp = np.datetime64("2021-03-01T00:00") + np.timedelta64(int(t[i]), "m")
        cell = "" if i == n // 3 else f"{max(0.0, value[i]):.1f}"
        rows.append(f"{stamp!s}:00,{cell}")
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (REPO / "scenarios/data/traces").glob("*.csv"))
)
def test_each_shipped_trace_splits_into_a_replay_that_fits_it(name: str) -> None:
    """The held-back part's length in days, turned back into minutes, is the part itself
    (12,101 minutes of the Google trace once became 12,102 by float noise and was refused
    as running past the trace's end)."""
    from bench.runner import prepare_run, trace_split

    trace = REPO / "scenarios/data/traces" / name
    start, days = trace_split(trace)
    world = prepare_run("default", policy="reactive", trace=trace).world
    assert world.n_minutes == round(days * 1440)
    assert world.workload.start == start


def test_every_policy_replays_the_same_evaluation_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trace = write_unseen_trace(tmp_path / "unseen.csv")
    summaries = {}
    for policy in ("reactive", "predictive"):
        code, out, err = run_main(
            capsys, ["replay", "default", "--trace", str(trace), "--policy", policy, "--json"]
        )
        assert code == 0, err
        summaries[policy] = json.loads(out)
    # 4 days at 5 min = 1152 steps; the first floor(0.7 * 1152) = 806 are history
    assert summaries["reactive"]["start"] == "2021-03-03T19:10:00"
    for summary in summaries.values():
        assert summary["start"] == summaries["reactive"]["start"]
        assert summary["sim_days"] == summaries["reactive"]["sim_days"]
        assert summary["sim_days"] == pytest.approx((1152 - 806) * 5 / 1440)
    assert summaries["predictive"]["slo_attainment"] > 0.9
    (version,) = open_registry(tmp_path / ".opsbench" / "models").versions()
    assert version.ref == "scaling-default-unseen/1"  # trained once, on the history part only
    assert summaries["predictive"]["model_version"] == version.ref
    assert version.card.data_end is not None
    assert version.card.data_end <= summaries["reactive"]["start"]


def test_train_scaling_writes_a_model_and_prints_its_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trace = write_unseen_trace(tmp_path / "unseen.csv")
    code, out, err = run_main(
        capsys,
        ["train", "scaling", "--scenario", "default", "--trace", str(trace), "--json"],
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["agent"] == "scaling" and record["ref"] == "scaling-default-unseen/1"
    registry = open_registry(tmp_path / ".opsbench" / "models")
    version = registry.resolve(ModelRef.parse("scaling-default-unseen@champion"))
    assert version.card.params["forecaster"] == "gbm-quantile"
    assert 0 < version.card.metrics["val_mase"] < 2
    folder = registry.fetch(version, tmp_path / "fetched")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["model_version"] == record["model_version"] and meta["kind"] == "scaling"
    assert (folder / "model.skops").is_file()


def test_train_scaling_unknown_model_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(
        capsys, ["train", "scaling", "--scenario", "default", "--model", "prophet"]
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--model" in err and "gbm-quantile" in err
    assert not (tmp_path / ".opsbench").exists()


def test_predictive_without_history_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window at the trace's very start leaves nothing to train on."""
    monkeypatch.chdir(tmp_path)
    scenario = yaml.safe_load((REPO / "scenarios" / "nasa-diurnal.yaml").read_text())
    scenario["workload"]["start"] = "1995-07-01T00:00:00"
    scenario["workload"]["path"] = str(REPO / "scenarios" / scenario["workload"]["path"])
    scenario["pricing"]["catalogue"] = str(REPO / "scenarios" / scenario["pricing"]["catalogue"])
    path = tmp_path / "fresh.yaml"
    path.write_text(yaml.safe_dump(scenario))
    code, out, err = run_main(
        capsys, ["replay", str(path), "--policy", "predictive", "--days", "0.1"]
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "workload.start" in err and "--trace" in err


def test_bench_scaling_reports_every_policy_and_the_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scenario = yaml.safe_load((REPO / "scenarios" / "nasa-diurnal.yaml").read_text())
    scenario["id"] = "nasa-short"
    scenario["duration_days"] = 1.5
    scenario["workload"]["start"] = "1995-07-04T00:00:00"  # three days of history
    scenario["workload"]["path"] = str(REPO / "scenarios" / scenario["workload"]["path"])
    scenario["pricing"]["catalogue"] = str(REPO / "scenarios" / scenario["pricing"]["catalogue"])
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(scenario))
    code, out, err = run_main(capsys, ["bench", "scaling", "--scenario", str(path), "--json"])
    assert code == 0, err
    (result,) = json.loads(out)["scenarios"]
    assert set(result["policies"]) == {"static", "reactive", "predictive", "oracle"}
    forecast = result["forecast"]
    assert forecast["n_points"] > 300 and 0 < forecast["mase"] < 2
    assert set(result["targets"]) == {"slo", "waste", "cost_vs_oracle", "mase"}
    reactive = result["policies"]["reactive"]
    assert result["targets"]["slo"]["limit"] == pytest.approx(
        0.2 * reactive["slo_violation_minutes"], abs=0.05
    )


@pytest.mark.parametrize("models", ["F", "F/inside"])
def test_train_scaling_models_that_is_a_file_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, models: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "F").write_text("")
    code, out, err = run_main(
        capsys, ["train", "scaling", "--scenario", "nasa-diurnal", "--models", models]
    )
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    expected = "opsbench: error: --registry/--models: F is an existing"
    assert len(lines) == 1 and lines[0].startswith(expected)
    assert [p.name for p in tmp_path.iterdir()] == ["F"]
