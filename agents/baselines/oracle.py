"""``oracle``: perfect foresight of the workload, the limit every agent is measured against.

At each control tick it looks ahead one worst-case lead time (maximum provisioning
delay + pod start + one control interval + one minute of metric lag) and holds the
pods the highest offered load in that window needs at the target utilisation,
bought on the cheapest pool that can launch now. Nodes launched now are therefore
serving before the load arrives, and a node is released only when no load within a
lead time needs it. It does not foresee faults or spot interruptions: it reacts to
those like any controller, at the next tick.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from agents.capacity import allocate, make_before_break
from sim.control import ControlContext, Decision, Observation


class OracleParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OraclePolicy:
    """Provisions exactly what the future load needs, one lead time ahead."""

    name = "oracle"
    uses_foresight = True

    def __init__(self, params: OracleParams | None = None) -> None:
        self.params = params or OracleParams()

    def reset(self, context: ControlContext) -> None:
        if context.foresight is None:
            raise ValueError("the oracle needs foresight of the workload")
        self.ctx = context
        self.foresight = context.foresight
        self.lead_s = (
            context.provisioning_delay_max_s + context.pod_start_delay_s + context.interval_s + 60.0
        )
        self.pod_rate = (
            context.service_rate_per_vcpu_rps * context.pod_vcpu * context.target_utilization
        )

    def decide(self, observation: Observation) -> Decision:
        now = observation.sim_time_s
        ahead = self.foresight.offered_rps(now, now + self.lead_s)
        current = self.foresight.offered_rps(now, now + 60.0)
        pods_needed = math.ceil(float(ahead.max()) / self.pod_rate) if ahead.size else 0
        pods_now = float(current.max()) / self.pod_rate if current.size else 0.0
        target = allocate(pods_needed, self.ctx.pools, observation.pools)
        desired = make_before_break(target, pods_now, self.ctx.pools, observation.pools)
        return Decision(desired, (f"pods needed within {self.lead_s:.0f}s: {pods_needed}",))
