"""Short replays shared by the feature-store tests (session-scoped: each runs once)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench import runner

REPO = Path(__file__).resolve().parents[2]
DAYS = 0.1  # 144 minutes: every stream has rows, a replay takes well under a second


@pytest.fixture(scope="session")
def short_replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``replay spot-storm --days 0.1 --out DIR``."""
    out = tmp_path_factory.mktemp("short") / "run"
    runner.run(runner.prepare_run("spot-storm", days=DAYS), out=out)
    return out


@pytest.fixture(scope="session")
def dearer_spot_prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped spot price history with every price 25 % higher."""
    path = tmp_path_factory.mktemp("prices") / "spot_prices.csv"
    prices = pd.read_csv(REPO / "scenarios/data/spot/spot_price_history.csv", dtype=str)
    prices["spot_price"] = (prices["spot_price"].astype(float) * 1.25).map("{:.6f}".format)
    prices.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def other_replay(tmp_path_factory: pytest.TempPathFactory, dearer_spot_prices: Path) -> Path:
    """The same scenario, policy, seed and length as :func:`short_replay`, other spot
    prices: other telemetry."""
    out = tmp_path_factory.mktemp("other") / "run"
    runner.run(
        runner.prepare_run("spot-storm", days=DAYS, spot_prices=dearer_spot_prices), out=out
    )
    return out
