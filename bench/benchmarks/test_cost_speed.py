"""Spot-fleet environment speed and ``cost-rl`` decision latency (pytest-benchmark):
``make bench``. See :mod:`bench.cost_speed`.

Targets (issue 5): the environment steps >= 20,000 times/s on one core (reported with
its ratio to CartPole-v1's raw step rate measured in the same run); a ``cost-rl``
decision p99 <= 1 ms. Issue 16: the vectorised environment steps its sub-environments
>= 100,000 times/s in one process at 256 sub-environments (reported beside
``CartPoleVectorEnv`` with as many and raw CartPole-v1, same run).
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.cost_speed import decision_latency, env_speed, vector_env_speed

TARGET_STEPS_PER_S = 20_000.0
TARGET_VECTOR_STEPS_PER_S = 100_000.0
TARGET_VECTOR_ENVS = 256
TARGET_P99_US = 1000.0


@pytest.mark.benchmark(group="cost")
def test_env_steps_per_second(benchmark: BenchmarkFixture) -> None:
    result = benchmark.pedantic(env_speed, rounds=1, iterations=1)  # type: ignore[no-untyped-call]
    benchmark.extra_info.update(result)
    print(
        f"\nSpotFleet-v0 {result['spotfleet_steps_per_s']:,.0f} steps/s, CartPole-v1 "
        f"{result['cartpole_steps_per_s']:,.0f} steps/s (ratio {result['ratio_to_cartpole']})"
    )
    assert result["spotfleet_steps_per_s"] >= TARGET_STEPS_PER_S


@pytest.mark.benchmark(group="cost")
def test_vector_env_steps_per_second(benchmark: BenchmarkFixture) -> None:
    result = benchmark.pedantic(  # type: ignore[no-untyped-call]
        vector_env_speed, args=(TARGET_VECTOR_ENVS,), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    print(
        f"\nSpotFleet-v0 x {TARGET_VECTOR_ENVS} {result['spotfleet_vector_steps_per_s']:,.0f} "
        f"steps/s, CartPoleVectorEnv {result['cartpole_vector_steps_per_s']:,.0f} "
        f"(ratio {result['ratio_to_cartpole_vector']}), CartPole-v1 "
        f"{result['cartpole_steps_per_s']:,.0f} (ratio {result['ratio_to_cartpole']})"
    )
    assert result["spotfleet_vector_steps_per_s"] >= TARGET_VECTOR_STEPS_PER_S


@pytest.mark.benchmark(group="cost")
def test_cost_rl_decision_p99(benchmark: BenchmarkFixture) -> None:
    result = benchmark.pedantic(  # type: ignore[no-untyped-call]
        decision_latency, rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    print(f"\ncost-rl decision: p50 {result['p50_us']:.0f} us, p99 {result['p99_us']:.0f} us")
    assert result["p99_us"] <= TARGET_P99_US
