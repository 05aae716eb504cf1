"""The fast fleet model the spot-fleet environment steps, one control interval at a time.

It keeps the simulator's rules (:mod:`sim.cluster`, :mod:`sim.engine`) with far less
machinery: nodes move pending -> starting -> serving -> draining / noticed ->
terminated on a heap of timed events; provisioning delays are drawn from the
scenario's distribution; billing is per second at the price in force each minute (the
simulator integrates the exact price step function) with EC2's 60-second minimum;
availability drops reclaim ``reclaim_fraction`` of an AZ's spot nodes with a notice;
spot storms and AZ outages act as in the simulator; random node failures follow the
scenario's rate. Traffic is the simulator's own fluid model
(:class:`sim.traffic.ServiceModel`) on the time-weighted serving pods of each minute.

With the generators named as the simulator's (``provisioning``, ``spot-market``,
``faults``; :meth:`FleetModel.for_world`) and the whole replay as the window, the model
draws the same random numbers in the same order as long as both fleets take the same
decisions, which is how the fidelity test compares them.

Times are seconds from the window's start; prices USD/hour; costs USD.
"""

from __future__ import annotations

from heapq import heappop, heappush
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, cast

import numpy as np

from agents.cost.plan import Layout, Tick
from sim.market.availability import AvailabilitySeries, reclaimed_indices
from sim.market.prices import PriceSeries
from sim.scenario import LognormalDelay, UniformDelay
from sim.seeding import component_rng
from sim.traffic import ServiceModel
from sim.world import World, draw_delay

PENDING, STARTING, SERVING, NOTICED, DRAINING, TERMINATED = range(6)
MIN_BILLED_S = 60.0
_READY, _SERVE, _END, _AVAIL, _STORM_ON, _STORM_OFF, _DOWN, _UP = range(8)


@dataclass(slots=True)
class Market:
    """Everything one window replays: load, prices, availability, faults.

    Per-minute lists have ``n_minutes`` entries; ``prices[k]`` has ``n_minutes + 1``
    (the price of slot ``k`` at every minute mark).
    """

    start: datetime
    offered_rps: list[float]
    gaps: list[bool]
    prices: list[list[float]]
    available0: dict[str, bool]
    transitions: list[tuple[float, str, bool]]  # (t_s, az, available), time order
    history_rps: np.ndarray
    reclaim_fraction: float
    storms: list[tuple[float, float, tuple[str, ...], float]] = field(default_factory=list)
    outages: list[tuple[float, float, str]] = field(default_factory=list)
    failure_rate_per_node_day: float = 0.0

    @property
    def n_minutes(self) -> int:
        return len(self.offered_rps)


def minute_prices(series: PriceSeries, offset_s: float, n_minutes: int) -> list[float]:
    """Price in force at every minute mark of a window starting ``offset_s`` in."""
    marks = offset_s + np.arange(n_minutes + 1, dtype=np.float64) * 60.0
    idx = np.maximum(np.searchsorted(series.times_s, marks, side="right") - 1, 0)
    prices: list[float] = series.prices_usd_per_hour[idx].tolist()
    return prices


def window_transitions(
    series: AvailabilitySeries, offset_s: float, duration_s: float
) -> tuple[bool, list[tuple[float, bool]]]:
    """State at ``offset_s`` and the changes within ``(offset_s, offset_s + duration_s)``,
    times relative to ``offset_s``."""
    start = series.available_at(offset_s)
    times = series.times_s
    lo = int(np.searchsorted(times, offset_s, side="right"))
    hi = int(np.searchsorted(times, offset_s + duration_s, side="left"))
    return start, [(float(times[i] - offset_s), bool(series.available[i])) for i in range(lo, hi)]


def market_from_world(
    world: World, layout: Layout, start_min: int = 0, n_minutes: int | None = None
) -> Market:
    """The window ``[start_min, start_min + n_minutes)`` of a prepared world, exactly."""
    n = world.n_minutes - start_min if n_minutes is None else n_minutes
    sc = world.scenario
    offset_s = start_min * 60.0
    prices = [minute_prices(world.prices[(s.pool, s.az)], offset_s, n) for s in layout.slots]
    available0: dict[str, bool] = {}
    transitions: list[tuple[float, str, bool]] = []
    for az, series in world.availability.items():
        up, changes = window_transitions(series, offset_s, n * 60.0)
        available0[az] = up
        transitions.extend((t, az, a) for t, a in changes)
    transitions.sort(key=lambda x: x[0])
    gaps = [False] * n
    for gap in sc.faults.telemetry_gaps:
        i0 = int(gap.start_h * 60) - start_min
        i1 = math.ceil((gap.start_h + gap.duration_h) * 60) - start_min
        for i in range(max(0, i0), max(0, min(i1, n))):
            gaps[i] = True
    offered = world.workload.offered_rps
    history = np.concatenate((world.workload.history_rps, offered[:start_min]))
    return Market(
        start=world.workload.start + timedelta(minutes=start_min),
        offered_rps=offered[start_min : start_min + n].tolist(),
        gaps=gaps,
        prices=prices,
        available0=available0,
        transitions=transitions,
        history_rps=history,
        reclaim_fraction=float(getattr(sc.pricing.spot_availability, "reclaim_fraction", 1.0)),
        storms=[
            (
                s.start_h * 3600.0 - offset_s,
                s.duration_h * 3600.0,
                tuple(s.azs),
                s.interrupt_fraction,
            )
            for s in sc.faults.spot_storms
        ],
        outages=[
            (o.start_h * 3600.0 - offset_s, o.duration_h * 3600.0, o.az)
            for o in sc.faults.az_outages
        ],
        failure_rate_per_node_day=sc.faults.node_failure_rate_per_node_day,
    )


class _Node:
    __slots__ = ("launched", "serves_under_notice", "slot", "state")

    def __init__(self, slot: int, launched: float) -> None:
        self.slot = slot
        self.launched = launched
        self.state = PENDING
        self.serves_under_notice = False


@dataclass(slots=True)
class MinuteResult:
    """One simulated minute: its cost and whether the SLO held."""

    cost_usd: float
    spot_cost_usd: float
    ok: bool
    p95_ms: float
    dropped: float
    offered_rps: float
    cpu: float


class FleetModel:
    """The fleet under one market window (see the module docstring).

    Parameters
    ----------
    layout
        The slots.
    market
        The window.
    service
        The simulator's fluid traffic model for the scenario.
    slo_p95_ms
        The SLO's p95 target (ms).
    delay
        The scenario's provisioning-delay distribution.
    pod_start_delay_s, drain_s, notice_s
        As in the scenario (seconds).
    pod_rate_at_target_rps
        Requests/s one pod carries at the target utilisation (the warm fleet).
    rngs
        Generators for provisioning delays, the spot market and failures.
    """

    def __init__(
        self,
        layout: Layout,
        market: Market,
        *,
        service: ServiceModel,
        slo_p95_ms: float,
        delay: UniformDelay | LognormalDelay,
        pod_start_delay_s: float,
        drain_s: float,
        notice_s: float,
        pod_rate_at_target_rps: float,
        rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
    ) -> None:
        self.layout = layout
        self.market = market
        self.service = service
        self.slo_p95_ms = slo_p95_ms
        self.delay = delay
        self.pod_start_s = pod_start_delay_s
        self.drain_s = drain_s
        self.notice_s = notice_s
        self.prov_rng, self.market_rng, self.fault_rng = rngs
        slots = layout.slots
        n = len(slots)
        self.ppn = [s.pods_per_node for s in slots]
        self.is_spot = [s.spot for s in slots]
        self.slot_az = [s.az for s in slots]
        self.slot_pool = [s.pool for s in slots]
        self.counts = [[0] * 5 for _ in range(n)]
        self.act = [0] * n  # pending + starting + serving, per slot
        self._market_version = 0
        self._market_cache: tuple[int, list[bool], list[bool]] | None = None
        # every node of each pool and of each slot, in launch order; stopped nodes are
        # dropped lazily (whoever reads a list skips them)
        self.pool_nodes: list[list[_Node]] = [[] for _ in layout.pools]
        self.slot_nodes: list[list[_Node]] = [[] for _ in slots]
        self.billed = [0] * n
        self.cost_last = [0.0] * n
        self.price_now = [market.prices[k][0] for k in range(n)]
        # every slot's price at each minute mark
        self.minute_prices = list(zip(*market.prices, strict=True))
        self.serving_pods = 0
        self.serve_acc = 0.0
        self.last_serving_pods = 0.0
        """Pods that served the last minute (mean over its seconds)."""
        self.serve_last = 0.0
        self.cost = 0.0
        self.spot_cost = 0.0
        self.minute_cost = 0.0
        self.minute_spot_cost = 0.0
        self.events: list[tuple[float, int, int, Any]] = []  # (t_s, seq, kind, payload)
        self.seq = 0
        self.now = 0.0
        self.minute = 0
        self.backlog = 0.0
        self.spot_up = dict(market.available0)
        self.storm: dict[str, int] = {}
        self.az_down: dict[str, int] = {}
        self.interruptions = 0
        self.interruptions_seen = 0
        self.last: MinuteResult | None = None
        self.failure_p = market.failure_rate_per_node_day / 86400.0 * 60.0
        for t, az, up in market.transitions:
            self._push(t, _AVAIL, (az, up))
        for t0, dur, azs, frac in market.storms:
            if t0 + dur > 0 and t0 < market.n_minutes * 60.0:
                self._push(max(0.0, t0), _STORM_ON, (azs, frac))
                self._push(t0 + dur, _STORM_OFF, azs)
        for t0, dur, az in market.outages:
            if t0 + dur > 0 and t0 < market.n_minutes * 60.0:
                self._push(max(0.0, t0), _DOWN, az)
                self._push(t0 + dur, _UP, az)
        self._warm_fleet(pod_rate_at_target_rps)

    @classmethod
    def for_world(cls, world: World, layout: Layout, market: Market) -> FleetModel:
        """A model of ``world`` drawing from the simulator's own named generators."""
        sc = world.scenario
        service = ServiceModel(
            world.latency,
            queue_limit_per_pod=sc.cluster.queue_limit_per_pod,
            request_timeout_ms=sc.cluster.request_timeout_ms,
        )
        rngs = (
            component_rng(world.seed, "provisioning"),
            component_rng(world.seed, "spot-market"),
            component_rng(world.seed, "faults"),
        )
        return cls.from_scenario(world, layout, market, service, rngs)

    @classmethod
    def from_scenario(
        cls,
        world: World,
        layout: Layout,
        market: Market,
        service: ServiceModel,
        rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
    ) -> FleetModel:
        """A model with the scenario's delays and the given generators."""
        sc = world.scenario
        return cls(
            layout,
            market,
            service=service,
            slo_p95_ms=sc.slo.p95_latency_ms,
            delay=sc.control.provisioning_delay,
            pod_start_delay_s=sc.control.pod_start_delay_s,
            drain_s=sc.control.drain_s,
            notice_s=sc.pricing.interruption_notice_s,
            pod_rate_at_target_rps=service.pod_rate_rps * sc.cluster.target_utilization,
            rngs=rngs,
        )

    # ------------------------------------------------------------------ state
    def _push(self, t: float, kind: int, payload: object) -> None:
        self.seq += 1
        heappush(self.events, (t, self.seq, kind, payload))

    def spot_available(self, az: str) -> bool:
        return self.spot_up.get(az, True) and not self.storm.get(az, 0)

    def launchable(self, k: int) -> bool:
        az = self.slot_az[k]
        if self.az_down.get(az, 0):
            return False
        return not self.is_spot[k] or self.spot_available(az)

    def active(self, k: int) -> int:
        return self.act[k]

    def _market_lists(self) -> tuple[list[bool], list[bool]]:
        """(spot on offer, launchable) per slot, rebuilt only when the market moved."""
        cache = self._market_cache
        if cache is None or cache[0] != self._market_version:
            n = len(self.ppn)
            available = [
                self.spot_available(self.slot_az[k]) if self.is_spot[k] else True for k in range(n)
            ]
            launchable = [self.launchable(k) for k in range(n)]
            cache = (self._market_version, available, launchable)
            self._market_cache = cache
        return cache[1], cache[2]

    def tick(self) -> Tick:
        """What a policy sees now (after the last minute)."""
        last = self.last
        load: float | None = None
        cpu: float | None = None
        p95: float | None = None
        error_rate: float | None = None
        if not (self.minute == 0 or self.market.gaps[self.minute - 1] or last is None):
            load, cpu, p95 = last.offered_rps, last.cpu, last.p95_ms
            error_rate = last.dropped / (load * 60.0) if load > 0 else 0.0
        interruptions = self.interruptions - self.interruptions_seen
        self.interruptions_seen = self.interruptions
        available, launchable = self._market_lists()
        return Tick(  # positional (faster), in Tick's field order
            self.now,
            load,
            cpu,
            p95,
            error_rate,
            list(self.act),
            [c[PENDING] for c in self.counts],
            list(self.price_now),
            available,
            launchable,
            interruptions,
        )

    # ------------------------------------------------------------------ integrals
    def _acc_slot(self, k: int) -> None:
        dt = self.now - self.cost_last[k]
        if dt > 0 and self.billed[k]:
            c = self.billed[k] * dt * self.price_now[k] / 3600.0
            self.minute_cost += c
            if self.is_spot[k]:
                self.minute_spot_cost += c
        self.cost_last[k] = self.now

    def _acc_all_slots(self) -> None:
        """:meth:`_acc_slot` of every slot, in slot order."""
        now = self.now
        cost_last, billed, price_now, is_spot = (
            self.cost_last,
            self.billed,
            self.price_now,
            self.is_spot,
        )
        minute_cost, minute_spot_cost = self.minute_cost, self.minute_spot_cost
        for k, last in enumerate(cost_last):
            dt = now - last
            if dt > 0 and billed[k]:
                c = billed[k] * dt * price_now[k] / 3600.0
                minute_cost += c
                if is_spot[k]:
                    minute_spot_cost += c
            cost_last[k] = now
        self.minute_cost, self.minute_spot_cost = minute_cost, minute_spot_cost

    def _acc_serving(self) -> None:
        self.serve_acc += self.serving_pods * (self.now - self.serve_last)
        self.serve_last = self.now

    def _move(self, node: _Node, new: int) -> None:
        k = node.slot
        old = node.state
        was = old == SERVING or (old == NOTICED and node.serves_under_notice)
        now_serving = new == SERVING or (new == NOTICED and node.serves_under_notice)
        if was != now_serving:
            self._acc_serving()
            self.serving_pods += self.ppn[k] if now_serving else -self.ppn[k]
        if old != TERMINATED:
            self.counts[k][old] -= 1
            if old <= SERVING:
                self.act[k] -= 1
        if new != TERMINATED:
            self.counts[k][new] += 1
            if new <= SERVING:
                self.act[k] += 1
        node.state = new

    # ------------------------------------------------------------------ lifecycle
    def _warm_fleet(self, pod_rate: float) -> None:
        """The simulator's warm start: pool minimums plus minute 0's load on the pool
        with the cheapest launchable pod slot."""
        layout = self.layout
        need = self.market.offered_rps[0] / pod_rate if self.market.n_minutes else 0.0

        def price_per_pod(i: int) -> float:
            ks = [k for k in layout.pool_slots[i] if self.launchable(k)]
            if not ks:
                return math.inf
            return min(self.price_now[k] for k in ks) / layout.pools[i].pods_per_node

        cheapest = min(range(len(layout.pools)), key=lambda i: (price_per_pod(i), i))
        covered = sum(
            p.min_nodes * p.pods_per_node for i, p in enumerate(layout.pools) if i != cheapest
        )
        for i, spec in enumerate(layout.pools):
            count = spec.min_nodes
            if i == cheapest:
                extra = math.ceil(max(0.0, need - covered) / spec.pods_per_node)
                count = min(spec.max_nodes, max(count, extra))
            for _ in range(count):
                ks = [k for k in layout.pool_slots[i] if self.launchable(k)]
                if not ks:
                    break
                k = min(ks, key=lambda k: (self.active(k), k))
                self._launch(k, warm=True)

    def _launch(self, k: int, *, warm: bool = False) -> None:
        self._acc_slot(k)
        node = _Node(k, self.now)
        self.pool_nodes[self.layout.slots[k].pool].append(node)
        self.slot_nodes[k].append(node)
        self.counts[k][PENDING] += 1
        self.act[k] += 1
        self.billed[k] += 1
        if warm:
            self._move(node, STARTING)
            self._move(node, SERVING)
        else:
            self._push(self.now + draw_delay(self.delay, self.prov_rng), _READY, node)

    def _launch_many(self, k: int, count: int) -> None:
        """Launch ``count`` nodes in slot ``k`` now, each with its own provisioning delay
        (drawn in launch order), as ``count`` calls of :meth:`_launch` would."""
        self._acc_slot(k)  # later launches at the same time accrue nothing more
        now, delay, rng = self.now, self.delay, self.prov_rng
        pool, slot = self.pool_nodes[self.slot_pool[k]], self.slot_nodes[k]
        events = self.events
        for _ in range(count):
            node = _Node(k, now)
            pool.append(node)
            slot.append(node)
            self.seq += 1
            heappush(events, (now + draw_delay(delay, rng), self.seq, _READY, node))
        self.counts[k][PENDING] += count
        self.act[k] += count
        self.billed[k] += count

    def _terminate(self, node: _Node) -> None:
        if node.state == TERMINATED:
            return
        k = node.slot
        self._acc_slot(k)
        self._move(node, TERMINATED)
        self.billed[k] -= 1
        usage = self.now - node.launched
        if usage < MIN_BILLED_S:
            c = (MIN_BILLED_S - usage) * self.price_now[k] / 3600.0
            self.minute_cost += c
            if self.is_spot[k]:
                self.minute_spot_cost += c

    def _notice(self, node: _Node) -> None:
        if node.state in (TERMINATED, NOTICED, DRAINING):
            return
        node.serves_under_notice = node.state == SERVING
        self._move(node, NOTICED)
        self.interruptions += 1
        self._push(self.now + self.notice_s, _END, node)

    def _live(self, pool: int) -> list[_Node]:
        nodes = [n for n in self.pool_nodes[pool] if n.state != TERMINATED]
        self.pool_nodes[pool] = nodes
        return nodes

    def _reclaim(self, az: str, fraction: float) -> None:
        nodes: list[_Node] = []
        for i, spec in enumerate(self.layout.pools):
            if spec.capacity_type == "spot":
                nodes.extend(
                    n
                    for n in self._live(i)
                    if self.slot_az[n.slot] == az and n.state in (PENDING, STARTING, SERVING)
                )
        for i in reclaimed_indices(len(nodes), fraction, self.market_rng):
            self._notice(nodes[i])

    def apply(self, desired: list[int]) -> None:
        """Reconcile every slot to ``desired`` (as the simulator's ``desired_by_az``):
        per pool, scale in slot by slot down to the pool minimum, then launch slot by slot
        (where launchable) up to the pool maximum."""
        layout = self.layout
        act = self.act
        launchable = self._market_lists()[1]
        for pool in layout.pool_limits:
            lo, hi = pool.start, pool.stop
            if desired[lo:hi] == act[lo:hi]:
                continue
            pool_active = sum(act[lo:hi])
            for k in range(lo, hi):
                want = desired[k] if desired[k] > 0 else 0  # max(0, desired[k])
                have = act[k]
                if want < have and pool_active > pool.min_nodes:
                    cut = min(have - want, pool_active - pool.min_nodes)
                    self._scale_in(k, cut)
                    pool_active -= cut
            for k in range(lo, hi):
                want = desired[k]
                if want <= act[k] or not launchable[k]:  # (nothing to launch)
                    continue
                grow = min(want - act[k], pool.max_nodes - pool_active)
                if grow > 0:
                    self._launch_many(k, grow)
                    pool_active += grow

    def _scale_in(self, k: int, count: int) -> None:
        """Stop ``count`` (at least one) nodes of slot ``k``: the newest pending ones
        first, then the newest running ones (drained)."""
        nodes = self.slot_nodes[k]
        if len(nodes) > 2 * sum(self.counts[k]) + 16:  # mostly stopped nodes: drop them
            nodes = [n for n in nodes if n.state != TERMINATED]
            self.slot_nodes[k] = nodes
        victims: list[_Node] = []
        if self.counts[k][PENDING]:  # newest first: the scan stops at the count-th
            pending = (n for n in reversed(nodes) if n.state == PENDING)
            victims.extend(islice(pending, count))
        if len(victims) < count:
            running = (n for n in reversed(nodes) if n.state == STARTING or n.state == SERVING)
            victims.extend(islice(running, count - len(victims)))
        for v in victims:
            if v.state == PENDING:
                self._terminate(v)
            else:
                self._move(v, DRAINING)
                self._push(self.now + self.drain_s, _END, v)

    # ------------------------------------------------------------------ time
    def _run_until(self, t_end: float) -> None:
        """Process every event before ``t_end`` in time order; ``now`` ends at ``t_end``."""
        events = self.events
        while events and events[0][0] < t_end:
            t, _, kind, payload = heappop(events)
            self.now = t
            if kind == _READY:
                if payload.state == PENDING:  # what _move(payload, STARTING) does here:
                    counts = self.counts[payload.slot]  # neither state serves, both are active
                    counts[PENDING] -= 1
                    counts[STARTING] += 1
                    payload.state = STARTING
                    self.seq += 1
                    heappush(events, (t + self.pod_start_s, self.seq, _SERVE, payload))
            elif kind == _SERVE:
                if payload.state == STARTING:  # what _move(payload, SERVING) does here:
                    self._acc_serving()  # it starts serving, and stays active
                    k = payload.slot
                    self.serving_pods += self.ppn[k]
                    counts = self.counts[k]
                    counts[STARTING] -= 1
                    counts[SERVING] += 1
                    payload.state = SERVING
            elif kind == _END:
                self._terminate(payload)
            else:
                self._market_version += 1
                self._market_event(kind, payload)
        self.now = t_end

    def _market_event(self, kind: int, payload: object) -> None:
        """An availability change, spot storm or AZ outage starting or ending now."""
        if kind == _AVAIL:
            az, up = cast(tuple[str, bool], payload)
            self.spot_up[az] = up
            if not up:
                self._reclaim(az, self.market.reclaim_fraction)
        elif kind == _STORM_ON:
            azs, frac = cast(tuple[tuple[str, ...], float], payload)
            for az in azs:
                self.storm[az] = self.storm.get(az, 0) + 1
                self._reclaim(az, frac)
        elif kind == _STORM_OFF:
            for az in cast(tuple[str, ...], payload):
                self.storm[az] -= 1
        elif kind == _DOWN:
            down = cast(str, payload)
            self.az_down[down] = self.az_down.get(down, 0) + 1
            for i in range(len(self.layout.pools)):
                for n in self._live(i):
                    if self.slot_az[n.slot] == down:
                        self._terminate(n)
        elif kind == _UP:
            self.az_down[cast(str, payload)] -= 1

    def _random_failures(self) -> None:
        for i, pool in enumerate(self.layout.pool_limits):
            n = 0
            for c in self.counts[pool.start : pool.stop]:
                n += c[STARTING] + c[SERVING]
            if n == 0:
                continue
            fails = int(self.fault_rng.poisson(self.failure_p * n))
            if fails == 0:
                continue
            candidates = [x for x in self._live(i) if x.state in (STARTING, SERVING)]
            chosen = self.fault_rng.choice(
                len(candidates), size=min(fails, len(candidates)), replace=False
            )
            for j in sorted(chosen):
                self._terminate(candidates[j])

    def advance(self) -> MinuteResult:
        """Simulate the next minute; returns its cost and SLO outcome."""
        m = self.minute
        t_end = (m + 1) * 60.0
        self._run_until(t_end)
        self._acc_all_slots()
        self._acc_serving()
        pods = self.last_serving_pods = self.serve_acc / 60.0
        self.serve_acc = 0.0
        if self.failure_p > 0:
            self._random_failures()
        offered = self.market.offered_rps[m]
        result = self.service.step(offered, pods, self.backlog)
        self.backlog = result.backlog_requests
        ok = result.p95_ms <= self.slo_p95_ms and result.dropped_requests < 0.5
        out = MinuteResult(  # positional (faster): cost, spot cost, ok, p95, dropped, rps, cpu
            self.minute_cost,
            self.minute_spot_cost,
            ok,
            result.p95_ms,
            result.dropped_requests,
            result.offered_requests / 60.0,
            result.utilization,
        )
        self.cost += self.minute_cost
        self.spot_cost += self.minute_spot_cost
        self.minute_cost = 0.0
        self.minute_spot_cost = 0.0
        self.minute = m + 1
        self.price_now[:] = self.minute_prices[m + 1]
        self.last = out
        return out
