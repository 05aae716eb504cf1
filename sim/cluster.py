"""Nodes, their lifecycle, and per-second billing.

A node moves through ``pending`` (launched, booting and joining the cluster: the
provisioning delay) → ``starting`` (ready, pods starting) → ``serving`` → either
``draining`` (scaled in: cordoned, pods evicted, terminated after the drain time) or
``noticed`` (spot interruption notice: it keeps serving until it is reclaimed) →
``terminated``. A failure (hardware, AZ outage) terminates a node at once.

Billing follows the EC2 Linux rule: per second from launch to termination, at the
price in force second by second, with a 60-second minimum per instance. Line items
are written per node and clock hour, as in the Cost and Usage Report.

The cluster keeps running counts per pool and state, and integrates serving and
billed node-seconds as they change, so the traffic model and the waste metric never
loop over nodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.control import PoolSpec
from sim.market.prices import PriceSeries
from sim.telemetry import TelemetryWriter

MIN_BILLED_S = 60.0
PENDING, STARTING, SERVING, NOTICED, DRAINING, TERMINATED = (
    "pending",
    "starting",
    "serving",
    "noticed",
    "draining",
    "terminated",
)
ACTIVE_STATES = (PENDING, STARTING, SERVING)
EventListener = Callable[[float, PoolSpec, str, str, str, str], None]
"""Called with (sim time s, pool, node id, AZ, event, reason) for every cluster event."""


@dataclass(slots=True, eq=False)
class Node:
    """One EC2 instance in the simulated cluster."""

    node_id: str
    pool: int  # index into the cluster's pools
    az: str
    launched_s: float
    state: str = PENDING
    serves_under_notice: bool = False  # set when a serving node gets a spot notice
    ended_s: float = float("nan")

    def is_serving(self, state: str) -> bool:
        """Whether the node serves traffic while in ``state``."""
        return state == SERVING or (state == NOTICED and self.serves_under_notice)


@dataclass(slots=True)
class _Integral:
    """Integrates a piecewise-constant count over time (count x seconds)."""

    count: int = 0
    last_s: float = 0.0
    acc: float = 0.0

    def change(self, now: float, delta: int) -> None:
        self.acc += self.count * (now - self.last_s)
        self.last_s = now
        self.count += delta

    def take(self, now: float) -> float:
        """Count-seconds since the last take, then restart the accumulator."""
        self.acc += self.count * (now - self.last_s)
        self.last_s = now
        out, self.acc = self.acc, 0.0
        return out


@dataclass(slots=True)
class PoolRuntime:
    """Live state of one pool."""

    spec: PoolSpec
    index: int
    nodes: dict[str, Node] = field(default_factory=dict)  # every node not yet terminated
    counts: dict[str, int] = field(default_factory=dict)
    active_by_az: dict[str, int] = field(default_factory=dict)  # pending + starting + serving
    by_az: dict[str, dict[str, int]] = field(default_factory=dict)  # AZ -> state -> nodes
    serving: _Integral = field(default_factory=_Integral)
    billed: _Integral = field(default_factory=_Integral)
    interruptions: int = 0
    launch_failures: int = 0

    def __post_init__(self) -> None:
        self.counts = dict.fromkeys((PENDING, STARTING, SERVING, NOTICED, DRAINING), 0)
        self.active_by_az = dict.fromkeys(self.spec.azs, 0)
        self.by_az = {
            az: dict.fromkeys((PENDING, STARTING, SERVING, NOTICED, DRAINING), 0)
            for az in self.spec.azs
        }

    @property
    def active(self) -> int:
        return self.counts[PENDING] + self.counts[STARTING] + self.counts[SERVING]


class Cluster:
    """The simulated node fleet: launches, scale-in, notices, failures, billing.

    Parameters
    ----------
    env
        The SimPy environment (time unit: seconds).
    pools
        Static pool specs, in scenario order.
    prices
        Price series per (pool index, AZ), USD/hour.
    provisioning_delay
        Draws one provisioning delay (seconds) per launch.
    pod_start_delay_s, drain_s, notice_s
        Seconds from ready to serving, from cordon to terminate, from notice to reclaim.
    telemetry
        Receives cluster events and billing line items.
    epoch_s
        Wall-clock seconds (Unix) of simulated time 0, for timestamps.
    """

    def __init__(
        self,
        env: simpy.Environment,
        pools: tuple[PoolSpec, ...],
        prices: dict[tuple[int, str], PriceSeries],
        *,
        provisioning_delay: Callable[[], float],
        pod_start_delay_s: float,
        drain_s: float,
        notice_s: float,
        telemetry: TelemetryWriter,
        epoch_s: int,
    ) -> None:
        self.env = env
        self.pools = [PoolRuntime(spec, i) for i, spec in enumerate(pools)]
        self.prices = prices
        self.provisioning_delay = provisioning_delay
        self.pod_start_delay_s = pod_start_delay_s
        self.drain_s = drain_s
        self.notice_s = notice_s
        self.telemetry = telemetry
        self.epoch_s = epoch_s
        self._seq = 0
        self.cost_usd = {"on-demand": 0.0, "spot": 0.0}
        self.cost_usd_by_hour: dict[int, float] = {}
        """Cost (USD) of every billing line item, by the clock hour (since the replay
        start) it falls in: a window's cost, for the lifecycle's per-phase figures."""
        self.usage_s = 0.0
        self.interruptions = 0
        self.failures = 0
        self.listener: EventListener | None = None

    # ------------------------------------------------------------------ events
    def _event(self, node: Node, event: str, reason: str = "") -> None:
        self._event_row(self.pools[node.pool].spec, node.node_id, node.az, event, reason)

    def record_decision(self, pool: str, record_json: str) -> None:
        """Write a policy's decision record (JSON text) as a ``recommendation`` event."""
        for runtime in self.pools:
            if runtime.spec.name == pool:
                self._event_row(runtime.spec, "", "", "recommendation", record_json)
                return
        raise ValueError(f"decision record for unknown pool {pool!r}")

    def _event_row(self, spec: PoolSpec, node_id: str, az: str, event: str, reason: str) -> None:
        now = self.env.now
        if self.listener is not None:
            self.listener(now, spec, node_id, az, event, reason)
        self.telemetry.append(
            "events",
            (
                self.epoch_s + int(now),
                float(now),
                node_id,
                spec.name,
                az,
                spec.capacity_type,
                spec.instance_type,
                event,
                reason,
            ),
        )

    def _after(self, delay_s: float, action: Callable[[], None]) -> None:
        self.env.timeout(delay_s).callbacks.append(lambda _event: action())

    def _move(self, pool: PoolRuntime, node: Node, new_state: str) -> None:
        old = node.state
        now = self.env.now
        if old != TERMINATED:
            pool.counts[old] -= 1
            pool.by_az[node.az][old] -= 1
        if new_state != TERMINATED:
            pool.counts[new_state] += 1
            pool.by_az[node.az][new_state] += 1
        was_serving = node.is_serving(old)
        is_serving = node.is_serving(new_state)
        if was_serving != is_serving:
            pool.serving.change(now, 1 if is_serving else -1)
        if (old in ACTIVE_STATES) != (new_state in ACTIVE_STATES):
            pool.active_by_az[node.az] += 1 if new_state in ACTIVE_STATES else -1
        node.state = new_state

    # ------------------------------------------------------------------ lifecycle
    def launch(self, pool_index: int, az: str, *, warm: bool = False) -> Node:
        """Launch a node in ``az``; ``warm`` nodes serve at once (the initial fleet)."""
        pool = self.pools[pool_index]
        self._seq += 1
        node = Node(f"{pool.spec.name}-{self._seq:06d}", pool_index, az, self.env.now)
        pool.nodes[node.node_id] = node
        pool.counts[PENDING] += 1
        pool.by_az[az][PENDING] += 1
        pool.active_by_az[az] += 1
        pool.billed.change(self.env.now, 1)
        self._event(node, "launch_requested", "initial fleet" if warm else "")
        if warm:
            self._move(pool, node, STARTING)
            self._move(pool, node, SERVING)
            self._event(node, "serving", "initial fleet")
        else:
            self._after(self.provisioning_delay(), lambda: self._on_ready(pool, node))
        return node

    def _on_ready(self, pool: PoolRuntime, node: Node) -> None:
        if node.state != PENDING:
            return
        self._move(pool, node, STARTING)
        self._event(node, "ready")
        self._after(self.pod_start_delay_s, lambda: self._on_serving(pool, node))

    def _on_serving(self, pool: PoolRuntime, node: Node) -> None:
        if node.state != STARTING:
            return
        self._move(pool, node, SERVING)
        self._event(node, "serving")

    def launch_failed(self, pool_index: int, reason: str) -> None:
        """Record a launch that could not be placed (no AZ could take it)."""
        pool = self.pools[pool_index]
        pool.launch_failures += 1
        self._event_row(pool.spec, "", "", "launch_failed", reason)

    def scale_in(self, pool_index: int, count: int, az: str | None = None) -> None:
        """Remove ``count`` active nodes (of ``az`` if given): pending first, then the
        fullest AZ, newest first."""
        pool = self.pools[pool_index]
        for victim in self._scale_in_victims(pool, count, az):
            if victim.state == PENDING:
                self._event(victim, "drain", "scale-in (cancelled launch)")
                self._terminate(pool, victim, "scale-in")
            else:
                self._move(pool, victim, DRAINING)
                self._event(victim, "drain", "scale-in")
                self._after(self.drain_s, partial(self._terminate, pool, victim, "scale-in"))

    @staticmethod
    def _scale_in_victims(pool: PoolRuntime, count: int, az: str | None) -> list[Node]:
        """Pending nodes first (newest first); then running ones from the AZ with the
        most active nodes, newest first."""
        nodes = [n for n in pool.nodes.values() if az is None or n.az == az]
        chosen = [n for n in reversed(nodes) if n.state == PENDING][:count]
        running = [n for n in nodes if n.state in (STARTING, SERVING)]
        active = {
            a: pool.active_by_az[a] - sum(1 for n in chosen if n.az == a) for a in pool.spec.azs
        }
        by_az = {a: [n for n in running if n.az == a] for a in pool.spec.azs}
        while len(chosen) < count:
            candidates = [a for a in pool.spec.azs if by_az[a]]
            if not candidates:
                break
            fullest = max(candidates, key=lambda a: (active[a], -pool.spec.azs.index(a)))
            chosen.append(by_az[fullest].pop())
            active[fullest] -= 1
        return chosen

    def notice(self, node: Node, reason: str) -> None:
        """Spot interruption notice: the node is reclaimed ``notice_s`` later."""
        pool = self.pools[node.pool]
        if node.state in (TERMINATED, NOTICED, DRAINING):
            return
        # A serving node keeps serving until it is reclaimed; a booting one never serves.
        node.serves_under_notice = node.state == SERVING
        self._move(pool, node, NOTICED)
        pool.interruptions += 1
        self.interruptions += 1
        self._event(node, "interruption_notice", reason)
        self._after(self.notice_s, lambda: self._terminate(pool, node, "spot interruption"))

    def fail(self, node: Node, reason: str) -> None:
        """Terminate ``node`` at once (hardware failure, AZ outage)."""
        pool = self.pools[node.pool]
        if node.state == TERMINATED:
            return
        self.failures += 1
        self._event(node, "failed", reason)
        self._terminate(pool, node, reason)

    def _terminate(self, pool: PoolRuntime, node: Node, reason: str) -> None:
        if node.state == TERMINATED:
            return
        now = self.env.now
        self._move(pool, node, TERMINATED)
        node.ended_s = now
        pool.billed.change(now, -1)
        del pool.nodes[node.node_id]
        self._event(node, "terminated", reason)
        self._bill(pool, node, node.launched_s, now)

    def finish(self) -> None:
        """Bill every node still alive up to now (the end of the replay)."""
        now = self.env.now
        for pool in self.pools:
            for node in list(pool.nodes.values()):
                self._bill(pool, node, node.launched_s, now)

    # ------------------------------------------------------------------ billing
    def _bill(self, pool: PoolRuntime, node: Node, start_s: float, end_s: float) -> None:
        """Line items per clock hour of ``[start_s, end_s)`` at the prices in force."""
        spec = pool.spec
        prices = self.prices[(pool.index, node.az)]
        usage_s = end_s - start_s
        first_edge = (math.floor(start_s / 3600.0) + 1.0) * 3600.0
        starts = [start_s]
        starts.extend(float(h) for h in np.arange(first_edge, end_s, 3600.0))
        ends = [*starts[1:], end_s]
        if len(prices.times_s) == 1:  # a constant price (on-demand): no integral needed
            rate = float(prices.prices_usd_per_hour[0]) / 3600.0
            costs = [(b - a) * rate for a, b in zip(starts, ends, strict=True)]
        elif len(starts) <= 4:  # a short life: scalar integrals are cheaper than arrays
            costs = [prices.cost_usd(a, b) for a, b in zip(starts, ends, strict=True)]
        else:
            costs = prices.cost_usd_many(np.array(starts), np.array(ends)).tolist()
        billed = [b - a for a, b in zip(starts, ends, strict=True)]
        if usage_s < MIN_BILLED_S:  # EC2's 60-second minimum, charged at the launch price
            short_s = MIN_BILLED_S - usage_s
            costs[0] += short_s * prices.price_at(start_s) / 3600.0
            billed[0] += short_s
        rows = self.telemetry.buffer("billing")
        base = self.epoch_s
        by_hour = self.cost_usd_by_hour
        for a, b, used, cost in zip(starts, ends, billed, costs, strict=True):
            hour = int(a // 3600.0)
            by_hour[hour] = by_hour.get(hour, 0.0) + cost
            rows.append(
                (
                    node.node_id,
                    spec.name,
                    node.az,
                    spec.capacity_type,
                    spec.instance_type,
                    base + int(a),
                    base + math.ceil(b),
                    b - a,
                    used,
                    cost,
                )
            )
        self.cost_usd[spec.capacity_type] += math.fsum(costs)
        self.usage_s += usage_s
        self.telemetry.maybe_flush("billing")
