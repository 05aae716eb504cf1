"""What a controller reads and acts through: one protocol per kind, implemented by the
simulator (a replay) and by boto3 (live AWS), so a policy never knows which one it talks to.

The shapes follow the cloud-provider interfaces of the autoscalers users already trust:

- :class:`NodeGroups` is Kubernetes Cluster Autoscaler's ``CloudProvider``/``NodeGroup``
  (``NodeGroups()``, ``MinSize``/``MaxSize``/``TargetSize``, ``IncreaseSize``,
  ``DecreaseTargetSize``, ``DeleteNodes``, ``Nodes()`` with each instance's state and
  error class): a group has bounds and a desired (target) size, and a controller changes
  the desired size or deletes named nodes; it never launches an instance itself.
- :class:`SpotMarket` is Karpenter's instance-type *offerings*: each zone x capacity type
  x instance type with its price and whether it is available now; a launch the market
  cannot serve raises :class:`InsufficientCapacityError` (Karpenter's typed ICE error),
  and the interruption and rebalance notices arrive as EC2 sends them (two minutes'
  warning for an interruption).
- :class:`MetricsSource` gives the per-minute metrics a controller sees per pool (request
  rate, CPU, p95 latency, error rate), or none when telemetry has a gap, with their age;
  a source that keeps history may also implement :class:`MetricsHistory` (the offered load
  of past minutes: what a forecasting policy learns from before it starts).
- :class:`AuditLog` gives CloudTrail records from a cursor on (the cursor is opaque: the
  simulator's is a record index, CloudTrail's a time and a page token).

Every implementation states the contract's behaviour; ``tests/adapters/test_contract.py``
checks each implementation against it. Units are in the names: ``_usd_per_hour``,
``_rps``, ``_ms``, ``_s``; times are timezone-naive UTC :class:`~datetime.datetime`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.control import PoolMetrics

# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class MetricsReading:
    """The freshest complete minute of metrics per pool.

    ``metrics`` is None when telemetry has a gap (no complete minute, or a pool missing):
    a controller must then hold. ``age_s`` is how old the freshest complete minute is
    (seconds from its end to ``now``; ``inf`` if there never was one).
    """

    metrics: Mapping[str, PoolMetrics] | None
    age_s: float
    minute_end: datetime | None = None


@runtime_checkable
class MetricsSource(Protocol):
    """Per-minute metrics per pool (node group)."""

    def read(self, pools: Sequence[str], now: datetime) -> MetricsReading:
        """The freshest complete minute before ``now`` for every pool in ``pools``."""
        ...


@dataclass(frozen=True, slots=True)
class LoadHistory:
    """Offered load (requests/s, the pools summed) of each minute from ``start`` on, oldest
    first; ``gap[i]`` is True where minute ``i`` had no data (its load is 0)."""

    offered_rps: np.ndarray
    gap: np.ndarray
    start: datetime

    @property
    def end(self) -> datetime:
        """The end of the last minute held."""
        return self.start + timedelta(minutes=len(self.gap))


@runtime_checkable
class MetricsHistory(Protocol):
    """Optional beside :class:`MetricsSource`: the offered load of past minutes."""

    def history(self, pools: Sequence[str], start: datetime, end: datetime) -> LoadHistory:
        """Per-minute offered load summed over ``pools`` in [start, end) (both on minute
        boundaries)."""
        ...


# --------------------------------------------------------------------------- node groups


class NodeState(StrEnum):
    """A node's lifecycle, as Cluster Autoscaler's ``InstanceState`` (plus leaving)."""

    PENDING = "pending"  # launched, not yet serving (Cluster Autoscaler: creating)
    RUNNING = "running"  # serving, or ready with pods starting
    LEAVING = "leaving"  # draining, or under an interruption notice (deleting)


class NodeErrorClass(StrEnum):
    """Why a launch failed, as Cluster Autoscaler's ``InstanceErrorClass``."""

    OUT_OF_RESOURCES = "out-of-resources"  # insufficient capacity, spot not on offer
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class NodeGroupInfo:
    """A node group: what it runs, its bounds and its desired (target) size.

    ``nodes_by_state_az`` counts nodes per :class:`NodeState` and zone (a zone absent
    holds none; live groups whose instances cannot be listed report ``{}`` and only the
    desired size). ``launch_failures`` counts failed launches since the group was
    created (cumulative; a controller reads the difference between two looks).
    """

    name: str
    instance_types: tuple[str, ...]
    capacity_type: str  # "on-demand" | "spot"
    azs: tuple[str, ...]
    min_size: int
    max_size: int
    desired_size: int
    nodes_by_state_az: Mapping[NodeState, Mapping[str, int]] = field(default_factory=dict)
    launch_failures: int = 0
    interruptions: int = 0

    def count(self, state: NodeState) -> int:
        """Nodes in ``state`` over every zone."""
        return sum(self.nodes_by_state_az.get(state, {}).values())


class DesiredSizeOutOfBounds(ValueError):
    """A desired size outside the group's [min, max] (a write that is never sent)."""

    def __init__(self, group: str, desired: int, min_size: int, max_size: int) -> None:
        super().__init__(
            f"node group {group!r}: desired size {desired} outside [{min_size}, {max_size}]"
        )
        self.group, self.desired, self.min_size, self.max_size = group, desired, min_size, max_size


class WriteRefused(RuntimeError):
    """The cloud refused or could not take a desired-size write now (an update of the
    group still in progress, access denied, throttled beyond the retries, ...): nothing
    changed; ``reason`` says why in one line."""

    def __init__(self, group: str, reason: str) -> None:
        super().__init__(f"node group {group!r}: {reason}")
        self.group, self.reason = group, reason


@runtime_checkable
class NodeGroups(Protocol):
    """The node groups a controller sizes (Cluster Autoscaler's NodeGroup)."""

    def list(self) -> Sequence[str]:
        """The groups' names."""
        ...

    def describe(self, name: str) -> NodeGroupInfo:
        """One group now; raises ``KeyError`` for an unknown name."""
        ...

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        """Make ``desired`` the group's target size. Raises
        :class:`DesiredSizeOutOfBounds` (and changes nothing) when outside [min, max],
        :class:`WriteRefused` when the cloud did not take the write.
        ``by_az``: where the change should land, for groups that place per zone (the
        simulator); groups that place by themselves (an EKS managed node group, an ASG)
        ignore it."""
        ...


# --------------------------------------------------------------------------- spot market


@dataclass(frozen=True, slots=True)
class Offering:
    """One instance type in one zone on one capacity type (Karpenter's offering)."""

    instance_type: str
    az: str
    capacity_type: str  # "on-demand" | "spot"
    price_usd_per_hour: float
    available: bool
    capacity_on_offer: bool | None = None
    """The market's side alone: whether this capacity type has capacity on offer in the
    zone whatever the zone's own health (an AZ outage makes ``available`` False, not
    this). None: not known apart from ``available`` (live AWS)."""


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A spot price in force from ``time`` in ``az``."""

    time: datetime
    instance_type: str
    az: str
    price_usd_per_hour: float


class NoticeKind(StrEnum):
    INTERRUPTION = "interruption"  # EC2 Spot Instance Interruption Warning (2 minutes)
    REBALANCE = "rebalance"  # EC2 Instance Rebalance Recommendation


@dataclass(frozen=True, slots=True)
class SpotNotice:
    """An interruption warning or rebalance recommendation for one instance."""

    kind: NoticeKind
    time: datetime
    instance_id: str
    az: str | None = None
    action_time: datetime | None = None  # when the instance is reclaimed (interruptions)


class InsufficientCapacityError(RuntimeError):
    """The market cannot serve a launch of this offering now (Karpenter's ICE)."""

    def __init__(self, instance_type: str, az: str, capacity_type: str) -> None:
        super().__init__(f"insufficient {capacity_type} capacity for {instance_type} in {az}")
        self.instance_type, self.az, self.capacity_type = instance_type, az, capacity_type


@runtime_checkable
class SpotMarket(Protocol):
    """Offerings, spot price history and the notices EC2 sends."""

    def offerings(self, instance_types: Sequence[str], azs: Sequence[str]) -> Sequence[Offering]:
        """Every (type, zone, capacity type) of the arguments, priced now."""
        ...

    def price_history(
        self, instance_type: str, azs: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[PricePoint]:
        """Spot prices in force during [start, end), oldest first."""
        ...

    def notices(self, since: datetime) -> Sequence[SpotNotice]:
        """Notices sent at or after ``since``, oldest first."""
        ...


# --------------------------------------------------------------------------- audit log


@dataclass(frozen=True, slots=True)
class AuditBatch:
    """CloudTrail records read from a cursor on, and the cursor to read from next.

    ``kinds`` counts the records by the form they arrived in (``trail-file``,
    ``lookup-events``, ``eventbridge``, ``lake``, ``log-export``, ``record``).
    ``malformed`` lists what was read but holds no usable record, as ``(where, reason)``
    (``where`` names the object or page and the item): reported, never dropped silently;
    the cursor moves past it."""

    records: Sequence[Mapping[str, Any]]
    cursor: str
    kinds: Mapping[str, int] = field(default_factory=dict)
    malformed: Sequence[tuple[str, str]] = ()


@runtime_checkable
class AuditLog(Protocol):
    """CloudTrail events since a cursor."""

    def read(self, cursor: str | None, until: datetime) -> AuditBatch:
        """Records with event time before ``until`` not yet read at ``cursor`` (None: from
        the start), in event-time order."""
        ...
