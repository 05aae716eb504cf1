"""The episode-level cost optimum: a lower bound on what any policy could pay.

``hindsight`` (:mod:`agents.cost.heuristics`) is a per-tick rule with foresight; it is
not the limit. This module solves the whole episode at once with everything known (the
load of every minute, every slot's price every minute, when spot is on offer in each
AZ, the reclaims) as a linear programme (scipy's HiGHS), and its optimum is a *lower
bound* on the cost of any policy that meets the SLO in all but ``violation_minutes``
minutes: every constraint below is one that every run of the simulator (and of the fast
fleet model, :mod:`agents.cost.fleet`) satisfies, and every rule the simulator adds on top
of them (60 s minimum billing, draining, random provisioning delays, pods per node in
whole nodes, ...) only costs more.

Variables, per slot ``k`` (pool x AZ, :class:`~agents.cost.plan.Layout`) and minute ``t``
(all time-weighted over the minute, as the simulator integrates them):

``s[k, t]``
    serving nodes;
``w[k, t]``
    billed nodes that do not serve (booting, pods starting, draining, noticed);
    ``b = s + w`` are the billed nodes;
``z[t]``
    the share of minute ``t`` given up (a violation minute), ``0 <= z <= 1``.

Minimise ``sum price[k, t] / 60 * b[k, t]`` (USD; ``price`` the lowest USD/hour in
force during the minute, so per-second billing of a price step inside a minute is never
cheaper than the model) subject to:

1. **SLO capacity**: ``sum_k pods_per_node[k] s[k, t] >= need[t] (1 - z[t])`` and
   ``sum_t z[t] <= violation_minutes``. ``need[t]`` is the offered load over what one
   pod carries at the highest utilisation whose p95 meets the SLO with no backlog
   (:func:`slo_pod_capacity_rps`; a backlog only raises the latency). Minutes given up
   need nothing, and their backlog is ignored: both only lower the bound.
2. **Launch lead time** ``L`` (the *shortest* provisioning delay + the pod start, so
   the bound holds for every delay drawn): a node billed ``L`` before it serves. Per
   node, the rise of its serving share from minute ``t - 1`` to ``t`` is at most its
   non-serving share of those two minutes over ``min(1, L / 60 s)``; summed over nodes,
   ``s[t] - s[t-1] <= (w[t-1] + w[t]) / min(1, L / 60)``. For ``L >= 120 s`` also
   ``b[t] >= s[t + d]`` for ``1 <= d <= floor(L / 60) - 1`` (a node serving in minute
   ``t + d`` was launched before minute ``t`` began).
3. **Spot on offer**: no spot node is launched in an AZ while its spot capacity is not
   on offer (availability down, a spot storm, an AZ outage). For whole minutes inside
   such a stretch, the billed spot nodes cannot rise: ``b[k, t + 1] <= b[k, t]``; at the
   window's start (the warm fleet only uses launchable slots) they are 0.
4. **Reclaims**: a drop at ``tau`` notices ``ceil(f n)`` of the AZ's ``n`` active spot
   nodes, which stay billed until ``tau + notice``: through the last whole minute ``r``
   inside ``[tau, tau + notice)``. In the first minute ``q`` that starts after the
   notices end, the billed nodes are survivors, each billed through minute ``r``. So
   ``sum b[., q] <= (1 - f) sum b[., r]`` over the AZ's spot slots, applied only when
   minute ``q`` lies inside the stretch and no earlier notice or drain reaches into it.
5. **On-demand pool minimums**: ``sum_{k in pool} b[k, t] >= min_nodes``, except in
   minutes an AZ outage of the pool could leave it short until the next control tick.
6. **AZ outages** terminate every node of the AZ: ``b = 0`` in whole minutes inside one.

What is *not* modelled, each in the direction of a lower bound: the warm fleet (the
optimum may start from any fleet), random node failures (``faults.node_failure_rate``;
a failure of a pool's minimum node can leave the pool short of its minimum for up to
one control interval: at most one node-minute per failure, which the bound assumes does
not happen), pool maximums, the 60 s billing minimum and drain times.

The latency model (:mod:`sim.traffic`) has a discontinuity: at utilisation 1 with no
backlog it reports the service time, not the M/M/k quantile near saturation, so a
minute with pods within ~0.2% above the load passes the SLO while any utilisation
between the SLO point (~0.75 on ``default``) and 1 fails it. ``need`` uses the SLO point:
no policy can aim at a 0.2% window through random provisioning delays and whole nodes,
and a bound built on the artefact would measure the artefact (on ``avail-us-east-1``
it would be 15% lower: $173.8 against $204.2, measured).

The LP relaxation (fractional nodes) is what :func:`solve` returns by default; it is
itself a lower bound. ``integer=True`` asks for whole nodes every minute (a MILP,
HiGHS branch and bound), which is tighter but not a strict bound (the time-weighted
nodes of a minute are fractional whenever a node starts or stops inside it); it is
there to measure how loose the relaxation is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

from agents.cost.fleet import Market, market_from_world
from agents.cost.plan import Layout
from sim.market.prices import PriceSeries
from sim.traffic import ServiceModel
from sim.world import World

LP_KIND = "lower bound (LP relaxation)"
MILP_KIND = "integer optimum (whole nodes per minute)"


@dataclass(frozen=True, slots=True)
class Episode:
    """Everything the optimum is solved over (times in seconds from the window start).

    Attributes
    ----------
    need_pods
        ``(T,)`` pods the SLO needs in each minute.
    price_usd_per_hour
        ``(K, T)`` lowest price in force in each minute, per slot (USD/hour).
    pods_per_node, slot_az, slot_spot
        Per slot.
    od_pools
        ``(slot indices, min_nodes)`` of every on-demand pool.
    spot_bans
        Per AZ, the merged intervals ``[start_s, end_s)`` when spot cannot be launched.
    reclaims
        ``(t_s, az, fraction)`` of every reclaim (availability drop, storm start).
    outages
        ``(start_s, end_s, az)``: every node of the AZ terminated, nothing launched.
    lead_s
        Shortest time from a launch to serving (provisioning delay + pod start).
    notice_s, drain_s, interval_s
        Interruption notice, drain time, control interval (seconds).
    """

    need_pods: np.ndarray
    price_usd_per_hour: np.ndarray
    pods_per_node: tuple[int, ...]
    slot_az: tuple[str, ...]
    slot_spot: tuple[bool, ...]
    od_pools: tuple[tuple[tuple[int, ...], int], ...]
    spot_bans: dict[str, list[tuple[float, float]]]
    reclaims: tuple[tuple[float, str, float], ...]
    outages: tuple[tuple[float, float, str], ...]
    lead_s: float
    notice_s: float
    drain_s: float
    interval_s: float

    @property
    def n_minutes(self) -> int:
        return int(self.need_pods.size)

    @property
    def n_slots(self) -> int:
        return len(self.pods_per_node)


@dataclass(frozen=True, slots=True)
class Optimum:
    """A solved episode: the cost (USD), what it is, and the plan behind it."""

    cost_usd: float
    kind: str
    solve_s: float
    violation_minutes: int
    serving_nodes: np.ndarray  # (K, T) time-weighted
    billed_nodes: np.ndarray  # (K, T) time-weighted
    mip_gap: float | None = None  # relative gap HiGHS proved (integer runs)


def slo_pod_capacity_rps(service: ServiceModel, slo_p95_ms: float) -> float:
    """Requests/s one pod carries at the highest utilisation below 1 whose p95 meets
    ``slo_p95_ms`` with no backlog (bisection on the simulator's own service model)."""
    offered = 1000.0
    lo, hi = 0.0, 1.0 - 1e-9

    def meets(rho: float) -> bool:
        result = service.step(offered, offered / (service.pod_rate_rps * rho), 0.0)
        return result.p95_ms <= slo_p95_ms and result.dropped_requests < 0.5

    if not meets(1e-6):
        raise ValueError(f"no utilisation meets a p95 of {slo_p95_ms} ms")
    lo = 1e-6
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if meets(mid):
            lo = mid
        else:
            hi = mid
    return service.pod_rate_rps * lo


def min_minute_prices(series: PriceSeries, offset_s: float, n_minutes: int) -> np.ndarray:
    """Lowest price in force during each minute of a window starting ``offset_s`` in."""
    marks = offset_s + np.arange(n_minutes, dtype=np.float64) * 60.0
    times, prices = series.times_s, series.prices_usd_per_hour
    idx = np.maximum(np.searchsorted(times, marks, side="right") - 1, 0)
    out = prices[idx].astype(np.float64)
    inside = (times > offset_s) & (times < offset_s + n_minutes * 60.0)
    minute = ((times[inside] - offset_s) // 60.0).astype(np.int64)
    np.minimum.at(out, minute, prices[inside])
    return out


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def episode_from_market(
    layout: Layout,
    market: Market,
    *,
    pod_capacity_rps: float,
    lead_s: float,
    notice_s: float,
    drain_s: float,
    interval_s: float,
    prices: np.ndarray | None = None,
) -> Episode:
    """The episode of a fleet-model window (``prices``: ``(K, T)`` lowest price in force
    each minute; default the window's minute-mark prices, which the fleet model bills)."""
    n = market.n_minutes
    horizon = n * 60.0
    if prices is None:
        prices = np.array([p[:n] for p in market.prices], dtype=np.float64).reshape(-1, n)
    azs = sorted({s.az for s in layout.slots})
    bans: dict[str, list[tuple[float, float]]] = {az: [] for az in azs}
    reclaims: list[tuple[float, str, float]] = []
    down_since: dict[str, float | None] = {
        az: (None if market.available0.get(az, True) else 0.0) for az in azs
    }
    for t, az, up in market.transitions:
        if az not in down_since:
            continue
        if up and down_since[az] is not None:
            bans[az].append((down_since[az] or 0.0, t))
            down_since[az] = None
        elif not up and down_since[az] is None:
            down_since[az] = t
            reclaims.append((t, az, market.reclaim_fraction))
    for az, since in down_since.items():
        if since is not None:
            bans[az].append((since, horizon))
    for t0, dur, storm_azs, frac in market.storms:
        for az in storm_azs:
            if az in bans and t0 + dur > 0 and t0 < horizon:
                bans[az].append((max(0.0, t0), t0 + dur))
                if t0 >= 0:
                    reclaims.append((t0, az, frac))
    outages = tuple(
        (max(0.0, t0), t0 + dur, az)
        for t0, dur, az in market.outages
        if t0 + dur > 0 and t0 < horizon
    )
    for start, end, az in outages:
        if az in bans:
            bans[az].append((start, end))
    od_pools = tuple(
        (layout.pool_slots[i], spec.min_nodes)
        for i, spec in enumerate(layout.pools)
        if spec.capacity_type != "spot"
    )
    return Episode(
        need_pods=np.asarray(market.offered_rps, dtype=np.float64) / pod_capacity_rps,
        price_usd_per_hour=prices,
        pods_per_node=tuple(s.pods_per_node for s in layout.slots),
        slot_az=tuple(s.az for s in layout.slots),
        slot_spot=tuple(s.spot for s in layout.slots),
        od_pools=od_pools,
        spot_bans={az: _merge(v) for az, v in bans.items()},
        reclaims=tuple(sorted(reclaims)),
        outages=outages,
        lead_s=lead_s,
        notice_s=notice_s,
        drain_s=drain_s,
        interval_s=interval_s,
    )


def episode_from_world(world: World, layout: Layout | None = None) -> Episode:
    """The episode of a prepared world's whole replay, at the prices the simulator
    bills (the lowest in force each minute) and the scenario's SLO and delays."""
    layout = layout or Layout.of(world.pools, source=world.source)
    sc = world.scenario
    market = market_from_world(world, layout)
    service = ServiceModel(
        world.latency,
        queue_limit_per_pod=sc.cluster.queue_limit_per_pod,
        request_timeout_ms=sc.cluster.request_timeout_ms,
    )
    n = market.n_minutes
    prices = np.array(
        [min_minute_prices(world.prices[(s.pool, s.az)], 0.0, n) for s in layout.slots]
    ).reshape(-1, n)
    return episode_from_market(
        layout,
        market,
        pod_capacity_rps=slo_pod_capacity_rps(service, sc.slo.p95_latency_ms),
        lead_s=sc.control.provisioning_delay.low_s + sc.control.pod_start_delay_s,
        notice_s=sc.pricing.interruption_notice_s,
        drain_s=sc.control.drain_s,
        interval_s=sc.control.interval_s,
        prices=prices,
    )


def allowed_violations(n_minutes: int, slo_attainment: float) -> int:
    """Violation minutes an attainment of at least ``slo_attainment`` allows."""
    return math.floor((1.0 - slo_attainment) * n_minutes + 1e-9)


class _Rows:
    """Sparse constraint rows ``lo <= A x <= hi``, appended in blocks."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.n = 0

    def add(
        self,
        terms: Sequence[tuple[np.ndarray, np.ndarray | float]],
        lo: np.ndarray | float,
        hi: np.ndarray | float,
        count: int,
    ) -> None:
        """``count`` rows; each term is (column index per row, coefficient per row)."""
        if count == 0:
            return
        rows = np.arange(self.n, self.n + count)
        for cols, vals in terms:
            self.rows.append(rows)
            self.cols.append(np.asarray(cols, dtype=np.int64))
            self.vals.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), (count,)))
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (count,)))
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), (count,)))
        self.n += count

    def add_row(self, cols: np.ndarray, vals: np.ndarray, lo: float, hi: float) -> None:
        """One row with many entries."""
        self.rows.append(np.full(len(cols), self.n))
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.asarray(vals, dtype=np.float64))
        self.lo.append(np.array([lo]))
        self.hi.append(np.array([hi]))
        self.n += 1

    def matrix(self, n_cols: int) -> tuple[sparse.csr_array, np.ndarray, np.ndarray]:
        a = sparse.coo_array(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.n, n_cols),
        ).tocsr()
        return a, np.concatenate(self.lo), np.concatenate(self.hi)


def _whole_minutes(start_s: float, end_s: float, n: int) -> range:
    """Minutes lying wholly inside ``[start_s, end_s)``."""
    return range(max(0, math.ceil(start_s / 60.0 - 1e-9)), min(n, math.floor(end_s / 60.0 + 1e-9)))


def _constraints(ep: Episode, violation_minutes: int) -> tuple[_Rows, int]:
    """Rows 1-6 of the module docstring; columns ``s | w | z`` (slot-major)."""
    rows = _Rows()
    cols = _Columns(ep.n_slots, ep.n_minutes)
    _slo_rows(rows, cols, ep, violation_minutes)
    _lead_rows(rows, cols, ep)
    for az, bans in ep.spot_bans.items():
        slots = [k for k in range(ep.n_slots) if ep.slot_spot[k] and ep.slot_az[k] == az]
        _ban_rows(rows, cols, slots, bans)
        _reclaim_rows(rows, cols, ep, az, slots, bans)
    _minimum_rows(rows, cols, ep)
    for start, end, az in ep.outages:
        slots = [k for k in range(ep.n_slots) if ep.slot_az[k] == az]
        _fix_zero(rows, cols, slots, np.array(_whole_minutes(start, end, ep.n_minutes)))
    return rows, cols.n


@dataclass(frozen=True, slots=True)
class _Columns:
    """Column indices: ``s[k, t]``, ``w[k, t]``, ``z[t]``."""

    n_slots: int
    n_minutes: int

    def s(self, k: int, t: np.ndarray) -> np.ndarray:
        return k * self.n_minutes + t

    def w(self, k: int, t: np.ndarray) -> np.ndarray:
        return (self.n_slots + k) * self.n_minutes + t

    def z(self, t: np.ndarray) -> np.ndarray:
        return 2 * self.n_slots * self.n_minutes + t

    def billed(self, k: int, t: np.ndarray, coef: float) -> list[tuple[np.ndarray, float]]:
        """Terms of ``coef * b[k, t]`` (``b = s + w``)."""
        return [(self.s(k, t), coef), (self.w(k, t), coef)]

    @property
    def n(self) -> int:
        return (2 * self.n_slots + 1) * self.n_minutes


def _slo_rows(rows: _Rows, cols: _Columns, ep: Episode, violation_minutes: int) -> None:
    """1: pods serving >= need x (1 - z); at most ``violation_minutes`` given up."""
    t = np.arange(ep.n_minutes)
    terms = [(cols.s(k, t), float(ep.pods_per_node[k])) for k in range(ep.n_slots)]
    rows.add([*terms, (cols.z(t), ep.need_pods)], ep.need_pods, np.inf, t.size)
    rows.add_row(cols.z(t), np.ones(t.size), -np.inf, float(violation_minutes))


def _lead_rows(rows: _Rows, cols: _Columns, ep: Episode) -> None:
    """2: a serving rise is paid for in non-serving billed time around it."""
    lead_min = ep.lead_s / 60.0
    t = np.arange(ep.n_minutes)
    if lead_min > 0 and t.size > 1:
        c = 1.0 / min(1.0, lead_min)
        a, b = t[:-1], t[1:]
        for k in range(ep.n_slots):
            terms = [(cols.s(k, b), 1.0), (cols.s(k, a), -1.0)]
            terms += [(cols.w(k, b), -c), (cols.w(k, a), -c)]
            rows.add(terms, -np.inf, 0.0, a.size)
    for d in range(1, math.floor(lead_min + 1e-9)):
        a = t[: t.size - d]
        for k in range(ep.n_slots):
            rows.add([*cols.billed(k, a, 1.0), (cols.s(k, a + d), -1.0)], 0.0, np.inf, a.size)


def _ban_rows(
    rows: _Rows, cols: _Columns, slots: list[int], bans: list[tuple[float, float]]
) -> None:
    """3: no spot launch while spot is not on offer: billed spot nodes never rise."""
    for start, end in bans:
        minutes = np.array(_whole_minutes(start, end, cols.n_minutes))
        if start <= 0.0:  # the warm fleet uses launchable slots only
            _fix_zero(rows, cols, slots, minutes)
        elif minutes.size > 1:
            a, b = minutes[:-1], minutes[1:]
            for k in slots:
                rows.add([*cols.billed(k, b, 1.0), *cols.billed(k, a, -1.0)], -np.inf, 0.0,
                         a.size)  # fmt: skip


def _reclaim_rows(
    rows: _Rows,
    cols: _Columns,
    ep: Episode,
    az: str,
    slots: list[int],
    bans: list[tuple[float, float]],
) -> None:
    """4: after a reclaim of ``f``, at most ``1 - f`` of the minute-``r`` spot nodes.

    ``r`` is the last whole minute inside ``[tau, tau + notice)`` (the noticed nodes bill
    through it), ``q`` the first minute starting once they are gone: the nodes billed
    in ``q`` are survivors, all billed through ``r``.
    """
    previous: float | None = None
    for tau, reclaim_az, frac in ep.reclaims:
        if reclaim_az != az:
            continue
        r = math.floor((tau + ep.notice_s) / 60.0 + 1e-9) - 1  # the last whole such minute
        q = math.ceil((tau + ep.notice_s) / 60.0 - 1e-9)
        ban_end = next((e for s, e in bans if s <= tau < e), tau)
        outage = any(s < 60.0 * (q + 1) and e > tau and o == az for s, e, o in ep.outages)
        sound = (
            0.0 < frac <= 1.0
            and r < q < ep.n_minutes
            and 60.0 * r >= tau - 1e-9  # noticed nodes bill through r
            and 60.0 * (q + 1) <= ban_end + 1e-9  # no launch until minute q ends
            and tau + ep.drain_s <= 60.0 * q + 1e-9  # drains in flight end before q
            and (previous is None or previous + ep.notice_s <= 60.0 * q + 1e-9)
            and not outage
        )
        previous = tau
        if sound and slots:
            terms = [term for k in slots for term in cols.billed(k, np.array([q]), 1.0)]
            terms += [term for k in slots for term in cols.billed(k, np.array([r]), frac - 1.0)]
            rows.add(terms, -np.inf, 0.0, 1)


def _minimum_rows(rows: _Rows, cols: _Columns, ep: Episode) -> None:
    """5: on-demand pools hold their minimum, except around AZ outages."""
    exempt = np.zeros(ep.n_minutes, dtype=bool)
    for start, end, _az in ep.outages:
        exempt[max(0, math.floor(start / 60.0)) : math.ceil((end + ep.interval_s) / 60.0)] = True
    t = np.flatnonzero(~exempt)
    for slots, min_nodes in ep.od_pools:
        if min_nodes > 0:
            terms = [term for k in slots for term in cols.billed(k, t, 1.0)]
            rows.add(terms, float(min_nodes), np.inf, t.size)


def _fix_zero(rows: _Rows, cols: _Columns, slots: list[int], minutes: np.ndarray) -> None:
    """``b[k, t] = 0`` for ``k`` in ``slots``, ``t`` in ``minutes``."""
    for k in slots:
        if minutes.size:
            rows.add(cols.billed(k, minutes, 1.0), 0.0, 0.0, minutes.size)


def solve(
    episode: Episode,
    *,
    violation_minutes: int = 0,
    integer: bool = False,
    time_limit_s: float | None = None,
) -> Optimum:
    """The least cost of ``episode`` (see the module docstring).

    ``integer=False`` (default): the LP relaxation, a lower bound. ``integer=True``:
    whole nodes every minute (a MILP; ``time_limit_s`` caps it, and ``mip_gap`` then
    says how far from proven optimal the answer is). Raises ``RuntimeError`` when HiGHS
    finds no solution (an infeasible episode: an on-demand minimum in an AZ outage with
    no other AZ, say).
    """
    k_n, t_n = episode.n_slots, episode.n_minutes
    rows, n_cols = _constraints(episode, violation_minutes)
    a, lo, hi = rows.matrix(n_cols)
    price = episode.price_usd_per_hour.reshape(-1)  # USD per node-hour: minutes x 1/60 below
    cost = np.concatenate((price, price, np.zeros(t_n)))
    upper = np.concatenate((np.full(2 * k_n * t_n, np.inf), np.ones(t_n)))
    started = time.perf_counter()
    if integer:
        result = _milp(a, lo, hi, cost, upper, 2 * k_n * t_n, time_limit_s)
    else:
        result = _linprog(a, lo, hi, cost, upper)
    solve_s = time.perf_counter() - started
    if result.x is None or result.fun is None or (not integer and result.status != 0):
        raise RuntimeError(f"HiGHS found no solution: {result.message}")
    x = result.x
    serving = x[: k_n * t_n].reshape(k_n, t_n)
    billed = serving + x[k_n * t_n : 2 * k_n * t_n].reshape(k_n, t_n)
    gap = getattr(result, "mip_gap", None)
    return Optimum(
        cost_usd=float(result.fun) / 60.0,
        kind=MILP_KIND if integer else LP_KIND,
        solve_s=solve_s,
        violation_minutes=violation_minutes,
        serving_nodes=serving,
        billed_nodes=billed,
        mip_gap=float(gap) if integer and gap is not None else None,
    )


def _linprog(
    a: sparse.csr_array, lo: np.ndarray, hi: np.ndarray, cost: np.ndarray, upper: np.ndarray
) -> optimize.OptimizeResult:
    """The LP by HiGHS dual simplex (interior point if the simplex gives up: ``milp``'s
    LP path and the dual simplex both stall on some 6-day episodes, measured)."""
    equal = np.isfinite(lo) & (lo == hi)
    below = np.isfinite(hi) & ~equal
    above = np.isfinite(lo) & ~equal
    a_ub = sparse.vstack([a[below], -a[above]]).tocsr()
    b_ub = np.concatenate((hi[below], -lo[above]))
    bounds = np.stack((np.zeros(cost.size), upper), axis=1)
    result = None
    for method in ("highs-ds", "highs-ipm"):
        result = optimize.linprog(
            cost,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=a[equal] if equal.any() else None,
            b_eq=lo[equal] if equal.any() else None,
            bounds=bounds,
            method=method,
        )
        if result.status == 0:
            break
    assert result is not None
    return result


def _milp(
    a: sparse.csr_array,
    lo: np.ndarray,
    hi: np.ndarray,
    cost: np.ndarray,
    upper: np.ndarray,
    n_integer: int,
    time_limit_s: float | None,
) -> optimize.OptimizeResult:
    """Whole nodes: HiGHS branch and bound (``time_limit_s`` caps it)."""
    integrality = np.zeros(cost.size, dtype=np.int64)
    integrality[:n_integer] = 1
    options: dict[str, float | bool] = {"disp": False}
    if time_limit_s is not None:
        options["time_limit"] = time_limit_s
    return optimize.milp(
        cost,
        constraints=optimize.LinearConstraint(a, lo, hi),
        bounds=optimize.Bounds(np.zeros(cost.size), upper),
        integrality=integrality,
        options=options,
    )


def world_optimum(world: World, *, slo_attainment: float, integer: bool = False) -> Optimum:
    """The optimum of a prepared world's replay for policies at ``slo_attainment`` or
    better (the violation minutes that allows)."""
    episode = episode_from_world(world)
    return solve(
        episode,
        violation_minutes=allowed_violations(episode.n_minutes, slo_attainment),
        integer=integer,
    )


__all__ = [
    "LP_KIND",
    "MILP_KIND",
    "Episode",
    "Optimum",
    "allowed_violations",
    "episode_from_market",
    "episode_from_world",
    "min_minute_prices",
    "slo_pod_capacity_rps",
    "solve",
    "world_optimum",
]
