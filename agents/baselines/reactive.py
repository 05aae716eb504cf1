"""``reactive``: the Kubernetes HPA rule with Cluster-Autoscaler-style nodes.

Pods (HorizontalPodAutoscaler, ``autoscaling/v2`` defaults):
``desired = ceil(ready_pods * cpu_utilization / target)``, skipped while the ratio
is within the 10% tolerance; scale-up at once; scale-down stabilised by taking the
highest recommendation of the last 300 s. No metrics (a telemetry gap): no change.

Nodes (Cluster Autoscaler): pods that do not fit trigger new nodes on the cheapest
pool that can launch now (the ``price`` expander); a node is removed only after it
has been unneeded for ``scale_down_unneeded_s`` (600 s by default), the most
expensive first. Running nodes are never moved between pools, as with the real
autoscaler; nodes lost to interruptions or failures are replaced because their pods
no longer fit.

The HPA's 15 s sync is honoured when the scenario's control interval is 15 s; with a
longer interval the rule is evaluated once per interval on the last minute's metrics.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from agents.capacity import price_per_pod
from sim.control import (
    NEEDS_NOTHING,
    ControlContext,
    Decision,
    Observation,
    PoolMetrics,
    PoolState,
)


class ReactiveParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    target_utilization: float | None = Field(default=None, gt=0, le=1)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    scale_down_stabilization_s: float = Field(default=300.0, ge=0)
    scale_down_unneeded_s: float = Field(default=600.0, ge=0)
    min_replicas: int = Field(default=1, ge=1)


def hpa_proposal(
    metrics: Mapping[str, PoolMetrics],
    replicas: int | None,
    *,
    target: float,
    tolerance: float,
    min_replicas: int,
    pod_rate_rps: float,
) -> int:
    """The HPA's replica proposal from one minute of metrics (before stabilisation).

    ``ceil(ready * utilization / target)``, or ``replicas`` (else the ready count) while
    the ratio is within ``tolerance``; with nothing serving, the pods the offered load
    needs at ``pod_rate_rps`` (requests/s one pod carries at the target utilisation).
    """
    ready = sum(m.pod_count for m in metrics.values())
    serving = [m for m in metrics.values() if m.pod_count > 0]
    if not serving or ready <= 0:
        offered = sum(m.request_rate_rps for m in metrics.values())
        return max(min_replicas, math.ceil(offered / pod_rate_rps))
    utilization = sum(m.cpu_utilization * m.pod_count for m in serving) / ready
    current = replicas if replicas is not None else math.ceil(ready)
    ratio = utilization / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return max(min_replicas, math.ceil(ready * ratio))


class ReactivePolicy:
    """HPA + Cluster Autoscaler."""

    name = "reactive"
    needs = NEEDS_NOTHING

    def __init__(self, params: ReactiveParams | None = None) -> None:
        self.params = params or ReactiveParams()

    def reset(self, context: ControlContext) -> None:
        self.ctx = context
        self.target = self.params.target_utilization or context.target_utilization
        self.max_replicas = sum(p.max_nodes * p.pods_per_node for p in context.pools)
        self.replicas: int | None = None
        self.recommendations: deque[tuple[float, int]] = deque()
        self.spare_history: deque[tuple[float, int]] = deque()

    @property
    def last_target_pods(self) -> int | None:
        """The HPA's replicas after the last decision (None before any metrics): the pods a
        composed controller sizes to."""
        return self.replicas

    def _pods(self, observation: Observation) -> int | None:
        if observation.metrics is None:
            return self.replicas
        pod_rate = self.ctx.service_rate_per_vcpu_rps * self.ctx.pod_vcpu * self.target
        return hpa_proposal(
            observation.metrics,
            self.replicas,
            target=self.target,
            tolerance=self.params.tolerance,
            min_replicas=self.params.min_replicas,
            pod_rate_rps=pod_rate,
        )

    def decide(self, observation: Observation) -> Decision:
        now = observation.sim_time_s
        proposal = self._pods(observation)
        states = observation.pools
        if proposal is None:
            return Decision(
                {name: s.nodes_active for name, s in states.items()}, ("no metrics yet",)
            )
        proposal = min(proposal, self.max_replicas)
        self.recommendations.append((now, proposal))
        horizon = now - self.params.scale_down_stabilization_s
        while self.recommendations and self.recommendations[0][0] < horizon:
            self.recommendations.popleft()
        self.replicas = max(r for _, r in self.recommendations)
        return Decision(self._nodes(now, self.replicas, states), (f"hpa replicas={self.replicas}",))

    def _nodes(self, now: float, replicas: int, states: Mapping[str, PoolState]) -> dict[str, int]:
        """Cluster Autoscaler: add nodes for pods that do not fit (cheapest feasible pool,
        the ``price`` expander); remove nodes only once they have been unneeded for
        ``scale_down_unneeded_s``, most expensive first. Running nodes are never moved."""
        pools = self.ctx.pools
        desired = {spec.name: states[spec.name].nodes_active for spec in pools}
        capacity = sum(desired[s.name] * s.pods_per_node for s in pools)
        spare = capacity - replicas
        self.spare_history.append((now, spare))
        horizon = now - self.params.scale_down_unneeded_s
        while self.spare_history and self.spare_history[0][0] < horizon:
            self.spare_history.popleft()
        if spare < 0:
            missing = -spare
            for spec in sorted(pools, key=lambda s: price_per_pod(s, states[s.name])):
                if missing <= 0 or not states[spec.name].launchable_azs:
                    continue
                add = min(
                    spec.max_nodes - desired[spec.name], math.ceil(missing / spec.pods_per_node)
                )
                if add > 0:
                    desired[spec.name] += add
                    missing -= add * spec.pods_per_node
            return desired
        unneeded = min(s for _, s in self.spare_history)  # spare throughout the window
        if unneeded < min(spec.pods_per_node for spec in pools):
            return desired
        for spec in sorted(pools, key=lambda s: -price_per_pod(s, states[s.name])):
            removable = min(desired[spec.name] - spec.min_nodes, unneeded // spec.pods_per_node)
            if removable > 0:
                desired[spec.name] -= removable
                unneeded -= removable * spec.pods_per_node
        return desired
