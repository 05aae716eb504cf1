"""``oracle``: perfect foresight of the workload and the spot market, the limit every
agent is measured against.

At each control tick it looks ahead one lead time (median provisioning delay + pod
start + one control interval: the time a node launched now needs before it serves,
plus the wait for the next decision) and holds the pods that the highest offered
load in that window needs at the target utilisation, on the cheapest capacity.

Spot market foresight: an AZ whose spot capacity the replayed trace withdraws within
the lead time takes no new nodes; its current nodes stay, and the share the market
will reclaim is replaced elsewhere ahead of time, so replacements serve before the
reclaimed nodes stop. Nodes are spread evenly over each pool's feasible AZs, and a
running node is released only when the nodes already serving cover the load.
Injected faults (node failures, AZ outages, spot storms) are not foreseen: it reacts
to those like any controller, at the next tick.
"""

from __future__ import annotations

import dataclasses
import math

from pydantic import BaseModel, ConfigDict

from agents.capacity import allocate_by_az, make_before_break_by_az
from sim.control import ControlContext, Decision, Observation, PolicyNeeds, PoolSpec


class OracleParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OraclePolicy:
    """Provisions exactly what the future load needs, one lead time ahead."""

    name = "oracle"
    needs = PolicyNeeds(foresight=True)

    def __init__(self, params: OracleParams | None = None) -> None:
        self.params = params or OracleParams()

    def reset(self, context: ControlContext) -> None:
        if context.foresight is None:
            raise ValueError("the oracle needs foresight of the workload")
        self.ctx = context
        self.foresight = context.foresight
        self.lead_s = (
            context.provisioning_delay_median_s + context.pod_start_delay_s + context.interval_s
        )
        self.notice_s = context.interruption_notice_s
        self.pod_rate = (
            context.service_rate_per_vcpu_rps * context.pod_vcpu * context.target_utilization
        )
        self.last_target_pods: int | None = None
        """Pods the highest load of the last decision's lead time needs (what a composed
        controller sizes to)."""

    def decide(self, observation: Observation) -> Decision:
        now = observation.sim_time_s
        ahead = self.foresight.offered_rps(now, now + self.lead_s)
        current = self.foresight.offered_rps(now, now + 60.0)
        pods_needed = math.ceil(float(ahead.max()) / self.pod_rate) if ahead.size else 0
        pods_now = float(current.max()) / self.pod_rate if current.size else 0.0
        self.last_target_pods = pods_needed
        reclaim = self.foresight.spot_reclaim_fraction
        feasible: dict[str, tuple[str, ...]] = {}
        held: dict[str, dict[str, int]] = {}
        held_pods = 0.0
        for spec in self.ctx.pools:
            state = observation.pools[spec.name]
            feasible[spec.name] = ()
            held[spec.name] = {}
            for az in spec.azs:
                if az not in state.launchable_azs:
                    held[spec.name][az] = state.nodes_by_az[az]
                    held_pods += state.nodes_by_az[az] * spec.pods_per_node
                elif spec.capacity_type == "spot" and not self.foresight.spot_available_throughout(
                    az, now, now + self.lead_s
                ):  # the market takes capacity back here soon: keep, don't grow
                    held[spec.name][az] = state.nodes_by_az[az]
                    # Reclaimed nodes serve through their notice, so their replacements
                    # need to serve only by the end of it.
                    lost = (
                        0.0
                        if self.foresight.spot_available_throughout(
                            az, now, now + max(0.0, self.lead_s - self.notice_s)
                        )
                        else reclaim
                    )
                    held_pods += state.nodes_by_az[az] * spec.pods_per_node * (1.0 - lost)
                else:
                    feasible[spec.name] += (az,)
        free_specs = tuple(_without(spec, sum(held[spec.name].values())) for spec in self.ctx.pools)
        target = allocate_by_az(
            max(0.0, pods_needed - held_pods), free_specs, observation.pools, feasible
        )
        for spec in self.ctx.pools:
            target[spec.name].update(held[spec.name])
        by_az = make_before_break_by_az(target, pods_now, self.ctx.pools, observation.pools)
        return Decision(
            desired_nodes={name: sum(counts.values()) for name, counts in by_az.items()},
            reasons=(f"pods needed within {self.lead_s:.0f}s: {pods_needed}",),
            desired_by_az=by_az,
        )


def _without(spec: PoolSpec, held_nodes: int) -> PoolSpec:
    """The pool's bounds for the nodes still to place once ``held_nodes`` are kept."""
    return dataclasses.replace(
        spec,
        min_nodes=max(0, spec.min_nodes - held_nodes),
        max_nodes=max(0, spec.max_nodes - held_nodes),
    )
