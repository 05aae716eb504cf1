"""Fixtures of the live-mode tests."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from agents.security.analyser import SecurityAnalyser
from bench.security_data import TrainingSpec, simulate_accounts


@pytest.fixture(scope="session")
def small_analyser() -> SecurityAnalyser:
    """A small security analyser (one simulated account, half a day), trained once."""
    records, labels = simulate_accounts(
        TrainingSpec(seed=3, accounts=1, days=0.5, campaigns_per_account=3)
    )
    with threadpool_limits(1):
        return SecurityAnalyser(max_iter=5, calibration_folds=2).fit(
            records, [label.label for label in labels]
        )
