"""``opsbench train cost``, ``bench cost``, ``replay --spot-prices`` and ``cost-rl`` on
market data it has never seen; bad input is one line and exit code 2."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from opsbench_testing import run_main

SPOT = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "spot"
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
        (["bench", "cost", "--set", "nope"], ("--set", "'nope'", "avail-us-east-1")),
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


def test_train_cost_writes_a_hashed_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_main(
        capsys,
        ["train", "cost", "--scenario", "default", "--timesteps", "64",
         "--models", str(tmp_path), "--json"],
    )  # fmt: skip
    assert code == 0, err
    meta = json.loads(out)
    folder = tmp_path / "cost" / "default"
    assert Path(meta["folder"]) == folder
    digest = hashlib.sha256((folder / "model.zip").read_bytes()).hexdigest()
    assert meta["model_sha256"] == digest
    assert json.loads((folder / "metadata.json").read_text())["model_sha256"] == digest
    assert meta["timesteps"] == 64 and meta["n_spot"] == 3
    assert 0.9 < meta["replay"]["slo_attainment"] <= 1.0
