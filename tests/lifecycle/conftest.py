"""Fixtures of the lifecycle tests: a small security training spec and its analyser."""

from __future__ import annotations

from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from bench.security_data import TrainingSpec

SMALL_PARAMS: dict[str, Any] = {"max_iter": 5, "calibration_folds": 2}


@pytest.fixture(scope="session")
def small_spec() -> TrainingSpec:
    """One account, half a day: an analyser trains in about a second."""
    return TrainingSpec(seed=3, accounts=1, days=0.5, campaigns_per_account=3)


@pytest.fixture(scope="session")
def small_params() -> dict[str, Any]:
    return dict(SMALL_PARAMS)


@pytest.fixture(scope="session")
def small_analyser(small_spec: TrainingSpec, small_params: dict[str, Any]) -> Any:
    from bench.security_model import train

    with threadpool_limits(1):
        return train(small_spec, small_params)
