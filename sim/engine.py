"""The replay: a SimPy world in which a policy runs a cluster against real load.

Processes (time unit: seconds of simulated time):

- the **clock** ticks once per minute: it advances the fluid traffic model over the
  minute that just ended, injects random node failures, emits that minute's metrics
  and capacity rows, and (when the control interval is a whole number of minutes)
  runs the control loop right after, so a decision always sees the minute just ended;
- the **control loop** (its own process when the interval is not a whole number of
  minutes) builds an :class:`~sim.control.Observation`, asks the policy, and
  reconciles each pool towards the desired count, both through the adapter protocols
  (:mod:`sim.adapters` over this replay; the observation is built by
  :mod:`adapters.observation`, as in the live loop);
- the **spot market**: one process per AZ walks its availability trace; when spot
  capacity vanishes every spot node there gets a 2-minute interruption notice;
- **faults**: AZ outages, spot storms, telemetry gaps, each a process on its window.

Node lifecycle and billing live in :mod:`sim.cluster`; the fluid model in
:mod:`sim.traffic`. The replay keeps per-minute ground truth (offered, served,
dropped, p95, billed and needed capacity) to score the run; the telemetry is what a
real monitoring pipeline would have delivered, gaps included.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import numpy as np
import simpy

from adapters.observation import ObservationBuilder
from sim.adapters import ClusterLog, SimAuditLog, SimMetrics, SimNodeGroups, SimSpotMarket
from sim.audit.feed import AuditFeed
from sim.audit.watch import AuditWatcher
from sim.cluster import DRAINING, NOTICED, PENDING, SERVING, STARTING, Cluster, Node, PoolRuntime
from sim.lifecycle_events import LifecycleLog
from sim.control import (
    ControlContext,
    Decision,
    Observation,
    Policy,
    PoolMetrics,
)
from sim.market.availability import AvailabilitySeries, reclaimed_indices
from sim.seeding import component_rng
from sim.telemetry import TelemetrySink, TelemetryWriter
from sim.traffic import MinuteTraffic, ServiceModel
from sim.watch import ALERT_EVENT, BookedAlert, MetricWatcher
from sim.world import World, draw_delay, service_context_fields

ProgressCallback = Callable[[float], None]  # called with simulated days done


@dataclass(frozen=True, slots=True)
class WorkloadForesight:
    """Perfect knowledge of the offered load and the replayed spot market, for the
    oracle limits (never for a policy that claims to be realistic)."""

    offered: np.ndarray  # requests/s per minute
    availability: dict[str, AvailabilitySeries]
    spot_reclaim_fraction: float = 1.0

    def offered_rps(self, t0_s: float, t1_s: float) -> np.ndarray:
        i0 = max(0, int(t0_s // 60))
        i1 = min(self.offered.size, max(i0 + 1, math.ceil(t1_s / 60)))
        return self.offered[i0:i1]

    @property
    def peak_offered_rps(self) -> float:
        return float(self.offered.max())

    def spot_available_throughout(self, az: str, t0_s: float, t1_s: float) -> bool:
        series = self.availability.get(az)
        if series is None:
            return True
        i0 = max(0, int(np.searchsorted(series.times_s, t0_s, side="right")) - 1)
        i1 = max(0, int(np.searchsorted(series.times_s, t1_s, side="right")) - 1)
        return bool(series.available[i0 : i1 + 1].all())


@dataclass(slots=True)
class Truth:
    """Per-minute ground truth of a replay (what really happened, gaps or not)."""

    offered: np.ndarray
    served: np.ndarray
    dropped: np.ndarray
    p95_ms: np.ndarray
    billed_nodes: np.ndarray  # time-weighted billed nodes
    serving_pods: np.ndarray  # time-weighted pods on serving nodes
    serving_nodes: np.ndarray  # time-weighted serving nodes
    needed_pods: np.ndarray  # pods the offered load needs at the target utilisation

    @classmethod
    def empty(cls, n: int) -> Truth:
        return cls(*(np.zeros(n) for _ in range(8)))


class Replay:
    """One replay of a prepared :class:`~sim.world.World` under one policy.

    Parameters
    ----------
    world
        The loaded scenario.
    policy
        Decides capacity every control interval.
    sink
        Receives telemetry micro-batches.
    micro_batch_s
        If set, every stream is flushed every ``micro_batch_s`` of simulated time (and
        the sink told), so a streaming sink is current during the replay; otherwise
        batches are flushed when they fill.
    watcher
        If set, sees every minute's metrics as monitoring delivers them; each alert it
        returns is booked as an ``anomaly_alert`` event (see :mod:`sim.watch`).
    audit_watcher
        If set (and the scenario has an ``audit:`` section), scores the audit records
        minute by minute; its alerts become ``security_alert`` events (see
        :mod:`sim.audit.feed`).
    lifecycle
        If set, the log the lifecycle loops book into; bound here to the replay's clock
        and ``events`` telemetry (:mod:`sim.lifecycle_events`).
    """

    def __init__(
        self,
        world: World,
        policy: Policy,
        sink: TelemetrySink,
        *,
        micro_batch_s: float | None = None,
        watcher: MetricWatcher | None = None,
        audit_watcher: AuditWatcher | None = None,
        lifecycle: LifecycleLog | None = None,
    ) -> None:
        self.world = world
        self.policy = policy
        self.watcher = watcher
        self.alerts: list[BookedAlert] = []
        self.micro_batch_minutes = (
            max(1, round(micro_batch_s / 60.0)) if micro_batch_s is not None else 0
        )
        sc = world.scenario
        self.env = simpy.Environment()
        self.telemetry = TelemetryWriter(sink)
        self.lifecycle = lifecycle
        if lifecycle is not None:
            lifecycle.bind(self._lifecycle_row, lambda: float(self.env.now))
        self.start: datetime = world.workload.start
        self.epoch_s = int((self.start - datetime(1970, 1, 1)).total_seconds())
        self.n_minutes = world.n_minutes
        self.interval_s = sc.control.interval_s
        delay_rng = component_rng(world.seed, "provisioning")
        self.faults_rng = component_rng(world.seed, "faults")
        self.market_rng = component_rng(world.seed, "spot-market")
        availability_cfg = sc.pricing.spot_availability
        self.reclaim_fraction = getattr(availability_cfg, "reclaim_fraction", 1.0)
        self.cluster = Cluster(
            self.env,
            world.pools,
            world.prices,
            provisioning_delay=lambda: draw_delay(sc.control.provisioning_delay, delay_rng),
            pod_start_delay_s=sc.control.pod_start_delay_s,
            drain_s=sc.control.drain_s,
            notice_s=sc.pricing.interruption_notice_s,
            telemetry=self.telemetry,
            epoch_s=self.epoch_s,
        )
        self.audit: AuditFeed | None = None
        if world.audit is not None:
            self.audit = AuditFeed(
                world.audit,
                seed=world.seed,
                start=self.start,
                duration_s=world.duration_s,
                region=sc.cluster.region,
                telemetry=self.telemetry,
                watcher=audit_watcher,
            )
            self.cluster.listener = self.audit.on_cluster_event
        self.service = ServiceModel(
            world.latency,
            queue_limit_per_pod=sc.cluster.queue_limit_per_pod,
            request_timeout_ms=sc.cluster.request_timeout_ms,
        )
        self.truth = Truth.empty(self.n_minutes)
        minute_marks = np.arange(self.n_minutes + 1, dtype=np.float64) * 60.0
        self._minute_prices = {  # price at every minute mark, looked up in O(1)
            key: series.prices_usd_per_hour[
                np.maximum(np.searchsorted(series.times_s, minute_marks, side="right") - 1, 0)
            ]
            for key, series in world.prices.items()
        }
        # Per pool, a counter that moves whenever any of its AZ prices changes, so that
        # the per-AZ price map handed to policies is rebuilt only when a price moved.
        self._price_version: list[list[int]] = []
        for i, spec in enumerate(world.pools):
            moved = np.zeros(self.n_minutes + 1, dtype=np.int64)
            for az in spec.azs:
                moved[1:] += np.diff(self._minute_prices[(i, az)]) != 0
            self._price_version.append(np.cumsum(moved).tolist())
        self._price_maps: dict[int, tuple[int, Mapping[str, float]]] = {}
        self._market_version = 0  # moves whenever availability, storms or outages change
        self._market_maps: dict[int, tuple[int, Mapping[str, bool], tuple[str, ...]]] = {}
        self.backlog = 0.0
        self.az_down: dict[str, int] = {}
        self.storm: dict[str, int] = {}
        self.spot_up = {az: s.available_at(0.0) for az, s in world.availability.items()}
        self.gap_minutes: list[bool] = self._gap_minutes().tolist()
        self._offered: list[float] = world.workload.offered_rps.tolist()
        self.last_metrics: dict[str, PoolMetrics] | None = None
        self.last_metrics_minute = -1
        # The replay behind the adapter protocols; the policy's observation is built
        # from them by the same code as the live loop's (adapters.observation).
        self.cluster_log = ClusterLog(world.pools, self.cluster.listener)
        self.cluster.listener = self.cluster_log
        self.metrics_source = SimMetrics(self)
        self.node_groups = SimNodeGroups(self, self.cluster_log)
        self.spot_market = SimSpotMarket(self, self.cluster_log)
        self.audit_log = SimAuditLog(self)
        self._clock_at: tuple[float, datetime] = (0.0, self.start)
        self.observer = ObservationBuilder(
            self.metrics_source,
            self.node_groups,
            self.spot_market,
            names=[spec.name for spec in world.pools],
        )
        pod_rate_at_target = self.service.pod_rate_rps * sc.cluster.target_utilization
        self._needed_pods = world.workload.offered_rps / pod_rate_at_target
        self.context = ControlContext(
            scenario_id=sc.id,
            pools=world.pools,
            start=self.start,
            duration_s=world.duration_s,
            interval_s=self.interval_s,
            **service_context_fields(world),
            foresight=WorkloadForesight(
                world.workload.offered_rps, world.availability, self.reclaim_fraction
            )
            if policy.needs.foresight
            else None,
            history_offered_rps=world.workload.history_rps,
            history_gap=world.workload.history_filled,
        )

    def _lifecycle_row(self, event: str, reason: str) -> None:
        now = self.env.now
        self.telemetry.append(
            "events", (self.epoch_s + int(now), float(now), "", "", "", "", "", event, reason)
        )

    # ------------------------------------------------------------------ setup
    def _gap_minutes(self) -> np.ndarray:
        gaps = np.zeros(self.n_minutes, dtype=bool)
        for gap in self.world.scenario.faults.telemetry_gaps:
            i0 = int(gap.start_h * 60)
            i1 = math.ceil((gap.start_h + gap.duration_h) * 60)
            gaps[max(0, i0) : max(0, min(i1, self.n_minutes))] = True
        return gaps

    def _initial_fleet(self) -> None:
        """Every policy starts from the same warm fleet: pool minimums, plus enough nodes
        for minute 0's load at the target utilisation on the pool with the cheapest pod
        slot that can launch at t=0."""
        pools = self.cluster.pools
        need_pods = self._needed_pods[0] if self.n_minutes else 0.0

        def price_per_pod(pool: PoolRuntime) -> float:
            azs = [az for az in pool.spec.azs if self._launchable(pool, az)]
            if not azs:
                return math.inf
            return min(self._price(pool.index, az, 0) for az in azs) / pool.spec.pods_per_node

        cheapest = min(pools, key=lambda p: (price_per_pod(p), p.index))
        covered = sum(p.spec.min_nodes * p.spec.pods_per_node for p in pools if p is not cheapest)
        for pool in pools:
            count = pool.spec.min_nodes
            if pool is cheapest:
                extra = math.ceil(max(0.0, need_pods - covered) / pool.spec.pods_per_node)
                count = min(pool.spec.max_nodes, max(count, extra))
            for _ in range(count):
                az = self._placement_az(pool)
                if az is None:
                    break
                self.cluster.launch(pool.index, az, warm=True)

    # ------------------------------------------------------------------ run
    def run(self, progress: ProgressCallback | None = None) -> Truth:
        """Run the whole replay; telemetry goes to the sink, truth is returned."""
        self.policy.reset(self.context)
        self._initial_fleet()
        minute_control = self.interval_s % 60 == 0
        self.env.process(self._clock(progress, minute_control))
        if not minute_control:
            self.env.process(self._control_loop())
        for az, series in self.world.availability.items():
            self.env.process(self._spot_market(az, series.transitions()))
        for outage in self.world.scenario.faults.az_outages:
            self.env.process(self._az_outage(outage.az, outage.start_h, outage.duration_h))
        for storm in self.world.scenario.faults.spot_storms:
            self.env.process(
                self._spot_storm(
                    storm.azs, storm.start_h, storm.duration_h, storm.interrupt_fraction
                )
            )
        self.env.run(until=self.n_minutes * 60.0 + 1e-6)
        self.cluster.finish()
        self.telemetry.close()
        return self.truth

    def _clock(
        self, progress: ProgressCallback | None, minute_control: bool
    ) -> Generator[simpy.Event, Any, None]:
        control_every = max(1, int(self.interval_s // 60))
        failure_rate = self.world.scenario.faults.node_failure_rate_per_node_day / 86400.0
        if minute_control:
            self._control()
        for minute in range(self.n_minutes):
            yield self.env.timeout(60.0)
            if failure_rate > 0:
                self._random_failures(failure_rate * 60.0)
            self._advance_traffic(minute)
            if self.audit is not None:
                self.audit.flush(self.env.now)
            if progress is not None and (minute + 1) % 1440 == 0:
                progress((minute + 1) / 1440)
            if self.micro_batch_minutes and (minute + 1) % self.micro_batch_minutes == 0:
                self.telemetry.checkpoint(self.start + timedelta(seconds=self.env.now))
            if minute_control and (minute + 1) % control_every == 0 and minute + 1 < self.n_minutes:
                self._control()

    def _control_loop(self) -> Generator[simpy.Event, Any, None]:
        while True:
            self._control()
            yield self.env.timeout(self.interval_s)

    # ------------------------------------------------------------------ traffic + telemetry
    def _advance_traffic(self, minute: int) -> None:
        now = self.env.now
        pools = self.cluster.pools
        serving_nodes = [p.serving.take(now) / 60.0 for p in pools]
        billed_nodes = [p.billed.take(now) / 60.0 for p in pools]
        pods_by_pool = [n * p.spec.pods_per_node for n, p in zip(serving_nodes, pools, strict=True)]
        pods = sum(pods_by_pool)
        offered_rps = self._offered[minute]
        result = self.service.step(offered_rps, pods, self.backlog)
        self.backlog = result.backlog_requests
        t = self.truth
        t.offered[minute] = result.offered_requests
        t.served[minute] = result.served_requests
        t.dropped[minute] = result.dropped_requests
        t.p95_ms[minute] = result.p95_ms
        t.billed_nodes[minute] = sum(billed_nodes)
        t.needed_pods[minute] = self._needed_pods[minute]
        t.serving_pods[minute] = pods
        t.serving_nodes[minute] = sum(serving_nodes)
        if self.gap_minutes[minute]:
            return
        self._emit_minute(minute, result, pods_by_pool, pods)

    def _emit_minute(
        self, minute: int, result: MinuteTraffic, pods_by_pool: list[float], pods: float
    ) -> None:
        now = self.env.now
        ts = self.epoch_s + int(now) - 60
        sim_time = now - 60.0
        rows = self.telemetry.buffer("metrics")
        cap_rows = self.telemetry.buffer("capacity")
        c = self.world.scenario.cluster
        metrics: dict[str, PoolMetrics] = {}
        for pool, pool_pods in zip(self.cluster.pools, pods_by_pool, strict=True):
            spec = pool.spec
            share = pool_pods / pods if pods > 0 else 0.0
            running = pool.counts[STARTING] + pool.counts[SERVING] + pool.counts[NOTICED]
            offered_rps = result.offered_requests / 60.0 * share
            served_rps = result.served_requests / 60.0 * share
            if pods > 0:
                dropped = result.dropped_requests * share
            else:  # nothing serves: the load balancer's 503s are booked on the first pool
                dropped = result.dropped_requests if pool.index == 0 else 0.0
            error_rate = dropped / result.offered_requests if result.offered_requests > 0 else 0.0
            serving = pool_pods > 0
            cpu = result.utilization if serving else 0.0
            memory_gib = running * spec.memory_gib
            used_gib = running * c.node_overhead_memory_gib + pool_pods * c.pod_memory_gib * (
                0.6 + 0.4 * cpu
            )
            mem = min(1.0, used_gib / memory_gib) if memory_gib > 0 else 0.0
            p50 = result.p50_ms if serving else math.nan
            p95 = result.p95_ms if serving else math.nan
            queue = result.backlog_requests * share
            is_spot = spec.capacity_type == "spot"
            spot_available, _ = self._market_map(pool)
            rows.append(
                (
                    ts,
                    sim_time,
                    spec.name,
                    offered_rps,
                    served_rps,
                    dropped,
                    error_rate,
                    cpu,
                    mem,
                    served_rps * c.bytes_per_request,
                    p50,
                    p95,
                    queue,
                    pool_pods,
                    running,
                    0 if is_spot else running,
                    running if is_spot else 0,
                )
            )
            metrics[spec.name] = PoolMetrics(
                request_rate_rps=offered_rps,
                cpu_utilization=cpu,
                response_time_p95_ms=p95,
                error_rate=error_rate,
                queue_depth=queue,
                pod_count=pool_pods,
            )
            prices = self._price_map(pool)
            for az in spec.azs:
                counts = pool.by_az[az]
                cap_rows.append(
                    (
                        ts,
                        sim_time,
                        spec.name,
                        az,
                        spec.capacity_type,
                        spec.instance_type,
                        counts[PENDING],
                        counts[STARTING] + counts[SERVING] + counts[NOTICED],
                        counts[DRAINING],
                        prices[az],
                        spec.on_demand_usd_per_hour,
                        spot_available[az],
                    )
                )
        self.telemetry.maybe_flush("metrics")
        self.telemetry.maybe_flush("capacity")
        self.last_metrics = metrics
        self.last_metrics_minute = minute
        if self.watcher is not None:
            self._watch(self.watcher, ts, metrics)

    def _watch(self, watcher: MetricWatcher, ts: int, metrics: Mapping[str, PoolMetrics]) -> None:
        """Hand the minute's metrics to the watcher; book its alerts as events (now)."""
        now = self.env.now
        specs = {p.spec.name: p.spec for p in self.cluster.pools}
        for alert in watcher.observe(float(ts), metrics):
            spec = specs[alert.pool]
            reason = f"{alert.metric} score={alert.score:.4f}"
            self.telemetry.append(
                "events",
                (
                    self.epoch_s + int(now),
                    float(now),
                    "",
                    spec.name,
                    "",
                    spec.capacity_type,
                    spec.instance_type,
                    ALERT_EVENT,
                    reason,
                ),
            )
            self.alerts.append(BookedAlert(float(now), alert.pool, alert.metric, alert.score))

    # ------------------------------------------------------------------ control
    def clock(self) -> datetime:
        """The simulated time now (the start plus ``env.now`` seconds)."""
        now = self.env.now
        if now != self._clock_at[0]:
            self._clock_at = (now, self.start + timedelta(seconds=now))
        return self._clock_at[1]

    def _observe(self) -> Observation:
        return self.observer.observe(self.clock(), self.env.now)

    def _control(self) -> None:
        decision = self.policy.decide(self._observe())
        for record in decision.records:
            self.cluster.record_decision(str(record.get("pool", "")), json.dumps(record))
        self._apply(decision)

    def _apply(self, decision: Decision) -> None:
        """Each pool to the decision's size clamped to [min, max] (a pool absent keeps its
        size), or its zones to their counts, through :class:`SimNodeGroups`."""
        groups = self.node_groups
        for pool in self.cluster.pools:
            spec = pool.spec
            by_az = decision.desired_by_az.get(spec.name)
            if by_az is not None:
                total = sum(max(0, int(by_az.get(az, pool.active_by_az[az]))) for az in spec.azs)
                total = min(spec.max_nodes, max(spec.min_nodes, total))
                groups.set_desired(spec.name, total, by_az)
                continue
            want = int(decision.desired_nodes.get(spec.name, pool.active))
            want = min(spec.max_nodes, max(spec.min_nodes, want))
            if want != pool.active:
                groups.set_desired(spec.name, want)

    def _apply_by_az(self, pool: PoolRuntime, by_az: Mapping[str, int]) -> None:
        """Reconcile each AZ of ``pool`` to its count, within the pool's [min, max]."""
        spec = pool.spec
        for az in spec.azs:  # scale-in first, so the pool maximum has room for launches
            want = max(0, int(by_az.get(az, pool.active_by_az[az])))
            if want < pool.active_by_az[az] and pool.active > spec.min_nodes:
                cut = min(pool.active_by_az[az] - want, pool.active - spec.min_nodes)
                self.cluster.scale_in(pool.index, cut, az)
        for az in spec.azs:
            want = max(0, int(by_az.get(az, pool.active_by_az[az])))
            grow = min(want - pool.active_by_az[az], spec.max_nodes - pool.active)
            if grow <= 0:
                continue
            if not self._launchable(pool, az):
                self.cluster.launch_failed(pool.index, self._az_reason(az))
                continue
            for _ in range(grow):
                self.cluster.launch(pool.index, az)

    def _price(self, pool_index: int, az: str, minute: int) -> float:
        """Price (USD/hour) in force at the start of ``minute``."""
        return float(self._minute_prices[(pool_index, az)][minute])  # cold path

    def _price_map(self, pool: PoolRuntime) -> Mapping[str, float]:
        """Price (USD/hour) per AZ in force now, rebuilt only when a price moved."""
        now = self.env.now
        if now % 60.0 != 0.0:
            return MappingProxyType(
                {az: self.world.prices[(pool.index, az)].price_at(now) for az in pool.spec.azs}
            )
        minute = int(now // 60)
        version = self._price_version[pool.index][minute]
        cached = self._price_maps.get(pool.index)
        if cached is None or cached[0] != version:
            prices = {az: self._price(pool.index, az, minute) for az in pool.spec.azs}
            cached = (version, MappingProxyType(prices))
            self._price_maps[pool.index] = cached
        return cached[1]

    def _market_map(self, pool: PoolRuntime) -> tuple[Mapping[str, bool], tuple[str, ...]]:
        """(spot available per AZ, launchable AZs), rebuilt only when the market moved."""
        cached = self._market_maps.get(pool.index)
        if cached is None or cached[0] != self._market_version:
            is_spot = pool.spec.capacity_type == "spot"
            available = {az: self._spot_available(az) if is_spot else True for az in pool.spec.azs}
            launchable = tuple(az for az in pool.spec.azs if self._launchable(pool, az))
            cached = (self._market_version, MappingProxyType(available), launchable)
            self._market_maps[pool.index] = cached
        return cached[1], cached[2]

    # ------------------------------------------------------------------ placement
    def _spot_available(self, az: str) -> bool:
        return self.spot_up.get(az, True) and not self.storm.get(az, 0)

    def _launchable(self, pool: PoolRuntime, az: str) -> bool:
        if self.az_down.get(az, 0):
            return False
        return pool.spec.capacity_type != "spot" or self._spot_available(az)

    def _placement_az(self, pool: PoolRuntime) -> str | None:
        """The launchable AZ with the fewest active nodes of the pool (balanced, like an ASG)."""
        best: str | None = None
        for az in pool.spec.azs:
            if self._launchable(pool, az) and (
                best is None or pool.active_by_az[az] < pool.active_by_az[best]
            ):
                best = az
        return best

    def _az_reason(self, az: str) -> str:
        if self.az_down.get(az, 0):
            return f"{az} is down"
        return f"InsufficientInstanceCapacity: no spot capacity in {az}"

    def _no_az_reason(self, pool: PoolRuntime) -> str:
        if all(self.az_down.get(az, 0) for az in pool.spec.azs):
            return "every AZ of the pool is down"
        return "InsufficientInstanceCapacity: no spot capacity in any AZ of the pool"

    # ------------------------------------------------------------------ market + faults
    def _spot_nodes_in(self, az: str) -> list[Node]:
        nodes: list[Node] = []
        for pool in self.cluster.pools:
            if pool.spec.capacity_type == "spot":
                nodes.extend(
                    n
                    for n in pool.nodes.values()
                    if n.az == az and n.state in (PENDING, STARTING, SERVING)
                )
        return nodes

    def _reclaim(self, az: str, fraction: float, reason: str) -> None:
        """Send interruption notices to ``fraction`` of the spot nodes in ``az`` (seeded)."""
        nodes = self._spot_nodes_in(az)
        for i in reclaimed_indices(len(nodes), fraction, self.market_rng):
            self.cluster.notice(nodes[i], reason)

    def _spot_market(
        self, az: str, transitions: list[tuple[float, bool]]
    ) -> Generator[simpy.Event, Any, None]:
        for t, available in transitions:
            if t >= self.n_minutes * 60.0:
                return
            yield self.env.timeout(t - self.env.now)
            self.spot_up[az] = available
            self._market_version += 1
            if not available:
                self._reclaim(
                    az, self.reclaim_fraction, "spot capacity reclaimed (availability trace)"
                )

    def _az_outage(
        self, az: str, start_h: float, duration_h: float
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(start_h * 3600.0)
        self.az_down[az] = self.az_down.get(az, 0) + 1
        self._market_version += 1
        for pool in self.cluster.pools:
            for node in [n for n in pool.nodes.values() if n.az == az]:
                self.cluster.fail(node, f"AZ outage in {az}")
        yield self.env.timeout(duration_h * 3600.0)
        self.az_down[az] -= 1
        self._market_version += 1

    def _spot_storm(
        self, azs: list[str], start_h: float, duration_h: float, fraction: float
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(start_h * 3600.0)
        for az in azs:
            self.storm[az] = self.storm.get(az, 0) + 1
            self._market_version += 1
            self._reclaim(az, fraction, f"spot interruption storm in {az}")
        yield self.env.timeout(duration_h * 3600.0)
        for az in azs:
            self.storm[az] -= 1
            self._market_version += 1

    def _random_failures(self, per_node_probability: float) -> None:
        for pool in self.cluster.pools:
            n = pool.counts[STARTING] + pool.counts[SERVING]
            if n == 0:
                continue
            k = int(self.faults_rng.poisson(per_node_probability * n))
            if k == 0:
                continue
            candidates = [x for x in pool.nodes.values() if x.state in (STARTING, SERVING)]
            chosen = self.faults_rng.choice(
                len(candidates), size=min(k, len(candidates)), replace=False
            )
            for i in sorted(chosen):
                self.cluster.fail(candidates[i], "instance failure (status check)")
