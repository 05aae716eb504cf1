"""Sweep speed (pytest-benchmark): ``make bench``. See :mod:`bench.sweep_speed`.

Target (issue 18): a sweep of 100 one-day replays with ``--executor ray`` >= 1.8x faster
than the serial executor on 2 cores (Ray's start and stop included), identical results.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.sweep_speed import sweep_speed

TARGET_RATIO = 1.8


@pytest.mark.benchmark(group="sweep")
def test_ray_sweep_vs_serial(benchmark: BenchmarkFixture) -> None:
    pytest.importorskip("ray")
    result = benchmark.pedantic(sweep_speed, rounds=1, iterations=1)  # type: ignore[no-untyped-call]
    benchmark.extra_info.update(result)
    print(
        f"\n{result['replays']} one-day replays: serial {result['serial_s']:.1f} s, ray "
        f"{result['ray_s']:.1f} s with start and stop ({result['ray_replays_only_s']:.1f} s "
        f"replays only) on {result['workers']} workers: x{result['ratio']} "
        f"(x{result['ratio_replays_only']} replays only; Ray's start and stop "
        f"{result['ray_start_and_stop_s']:.1f} s); process pool {result['process_s']:.1f} s "
        f"(x{result['process_ratio']})"
    )
    assert result["identical_rows"]
    assert result["ratio"] >= TARGET_RATIO
