"""The fluid traffic model's latency through the edge of keeping up (rho = 1)."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.latency import LatencyModel
from sim.traffic import ServiceModel


@cache
def latency() -> LatencyModel:
    """One calibrated model (calibration takes a moment)."""
    return LatencyModel(workers_per_pod=2, rps_per_vcpu=50, p95_target_ms=200, base_latency_ms=20)


def service(queue_limit_per_pod: int = 200) -> ServiceModel:
    return ServiceModel(
        latency(), queue_limit_per_pod=queue_limit_per_pod, request_timeout_ms=30_000.0
    )


def test_a_minute_just_over_capacity_is_not_faster_than_one_just_under() -> None:
    model = service()
    pods = 10.0
    capacity_rps = pods * model.pod_rate_rps
    under = model.step(capacity_rps * 0.9999, pods, backlog=0.0)
    over = model.step(capacity_rps * 1.0001, pods, backlog=0.0)
    assert over.p95_ms >= under.p95_ms
    # and the step through rho = 1 is small: continuous, not a jump down to service time
    assert over.p95_ms - under.p95_ms < 0.05 * under.p95_ms


@settings(max_examples=60, deadline=None)
@given(
    pods=st.floats(1.0, 50.0),
    queue_limit=st.integers(1, 500),
    backlog_share=st.floats(0.0, 2.0),
)
def test_p95_is_non_decreasing_in_the_offered_load(
    pods: float, queue_limit: int, backlog_share: float
) -> None:
    model = service(queue_limit)
    capacity_rps = pods * model.pod_rate_rps
    backlog = backlog_share * queue_limit * pods * 0.5
    rhos = np.concatenate([np.linspace(0.5, 0.999, 40), np.linspace(0.999, 1.01, 60), [1.5, 3.0]])
    p95 = [model.step(float(r) * capacity_rps, pods, backlog).p95_ms for r in rhos]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(p95))
