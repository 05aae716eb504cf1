"""The fleet model of :mod:`agents.cost.fleet` over a batch of fleets, as node counts.

:class:`~agents.cost.fleet.FleetModel` keeps every node and a heap of timed events. Here
each fleet is counts per slot: pending nodes by age (minutes since launch), running
(starting or serving) nodes, and the billed and serving seconds still owed by nodes on
their way out (noticed, draining), per coming minute. One :meth:`FleetBatch.advance` is
one minute for every fleet at once, with the same rules:

- provisioning: a pending node of age ``a`` becomes ready in the minute with the
  probability that the scenario's delay lies in ``[60 a, 60 a + 60)`` given that it is
  at least ``60 a`` (one binomial draw per slot and age: the same distribution as one
  delay per node); it serves from its pod start on;
- scale-in (:meth:`FleetBatch.apply`): pending nodes are cancelled newest first, then
  running nodes drain for ``drain_s`` (billed, not serving), as ``FleetModel._scale_in``;
- reclaims (availability drops, spot storms): ``ceil(share x n)`` of the AZ's pending
  and running spot nodes, drawn without replacement (multivariate hypergeometric over
  slots and states, as ``reclaimed_indices`` draws nodes), get a notice at the event's
  second: billed until ``notice_s`` later, running ones serving until then;
- AZ outages terminate every node of the AZ at the outage's second;
- random node failures at the scenario's rate over running nodes, at the minute's end;
- billing per second at the price in force in the minute (prices change at minute
  marks), with EC2's 60-second minimum; traffic is :class:`sim.traffic.ServiceModel`'s
  fluid model, evaluated on arrays.

What counts cannot tell apart, averaged or simplified (their joint effect is measured
by the fidelity tests: episode cost within 0.1% of the single environment's):

- the seconds a node becoming ready serves in its first minutes are the expected ones
  given the minute it became ready in (the count of ready nodes is drawn exactly);
- within a minute, nodes becoming ready count as running from the minute's start: a
  reclaim at second ``x`` may hit one that was still pending at ``x``, and a reclaimed
  running node serves under notice even if it was still starting; a drained node that
  was still starting keeps its expected unserved seconds;
- nodes already leaving (noticed, draining) when an outage hits their AZ are billed to
  the end of that minute (FleetModel stops their bill at the outage's second);
- at most one failure per fleet and minute, with probability ``1 - exp(-p n)`` (two or
  more have a probability of about ``(p n)^2 / 2``: 3e-7 per minute for 120 nodes at the
  shipped 0.01 failures per node-day).

Shapes: ``E`` fleets, ``K`` slots, ``A`` pending ages. Times seconds, prices USD/hour,
costs USD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from agents.cost.fleet import MIN_BILLED_S
from agents.cost.plan import Layout
from agents.cost.vector_market import MarketArrays, MarketConstants
from sim.scenario import LognormalDelay, UniformDelay
from sim.traffic import ServiceModel

QUADRATURE_POINTS = 20_000
"""Delay quantiles used to tabulate the readiness hazard and the unserved seconds."""


def _delay_quantiles(delay: UniformDelay | LognormalDelay) -> np.ndarray:
    """Provisioning delays (s) at ``QUADRATURE_POINTS`` evenly spaced quantiles."""
    q = (np.arange(QUADRATURE_POINTS) + 0.5) / QUADRATURE_POINTS
    if isinstance(delay, UniformDelay):
        return delay.low_s + q * (delay.high_s - delay.low_s)
    z = np.array([NormalDist().inv_cdf(float(x)) for x in q])
    return np.clip(delay.median_s * np.exp(delay.sigma * z), delay.low_s, delay.high_s)


def owed_seconds(until_s: np.ndarray | float, minutes: int) -> np.ndarray:
    """Seconds of each of the next ``minutes`` minutes (from the current one) before
    ``until_s`` (seconds after the current minute's start): shape ``(..., minutes)``."""
    marks = 60.0 * np.arange(minutes)
    return np.clip(np.asarray(until_s, dtype=np.float64)[..., None] - marks, 0.0, 60.0)


@dataclass(frozen=True, slots=True)
class FleetConstants:
    """The scenario's rules as arrays."""

    ppn: np.ndarray  # (K,) pods per node
    ppn_f: np.ndarray  # (K,) the same, float64
    is_spot: np.ndarray  # (K,) bool
    spot_f: np.ndarray  # (K,) 1.0 for spot slots
    pool_slots: tuple[np.ndarray, ...]
    pool_min: tuple[int, ...]
    pool_max: tuple[int, ...]
    az_spot_slots: np.ndarray  # (Z, P) spot slot indices per AZ, -1 padded
    az_slots: np.ndarray  # (Z, K) bool: slot k is in AZ z
    hazard: np.ndarray  # (A,) P(ready in the minute at age a | pending at age a)
    unserved: np.ndarray  # (A, L) expected unserved seconds in minutes 0.. after readiness
    drain_s: float
    notice_s: float
    ring: int  # minutes of owed seconds kept
    pod_rate_rps: float  # requests/s a pod serves flat out
    plan_rate_rps: float  # requests/s a pod carries at the target utilisation
    queue_limit_per_pod: float
    timeout_ms: float
    service_p95_ms: float
    saturated_p95_ms: float
    rho_grid: np.ndarray
    p95_table_ms: np.ndarray  # M/M/k p95 (ms) on rho_grid, base latency included
    slo_p95_ms: float

    @classmethod
    def of(
        cls,
        layout: Layout,
        mc: MarketConstants,
        *,
        service: ServiceModel,
        slo_p95_ms: float,
        delay: UniformDelay | LognormalDelay,
        pod_start_delay_s: float,
        drain_s: float,
        notice_s: float,
    ) -> FleetConstants:
        delays = _delay_quantiles(delay)
        ages = int(delay.high_s // 60.0) + 1
        age = np.minimum((delays // 60.0).astype(np.int64), ages - 1)
        counts = np.bincount(age, minlength=ages).astype(np.float64)
        at_least = counts[::-1].cumsum()[::-1]
        hazard = np.divide(counts, at_least, out=np.zeros(ages), where=at_least > 0)
        span = math.ceil((60.0 + pod_start_delay_s) / 60.0) + 1
        serve_at = delays - 60.0 * age + pod_start_delay_s  # from the start of the ready minute
        lost = np.minimum(owed_seconds(serve_at, span), 60.0)
        unserved = np.zeros((ages, span))
        for a in range(ages):
            if counts[a]:
                unserved[a] = lost[age == a].mean(axis=0)
        nz = len(mc.azs)
        spot_by_az = [[k for k in layout.spot_slots if mc.slot_az[k] == z] for z in range(nz)]
        width = max(1, max(len(ks) for ks in spot_by_az))
        az_spot = np.full((nz, width), -1, dtype=np.int64)
        for z, ks in enumerate(spot_by_az):
            az_spot[z, : len(ks)] = ks
        latency = service.latency
        service_p95 = latency.base_latency_ms + latency.service_p95_ms()
        full_queue_ms = 1000.0 * service.queue_limit_per_pod / service.pod_rate_rps
        return cls(
            ppn=np.array([s.pods_per_node for s in layout.slots], dtype=np.int64),
            ppn_f=np.array([s.pods_per_node for s in layout.slots], dtype=np.float64),
            is_spot=np.array([s.spot for s in layout.slots], dtype=bool),
            spot_f=np.array([s.spot for s in layout.slots], dtype=np.float64),
            pool_slots=tuple(np.array(ks, dtype=np.int64) for ks in layout.pool_slots),
            pool_min=tuple(p.min_nodes for p in layout.pools),
            pool_max=tuple(p.max_nodes for p in layout.pools),
            az_spot_slots=az_spot,
            az_slots=mc.slot_az[None, :] == np.arange(nz)[:, None],
            hazard=hazard,
            unserved=unserved,
            drain_s=drain_s,
            notice_s=notice_s,
            ring=math.ceil((60.0 + max(notice_s, drain_s, MIN_BILLED_S)) / 60.0) + 1,
            pod_rate_rps=service.pod_rate_rps,
            plan_rate_rps=mc.pod_rate_rps,
            queue_limit_per_pod=float(service.queue_limit_per_pod),
            timeout_ms=service.request_timeout_ms,
            service_p95_ms=service_p95,
            saturated_p95_ms=min(latency.p95_ms(1.0), service_p95 + full_queue_ms),
            # the model's own interpolation table
            rho_grid=latency.p95_table_ms()[0],
            p95_table_ms=latency.p95_table_ms()[1],
            slo_p95_ms=slo_p95_ms,
        )


@dataclass(slots=True)
class MinuteBatch:
    """One simulated minute of every fleet (arrays ``(E,)``)."""

    cost_usd: np.ndarray
    spot_cost_usd: np.ndarray
    ok: np.ndarray
    p95_ms: np.ndarray
    dropped: np.ndarray
    offered_rps: np.ndarray
    cpu: np.ndarray
    interruptions: np.ndarray
    serving_pods: np.ndarray  # time-weighted over the minute


class FleetBatch:
    """``E`` fleets under their market windows (see the module docstring)."""

    def __init__(self, fc: FleetConstants, n_envs: int) -> None:
        self.fc = fc
        k, ages, ring = fc.ppn.size, fc.hazard.size, fc.ring
        # age- and minute-major: sums over ages and shifts move whole (E, K) blocks
        self.pend = np.zeros((ages, n_envs, k), dtype=np.int64)
        self.run = np.zeros((n_envs, k), dtype=np.int64)
        self.unserved = np.zeros((fc.unserved.shape[1], n_envs, k))  # node-seconds
        self.owed_bill = np.zeros((ring, n_envs, k))  # node-seconds
        self.owed_serve = np.zeros((ring, n_envs, k))  # node-seconds serving
        self.backlog = np.zeros(n_envs)
        self.minute = np.zeros(n_envs, dtype=np.int64)
        self.interruptions = np.zeros(n_envs, dtype=np.int64)
        self.rows = np.arange(n_envs)
        self._drain_owed = owed_seconds(fc.drain_s, fc.ring)

    # ------------------------------------------------------------------ episodes
    def reset(self, rows: np.ndarray, market: MarketArrays) -> None:
        """Start fleets ``rows`` on their windows with the simulator's warm fleet: pool
        minimums plus minute 0's load on the pool with the cheapest launchable pod slot,
        each pool's nodes spread evenly (lowest slot first) over its launchable slots."""
        fc = self.fc
        self.run[rows] = 0
        for a in (self.pend, self.unserved, self.owed_bill, self.owed_serve):
            a[:, rows] = 0
        self.backlog[rows] = 0.0
        self.minute[rows] = 0
        self.interruptions[rows] = 0
        launch = market.launchable[rows, 0]  # (R, K)
        price = market.price[rows, 0]
        need = market.offered[rows, 0] / fc.plan_rate_rps
        per_pod = np.stack(
            [
                np.where(launch[:, ks], price[:, ks], np.inf).min(axis=1) / fc.ppn[ks[0]]
                for ks in fc.pool_slots
            ],
            axis=1,
        )
        cheapest = np.argmin(per_pod, axis=1)  # first of equals: the lowest pool index
        mins = np.array(
            [lo * fc.ppn[ks[0]] for ks, lo in zip(fc.pool_slots, fc.pool_min, strict=True)]
        )
        for i, ks in enumerate(fc.pool_slots):
            covered = mins.sum() - mins[i]
            extra = np.ceil(np.maximum(0.0, need - covered) / fc.ppn[ks[0]]).astype(np.int64)
            count = np.where(
                cheapest == i,
                np.minimum(fc.pool_max[i], np.maximum(fc.pool_min[i], extra)),
                fc.pool_min[i],
            )
            usable = launch[:, ks]
            n_usable = usable.sum(axis=1)
            each = count // np.maximum(n_usable, 1)
            extra_first = count - each * n_usable
            order = np.cumsum(usable, axis=1) - 1  # position among usable slots
            nodes = np.where(usable, each[:, None] + (order < extra_first[:, None]), 0)
            self.run[rows[:, None], ks[None, :]] = nodes

    # ------------------------------------------------------------------ what a tick shows
    def active(self) -> np.ndarray:
        """Pending + running nodes ``(E, K)``."""
        return self.run + self.pend.sum(axis=0)

    def pending(self) -> np.ndarray:
        """Pending nodes ``(E, K)``."""
        return self.pend.sum(axis=0)

    # ------------------------------------------------------------------ decisions
    def apply(self, desired: np.ndarray, launchable: np.ndarray) -> None:
        """Reconcile every slot to ``desired`` (``FleetModel.apply``): per pool, slot by
        slot, scale in while the pool is above its minimum, then launch (where
        launchable) while it is below its maximum; the slot-by-slot greedy is a cumsum."""
        fc = self.fc
        active = self.active()
        want = np.maximum(0, desired)
        cut = np.zeros_like(active)
        grow = np.zeros_like(active)
        for ks, lo, hi in zip(fc.pool_slots, fc.pool_min, fc.pool_max, strict=True):
            have = active[:, ks]
            pool_active = have.sum(axis=1)
            over = np.maximum(0, have - want[:, ks])
            room = np.maximum(0, pool_active - lo)[:, None]
            c = np.minimum(np.maximum(room - (np.cumsum(over, axis=1) - over), 0), over)
            under = np.where(launchable[:, ks], np.maximum(0, want[:, ks] - (have - c)), 0)
            space = (hi - pool_active + c.sum(axis=1))[:, None]
            cut[:, ks] = c
            grow[:, ks] = np.minimum(
                np.maximum(space - (np.cumsum(under, axis=1) - under), 0), under
            )
        if cut.any():
            self._scale_in(cut)
        self.pend[0] += grow

    def _scale_in(self, cut: np.ndarray) -> None:
        """``cut`` nodes per slot: pending ones newest first, then running ones drain."""
        pend = self.pend
        cancel = np.minimum(np.maximum(cut[None] - (np.cumsum(pend, axis=0) - pend), 0), pend)
        self.pend -= cancel
        drain = np.minimum(cut - cancel.sum(axis=0), self.run)
        self.run -= drain
        self.owed_bill += drain[None] * self._drain_owed[:, None, None]

    # ------------------------------------------------------------------ time
    def _ready(self, rng: np.random.Generator) -> None:
        fc = self.fc
        live = (self.pend > 0) & (fc.hazard > 0)[:, None, None]
        a, e, k = np.nonzero(live)
        if a.size == 0:
            return
        ready = np.zeros_like(self.pend)
        ready[a, e, k] = rng.binomial(self.pend[a, e, k], fc.hazard[a])
        self.pend -= ready
        self.run += ready.sum(axis=0)
        self.unserved += (fc.unserved.T @ ready.reshape(ready.shape[0], -1)).reshape(
            self.unserved.shape
        )

    def _reclaim(
        self,
        e: np.ndarray,
        z: np.ndarray,
        at_s: np.ndarray,
        share: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Notices for ``ceil(share x n)`` of the ``n`` pending and running spot nodes of
        AZ ``z`` in fleet ``e`` (one entry per event), at ``at_s`` into the minute."""
        fc = self.fc
        slots = fc.az_spot_slots[z]  # (V, P)
        real = slots >= 0
        safe = np.where(real, slots, 0)
        ee = e[:, None]
        counts = (
            np.concatenate(
                (np.moveaxis(self.pend[:, ee, safe], 0, -1), self.run[ee, safe][..., None]), axis=2
            )
            * real[..., None]
        )  # (V, P, A + 1)
        flat = counts.reshape(len(e), -1)
        total = flat.sum(axis=1)
        take = np.ceil(share * total - 1e-9).astype(np.int64)
        take = np.minimum(take, total)
        hit = np.zeros_like(flat)
        left = total.copy()
        need = take.copy()
        partial = take < total
        hit[~partial] = flat[~partial]  # the whole AZ: no draw
        need[~partial] = 0
        for c in np.nonzero(flat[partial].any(axis=0))[0].tolist():
            # multivariate hypergeometric, one state at a time
            good = flat[:, c]
            live = np.nonzero((need > 0) & (good > 0))[0]
            if live.size:
                draw = rng.hypergeometric(good[live], left[live] - good[live], need[live])
                hit[live, c] = draw
                need[live] -= draw
            left -= good
        hit = hit.reshape(counts.shape)
        owed = owed_seconds(at_s + fc.notice_s, fc.ring)  # (V, ring)
        for p in range(slots.shape[1]):  # (fleet, slot) pairs are distinct within a round
            ok = real[:, p]
            ev, kk = e[ok], slots[ok, p]
            h = hit[ok, p]
            self.pend[:, ev, kk] -= h[:, :-1].T
            self.run[ev, kk] -= h[:, -1]
            self.owed_bill[:, ev, kk] += (h.sum(axis=1)[:, None] * owed[ok]).T
            self.owed_serve[:, ev, kk] += (h[:, -1][:, None] * owed[ok]).T
        self.interruptions[e] += hit.sum(axis=(1, 2))  # one event per fleet and round

    def _outage(self, e: np.ndarray, z: np.ndarray, at_s: np.ndarray) -> None:
        """Every node of AZ ``z`` in fleet ``e`` terminates at ``at_s`` into the minute."""
        fc = self.fc
        ring = fc.ring
        for ev, zz, x in zip(e.tolist(), z.tolist(), at_s.tolist(), strict=True):
            ks = np.nonzero(fc.az_slots[zz])[0]
            young = self.pend[0, ev, ks]  # launched at this minute's start: 60 s minimum
            older = self.pend[1:, ev, ks].sum(axis=0) + self.run[ev, ks]
            self.owed_bill[1:, ev, ks] = 0.0
            self.owed_serve[1:, ev, ks] = 0.0
            self.owed_bill[:, ev, ks] += (
                young[:, None] * owed_seconds(max(x, MIN_BILLED_S), ring)
                + older[:, None] * owed_seconds(x, ring)
            ).T
            self.owed_serve[:, ev, ks] += (self.run[ev, ks][:, None] * owed_seconds(x, ring)).T
            self.pend[:, ev, ks] = 0
            self.run[ev, ks] = 0
            self.unserved[:, ev, ks] = 0.0

    def advance(self, market: MarketArrays, rng: np.random.Generator) -> MinuteBatch:
        """Simulate the next minute of every fleet."""
        fc, rows = self.fc, self.rows
        m = np.minimum(self.minute, market.offered.shape[1] - 1)  # a finished fleet idles
        self.interruptions[:] = 0
        self._ready(rng)
        first = market.event_first[rows, m]
        count = market.event_first[rows, m + 1] - first
        for r in range(int(count.max())):  # one event per fleet and round, in time order
            e = np.flatnonzero(count > r)
            at, z = market.event_at[first[e] + r], market.event_az[first[e] + r]
            share = market.event_share[first[e] + r]
            outage = np.isnan(share)
            if not outage.all():
                keep = ~outage
                self._reclaim(e[keep], z[keep], at[keep], share[keep], rng)
            if outage.any():
                self._outage(e[outage], z[outage], at[outage])
        # serving pod-seconds and billed node-seconds of the minute
        node_s = 60.0 * self.run - self.unserved[0] + self.owed_serve[0]
        pods = np.maximum(0.0, node_s @ fc.ppn_f) / 60.0
        billed = 60.0 * (self.run + self.pend.sum(axis=0)) + self.owed_bill[0]
        usd = billed * market.price[rows, m] / 3600.0
        cost = usd.sum(axis=1)
        spot_cost = usd @ fc.spot_f
        self._failures(market.failure_p, rng)
        out = self._traffic(market.offered[rows, m], pods)
        # the next minute
        self.pend[1:] = self.pend[:-1]
        self.pend[0] = 0
        for owed in (self.unserved, self.owed_bill, self.owed_serve):
            owed[:-1] = owed[1:]
            owed[-1] = 0.0
        self.minute += 1
        return MinuteBatch(
            cost_usd=cost,
            spot_cost_usd=spot_cost,
            ok=out[0],
            p95_ms=out[1],
            dropped=out[2],
            offered_rps=out[3],
            cpu=out[4],
            interruptions=self.interruptions.copy(),
            serving_pods=pods,
        )

    def _failures(self, p: np.ndarray, rng: np.random.Generator) -> None:
        """Random node failures at the end of the minute: at most one per fleet and
        minute, with probability ``1 - exp(-p n)`` over its ``n`` running nodes (``p`` per
        node-minute), in a slot drawn by running nodes (see the module docstring)."""
        if not (p > 0).any():
            return
        running = self.run.sum(axis=1)
        hit = np.flatnonzero(rng.random(p.size) < -np.expm1(-p * running))
        for e in hit.tolist():
            k = rng.choice(self.run.shape[1], p=self.run[e] / running[e])
            self.run[e, k] -= 1

    def _traffic(
        self, offered_rps: np.ndarray, pods: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``ServiceModel.step`` on arrays: (SLO ok, p95 ms, dropped requests, offered
        requests/s, utilisation); the backlog moves on."""
        fc = self.fc
        offered = offered_rps * 60.0
        some = pods > 0.0
        safe_pods = np.where(some, pods, 1.0)
        capacity = safe_pods * fc.pod_rate_rps
        wanting = offered + self.backlog
        served = np.minimum(wanting, capacity * 60.0)
        left = wanting - served
        dropped = np.maximum(0.0, left - fc.queue_limit_per_pod * safe_pods)
        left = left - dropped
        utilization = served / (capacity * 60.0)
        rho = offered_rps / capacity
        wait_ms = 1000.0 * (left / safe_pods) / fc.pod_rate_rps
        over = np.maximum(fc.service_p95_ms + wait_ms, fc.saturated_p95_ms)
        under = np.minimum(np.interp(rho, fc.rho_grid, fc.p95_table_ms), fc.saturated_p95_ms)
        p95 = np.where((left > 1e-9) | (rho >= 1.0), over, under)
        p95 = np.minimum(np.where(some, p95, fc.timeout_ms), fc.timeout_ms)
        dropped = np.where(some, dropped, wanting)
        self.backlog = np.where(some, left, 0.0)
        utilization = np.where(some, utilization, 0.0)
        ok = (p95 <= fc.slo_p95_ms) & (dropped < 0.5)
        return ok, p95, dropped, offered / 60.0, utilization
