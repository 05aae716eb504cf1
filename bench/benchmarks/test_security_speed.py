"""Security analyser speed (pytest-benchmark): ``make bench``.

Batch scoring of simulated CloudTrail records (parse, behaviour state, features,
anomaly model, classifiers, reasons) in events/s, and one event through the streaming
scorer (p99 latency). Targets: >= 50,000 events/s batch, p99 <= 1 ms per event. As a
reference measured in the same run, the time to ``json.loads`` the same records.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from agents.security.analyser import SecurityAnalyser
from bench.security_data import TrainingSpec, simulate_accounts
from bench.security_model import load_or_train

TARGET_EVENTS_PER_S = 50_000.0
TARGET_P99_MS = 1.0


@pytest.fixture(scope="module")
def model() -> SecurityAnalyser:
    return load_or_train()


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    recs, _ = simulate_accounts(TrainingSpec(seed=123, accounts=2, days=2.0))
    return recs


@pytest.mark.benchmark(group="security")
def test_batch_scoring(
    benchmark: BenchmarkFixture, model: SecurityAnalyser, records: list[dict[str, Any]]
) -> None:
    benchmark.pedantic(lambda: model.analyse(records), rounds=3, iterations=1)
    assert benchmark.stats is not None
    best = benchmark.stats.stats.min
    lines = [json.dumps(r) for r in records]
    started = time.perf_counter()
    for line in lines:
        json.loads(line)
    parse_s = time.perf_counter() - started
    rate = len(records) / best
    benchmark.extra_info["events_per_s"] = rate
    benchmark.extra_info["ratio_to_json_loads"] = best / parse_s
    print(
        f"\nbatch: {len(records):,} events in {best:.2f} s = {rate:,.0f} events/s; "
        f"json.loads of the same {parse_s:.2f} s (ratio {best / parse_s:.1f})"
    )
    assert rate >= TARGET_EVENTS_PER_S, f"{rate:,.0f} events/s < {TARGET_EVENTS_PER_S:,.0f}"


def test_one_event_latency(model: SecurityAnalyser, records: list[dict[str, Any]]) -> None:
    stream = model.stream()
    for rec in records[:2000]:  # warm state
        stream.score_one(rec)
    lat = []
    for rec in records[2000:7000]:
        started = time.perf_counter()
        stream.score_one(rec)
        lat.append(time.perf_counter() - started)
    p50, p99 = np.percentile(np.asarray(lat) * 1e3, [50, 99])
    print(f"\none event: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    assert p99 <= TARGET_P99_MS, f"p99 {p99:.3f} ms > {TARGET_P99_MS} ms"
