"""In-memory implementations of the protocols for the live loop's tests (until the boto3
and simulator ones are merged): a metrics source fed minute by minute, node groups that
record every write (or refuse any), a market with fixed offerings, an audit log of
records."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from adapters.protocols import (
    AuditBatch,
    DesiredSizeOutOfBounds,
    MetricsReading,
    NodeGroupInfo,
    Offering,
    PricePoint,
    SpotNotice,
)
from sim.control import PoolMetrics
from sim.world import World

T0 = datetime(2024, 5, 1, 12, 0, 0)
AZS = ("us-east-1c", "us-east-1d")


def metrics(rps: float, cpu: float, pods: float = 10.0) -> PoolMetrics:
    """One pool's minute of metrics."""
    return PoolMetrics(rps, cpu, 120.0, 0.0, 0.0, pods)


@dataclass
class FakeMetrics:
    """Returns ``metrics`` as a minute ``age_s`` old (None: a gap)."""

    metrics: Mapping[str, PoolMetrics] | None = None
    age_s: float = 60.0
    reads: list[datetime] = field(default_factory=list)

    def read(self, pools: Sequence[str], now: datetime) -> MetricsReading:
        self.reads.append(now)
        if self.metrics is None:
            return MetricsReading(None, math.inf)
        chosen = {p: self.metrics[p] for p in pools if p in self.metrics}
        if len(chosen) < len(pools):
            return MetricsReading(None, self.age_s)
        return MetricsReading(chosen, self.age_s, now - timedelta(seconds=self.age_s))


def group(
    name: str, desired: int, lo: int = 0, hi: int = 20, capacity: str = "on-demand"
) -> NodeGroupInfo:
    """A node group of c5a.2xlarge in :data:`AZS`."""
    return NodeGroupInfo(name, ("c5a.2xlarge",), capacity, AZS, lo, hi, desired)


@dataclass
class FakeNodeGroups:
    """Node groups in memory; every write is kept in ``writes`` and applied."""

    groups: dict[str, NodeGroupInfo]
    writes: list[tuple[str, int]] = field(default_factory=list)

    def list(self) -> Sequence[str]:
        return sorted(self.groups)

    def describe(self, name: str) -> NodeGroupInfo:
        return self.groups[name]

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        info = self.groups[name]
        if not info.min_size <= desired <= info.max_size:
            raise DesiredSizeOutOfBounds(name, desired, info.min_size, info.max_size)
        self.writes.append((name, desired))
        self.groups[name] = replace(info, desired_size=desired)


class NoWriteNodeGroups(FakeNodeGroups):
    """Node groups whose every write is a test failure (shadow must never write)."""

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        raise AssertionError(f"set_desired({name!r}, {desired}) called in shadow mode")


@dataclass
class FakeMarket:
    """Offerings at fixed prices: on-demand ``on_demand`` and spot ``spot`` USD/h."""

    on_demand: float = 0.308
    spot: float = 0.12

    def offerings(self, instance_types: Sequence[str], azs: Sequence[str]) -> Sequence[Offering]:
        out = []
        for t in instance_types:
            for az in azs:
                out.append(Offering(t, az, "on-demand", self.on_demand, True))
                out.append(Offering(t, az, "spot", self.spot, True))
        return out

    def price_history(
        self, instance_type: str, azs: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[PricePoint]:
        return [PricePoint(start, instance_type, az, self.spot) for az in azs]

    def notices(self, since: datetime) -> Sequence[SpotNotice]:
        return []


@dataclass
class FakeAuditLog:
    """Records in event-time order; the cursor is the index of the next record."""

    records: list[dict[str, Any]]
    reads: list[str | None] = field(default_factory=list)

    def read(self, cursor: str | None, until: datetime) -> AuditBatch:
        self.reads.append(cursor)
        start = int(cursor or 0)
        stop = start
        limit = until.isoformat()
        while stop < len(self.records) and self.records[stop]["eventTime"].rstrip("Z") < limit:
            stop += 1
        batch = self.records[start:stop]
        return AuditBatch(batch, str(stop), {"record": len(batch)} if batch else {})


@lru_cache(maxsize=1)
def default_world() -> World:
    """The shipped default scenario's world (its service model), prepared once."""
    from bench.runner import prepare_run

    return prepare_run("default", policy="reactive", lifecycle="off").world
