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

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.control import PoolSpec
from sim.market import PriceSeries
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
    active_by_az: dict[str, int] = field(default_factory=dict)
    serving: _Integral = field(default_factory=_Integral)
    billed: _Integral = field(default_factory=_Integral)
    interruptions: int = 0
    launch_failures: int = 0

    def __post_init__(self) -> None:
        self.counts = dict.fromkeys((PENDING, STARTING, SERVING, NOTICED, DRAINING), 0)
        self.active_by_az = dict.fromkeys(self.spec.azs, 0)

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
        self.usage_s = 0.0
        self.interruptions = 0
        self.failures = 0

    # ------------------------------------------------------------------ events
    def _event(self, node: Node, event: str, reason: str = "") -> None:
        spec = self.pools[node.pool].spec
        now = self.env.now
        cols = self.telemetry.columns("events")
        cols["timestamp"].append(self.epoch_s + int(now))
        cols["sim_time_s"].append(float(now))
        cols["node_id"].append(node.node_id)
        cols["pool"].append(spec.name)
        cols["az"].append(node.az)
        cols["capacity_type"].append(spec.capacity_type)
        cols["instance_type"].append(spec.instance_type)
        cols["event"].append(event)
        cols["reason"].append(reason)
        self.telemetry.maybe_flush("events")

    def _after(self, delay_s: float, action: Callable[[], None]) -> None:
        self.env.timeout(delay_s).callbacks.append(lambda _event: action())

    def _move(self, pool: PoolRuntime, node: Node, new_state: str) -> None:
        old = node.state
        now = self.env.now
        if old != TERMINATED:
            pool.counts[old] -= 1
        if new_state != TERMINATED:
            pool.counts[new_state] += 1
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
        spec = pool.spec
        cols = self.telemetry.columns("events")
        cols["timestamp"].append(self.epoch_s + int(self.env.now))
        cols["sim_time_s"].append(float(self.env.now))
        cols["node_id"].append("")
        cols["pool"].append(spec.name)
        cols["az"].append("")
        cols["capacity_type"].append(spec.capacity_type)
        cols["instance_type"].append(spec.instance_type)
        cols["event"].append("launch_failed")
        cols["reason"].append(reason)
        self.telemetry.maybe_flush("events")

    def scale_in(self, pool_index: int, count: int) -> None:
        """Remove ``count`` active nodes: pending first, then the fullest AZ, newest first."""
        pool = self.pools[pool_index]
        for _ in range(count):
            victim = self._scale_in_victim(pool)
            if victim is None:
                return
            if victim.state == PENDING:
                self._event(victim, "drain", "scale-in (cancelled launch)")
                self._terminate(pool, victim, "scale-in")
            else:
                self._move(pool, victim, DRAINING)
                self._event(victim, "drain", "scale-in")
                self._after(self.drain_s, lambda v=victim: self._terminate(pool, v, "scale-in"))

    @staticmethod
    def _scale_in_victim(pool: PoolRuntime) -> Node | None:
        pending = [n for n in pool.nodes.values() if n.state == PENDING]
        if pending:
            return pending[-1]
        fullest = max(pool.spec.azs, key=lambda az: (pool.active_by_az[az], -pool.spec.azs.index(az)))
        candidates = [n for n in pool.nodes.values() if n.state in (STARTING, SERVING)]
        in_fullest = [n for n in candidates if n.az == fullest]
        chosen = in_fullest or candidates
        return chosen[-1] if chosen else None

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
        spec = pool.spec
        prices = self.prices[(pool.index, node.az)]
        usage_s = end_s - start_s
        hour_edges = np.arange(np.floor(start_s / 3600.0) * 3600.0, end_s, 3600.0)
        t0 = np.maximum(hour_edges, start_s)
        t1 = np.minimum(hour_edges + 3600.0, end_s)
        keep = t1 > t0
        t0, t1 = t0[keep], t1[keep]
        if t0.size == 0:  # launched and terminated in the same instant
            t0, t1 = np.array([start_s]), np.array([start_s])
        costs = prices.cost_usd_many(t0, t1)
        used = t1 - t0
        billed = used.copy()
        if usage_s < MIN_BILLED_S:  # EC2's 60-second minimum, at the launch price
            extra_s = MIN_BILLED_S - usage_s
            billed[0] += extra_s
            costs[0] += extra_s * prices.price_at(start_s) / 3600.0
        self.cost_usd[spec.capacity_type] += float(costs.sum())
        self.usage_s += usage_s
        cols = self.telemetry.columns("billing")
        for a, b, u, bs, c in zip(t0, t1, used, billed, costs, strict=True):
            cols["node_id"].append(node.node_id)
            cols["pool"].append(spec.name)
            cols["az"].append(node.az)
            cols["capacity_type"].append(spec.capacity_type)
            cols["instance_type"].append(spec.instance_type)
            cols["period_start"].append(self.epoch_s + int(a))
            cols["period_end"].append(self.epoch_s + int(np.ceil(b)))
            cols["usage_s"].append(float(u))
            cols["billed_s"].append(float(bs))
            cols["cost_usd"].append(float(c))
        self.telemetry.maybe_flush("billing")

