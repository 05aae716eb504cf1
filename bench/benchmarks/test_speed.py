"""Simulator speed benchmark (pytest-benchmark): ``make bench``.

A 30-day replay of the ``large-fleet`` scenario (about 200 nodes, on-demand and spot,
60 s control steps, every telemetry row built, hashed and batched) against a fixed
raw SimPy loop (one process yielding 1,000,000 timeouts) timed in the same run. The
targets are ≤ 5 s wall and ≤ 1 GiB peak RSS on a 2-core machine; because machines
are shared and noisy, the ratio to the raw loop is what to compare across runs.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.speed import measure_in_subprocess, raw_simpy_loop_s, replay_once

TARGET_WALL_S = 5.0
TARGET_RSS_MIB = 1024.0


@pytest.mark.benchmark(group="simulator")
def test_raw_simpy_reference(benchmark: BenchmarkFixture) -> None:
    benchmark.pedantic(raw_simpy_loop_s, rounds=3, iterations=1)


@pytest.mark.benchmark(group="simulator")
def test_replay_30_days_200_nodes(benchmark: BenchmarkFixture) -> None:
    summary = benchmark.pedantic(replay_once, rounds=3, iterations=1)
    reference = min(raw_simpy_loop_s() for _ in range(3))
    assert benchmark.stats is not None
    replay_s = benchmark.stats.stats.min
    benchmark.extra_info["ratio_to_raw_simpy"] = replay_s / reference
    benchmark.extra_info["node_hours"] = summary["node_hours"]
    print(
        f"\nreplay {replay_s:.2f} s (min of 3), raw SimPy 1M events {reference:.2f} s, "
        f"ratio {replay_s / reference:.2f}"
    )
    assert replay_s <= TARGET_WALL_S, f"replay took {replay_s:.2f} s > {TARGET_WALL_S} s"


def test_replay_peak_memory() -> None:
    result = measure_in_subprocess()
    print(f"\npeak RSS {result['peak_rss_mib']:.0f} MiB, wall {result['wall_s']:.2f} s")
    assert result["peak_rss_mib"] <= TARGET_RSS_MIB
