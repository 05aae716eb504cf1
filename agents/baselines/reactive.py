"""``reactive``: the Kubernetes HPA rule with Cluster-Autoscaler-style nodes.

Pods (HorizontalPodAutoscaler, ``autoscaling/v2`` defaults):
``desired = ceil(ready_pods * cpu_utilization / target)``, skipped while the ratio
is within the 10% tolerance; scale-up at once; scale-down stabilised by taking the
highest recommendation of the last 300 s. No metrics (a telemetry gap): no change.

Nodes (Cluster Autoscaler): enough nodes for the desired pods, bought on the
cheapest pool that can launch now (the ``price`` expander); a node is removed only
after it has been unneeded for ``scale_down_unneeded_s`` (600 s by default), and
never before the nodes already serving cover the load.

The HPA's 15 s sync is honoured when the scenario's control interval is 15 s; with a
longer interval the rule is evaluated once per interval on the last minute's metrics.
"""

from __future__ import annotations

import math
from collections import deque

from pydantic import BaseModel, ConfigDict, Field

from agents.capacity import allocate, make_before_break
from sim.control import ControlContext, Decision, Observation


class ReactiveParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    target_utilization: float | None = Field(default=None, gt=0, le=1)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    scale_down_stabilization_s: float = Field(default=300.0, ge=0)
    scale_down_unneeded_s: float = Field(default=600.0, ge=0)
    min_replicas: int = Field(default=1, ge=1)


class ReactivePolicy:
    """HPA + Cluster Autoscaler."""

    name = "reactive"

    def __init__(self, params: ReactiveParams | None = None) -> None:
        self.params = params or ReactiveParams()

    def reset(self, context: ControlContext) -> None:
        self.ctx = context
        self.target = self.params.target_utilization or context.target_utilization
        self.max_replicas = sum(p.max_nodes * p.pods_per_node for p in context.pools)
        self.replicas: int | None = None
        self.recommendations: deque[tuple[float, int]] = deque()
        self.node_targets: deque[tuple[float, dict[str, int]]] = deque()

    def _pods(self, observation: Observation) -> int | None:
        metrics = observation.metrics
        if metrics is None:
            return self.replicas
        ready = sum(m.pod_count for m in metrics.values())
        serving = [m for m in metrics.values() if m.pod_count > 0]
        if not serving or ready <= 0:
            # nothing serving: ask for what the observed load needs at the target
            offered = sum(m.request_rate_rps for m in metrics.values())
            pod_rate = self.ctx.service_rate_per_vcpu_rps * self.ctx.pod_vcpu * self.target
            return max(self.params.min_replicas, math.ceil(offered / pod_rate))
        utilization = sum(m.cpu_utilization * m.pod_count for m in serving) / ready
        current = self.replicas if self.replicas is not None else math.ceil(ready)
        ratio = utilization / self.target
        if abs(ratio - 1.0) <= self.params.tolerance:
            return current
        return max(self.params.min_replicas, math.ceil(ready * ratio))

    def decide(self, observation: Observation) -> Decision:
        now = observation.sim_time_s
        proposal = self._pods(observation)
        states = observation.pools
        if proposal is None:
            return Decision({name: s.nodes_active for name, s in states.items()}, ("no metrics yet",))
        proposal = min(proposal, self.max_replicas)
        self.recommendations.append((now, proposal))
        horizon = now - self.params.scale_down_stabilization_s
        while self.recommendations and self.recommendations[0][0] < horizon:
            self.recommendations.popleft()
        self.replicas = max(r for _, r in self.recommendations)
        pools = self.ctx.pools
        target = allocate(self.replicas, pools, states)
        # Cluster Autoscaler: scale up at once; scale down only what was unneeded throughout.
        self.node_targets.append((now, target))
        horizon = now - self.params.scale_down_unneeded_s
        while self.node_targets and self.node_targets[0][0] < horizon:
            self.node_targets.popleft()
        desired = {}
        for spec in pools:
            active = states[spec.name].nodes_active
            want = target[spec.name]
            if want < active:
                want = min(active, max(t[spec.name] for _, t in self.node_targets))
            desired[spec.name] = want
        ready = sum(m.pod_count for m in observation.metrics.values()) if observation.metrics else 0
        desired = make_before_break(desired, min(ready, self.replicas), pools, states)
        return Decision(desired, (f"hpa replicas={self.replicas}",))
