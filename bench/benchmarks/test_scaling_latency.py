"""Decision latency (pytest-benchmark): ``make bench``.

Target: one recommendation of the predictive policy (features in, record out) p99 <= 1 ms
in process. The same measurement with the seed's random forest (``seed-rf``) is
reported for comparison (the seed's table claims 45 ms). See :mod:`bench.scaling_latency`.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.scaling_latency import recommendation_latency

TARGET_P99_US = 1000.0


@pytest.mark.benchmark(group="scaling")
def test_recommendation_latency_p99(benchmark: BenchmarkFixture) -> None:
    result = benchmark.pedantic(  # type: ignore[no-untyped-call]
        recommendation_latency, rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    p50, p99 = result["p50_us"], result["p99_us"]
    print(f"\nrecommendation (gbm-quantile): p50 {p50:.0f} us, p99 {p99:.0f} us")
    assert result["p99_us"] <= TARGET_P99_US


@pytest.mark.benchmark(group="scaling")
def test_seed_rf_recommendation_latency(benchmark: BenchmarkFixture) -> None:
    result = benchmark.pedantic(  # type: ignore[no-untyped-call]
        recommendation_latency,
        kwargs={"forecaster": "seed-rf", "calls": 200},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(result)
    print(
        f"\nrecommendation (seed-rf): p50 {result['p50_us']:.0f} us, p99 {result['p99_us']:.0f} us"
    )
