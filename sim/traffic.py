"""The fluid traffic model, advanced once per simulated minute.

Per minute the cluster holds ``pods`` serving pods on average (time-weighted over the
minute, so a node that stopped serving half-way counts half). Offered requests plus
the backlog left from the last minute are served up to capacity; what is left waits
in pod queues up to ``queue_limit_per_pod`` requests per pod, and the excess is
dropped (the load balancer answers 503). Latency comes from :mod:`sim.latency`:
the M/M/k quantile at the minute's utilisation when the service keeps up (at most the
service time plus a full queue's wait), or, when it does not, the service time plus the
time to drain the backlog, never less than the value at the edge of keeping up (p95 is
continuous and non-decreasing in the utilisation through rho = 1). Requests never
wait longer than ``request_timeout_ms``.

Plain arithmetic per tick is deliberate: SimPy processes are for what happens at
discrete times (nodes, notices, outages); a fluid model needs none.
"""

from __future__ import annotations

from typing import NamedTuple

from sim.latency import LatencyModel


class MinuteTraffic(NamedTuple):
    """What happened to the service's requests in one minute."""

    offered_requests: float
    served_requests: float
    dropped_requests: float
    backlog_requests: float  # still queued at the end of the minute
    utilization: float  # busy fraction of serving workers
    p50_ms: float
    p95_ms: float


class ServiceModel:
    """Advances the fluid model by one minute.

    Parameters
    ----------
    latency
        The calibrated per-pod queueing model.
    queue_limit_per_pod
        Requests one pod holds in its queue before the excess is dropped.
    request_timeout_ms
        Latency ceiling (requests waiting longer time out).
    """

    STEP_S = 60.0

    def __init__(
        self, latency: LatencyModel, *, queue_limit_per_pod: int, request_timeout_ms: float
    ) -> None:
        self.latency = latency
        self.queue_limit_per_pod = queue_limit_per_pod
        self.request_timeout_ms = request_timeout_ms
        self.pod_rate_rps = latency.service_rate_rps * latency.workers_per_pod
        self._service_p95_ms = latency.base_latency_ms + latency.service_p95_ms()
        self._full_queue_wait_ms = 1000.0 * queue_limit_per_pod / self.pod_rate_rps
        # p95 at the edge of keeping up: M/M/k's value as rho -> 1, at most a full queue's wait
        self._saturated_p95_ms = min(
            latency.p95_ms(1.0), self._service_p95_ms + self._full_queue_wait_ms
        )

    def step(self, offered_rps: float, pods: float, backlog: float) -> MinuteTraffic:
        """One minute with ``offered_rps`` arriving at ``pods`` serving pods."""
        offered = offered_rps * self.STEP_S
        if pods <= 0.0:
            return MinuteTraffic(
                offered,
                0.0,
                offered + backlog,
                0.0,
                0.0,
                self.request_timeout_ms,
                self.request_timeout_ms,
            )
        capacity_rps = pods * self.pod_rate_rps
        wanting = offered + backlog
        served = min(wanting, capacity_rps * self.STEP_S)
        left = wanting - served
        queue_room = self.queue_limit_per_pod * pods
        dropped = max(0.0, left - queue_room)
        left -= dropped
        utilization = served / (capacity_rps * self.STEP_S)
        rho = offered_rps / capacity_rps
        if left > 1e-9 or rho >= 1.0:
            # overloaded: everyone waits behind the backlog, and never less than at the edge
            # of keeping up (so p95 is continuous at rho = 1: a minute just over capacity
            # is not faster than one just under it)
            wait_ms = 1000.0 * (left / pods) / self.pod_rate_rps
            p95 = max(self._service_p95_ms + wait_ms, self._saturated_p95_ms)
            p50 = p95
        else:
            p95 = min(self.latency.p95_ms(rho), self._saturated_p95_ms)
            p50 = min(self.latency.p50_ms(rho), p95)
        return MinuteTraffic(
            offered_requests=offered,
            served_requests=served,
            dropped_requests=dropped,
            backlog_requests=left,
            utilization=utilization,
            p50_ms=min(p50, self.request_timeout_ms),
            p95_ms=min(p95, self.request_timeout_ms),
        )
