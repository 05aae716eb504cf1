"""The seam between the simulated world and whatever decides capacity.

Every control interval the simulator builds an :class:`Observation` holding only what
a real controller could know at that moment (the last minute of metrics as the
monitoring pipeline delivered them, node counts from the EC2/Kubernetes APIs, current
prices, whether spot capacity is on offer) and asks a :class:`Policy` for a
:class:`Decision`: the desired node count per pool. Baselines and learned agents
implement the same protocol, so they are benchmarked on equal terms.

The only exception is :class:`Foresight`: the perfect-foresight limits (``oracle``)
are handed the future workload explicitly, through the context, never through the
observation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """Static facts about one node pool, known to any controller from its config."""

    name: str
    instance_type: str
    capacity_type: str  # "on-demand" | "spot"
    azs: tuple[str, ...]
    min_nodes: int
    max_nodes: int
    vcpus: int
    memory_gib: float
    pods_per_node: int
    on_demand_usd_per_hour: float
    rps_per_node_at_target: float  # requests/s one node carries at the target utilisation


class Foresight(Protocol):
    """Perfect knowledge of the offered load (for the oracle limits only)."""

    def offered_rps(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Offered load (requests/s) of every minute overlapping ``[t0_s, t1_s)``."""

    @property
    def peak_offered_rps(self) -> float:
        """The highest per-minute offered load of the whole replay (requests/s)."""

    def spot_available_throughout(self, az: str, t0_s: float, t1_s: float) -> bool:
        """Whether the replayed market offers spot capacity in ``az`` for all of ``[t0_s, t1_s]``.

        Only the availability trace is foreseen; injected faults (storms) are not.
        """

    @property
    def spot_reclaim_fraction(self) -> float:
        """Share of an AZ's spot nodes reclaimed each time its availability drops."""


@dataclass(frozen=True, slots=True)
class ControlContext:
    """What a policy is told once, before the replay starts."""

    scenario_id: str
    pools: tuple[PoolSpec, ...]
    start: datetime
    duration_s: float
    interval_s: float
    target_utilization: float
    pod_vcpu: int
    rps_per_vcpu: float
    service_rate_per_vcpu_rps: float
    slo_p95_latency_ms: float
    provisioning_delay_median_s: float
    provisioning_delay_max_s: float
    pod_start_delay_s: float
    interruption_notice_s: float
    seed: int
    foresight: Foresight | None = None
    history_offered_rps: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Offered load (requests/s, all pools) of each minute before ``start``, oldest
    first, ending at ``start``: the monitoring archive a controller may learn from."""
    history_gap: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    """True where a minute of ``history_offered_rps`` was filled over a gap in the data."""

    def pool(self, name: str) -> PoolSpec:
        """The spec of pool ``name``."""
        for spec in self.pools:
            if spec.name == name:
                return spec
        raise KeyError(name)


class PoolMetrics(NamedTuple):
    """One pool's metrics for the last complete minute, as monitoring delivered them."""

    request_rate_rps: float
    cpu_utilization: float
    response_time_p95_ms: float
    error_rate: float
    queue_depth: float
    pod_count: float


class PoolState(NamedTuple):
    """One pool's nodes and market right now (EC2 / Kubernetes APIs)."""

    name: str
    nodes_pending: int
    nodes_running: int  # serving or about to (ready, pods starting)
    nodes_leaving: int  # draining or under an interruption notice
    nodes_by_az: Mapping[str, int]  # pending + running, per AZ
    pending_by_az: Mapping[str, int]  # pending only, per AZ
    price_usd_per_hour: Mapping[str, float]  # per AZ, price in force
    spot_available: Mapping[str, bool]  # per AZ; always True for on-demand pools
    launchable_azs: tuple[str, ...]  # AZs where a launch would succeed now
    interruptions_last_interval: int
    launch_failures_last_interval: int

    @property
    def nodes_active(self) -> int:
        """Nodes that count towards desired capacity (pending + running)."""
        return self.nodes_pending + self.nodes_running


class Observation(NamedTuple):
    """Everything a controller can see at one control tick."""

    sim_time_s: float
    now: datetime
    metrics: Mapping[str, PoolMetrics] | None  # None when telemetry has a gap
    metrics_age_s: float  # how old the freshest metrics are
    pools: Mapping[str, PoolState]


@dataclass(frozen=True, slots=True)
class Decision:
    """Desired node count per pool (clamped by the simulator to [min, max]).

    A policy may also place nodes itself: for a pool listed in ``desired_by_az`` the
    simulator reconciles each AZ to its count (launching there, or scaling in there);
    other pools are spread over their AZs like an Auto Scaling group does.

    ``records`` are the policy's own JSON-able records of the decision (e.g. one
    recommendation per pool, each with a ``pool`` key); the simulator writes each to the
    ``events`` telemetry as a ``recommendation`` event whose ``reason`` is the record's
    JSON text.
    """

    desired_nodes: Mapping[str, int]
    reasons: tuple[str, ...] = field(default=())
    desired_by_az: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    records: tuple[Mapping[str, object], ...] = field(default=())


ModelKind = Literal["scaling", "cost"]
"""Kinds of trained model a policy may need: the predictive scaling forecasters, or the
cost mix network."""


@dataclass(frozen=True, slots=True)
class PolicyNeeds:
    """What a replay must hand a policy before it runs, declared by the policy itself.

    Attributes
    ----------
    foresight
        The policy is a perfect-foresight limit: the replay puts a :class:`Foresight` in
        its :class:`ControlContext` (never given to any other policy).
    model
        The kind of trained model the policy decides with; the composition root loads
        (or trains) one and hands it over through :meth:`ModelPolicy.use_model` before
        :meth:`Policy.reset`. ``None``: no model.
    """

    foresight: bool = False
    model: ModelKind | None = None


NEEDS_NOTHING = PolicyNeeds()


@runtime_checkable
class Policy(Protocol):
    """Decides capacity. Implemented by every baseline and agent.

    ``name`` is the policy's registry id; ``needs`` declares what a replay must provide
    (see :class:`PolicyNeeds`). A policy whose ``needs.model`` is set also implements
    :class:`ModelPolicy`.
    """

    name: str
    needs: PolicyNeeds

    def reset(self, context: ControlContext) -> None:
        """Forget all state and prepare for a replay described by ``context``."""

    def decide(self, observation: Observation) -> Decision:
        """Return the desired node count per pool for this control tick."""


@runtime_checkable
class ModelPolicy(Policy, Protocol):
    """A policy that decides with a trained model (``needs.model`` is set)."""

    def use_model(self, model: object) -> None:
        """Take the trained model it will decide with (before :meth:`reset`)."""
