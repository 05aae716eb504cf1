"""A small analyser trained once per test session on two simulated accounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.security.analyser import SecurityAnalyser
from bench import security_model
from bench.security_data import TrainingSpec, simulate_accounts

SMALL_SPEC = TrainingSpec(seed=3, accounts=3, days=1.0, campaigns_per_account=4)
SMALL_PARAMS: dict[str, Any] = {"max_iter": 30}


@pytest.fixture(scope="session")
def small_data() -> tuple[list[dict[str, Any]], list[str]]:
    records, labels = simulate_accounts(SMALL_SPEC)
    return records, [lab.label for lab in labels]


@pytest.fixture(scope="session")
def small_model(small_data: tuple[list[dict[str, Any]], list[str]]) -> SecurityAnalyser:
    records, labels = small_data
    return SecurityAnalyser(**SMALL_PARAMS).fit(records, labels)


@pytest.fixture()
def small_shipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Make the CLI's 'shipped' model the small one, cached in a temporary folder."""
    directory = tmp_path_factory.getbasetemp() / "models"
    monkeypatch.setattr(security_model, "SHIPPED_SPEC", SMALL_SPEC)
    monkeypatch.setattr(security_model, "SHIPPED_PARAMS", SMALL_PARAMS)
    monkeypatch.setenv("OPSBENCH_MODEL_DIR", str(directory))
    yield directory
