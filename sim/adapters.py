"""The simulator behind the adapter protocols (:mod:`adapters.protocols`), over a replay.

Each class reads (and :class:`SimNodeGroups` acts on) a running
:class:`~sim.engine.Replay` at its clock; times in and out are timezone-naive UTC
datetimes, the replay's start plus its simulated seconds.

- :class:`SimMetrics`: the last minute the monitoring pipeline delivered, None while
  the minute just ended is a telemetry gap;
- :class:`SimNodeGroups`: one group per pool; the desired size is the pool's nodes that
  count towards it (pending + running: the simulator keeps no target apart from its
  fleet), held within [min, max] as a group's target is (a pool short of its minimum
  after failed launches reports the minimum), and :meth:`SimNodeGroups.set_desired`
  reconciles at once, launching (pending nodes, placed in the launchable zone with the
  fewest) or scaling in;
- :class:`SimSpotMarket`: offerings priced from the scenario's price series, available
  as a launch would be (an AZ outage takes every capacity type of its zone; spot also
  needs capacity on offer: the availability trace, no storm); the interruption notices
  the cluster sent (:class:`ClusterLog`); the replayed spot price history;
- :class:`SimAuditLog`: the audit records the replay has emitted (cursor: an index).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from adapters.protocols import (
    AuditBatch,
    DesiredSizeOutOfBounds,
    MetricsReading,
    NodeGroupInfo,
    NodeState,
    NoticeKind,
    Offering,
    PricePoint,
    SpotNotice,
)
from sim.cluster import DRAINING, NOTICED, PENDING, SERVING, STARTING, EventListener, PoolRuntime
from sim.control import PoolSpec

if TYPE_CHECKING:
    from sim.engine import Replay

CAPACITY_TYPES = ("on-demand", "spot")
_OfferingsKey = tuple[tuple[str, ...], tuple[str, ...]]  # (instance types, zones)
INTERRUPTION_EVENT = "interruption_notice"


class SimMetrics:
    """:class:`~adapters.protocols.MetricsSource` over a replay's delivered metrics.

    Only the replay's present (or a later time) can be read: past minutes are not kept.
    """

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self._minute_end: tuple[int, datetime] = (-1, replay.start)

    def _seconds(self, now: datetime) -> float:
        """Simulated seconds of ``now``: the replay's clock itself when ``now`` is it."""
        replay = self.replay
        t = replay.env.now
        if now != replay.clock():
            t = (now - replay.start).total_seconds()
            if t < replay.env.now:
                raise ValueError(
                    f"the simulator reads metrics at its clock or later, not at {now} "
                    f"(the replay is at {replay.start + timedelta(seconds=replay.env.now)})"
                )
        return t

    def read(self, pools: Sequence[str], now: datetime) -> MetricsReading:
        """The minute just ended (before ``now``) for ``pools``; None if it was not
        delivered (a telemetry gap, or not yet a minute). ``age_s``: seconds since the end
        of the last delivered minute (``inf`` before the first)."""
        replay = self.replay
        clock_s, clock = replay._clock_at
        t = clock_s if now is clock and clock_s == replay.env.now else self._seconds(now)
        last = replay.last_metrics_minute
        if last < 0:
            return MetricsReading(None, float("inf"))
        end_s = (last + 1) * 60.0
        age_s = t - end_s
        if self._minute_end[0] != last:
            self._minute_end = (last, replay.start + timedelta(seconds=end_s))
        minute_end = self._minute_end[1]
        metrics = replay.last_metrics
        minute_done = int(t // 60) - 1
        if metrics is None or last != minute_done or minute_done < 0:
            return MetricsReading(None, age_s, minute_end)
        for pool in pools:
            if pool not in metrics:
                return MetricsReading(None, age_s, minute_end)
        if len(metrics) != len(pools):
            metrics = {p: metrics[p] for p in pools}
        return MetricsReading(metrics, age_s, minute_end)


class SimNodeGroups:
    """:class:`~adapters.protocols.NodeGroups`: one group per pool of the replay."""

    def __init__(self, replay: Replay, log: ClusterLog) -> None:
        self.replay = replay
        self.log = log
        self._pools: dict[str, PoolRuntime] = {p.spec.name: p for p in replay.cluster.pools}
        self._names = tuple(self._pools)
        self._described: dict[str, tuple[int, NodeGroupInfo]] = {}

    def list(self) -> Sequence[str]:
        """The pools' names, in scenario order."""
        return self._names

    def describe(self, name: str) -> NodeGroupInfo:
        """Pool ``name`` now: bounds, desired size (pending + running nodes, within the
        bounds), nodes per state and zone (running: ready or serving; leaving: noticed or
        draining), and the cumulative launch failures and interruption notices.
        ``KeyError`` if unknown. The same object is handed out again until an event of
        the pool."""
        pool = self._pools[name]
        change = self.log.changes[name]
        cached = self._described.get(name)
        if cached is not None and cached[0] == change:
            return cached[1]
        spec = pool.spec
        pending: dict[str, int] = {}
        running: dict[str, int] = {}
        leaving: dict[str, int] = {}
        for az, c in pool.by_az.items():
            pending[az] = c[PENDING]
            running[az] = c[STARTING] + c[SERVING]
            leaving[az] = c[NOTICED] + c[DRAINING]
        info = NodeGroupInfo(
            name=name,
            instance_types=(spec.instance_type,),
            capacity_type=spec.capacity_type,
            azs=spec.azs,
            min_size=spec.min_nodes,
            max_size=spec.max_nodes,
            desired_size=min(spec.max_nodes, max(spec.min_nodes, pool.active)),
            nodes_by_state_az={
                NodeState.PENDING: pending,
                NodeState.RUNNING: running,
                NodeState.LEAVING: leaving,
            },
            launch_failures=pool.launch_failures,
            interruptions=pool.interruptions,
        )
        self._described[name] = (change, info)
        return info

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        """Reconcile pool ``name`` to ``desired`` nodes now.

        Raises :class:`~adapters.protocols.DesiredSizeOutOfBounds` (nothing changes)
        outside [min, max]. Without ``by_az``: launch the missing nodes one by one in the
        launchable zone with the fewest nodes (none launchable: one launch failure is
        booked and the rest are not tried), or scale in the surplus (pending first, then
        the fullest zone, newest first). With ``by_az`` each zone is reconciled to its
        count instead (zones absent keep theirs; scale-in first, never below min nor
        above max; a zone that cannot launch books a launch failure): ``desired`` is only
        checked against the bounds.
        """
        pool = self._pools[name]
        spec = pool.spec
        if not spec.min_nodes <= desired <= spec.max_nodes:
            raise DesiredSizeOutOfBounds(name, desired, spec.min_nodes, spec.max_nodes)
        replay = self.replay
        if by_az is not None:
            replay._apply_by_az(pool, by_az)
            return
        have = pool.active
        cluster = replay.cluster
        if desired > have:
            for _ in range(desired - have):
                az = replay._placement_az(pool)
                if az is None:
                    cluster.launch_failed(pool.index, replay._no_az_reason(pool))
                    break
                cluster.launch(pool.index, az)
        elif desired < have:
            cluster.scale_in(pool.index, have - desired)


class ClusterLog:
    """A cluster event listener (every change of a pool's nodes or counters books an
    event) that passes every event on to ``then`` and keeps:

    - ``changes``: per pool name, a counter that moves with every event of the pool (so
      a pool's description is rebuilt only when something happened to it);
    - the interruption notices sent (sim time s, node id, AZ), oldest first.
    """

    def __init__(self, pools: Sequence[PoolSpec], then: EventListener | None = None) -> None:
        self.then = then
        self.changes: dict[str, int] = {spec.name: 0 for spec in pools}
        self.times_s: list[float] = []
        self.notices: list[tuple[float, str, str]] = []

    def __call__(
        self, now: float, spec: PoolSpec, node_id: str, az: str, event: str, reason: str
    ) -> None:
        self.changes[spec.name] += 1
        if event == INTERRUPTION_EVENT:
            self.times_s.append(now)
            self.notices.append((now, node_id, az))
        if self.then is not None:
            self.then(now, spec, node_id, az, event, reason)


class SimSpotMarket:
    """:class:`~adapters.protocols.SpotMarket` over a replay's prices, availability and
    notices.

    Spot is priced from the scenario's spot series of the instance type; on-demand at
    the catalogue price of a pool of that type. An instance type no spot pool runs has no
    spot market in the replay: its spot offering is not on offer, priced at on-demand.
    An instance type no pool runs raises ``KeyError``. Offerings are cached per
    (types, zones) and handed out again (the same object) until a price or the market
    moves, at whole minutes (at other times they are built afresh).
    """

    def __init__(self, replay: Replay, log: ClusterLog) -> None:
        self.replay = replay
        self.log = log
        pools = replay.world.pools
        self._on_demand: dict[str, float] = {}
        self._spot_pool: dict[tuple[str, str], int] = {}
        for i, spec in enumerate(pools):
            self._on_demand.setdefault(spec.instance_type, spec.on_demand_usd_per_hour)
            if spec.capacity_type == "spot":
                for az in spec.azs:
                    self._spot_pool.setdefault((spec.instance_type, az), i)
        # moves whenever any price of any pool moves (per minute mark)
        self._price_version: list[int] = (
            np.asarray(replay._price_version, dtype=np.int64).sum(axis=0).tolist()
        )
        self._cache: dict[_OfferingsKey, tuple[tuple[int, int], tuple[Offering, ...]]] = {}

    def _stamp(self) -> tuple[int, int] | None:
        """What the offerings depend on now (None: not at a whole minute, no caching)."""
        now = self.replay.env.now
        if now % 60.0 != 0.0:
            return None
        minute = int(now // 60)
        if minute >= len(self._price_version):
            return None
        return (self.replay._market_version, self._price_version[minute])

    def _price(self, pool_index: int, az: str) -> float:
        replay = self.replay
        now = replay.env.now
        if now % 60.0 == 0.0 and int(now // 60) < len(self._price_version):
            return replay._price(pool_index, az, int(now // 60))
        return replay.world.prices[(pool_index, az)].price_at(now)

    def _offering(self, instance_type: str, az: str, capacity_type: str) -> Offering:
        replay = self.replay
        zone_up = not replay.az_down.get(az, 0)
        on_demand = self._on_demand.get(instance_type)
        if on_demand is None:
            raise KeyError(f"instance type {instance_type!r} is not run by any pool of the replay")
        if capacity_type == "on-demand":
            return Offering(instance_type, az, capacity_type, on_demand, zone_up, True)
        pool_index = self._spot_pool.get((instance_type, az))
        if pool_index is None:
            return Offering(instance_type, az, capacity_type, on_demand, False, False)
        on_offer = replay._spot_available(az)
        return Offering(
            instance_type,
            az,
            capacity_type,
            self._price(pool_index, az),
            zone_up and on_offer,
            on_offer,
        )

    def offerings(self, instance_types: Sequence[str], azs: Sequence[str]) -> Sequence[Offering]:
        """Every (type, zone, capacity type) of the arguments, priced now (type-major,
        then zone, then on-demand before spot)."""
        key = (tuple(instance_types), tuple(azs))
        stamp = self._stamp()
        if stamp is not None:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        found = tuple(
            self._offering(t, az, c) for t in key[0] for az in key[1] for c in CAPACITY_TYPES
        )
        if stamp is not None:
            self._cache[key] = (stamp, found)
        return found

    def price_history(
        self, instance_type: str, azs: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[PricePoint]:
        """The spot prices in force during [start, end) in ``azs`` (the one in force at
        ``start`` with its own change time), oldest first (ties: in the order of ``azs``).
        A zone without a spot market for the type has none."""
        replay = self.replay
        t0 = (start - replay.start).total_seconds()
        t1 = (end - replay.start).total_seconds()
        points: list[tuple[float, int, PricePoint]] = []
        if t1 <= t0:
            return []
        for rank, az in enumerate(azs):
            pool_index = self._spot_pool.get((instance_type, az))
            if pool_index is None:
                continue
            series = replay.world.prices[(pool_index, az)]
            times = series.times_s
            k0 = max(0, int(np.searchsorted(times, t0, side="right")) - 1)
            k1 = int(np.searchsorted(times, t1, side="left"))
            for k in range(k0, k1):
                t = float(times[k])
                point = PricePoint(
                    time=replay.start + timedelta(seconds=t),
                    instance_type=instance_type,
                    az=az,
                    price_usd_per_hour=float(series.prices_usd_per_hour[k]),
                )
                points.append((t, rank, point))
        points.sort(key=lambda p: (p[0], p[1]))
        return [p for _, _, p in points]

    def notices(self, since: datetime) -> Sequence[SpotNotice]:
        """The interruption notices sent at or after ``since``, oldest first (each names
        the simulated node; reclaimed ``interruption_notice_s`` later). The replay sends
        no rebalance recommendations."""
        replay = self.replay
        log = self.log
        t0 = (since - replay.start).total_seconds()
        first = bisect.bisect_left(log.times_s, t0)
        warning = timedelta(seconds=replay.context.interruption_notice_s)
        found: list[SpotNotice] = []
        for t, node_id, az in log.notices[first:]:
            when = replay.start + timedelta(seconds=t)
            found.append(SpotNotice(NoticeKind.INTERRUPTION, when, node_id, az, when + warning))
        return found


class SimAuditLog:
    """:class:`~adapters.protocols.AuditLog` over the audit records a replay has emitted
    so far (none if the scenario has no ``audit:`` section). The cursor is the index of
    the next record, as decimal text."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay

    def _emitted(self) -> list[tuple[float, Mapping[str, object]]]:
        feed = self.replay.audit
        return feed.emitted if feed is not None else []

    def read(self, cursor: str | None, until: datetime) -> AuditBatch:
        """Records from ``cursor`` on whose event time is before ``until``, in event-time
        order; a cursor this log never handed out raises ``ValueError``."""
        emitted = self._emitted()
        first = 0 if cursor is None else _cursor_index(cursor, len(emitted))
        until_s = (until - self.replay.start).total_seconds()
        stop = first
        while stop < len(emitted) and emitted[stop][0] < until_s:
            stop += 1
        records = [rec for _, rec in emitted[first:stop]]
        return AuditBatch(records, str(stop), {"record": len(records)} if records else {})


def _cursor_index(cursor: str, size: int) -> int:
    if cursor.isascii() and cursor.isdigit() and int(cursor) <= size:
        return int(cursor)
    raise ValueError(
        f"audit cursor {cursor!r} is not a record index of this replay (0 to {size}, as text)"
    )
