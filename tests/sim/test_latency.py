"""The M/M/k latency model and its calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.latency import LatencyModel, erlang_c, sojourn_quantile_s
import itertools


def test_mm1_p95_matches_closed_form() -> None:
    # In M/M/1 the response time is exponential with rate mu - lambda.
    mu, rho = 10.0, 0.6
    p95 = float(sojourn_quantile_s(0.95, 1, mu, np.array([rho]))[0])
    assert p95 == pytest.approx(math.log(20) / (mu - rho * mu), rel=1e-6)


def test_erlang_c_known_value() -> None:
    # 2 servers, 1 Erlang offered: C = 1/3
    assert float(erlang_c(2, np.array([1.0]))[0]) == pytest.approx(1 / 3, rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(workers=st.integers(1, 8), rps=st.floats(5, 500), target=st.floats(60, 2000))
def test_calibration_puts_p95_at_the_target(workers: int, rps: float, target: float) -> None:
    model = LatencyModel(
        workers_per_pod=workers, rps_per_vcpu=rps, p95_target_ms=target, base_latency_ms=20
    )
    rho = rps / model.service_rate_rps
    assert model.p95_ms(rho) == pytest.approx(target, rel=2e-3)


def test_latency_grows_with_load() -> None:
    model = LatencyModel(workers_per_pod=2, rps_per_vcpu=50, p95_target_ms=200, base_latency_ms=20)
    values = [model.p95_ms(r) for r in np.linspace(0, 0.99, 50)]
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert values[0] >= 20
