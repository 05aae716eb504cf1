"""Anomaly detector speed benchmark (pytest-benchmark): ``make bench``.

Targets over the NAB dev split (112,092 points) on the 2-core machine: >= 100,000 points/s
and a per-point p99 <= 0.1 ms for every detector. A value-reading reference loop is timed
in the same run; compare ratios across machines. See :mod:`bench.anomaly_speed`.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from agents.registry import DETECTORS
from bench.anomaly_speed import Stream, dev_streams, latency_us, reference_rate, throughput

TARGET_POINTS_PER_S = 100_000.0
TARGET_P99_US = 100.0


@pytest.fixture(scope="module")
def streams() -> list[Stream]:
    return dev_streams()


@pytest.mark.benchmark(group="anomaly")
@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_throughput_over_dev_split(
    benchmark: BenchmarkFixture, streams: list[Stream], name: str
) -> None:
    rates: list[float] = []
    benchmark.pedantic(lambda: rates.append(throughput(name, streams)), rounds=3)  # type: ignore[no-untyped-call]
    rate = max(rates)
    ref = max(reference_rate(streams) for _ in range(3))
    benchmark.extra_info["points_per_s"] = rate
    benchmark.extra_info["ratio_to_reference"] = ref / rate
    print(
        f"\n{name}: {rate:,.0f} points/s; value-reading loop {ref:,.0f}/s; ratio {ref / rate:.1f}"
    )
    assert rate >= TARGET_POINTS_PER_S


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_per_point_p99(streams: list[Stream], name: str) -> None:
    lat = latency_us(name, streams)
    print(
        f"\n{name}: p50 {lat['p50_us']:.2f} us, p99 {lat['p99_us']:.2f} us, "
        f"max {lat['max_us']:.0f} us"
    )
    assert lat["p99_us"] <= TARGET_P99_US
