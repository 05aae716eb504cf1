"""``opsbench train cost``, ``bench cost``, ``replay --spot-prices`` and ``cost-rl`` on
market data it has never seen; bad input is one line and exit code 2."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path

from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelCard, ModelRef, folder_digest

import numpy as np
import pytest

from opsbench_testing import run_main

SPOT = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "spot"
SHIPPED = Path(__file__).resolve().parents[2] / "agents" / "cost" / "shipped"
SHORT = ["--days", "0.05"]


@pytest.fixture(autouse=True)
def _shipped_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSBENCH_SCENARIOS", raising=False)


def one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsbench: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["replay", "default", "--spot-prices", "missing.csv", *SHORT], ("--spot-prices",)),
        (
            ["replay", "nasa-diurnal", "--spot-prices", str(SPOT / "spot_price_history.csv")],
            ("--spot-prices", "no spot pool"),
        ),
        (["replay", "nasa-diurnal", "--policy", "cost-rl", *SHORT], ("cluster.pools", "spot")),
        (["train", "cost", "--scenario", "nasa-diurnal"], ("cluster.pools", "on-demand")),
        (["train", "cost", "--scenario", "default", "--timesteps", "-1"], ("--timesteps",)),
        (
            ["train", "cost", "--scenario", "default", "--vector-envs", "3"],
            ("--vector-envs", "does not divide"),
        ),
        (["bench", "cost", "--set", "nope"], ("--set", "'nope'", "avail-us-east-1")),
        (["bench", "sizing-cv", "--days", "0"], ("--days",)),
        (["bench", "sizing-cv", "--workers", "0"], ("--workers",)),
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needles: tuple[str, ...]
) -> None:
    one_line_error(*run_main(capsys, args), *needles)


def test_malformed_spot_prices_name_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text(
        "timestamp,region,az,az_id,instance_type,product_description,spot_price,source\n"
        "2023-11-11T18:17:00Z,us-east-1,us-east-1c,,c5a.2xlarge,Linux/UNIX,cheap,x\n"
    )
    out = tmp_path / "run"
    code, stdout, stderr = run_main(
        capsys, ["replay", "default", "--spot-prices", str(bad), "--out", str(out), *SHORT]
    )
    one_line_error(code, stdout, stderr, "prices.csv", "line 2", "spot_price")
    assert not out.exists()


def _unseen_market(tmp_path: Path) -> tuple[Path, Path]:
    """Availability traces and prices the project never shipped: a seeded random
    on/off trace per AZ (2-minute ticks) and the price history at 1.3x."""
    rng = np.random.default_rng(7)
    traces = tmp_path / "traces"
    traces.mkdir()
    for az in ("us-east-1c", "us-east-1d", "us-east-1f"):
        up = (rng.random(1000) < 0.7).astype(int)
        (traces / f"{az}_unseen.json").write_text(
            json.dumps({"metadata": {"gap_seconds": 120}, "data": up.tolist()})
        )
    prices = tmp_path / "prices.csv"
    with (SPOT / "spot_price_history.csv").open() as src, prices.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            row["spot_price"] = f"{float(row['spot_price']) * 1.3:.6f}"
            writer.writerow(row)
    return traces, prices


def test_cost_rl_replays_on_market_data_it_never_saw(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    traces, prices = _unseen_market(tmp_path)
    base = ["replay", "default", "--policy", "cost-rl", "--days", "0.25", "--json"]
    code, out, err = run_main(capsys, base)
    assert code == 0, err
    shipped = json.loads(out)
    code, out, err = run_main(capsys, [*base, "--spot-availability", str(traces)])
    assert code == 0, err
    unseen = json.loads(out)
    code, out, err = run_main(
        capsys, [*base, "--spot-availability", str(traces), "--spot-prices", str(prices)]
    )
    assert code == 0, err
    dearer = json.loads(out)
    assert unseen["policy"] == "cost-rl" and unseen["slo_attainment"] > 0.99
    assert unseen["telemetry_sha256"] != shipped["telemetry_sha256"]
    assert dearer["spot_cost_usd"] > unseen["spot_cost_usd"]  # 1.3x the prices, same fleet mix


def test_train_cost_writes_a_hashed_model_its_logs_and_tensorboard_events(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    board = tmp_path / "tb"
    code, out, err = run_main(
        capsys,
        ["train", "cost", "--scenario", "default", "--timesteps", "8192",
         "--models", str(tmp_path), "--tensorboard", str(board), "--json"],
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert record["ref"] == "cost-rl-default/1" and record["aliases"] == ["champion"]
    registry = open_registry(tmp_path)
    version = registry.resolve(ModelRef.parse("cost-rl-default"))
    folder = registry.fetch(version, tmp_path / "fetched")
    digest = hashlib.sha256((folder / "model.zip").read_bytes()).hexdigest()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["model_sha256"] == digest and record["model_version"] == digest[:12]
    assert meta["timesteps"] == 8192 and meta["n_spot"] == 3
    assert version.card.params["timesteps"] == 8192
    assert 0.9 < record["replay"]["slo_attainment"] <= 1.0
    assert version.card.metrics["replay_slo_attainment"] == record["replay"]["slo_attainment"]
    # two rollouts: no evaluation during training, so the final policy is the one evaluated
    assert meta["selected"] == "final" and meta["eval_at_timesteps"] == 8192
    logs = folder / "training"
    for name, episodes in [*((f"train-{i}", 1) for i in range(4)), ("eval", 4)]:
        # Monitor: a header, the column names, a row (return, length, time) per episode
        rows = (logs / f"{name}.monitor.csv").read_text().splitlines()
        assert rows[1] == "r,l,t" and [r.split(",")[1] for r in rows[2:]] == ["1440"] * episodes
    evaluations = np.load(logs / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [8192]
    assert evaluations["results"].mean() == pytest.approx(meta["eval_mean_reward"], abs=1e-3)
    assert version.card.metrics["eval_mean_reward"] == meta["eval_mean_reward"]
    events = list(board.rglob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].parent.name == "cost-rl-default_1"
    assert [p.name for p in tmp_path.rglob("*partial*")] == []


@pytest.mark.parametrize("steps", ["0", "4095", "20000001"])
def test_train_cost_timesteps_are_at_least_one_rollout_and_bounded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, steps: str
) -> None:
    models = tmp_path / "models"
    args = ["train", "cost", "--scenario", "default", "--timesteps", steps, "--models", str(models)]
    one_line_error(*run_main(capsys, args), "--timesteps", "4096<=x<=20000000")
    assert not models.exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--vector-envs", "32"], "--vector-envs"), (["--candidates", "2"], "--candidates")],
)
def test_train_cost_under_predictive_sizing_is_one_candidate_on_the_scalar_env(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], needle: str
) -> None:
    models = tmp_path / "models"
    args = ["train", "cost", "--scenario", "default", "--sizing", "predictive", *extra,
            "--models", str(models)]  # fmt: skip
    one_line_error(*run_main(capsys, args), needle, "with --sizing predictive")
    assert not models.exists()


def test_a_never_updated_model_is_refused_not_preferred(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model saved by an older ``train cost --timesteps 0`` is an error naming it, not
    a replay with an untrained network."""
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "old-model"
    shutil.copytree(SHIPPED, own)
    meta = json.loads((own / "metadata.json").read_text())
    (own / "metadata.json").write_text(json.dumps({**meta, "timesteps": 0}))
    registry = open_registry(tmp_path / ".opsbench" / "models")
    card = ModelCard(agent="cost-rl", artefact_sha256=folder_digest(own))
    registry.promote("cost-rl-default", registry.register("cost-rl-default", own, card).version)
    code, out, err = run_main(capsys, ["replay", "default", "--policy", "cost-rl", *SHORT])
    one_line_error(code, out, err, "cost-rl-default/1: metadata.json", "timesteps", "never updated")


def test_train_cost_models_or_tensorboard_that_is_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "F").write_text("")
    base = ["train", "cost", "--scenario", "default", "--timesteps", "4096"]
    one_line_error(*run_main(capsys, [*base, "--models", "F"]), "--models", "F is an existing file")
    args = [*base, "--models", "m", "--tensorboard", "F"]
    one_line_error(*run_main(capsys, args), "--tensorboard", "F is an existing file")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    args = [*base, "--models", "m", "--tensorboard", "tb"]
    one_line_error(*run_main(capsys, args), "--tensorboard", "tensorboard package")
    assert [p.name for p in tmp_path.iterdir()] == ["F"]  # nothing written
