"""Serving speed benchmark (pytest-benchmark): ``make bench``.

Per agent, 10,000 single-record requests over loopback HTTP (one keep-alive client),
beside the in-process ``predict`` latency of the same run, and the throughput of 4
concurrent keep-alive clients (:mod:`bench.serving_speed`). Targets on the 2-core
machine: p99 <= 5 ms for scaling, cost-rl and anomaly, <= 10 ms for one security event.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from agents.cost.model import SHIPPED_DIR
from agents.cost.model import load_model as load_cost_model
from agents.registry import DEFAULT_DETECTOR, make_detector
from agents.scaling.training import load_or_train, plan_window_min
from agents.security.analyser import SecurityAnalyser
from agents.serving.anomaly import AnomalyPredictor
from agents.serving.cost import CostPredictor
from agents.serving.protocol import Predictor
from agents.serving.scaling import ScalingPredictor
from agents.serving.security import SecurityPredictor
from bench.security_data import TrainingSpec, simulate_accounts
from bench.serving_speed import measure

TARGET_P99_MS = {"scaling": 5.0, "cost-rl": 5.0, "anomaly": 5.0, "security": 10.0}
REQUESTS = 10_000
CLIENTS = 4


def scaling() -> Predictor:
    """gbm-quantile (the default forecaster) on 3 days of a daily cycle."""
    base = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    n = 3 * 1440
    t = np.arange(n)
    load = 1000 + 500 * np.sin(2 * np.pi * t / 1440) + np.random.default_rng(0).normal(0, 20, n)
    model, _, _ = load_or_train(
        load, np.zeros(n, dtype=bool), datetime(2024, 1, 8), models_dir=base,
        store_path=base / "store.duckdb", name="bench", source="synthetic",
        forecaster="gbm-quantile", plan_window=plan_window_min(135.0, 300.0),
    )  # fmt: skip
    return ScalingPredictor(model)


def cost() -> Predictor:
    return CostPredictor(load_cost_model(SHIPPED_DIR, roots=(SHIPPED_DIR.resolve().parent,)))


def anomaly() -> Predictor:
    factory = partial(make_detector, DEFAULT_DETECTOR)
    return AnomalyPredictor(factory, threshold=0.9, model_version=DEFAULT_DETECTOR)


def security() -> Predictor:
    """Default hyper-parameters (100 trees per model) on 4 simulated accounts for a day."""
    records, labels = simulate_accounts(TrainingSpec(accounts=4, days=1.0))
    analyser = SecurityAnalyser().fit(records, [lab.label for lab in labels])
    return SecurityPredictor(analyser, model_version="bench")


BUILDERS: dict[str, Callable[[], Predictor]] = {
    "scaling": scaling, "cost-rl": cost, "anomaly": anomaly, "security": security,
}  # fmt: skip


@pytest.mark.benchmark(group="serving")
@pytest.mark.parametrize("agent", list(BUILDERS))
def test_serving_latency_and_throughput(benchmark: BenchmarkFixture, agent: str) -> None:
    predictor = BUILDERS[agent]()
    results = []
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda: results.append(measure(predictor, n=REQUESTS, clients=CLIENTS)), rounds=1
    )
    result = results[0]
    benchmark.extra_info.update(result)
    print(
        f"\n{agent}: HTTP p50 {result['http_p50_ms']:.2f} ms, p99 {result['http_p99_ms']:.2f} ms; "
        f"in-process p50 {result['inproc_p50_ms'] * 1e3:.0f} us, "
        f"p99 {result['inproc_p99_ms'] * 1e3:.0f} us (HTTP/in-process p50 "
        f"{result['http_over_inproc_p50']:.0f}x); {CLIENTS} clients "
        f"{result['throughput_rps']:,.0f} requests/s"
    )
    assert result["errors"] == 0
    assert result["http_p99_ms"] <= TARGET_P99_MS[agent]
