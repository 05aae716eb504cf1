"""Tiny models of every agent, their predictors, and a real server per test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.cost.model import SHIPPED_DIR, CostModel
from agents.cost.model import load_model as load_cost_model
from agents.registry import make_detector
from agents.scaling.model import ScalingModel
from agents.scaling.training import load_or_train, plan_window_min
from agents.security.analyser import SecurityAnalyser
from agents.serving.anomaly import AnomalyPredictor
from agents.serving.cost import CostPredictor
from agents.serving.protocol import Predictor
from serving.helpers import Serve, serving
from agents.serving.scaling import ScalingPredictor
from agents.serving.security import SecurityPredictor
from bench.security_data import TrainingSpec, simulate_accounts

TINY_SECURITY = TrainingSpec(seed=3, accounts=2, days=0.25, campaigns_per_account=3)


def daily_load(n_minutes: int) -> np.ndarray:
    """Requests/s per minute: a daily cycle with a little noise."""
    t = np.arange(n_minutes)
    noise = np.random.default_rng(0).normal(0, 20, n_minutes)
    return 1000 + 500 * np.sin(2 * np.pi * t / 1440) + noise


@pytest.fixture(scope="session")
def scaling_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScalingModel, Path]:
    """A seasonal-naive scaling model on 3 days of load (about 0.2 s), and its folder."""
    base = tmp_path_factory.mktemp("scaling")
    history = daily_load(3 * 1440)
    model, folder, _ = load_or_train(
        history,
        np.zeros(history.size, dtype=bool),
        datetime(2024, 1, 8),
        models_dir=base,
        store_path=base / "store.duckdb",
        name="serving-test",
        source="synthetic test load",
        forecaster="seasonal-naive-1d",
        plan_window=plan_window_min(135.0, 300.0),
    )
    return model, folder


@pytest.fixture(scope="session")
def cost_model() -> CostModel:
    return load_cost_model(SHIPPED_DIR, roots=(SHIPPED_DIR.resolve().parent,))


@pytest.fixture(scope="session")
def security_data() -> tuple[list[dict[str, Any]], list[str]]:
    records, labels = simulate_accounts(TINY_SECURITY)
    return records, [lab.label for lab in labels]


@pytest.fixture(scope="session")
def security_model(security_data: tuple[list[dict[str, Any]], list[str]]) -> SecurityAnalyser:
    records, labels = security_data
    return SecurityAnalyser(max_iter=10, calibration_folds=2).fit(records, labels)


@pytest.fixture()
def make_predictor(
    scaling_model: tuple[ScalingModel, Path],
    cost_model: CostModel,
    security_model: SecurityAnalyser,
) -> Callable[[str], Predictor]:
    """A fresh predictor of an agent (stateful ones start empty)."""

    def make(agent: str) -> Predictor:
        if agent == "scaling":
            return ScalingPredictor(scaling_model[0])
        if agent == "cost-rl":
            return CostPredictor(cost_model)
        if agent == "anomaly":
            factory = partial(make_detector, "novelty-ensemble")
            return AnomalyPredictor(factory, threshold=0.9, model_version="novelty-0.9")
        return SecurityPredictor(security_model, model_version="tiny-security")

    return make


@pytest.fixture()
def serve() -> Serve:
    """``with serve(predictor, max_body_bytes=...) as client`` (see :func:`serving`)."""
    return serving
