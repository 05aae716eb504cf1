"""``static``: a fixed fleet, sized once for the replay's peak, as a capacity planner would.

With no parameters the fleet holds enough nodes for the peak offered load of the
replayed window at the target utilisation: on-demand pools first (in scenario order,
each up to its maximum), then the others; every pool at least its minimum.
``nodes: {pool: count}`` fixes the counts instead.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, NonNegativeInt

from sim.control import ControlContext, Decision, Observation, PolicyNeeds
from sim.errors import InputError


class StaticParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    nodes: dict[str, NonNegativeInt] | None = None


class StaticPolicy:
    """Holds the same node count per pool for the whole replay."""

    name = "static"
    needs = PolicyNeeds(foresight=True)  # only the peak, to size the fleet

    def __init__(self, params: StaticParams | None = None) -> None:
        self.params = params or StaticParams()
        self._desired: dict[str, int] = {}

    def reset(self, context: ControlContext) -> None:
        if self.params.nodes is not None:
            unknown = sorted(set(self.params.nodes) - {p.name for p in context.pools})
            if unknown:
                raise InputError(
                    "scenario",
                    "control.params.nodes",
                    f"unknown pools {unknown}",
                    ", ".join(p.name for p in context.pools),
                )
            self._desired = {
                p.name: self.params.nodes.get(p.name, p.min_nodes) for p in context.pools
            }
            return
        peak = context.foresight.peak_offered_rps if context.foresight else 0.0
        self._desired = {p.name: p.min_nodes for p in context.pools}
        remaining = peak - sum(p.min_nodes * p.rps_per_node_at_target for p in context.pools)
        order = sorted(context.pools, key=lambda p: p.capacity_type != "on-demand")
        for pool in order:
            if remaining <= 0:
                break
            add = min(
                pool.max_nodes - pool.min_nodes, math.ceil(remaining / pool.rps_per_node_at_target)
            )
            self._desired[pool.name] += add
            remaining -= add * pool.rps_per_node_at_target

    def decide(self, observation: Observation) -> Decision:
        return Decision(desired_nodes=dict(self._desired), reasons=("static fleet",))
