"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def small_analyser() -> Any:
    """A small security analyser (one simulated account, half a day), trained once per
    session (a second or so with one thread)."""
    from agents.security.analyser import SecurityAnalyser
    from bench.security_data import TrainingSpec, simulate_accounts

    records, labels = simulate_accounts(
        TrainingSpec(seed=3, accounts=1, days=0.5, campaigns_per_account=3)
    )
    with threadpool_limits(1):
        return SecurityAnalyser(max_iter=5, calibration_folds=2).fit(
            records, [label.label for label in labels]
        )


@pytest.fixture(scope="session")
def default_scaling_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model registry holding ``scaling-default`` (the predictive agent's model of the
    ``default`` scenario's history), trained once per session (about 10 s)."""
    from bench import runner

    models = tmp_path_factory.mktemp("scaling-models")
    prepared = runner.prepare_run("default", policy="predictive", days=0.05)
    runner.attach_model(prepared, models_dir=models, store=models / "store.duckdb")
    return models
