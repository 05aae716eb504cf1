"""Request latency from a queueing model: each pod is an M/M/k queue.

A Kubernetes Service spreads requests over pods roughly at random, so we model every
pod as an independent M/M/k queue with ``k = pod_vcpu`` workers, each serving
``mu`` requests/s while busy. The response time of a request is its wait plus its
service time; its distribution in M/M/k is known in closed form:

    P(R > t) = (1 - C) e^{-mu t} + C * P(W' + S > t),

where ``C`` is Erlang's C (the probability of waiting), ``W' ~ Exp(k mu - lambda)``
and ``S ~ Exp(mu)``. Quantiles are found by bisection once, on a grid of
utilisations, and interpolated per tick (the per-tick cost is one ``np.interp``).

Calibration. The scenario states ``rps_per_vcpu``: the load one vCPU carries while
p95 stays exactly at the SLO target. We solve for the service rate ``mu`` that makes
this true, so "more load per vCPU than ``rps_per_vcpu``" means "SLO violated", and a
controller that plans for ``rps_per_vcpu`` at its target utilisation has headroom.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

_RHO_MAX = 1.0 - 1e-6
# Utilisation grid, dense where latency is steep (near saturation): 1 - rho log-spaced.
_GRID = np.concatenate([[0.0], 1.0 - np.geomspace(1.0 - 1e-4, 1.0 - _RHO_MAX, 4000)])


def erlang_c(workers: int, offered_erlangs: np.ndarray) -> np.ndarray:
    """Probability that an arrival waits in M/M/k (Erlang C), vectorised over load.

    Parameters
    ----------
    workers
        ``k``, the number of servers.
    offered_erlangs
        ``a = lambda / mu``; must be ``< workers``.
    """
    a = np.asarray(offered_erlangs, dtype=np.float64)
    blocking = np.ones_like(a)
    for n in range(1, workers + 1):  # Erlang B recursion, numerically stable
        blocking = a * blocking / (n + a * blocking)
    rho = a / workers
    return blocking / (1.0 - rho * (1.0 - blocking))


def _sojourn_tail(t: np.ndarray, mu: float, theta: np.ndarray, c: np.ndarray) -> np.ndarray:
    """P(R > t) for M/M/k, with ``theta = k mu - lambda`` and ``c`` = Erlang C."""
    no_wait = np.exp(-mu * t)
    close = np.abs(theta - mu) < 1e-9 * mu
    safe = np.where(close, theta + 1e-6 * mu, theta)
    wait_then_serve = (safe * np.exp(-mu * t) - mu * np.exp(-safe * t)) / (safe - mu)
    wait_then_serve = np.where(close, (1.0 + mu * t) * np.exp(-mu * t), wait_then_serve)
    tail: np.ndarray = (1.0 - c) * no_wait + c * wait_then_serve
    return tail


def sojourn_quantile_s(quantile: float, workers: int, mu: float, rho: np.ndarray) -> np.ndarray:
    """The ``quantile`` of response time (seconds) in M/M/k at utilisations ``rho``."""
    rho = np.asarray(rho, dtype=np.float64)
    lam = rho * workers * mu
    theta = workers * mu - lam
    c = erlang_c(workers, lam / mu)
    tail = 1.0 - quantile
    lo = np.zeros_like(rho)
    hi = np.full_like(rho, 1.0 / mu)
    for _ in range(200):  # grow the bracket until P(R > hi) <= tail everywhere
        too_low = _sojourn_tail(hi, mu, theta, c) > tail
        if not too_low.any():
            break
        hi = np.where(too_low, hi * 2.0, hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = _sojourn_tail(mid, mu, theta, c) > tail
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    quantile_s: np.ndarray = 0.5 * (lo + hi)
    return quantile_s


class LatencyModel:
    """p50/p95 response time of the service as a function of pod utilisation.

    Parameters
    ----------
    workers_per_pod
        ``k``: concurrent workers (vCPUs) per pod.
    rps_per_vcpu
        Load per vCPU (requests/s) at which p95 equals the SLO target.
    p95_target_ms
        The SLO's p95 latency target (milliseconds).
    base_latency_ms
        Fixed latency outside the queue (network, framework), added to every request.
    """

    def __init__(
        self,
        *,
        workers_per_pod: int,
        rps_per_vcpu: float,
        p95_target_ms: float,
        base_latency_ms: float,
    ) -> None:
        queue_budget_s = (p95_target_ms - base_latency_ms) / 1000.0
        if queue_budget_s <= 0:
            raise ValueError(
                f"p95_target_ms(={p95_target_ms}) must exceed base_latency_ms(={base_latency_ms})"
            )
        self.workers_per_pod = workers_per_pod
        self.base_latency_ms = base_latency_ms
        self.service_rate_rps = self._calibrate(workers_per_pod, rps_per_vcpu, queue_budget_s)
        mu = self.service_rate_rps
        self._grid: list[float] = _GRID.tolist()
        self._p95_ms: list[float] = (
            1000.0 * sojourn_quantile_s(0.95, workers_per_pod, mu, _GRID)
        ).tolist()
        self._p50_ms: list[float] = (
            1000.0 * sojourn_quantile_s(0.50, workers_per_pod, mu, _GRID)
        ).tolist()

    def _lookup(self, table: list[float], rho: float) -> float:
        """Linear interpolation of ``table`` at ``rho`` (scalar, faster than np.interp)."""
        grid = self._grid
        if rho <= 0.0:
            return table[0]
        if rho >= _RHO_MAX:
            return table[-1]
        i = bisect.bisect_right(grid, rho)
        x0, x1 = grid[i - 1], grid[i]
        y0, y1 = table[i - 1], table[i]
        return y0 + (y1 - y0) * (rho - x0) / (x1 - x0)

    @staticmethod
    def _calibrate(workers: int, rps_per_vcpu: float, budget_s: float) -> float:
        """Service rate mu (req/s per worker) giving p95 == budget at rps_per_vcpu."""

        def p95_s(mu: float) -> float:
            return float(sojourn_quantile_s(0.95, workers, mu, np.array([rps_per_vcpu / mu]))[0])

        lo, hi = rps_per_vcpu * (1.0 + 1e-9), rps_per_vcpu + 10.0 / budget_s
        while p95_s(hi) > budget_s:  # widen until the bracket holds the answer
            lo, hi = hi, rps_per_vcpu + 2.0 * (hi - rps_per_vcpu)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if p95_s(mid) > budget_s:
                lo = mid
            else:
                hi = mid
        return hi

    def p95_table_ms(self) -> tuple[np.ndarray, np.ndarray]:
        """The table :meth:`p95_ms` interpolates: pod utilisations and the p95 response
        time (ms, base latency included) at each, for callers that vectorise it."""
        return np.asarray(self._grid), self.base_latency_ms + np.asarray(self._p95_ms)

    def p95_ms(self, rho: float) -> float:
        """p95 response time (ms) at pod utilisation ``rho`` (clipped below 1)."""
        return self.base_latency_ms + self._lookup(self._p95_ms, rho)

    def p50_ms(self, rho: float) -> float:
        """Median response time (ms) at pod utilisation ``rho`` (clipped below 1)."""
        return self.base_latency_ms + self._lookup(self._p50_ms, rho)

    def service_p95_ms(self) -> float:
        """p95 of service time alone (ms): what a request costs with no queueing."""
        return 1000.0 * math.log(20.0) / self.service_rate_rps
