"""The replay: a SimPy world in which a policy runs a cluster against real load.

Processes (time unit: seconds of simulated time):

- the **clock** ticks once per minute: it advances the fluid traffic model over the
  minute that just ended, injects random node failures, emits that minute's metrics
  and capacity rows, and (when the control interval is a whole number of minutes)
  runs the control loop right after, so a decision always sees the minute just ended;
- the **control loop** (its own process when the interval is not a whole number of
  minutes) builds an :class:`~sim.control.Observation`, asks the policy, and
  reconciles each pool towards the desired count;
- the **spot market**: one process per AZ walks its availability trace; when spot
  capacity vanishes every spot node there gets a 2-minute interruption notice;
- **faults**: AZ outages, spot storms, telemetry gaps, each a process on its window.

Node lifecycle and billing live in :mod:`sim.cluster`; the fluid model in
:mod:`sim.traffic`. The replay keeps per-minute ground truth (offered, served,
dropped, p95, billed and needed capacity) to score the run; the telemetry is what a
real monitoring pipeline would have delivered, gaps included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import simpy

from sim.cluster import DRAINING, NOTICED, PENDING, SERVING, STARTING, Cluster, Node, PoolRuntime
from sim.control import (
    ControlContext,
    Decision,
    Observation,
    Policy,
    PoolMetrics,
    PoolState,
)
from sim.seeding import component_rng
from sim.telemetry import TelemetrySink, TelemetryWriter
from sim.traffic import MinuteTraffic, ServiceModel
from sim.world import World, delay_bounds, draw_delay

ProgressCallback = Callable[[float], None]  # called with simulated days done


@dataclass(frozen=True, slots=True)
class WorkloadForesight:
    """Perfect knowledge of the offered load, handed to the oracle limits."""

    offered: np.ndarray  # requests/s per minute

    def offered_rps(self, t0_s: float, t1_s: float) -> np.ndarray:
        i0 = max(0, int(t0_s // 60))
        i1 = min(self.offered.size, max(i0 + 1, int(math.ceil(t1_s / 60))))
        return self.offered[i0:i1]

    @property
    def peak_offered_rps(self) -> float:
        return float(self.offered.max())


@dataclass(slots=True)
class Truth:
    """Per-minute ground truth of a replay (what really happened, gaps or not)."""

    offered: np.ndarray
    served: np.ndarray
    dropped: np.ndarray
    p95_ms: np.ndarray
    billed_pods: np.ndarray  # time-weighted pod slots on billed nodes
    billed_nodes: np.ndarray  # time-weighted billed nodes
    needed_pods: np.ndarray  # pods the offered load needs at the target utilisation

    @classmethod
    def empty(cls, n: int) -> Truth:
        return cls(*(np.zeros(n) for _ in range(7)))


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
    """

    def __init__(self, world: World, policy: Policy, sink: TelemetrySink) -> None:
        self.world = world
        self.policy = policy
        sc = world.scenario
        self.env = simpy.Environment()
        self.telemetry = TelemetryWriter(sink)
        self.start: datetime = world.workload.start
        self.epoch_s = int((self.start - datetime(1970, 1, 1)).total_seconds())
        self.n_minutes = world.n_minutes
        self.interval_s = sc.control.interval_s
        delay_rng = component_rng(world.seed, "provisioning")
        self.faults_rng = component_rng(world.seed, "faults")
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
        self.service = ServiceModel(
            world.latency,
            queue_limit_per_pod=sc.cluster.queue_limit_per_pod,
            request_timeout_ms=sc.cluster.request_timeout_ms,
        )
        self.truth = Truth.empty(self.n_minutes)
        self.backlog = 0.0
        self.az_down: dict[str, int] = {}
        self.storm: dict[str, int] = {}
        self.spot_up = {az: s.available_at(0.0) for az, s in world.availability.items()}
        self.gap_minutes = self._gap_minutes()
        self.last_metrics: dict[str, PoolMetrics] | None = None
        self.last_metrics_minute = -1
        self._interruptions_seen = [0] * len(world.pools)
        self._failures_seen = [0] * len(world.pools)
        pod_rate_at_target = self.service.pod_rate_rps * sc.cluster.target_utilization
        self._needed_pods = world.workload.offered_rps / pod_rate_at_target
        median_delay, max_delay = delay_bounds(sc.control.provisioning_delay)
        self.context = ControlContext(
            scenario_id=sc.id,
            pools=world.pools,
            start=self.start,
            duration_s=world.duration_s,
            interval_s=self.interval_s,
            target_utilization=sc.cluster.target_utilization,
            pod_vcpu=sc.cluster.pod_vcpu,
            rps_per_vcpu=sc.cluster.rps_per_vcpu,
            service_rate_per_vcpu_rps=world.latency.service_rate_rps,
            slo_p95_latency_ms=sc.slo.p95_latency_ms,
            provisioning_delay_median_s=median_delay,
            provisioning_delay_max_s=max_delay,
            pod_start_delay_s=sc.control.pod_start_delay_s,
            interruption_notice_s=sc.pricing.interruption_notice_s,
            seed=world.seed,
            foresight=WorkloadForesight(world.workload.offered_rps)
            if getattr(policy, "uses_foresight", False)
            else None,
        )

    # ------------------------------------------------------------------ setup
    def _gap_minutes(self) -> np.ndarray:
        gaps = np.zeros(self.n_minutes, dtype=bool)
        for gap in self.world.scenario.faults.telemetry_gaps:
            i0 = int(gap.start_h * 60)
            i1 = int(math.ceil((gap.start_h + gap.duration_h) * 60))
            gaps[max(0, i0) : max(0, min(i1, self.n_minutes))] = True
        return gaps

    def _initial_fleet(self) -> None:
        """Every policy starts from the same warm fleet: pool minimums, plus enough
        on the first on-demand pool (else the first pool) for minute 0's load."""
        pools = self.cluster.pools
        first = next((p for p in pools if p.spec.capacity_type == "on-demand"), pools[0])
        need_pods = self._needed_pods[0] if self.n_minutes else 0.0
        for pool in pools:
            count = pool.spec.min_nodes
            if pool is first:
                covered = sum(p.spec.min_nodes * p.spec.pods_per_node for p in pools if p is not pool)
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
                self._spot_storm(storm.azs, storm.start_h, storm.duration_h, storm.interrupt_fraction)
            )
        self.env.run(until=self.n_minutes * 60.0 + 1e-6)
        self.cluster.finish()
        self.telemetry.close()
        return self.truth

    def _clock(self, progress: ProgressCallback | None, minute_control: bool) -> Iterator[simpy.Event]:
        control_every = max(1, int(self.interval_s // 60))
        failure_rate = self.world.scenario.faults.node_failure_rate_per_node_day / 86400.0
        if minute_control:
            self._control()
        for minute in range(self.n_minutes):
            yield self.env.timeout(60.0)
            if failure_rate > 0:
                self._random_failures(failure_rate * 60.0)
            self._advance_traffic(minute)
            if progress is not None and (minute + 1) % 1440 == 0:
                progress((minute + 1) / 1440)
            if minute_control and (minute + 1) % control_every == 0 and minute + 1 < self.n_minutes:
                self._control()

    def _control_loop(self) -> Iterator[simpy.Event]:
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
        offered_rps = float(self.world.workload.offered_rps[minute])
        result = self.service.step(offered_rps, pods, self.backlog)
        self.backlog = result.backlog_requests
        t = self.truth
        t.offered[minute] = result.offered_requests
        t.served[minute] = result.served_requests
        t.dropped[minute] = result.dropped_requests
        t.p95_ms[minute] = result.p95_ms
        t.billed_nodes[minute] = sum(billed_nodes)
        t.billed_pods[minute] = sum(
            n * p.spec.pods_per_node for n, p in zip(billed_nodes, pools, strict=True)
        )
        t.needed_pods[minute] = self._needed_pods[minute]
        if self.gap_minutes[minute]:
            return
        self._emit_minute(minute, result, pods_by_pool, pods)

    def _emit_minute(
        self, minute: int, result: MinuteTraffic, pods_by_pool: list[float], pods: float
    ) -> None:
        now = self.env.now
        ts = self.epoch_s + int(now) - 60
        sim_time = now - 60.0
        cols = self.telemetry.columns("metrics")
        cap = self.telemetry.columns("capacity")
        c = self.world.scenario.cluster
        metrics: dict[str, PoolMetrics] = {}
        for pool, pool_pods in zip(self.cluster.pools, pods_by_pool, strict=True):
            spec = pool.spec
            share = pool_pods / pods if pods > 0 else 0.0
            running = pool.counts[STARTING] + pool.counts[SERVING] + pool.counts[NOTICED]
            offered_rps = result.offered_requests / 60.0 * share
            served_rps = result.served_requests / 60.0 * share
            dropped = result.dropped_requests * share if pods > 0 else (
                result.dropped_requests if pool.index == 0 else 0.0
            )
            error_rate = dropped / result.offered_requests if result.offered_requests > 0 else 0.0
            serving = pool_pods > 0
            cpu = result.utilization if serving else 0.0
            mem_alloc = running * spec.memory_gib
            mem = (
                (running * c.node_overhead_memory_gib + pool_pods * c.pod_memory_gib * (0.6 + 0.4 * cpu))
                / mem_alloc
                if mem_alloc > 0
                else 0.0
            )
            p95 = result.p95_ms if serving else math.nan
            cols["timestamp"].append(ts)
            cols["sim_time_s"].append(sim_time)
            cols["pool"].append(spec.name)
            cols["request_rate_rps"].append(offered_rps)
            cols["served_rps"].append(served_rps)
            cols["dropped_requests"].append(dropped)
            cols["error_rate"].append(error_rate)
            cols["cpu_utilization"].append(cpu)
            cols["memory_utilization"].append(min(1.0, mem))
            cols["network_bytes_per_s"].append(served_rps * c.bytes_per_request)
            cols["response_time_p50_ms"].append(result.p50_ms if serving else math.nan)
            cols["response_time_p95_ms"].append(p95)
            cols["queue_depth"].append(result.backlog_requests * share)
            cols["pod_count"].append(pool_pods)
            cols["node_count"].append(running)
            is_spot = spec.capacity_type == "spot"
            cols["node_count_on_demand"].append(0 if is_spot else running)
            cols["node_count_spot"].append(running if is_spot else 0)
            metrics[spec.name] = PoolMetrics(
                request_rate_rps=offered_rps,
                cpu_utilization=cpu,
                response_time_p95_ms=p95,
                error_rate=error_rate,
                queue_depth=result.backlog_requests * share,
                pod_count=pool_pods,
            )
            by_az = self._counts_by_az(pool)
            for az in spec.azs:
                pending, running_az, draining = by_az[az]
                cap["timestamp"].append(ts)
                cap["sim_time_s"].append(sim_time)
                cap["pool"].append(spec.name)
                cap["az"].append(az)
                cap["capacity_type"].append(spec.capacity_type)
                cap["instance_type"].append(spec.instance_type)
                cap["nodes_pending"].append(pending)
                cap["nodes_running"].append(running_az)
                cap["nodes_draining"].append(draining)
                cap["price_usd_per_hour"].append(self.world.prices[(pool.index, az)].price_at(now))
                cap["on_demand_usd_per_hour"].append(spec.on_demand_usd_per_hour)
                cap["spot_available"].append(self._spot_available(az) if is_spot else True)
        self.telemetry.maybe_flush("metrics")
        self.telemetry.maybe_flush("capacity")
        self.last_metrics = metrics
        self.last_metrics_minute = minute

    @staticmethod
    def _counts_by_az(pool: PoolRuntime) -> dict[str, tuple[int, int, int]]:
        counts = {az: [0, 0, 0] for az in pool.spec.azs}
        for node in pool.nodes.values():
            slot = 0 if node.state == PENDING else 2 if node.state == DRAINING else 1
            counts[node.az][slot] += 1
        return {az: (a, b, c) for az, (a, b, c) in counts.items()}

    # ------------------------------------------------------------------ control
    def _observe(self) -> Observation:
        now = self.env.now
        minute_done = int(now // 60) - 1
        fresh = self.last_metrics_minute == minute_done and minute_done >= 0
        age = (
            now - (self.last_metrics_minute + 1) * 60.0 if self.last_metrics_minute >= 0 else math.inf
        )
        states: dict[str, PoolState] = {}
        for pool in self.cluster.pools:
            spec = pool.spec
            is_spot = spec.capacity_type == "spot"
            interruptions = pool.interruptions - self._interruptions_seen[pool.index]
            failures = pool.launch_failures - self._failures_seen[pool.index]
            self._interruptions_seen[pool.index] = pool.interruptions
            self._failures_seen[pool.index] = pool.launch_failures
            states[spec.name] = PoolState(
                name=spec.name,
                nodes_pending=pool.counts[PENDING],
                nodes_running=pool.counts[STARTING] + pool.counts[SERVING],
                nodes_leaving=pool.counts[NOTICED] + pool.counts[DRAINING],
                nodes_by_az=dict(pool.active_by_az),
                price_usd_per_hour={
                    az: self.world.prices[(pool.index, az)].price_at(now) for az in spec.azs
                },
                spot_available={az: self._spot_available(az) if is_spot else True for az in spec.azs},
                launchable_azs=tuple(az for az in spec.azs if self._launchable(pool, az)),
                interruptions_last_interval=interruptions,
                launch_failures_last_interval=failures,
            )
        return Observation(
            sim_time_s=now,
            now=self.start + timedelta(seconds=now),
            metrics=self.last_metrics if fresh else None,
            metrics_age_s=age,
            pools=states,
        )

    def _control(self) -> None:
        decision = self.policy.decide(self._observe())
        self._apply(decision)

    def _apply(self, decision: Decision) -> None:
        for pool in self.cluster.pools:
            spec = pool.spec
            want = int(decision.desired_nodes.get(spec.name, pool.active))
            want = min(spec.max_nodes, max(spec.min_nodes, want))
            have = pool.active
            if want > have:
                for _ in range(want - have):
                    az = self._placement_az(pool)
                    if az is None:
                        self.cluster.launch_failed(pool.index, self._no_az_reason(pool))
                        break
                    self.cluster.launch(pool.index, az)
            elif want < have:
                self.cluster.scale_in(pool.index, have - want)

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
                    n for n in pool.nodes.values() if n.az == az and n.state in (PENDING, STARTING, SERVING)
                )
        return nodes

    def _spot_market(self, az: str, transitions: list[tuple[float, bool]]) -> Iterator[simpy.Event]:
        for t, available in transitions:
            if t >= self.n_minutes * 60.0:
                return
            yield self.env.timeout(t - self.env.now)
            self.spot_up[az] = available
            if not available:
                for node in self._spot_nodes_in(az):
                    self.cluster.notice(node, "spot capacity reclaimed (availability trace)")

    def _az_outage(self, az: str, start_h: float, duration_h: float) -> Iterator[simpy.Event]:
        yield self.env.timeout(start_h * 3600.0)
        self.az_down[az] = self.az_down.get(az, 0) + 1
        for pool in self.cluster.pools:
            for node in [n for n in pool.nodes.values() if n.az == az]:
                self.cluster.fail(node, f"AZ outage in {az}")
        yield self.env.timeout(duration_h * 3600.0)
        self.az_down[az] -= 1

    def _spot_storm(
        self, azs: list[str], start_h: float, duration_h: float, fraction: float
    ) -> Iterator[simpy.Event]:
        yield self.env.timeout(start_h * 3600.0)
        for az in azs:
            self.storm[az] = self.storm.get(az, 0) + 1
            nodes = self._spot_nodes_in(az)
            k = int(math.ceil(fraction * len(nodes)))
            if k:
                chosen = self.faults_rng.choice(len(nodes), size=k, replace=False)
                for i in sorted(chosen):
                    self.cluster.notice(nodes[i], f"spot interruption storm in {az}")
        yield self.env.timeout(duration_h * 3600.0)
        for az in azs:
            self.storm[az] -= 1

    def _random_failures(self, per_node_probability: float) -> None:
        for pool in self.cluster.pools:
            n = pool.counts[STARTING] + pool.counts[SERVING]
            if n == 0:
                continue
            k = int(self.faults_rng.poisson(per_node_probability * n))
            if k == 0:
                continue
            candidates = [x for x in pool.nodes.values() if x.state in (STARTING, SERVING)]
            chosen = self.faults_rng.choice(len(candidates), size=min(k, len(candidates)), replace=False)
            for i in sorted(chosen):
                self.cluster.fail(candidates[i], "instance failure (status check)")
