"""The capacity plan every cost policy shares, and the executor of a capacity *mix*.

Cost policies differ only in *what* capacity holds the load, never in *how much*: every
one of them (the heuristics, ``cost-rl``; ``hindsight`` plans from foresight instead)
plans ``pods = ceil(max load of the last window x (1 + margin) / pod rate at the target
utilisation)`` (:class:`LoadPlanner`), so their costs compare the mix alone.

A :class:`Mix` says how to hold the plan:

``od_floor``
    share of the plan always held on on-demand (0..1; the on-demand pools' minimum
    nodes count towards the plan in any case);
``od_fill``
    share of what spot cannot hold (no launchable AZ, pool maximum) that on-demand
    fills (0..1; below 1 the fleet runs hotter than the target utilisation instead);
``spot_buffer``
    extra spot pods, as a share of the spot part of the plan (covers reclaims);
``keep``
    share of surplus spot nodes kept in AZs where spot cannot be launched now (they
    could not come back before the AZ does);
``weights``
    one per spot slot (spot pool x AZ): how the spot part is split over the slots that
    can launch now (0 = avoid).

:func:`execute` turns (plan, mix, tick) into desired nodes per slot, making before
breaking: running nodes are released only out of the surplus of running pods over the
plan (the controller passes the plan as ``pods_now``), so replacements boot before the
nodes they replace stop.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from sim.control import PoolSpec
from sim.errors import InputError


@dataclass(frozen=True, slots=True)
class Slot:
    """One (pool, AZ): where nodes are placed."""

    pool: int  # index in the scenario's pools
    pool_name: str
    az: str
    spot: bool
    pods_per_node: int
    on_demand_usd_per_hour: float


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """One pool's slots and node limits. The slots are ``range(start, stop)``: a pool's
    slots are consecutive, so per-pool lists are slices."""

    start: int
    stop: int
    min_nodes: int
    max_nodes: int


@dataclass(frozen=True, slots=True)
class Layout:
    """The slots of a fleet: every pool x AZ, on-demand and spot indices apart.

    The fields after ``pool_slots`` are derived from the others when the layout is built
    (constants the per-step code reads instead of walking the slots)."""

    pools: tuple[PoolSpec, ...]
    slots: tuple[Slot, ...]
    od_slots: tuple[int, ...]
    spot_slots: tuple[int, ...]
    pool_slots: tuple[tuple[int, ...], ...]  # slot indices of each pool
    ppn: tuple[int, ...] = field(init=False, repr=False, compare=False)  # pods per node
    spot_position: dict[int, int] = field(init=False, repr=False, compare=False)
    pool_limits: tuple[PoolLimits, ...] = field(init=False, repr=False, compare=False)
    spot_pools: tuple[PoolLimits, ...] = field(init=False, repr=False, compare=False)
    od_pools: tuple[PoolLimits, ...] = field(init=False, repr=False, compare=False)
    od_min_pods: float = field(init=False, repr=False, compare=False)
    """Pods the on-demand pools' minimum nodes hold (part of any plan)."""
    several_types: bool = field(init=False, repr=False, compare=False)
    """Some AZ has several slots of one capacity type, or the slots of one capacity type
    differ in pods per node: the mix is then held at the least cost per AZ
    (right-sizing, :func:`cheapest_cover`) instead of node counts spread by weight."""

    def __post_init__(self) -> None:
        limits: list[PoolLimits] = []
        for p, ks in zip(self.pools, self.pool_slots, strict=True):
            start = ks[0] if ks else 0
            if ks != tuple(range(start, start + len(ks))):
                raise ValueError(f"pool {p.name}: slots {ks} are not consecutive")
            limits.append(PoolLimits(start, start + len(ks), p.min_nodes, p.max_nodes))
        spot = [p.capacity_type == "spot" for p in self.pools]
        derived = {
            "ppn": tuple(s.pods_per_node for s in self.slots),
            "spot_position": {k: j for j, k in enumerate(self.spot_slots)},
            "pool_limits": tuple(limits),
            "spot_pools": tuple(lim for lim, is_spot in zip(limits, spot, strict=True) if is_spot),
            "od_pools": tuple(
                lim for lim, is_spot in zip(limits, spot, strict=True) if not is_spot
            ),
            "od_min_pods": float(
                sum(p.min_nodes * p.pods_per_node for p in self.pools if p.capacity_type != "spot")
            ),
            "several_types": _several_types(self.slots),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, pools: Sequence[PoolSpec], *, source: str = "scenario") -> Layout:
        """The layout of ``pools``; cost policies need on-demand and spot capacity."""
        kinds = {p.capacity_type for p in pools}
        if kinds != {"on-demand", "spot"}:
            raise InputError(
                source,
                "cluster.pools",
                f"capacity types {sorted(kinds)}: cost policies choose between spot and on-demand",
                "at least one on-demand and one spot pool",
            )
        slots: list[Slot] = []
        pool_slots: list[tuple[int, ...]] = []
        for i, p in enumerate(pools):
            first = len(slots)
            for az in p.azs:
                slots.append(
                    Slot(
                        i,
                        p.name,
                        az,
                        p.capacity_type == "spot",
                        p.pods_per_node,
                        p.on_demand_usd_per_hour,
                    )
                )
            pool_slots.append(tuple(range(first, len(slots))))
        return cls(
            pools=tuple(pools),
            slots=tuple(slots),
            od_slots=tuple(k for k, s in enumerate(slots) if not s.spot),
            spot_slots=tuple(k for k, s in enumerate(slots) if s.spot),
            pool_slots=tuple(pool_slots),
        )


def _several_types(slots: Sequence[Slot]) -> bool:
    """See :attr:`Layout.several_types`."""
    places = {(s.spot, s.az) for s in slots}
    sizes = {(s.spot, s.pods_per_node) for s in slots}
    kinds = {s.spot for s in slots}
    return len(places) < len(slots) or len(sizes) > len(kinds)


@dataclass(slots=True)
class Tick:
    """What a cost policy sees at one control tick (per slot lists in layout order)."""

    t_s: float
    load_rps: float | None  # offered load of the last minute; None in a telemetry gap
    cpu: float | None
    p95_ms: float | None
    error_rate: float | None
    active: list[int]  # pending + running nodes
    pending: list[int]
    price: list[float]  # USD/hour in force
    available: list[bool]  # spot capacity on offer (True for on-demand slots)
    launchable: list[bool]  # a launch would succeed now
    interruptions: int = 0  # spot notices since the last tick


@dataclass(frozen=True, slots=True)
class Mix:
    """How to hold the plan (see the module docstring); values already in range."""

    od_floor: float
    od_fill: float
    spot_buffer: float
    keep: float
    weights: tuple[float, ...]


SPOT_BUFFER_MAX = 0.3
OD_FILL_MIN = 0.6


def decode_action(action: Sequence[float], n_spot: int) -> Mix:
    """The mix of an action in ``[-1, 1]^(4 + n_spot)``.

    ``od_floor = max(0, a0)``; ``od_fill = 1 - (1 - OD_FILL_MIN) max(0, a1)``;
    ``spot_buffer = SPOT_BUFFER_MAX max(0, a2)``; ``keep = max(0, a3)``; each weight
    ``(a + 1) / 2``. The zero action is thus ``spot-greedy``: all spot, spread evenly,
    no buffer, on-demand filling every shortfall, no stranded spot kept; learning starts
    from the strongest simple rule and moves away from it only where that pays.
    """
    # min(1, max(-1, x)) and max(0, x) written out (NaN gives -1 and 0 as they do)
    a = [(x if x < 1.0 else 1.0) if x > -1.0 else -1.0 for x in map(float, action)]
    floor, fill, buffer, keep = a[0], a[1], a[2], a[3]
    return Mix(  # positional (faster): od_floor, od_fill, spot_buffer, keep, weights
        floor if floor > 0.0 else 0.0,
        1.0 - (1.0 - OD_FILL_MIN) * (fill if fill > 0.0 else 0.0),
        SPOT_BUFFER_MAX * (buffer if buffer > 0.0 else 0.0),
        keep if keep > 0.0 else 0.0,
        tuple([(x + 1.0) / 2.0 for x in a[4 : 4 + n_spot]]),
    )


def encode_mix(mix: Mix) -> list[float]:
    """The action whose :func:`decode_action` is ``mix`` (where one exists)."""
    return [
        mix.od_floor,
        (1.0 - mix.od_fill) / (1.0 - OD_FILL_MIN),
        mix.spot_buffer / SPOT_BUFFER_MAX,
        mix.keep,
        *(2.0 * w - 1.0 for w in mix.weights),
    ]


@dataclass(slots=True)
class LoadPlanner:
    """Pods to plan for: the highest load seen in the last ``window_min`` minutes, plus
    ``margin``, at the target utilisation (requests/s per pod ``pod_rate_rps``)."""

    pod_rate_rps: float
    window_min: int = 15
    margin: float = 0.15
    loads: deque[float] = field(default_factory=deque)
    last_load: float | None = None

    def observe(self, load_rps: float | None) -> None:
        """Add the last minute's load (None in a telemetry gap: the last one repeats)."""
        if load_rps is not None:
            self.last_load = load_rps
        if self.last_load is None:
            return
        self.loads.append(self.last_load)
        while len(self.loads) > self.window_min:
            self.loads.popleft()

    def pods(self, fallback: float) -> float:
        """Planned pods (``fallback`` before any load was seen)."""
        if not self.loads:
            return fallback
        return math.ceil(max(self.loads) * (1.0 + self.margin) / self.pod_rate_rps - 1e-9)

    def pods_now(self, fallback: float) -> float:
        """Pods the last load needs at the target utilisation (make-before-break)."""
        if self.last_load is None:
            return fallback
        return self.last_load / self.pod_rate_rps


CONSOLIDATE_SHARE = 0.1
"""With several instance types, nodes are replaced by the cheapest cover of their pods
once they cost this share more than it (set before any right-sizing figure was seen
with it; Karpenter consolidates at any saving, which churns on price noise)."""

REBALANCE_SHARE = 0.25
"""Spot nodes move between launchable AZs only when a slot holds this share of the spot
target (and at least two nodes) more than its weight asks for: no churn on small
weight changes."""


def execute(layout: Layout, tick: Tick, mix: Mix, plan_pods: float, pods_now: float) -> list[int]:
    """Desired nodes per slot holding ``plan_pods`` as ``mix`` says (see the module)."""
    ppn = layout.ppn
    active, launchable = tick.active, tick.launchable
    desired = list(active)
    od_base = max(mix.od_floor * plan_pods, layout.od_min_pods)  # on-demand pods regardless
    spot_part = max(0.0, plan_pods - od_base)
    spot_goal = spot_part * (1.0 + mix.spot_buffer)
    held_pods = 0.0
    launch_slots: list[int] = []
    stranded: list[int] = []  # spot slots that cannot launch now
    for k in layout.spot_slots:
        if launchable[k]:
            launch_slots.append(k)
        else:
            stranded.append(k)
            held_pods += active[k] * ppn[k]
    if held_pods > spot_goal:  # release the unkept surplus, most expensive first
        surplus = (1.0 - mix.keep) * (held_pods - spot_goal)
        release_dearest(surplus, stranded, tick.price, ppn, desired)
        for k in launch_slots:
            desired[k] = 0
    else:
        _spread_spot(layout, tick, mix, launch_slots, spot_goal - held_pods, desired)
    _clamp_pools(layout, desired, spot=True)
    placed = 0
    for k in layout.spot_slots:
        placed += desired[k] * ppn[k]
    shortfall = max(0.0, spot_part - placed / (1.0 + mix.spot_buffer))
    od_pods = od_base + mix.od_fill * shortfall
    _spread_on_demand(layout, tick, od_pods, desired)
    _clamp_pools(layout, desired, spot=False)
    return _make_before_break(layout, tick, desired, pods_now)


def release_dearest(
    pods: float,
    candidates: Sequence[int],
    price: Sequence[float],
    ppn: Sequence[int],
    desired: list[int],
) -> None:
    """Take up to ``pods`` pods off ``desired`` on ``candidates``, whole nodes only, the
    dearest pod first (``price`` USD/hour and ``ppn`` pods per node, by slot; ties to the
    lowest slot index)."""
    for k in sorted(candidates, key=lambda k: (-price[k] / ppn[k], k)):
        cut = min(desired[k], math.floor(pods / ppn[k] + 1e-9))
        desired[k] -= cut
        pods -= cut * ppn[k]


def _spread_spot(
    layout: Layout,
    tick: Tick,
    mix: Mix,
    launch_slots: list[int],
    pods: float,
    desired: list[int],
) -> float:
    """Split ``pods`` of spot over the launchable slots by weight; returns pods placed.

    One node at a time, to the slot furthest below its share (ties to the lowest slot
    index; ``launch_slots`` is in slot order), or from the slot furthest above it; then
    nodes move from the most over to the most under share while the most over exceeds
    its share by the rebalancing tolerance. Slots weighted 0.05 or less get no node."""
    ppn, position = layout.ppn, layout.spot_position
    ks: list[int] = []  # the weighted launchable slots, in slot order
    weights: list[float] = []
    nodes: list[int] = []
    ppn_max = 0
    for k in launch_slots:
        w = mix.weights[position[k]]
        if w > 0.05:
            ks.append(k)
            weights.append(w)
            nodes.append(desired[k])
            if ppn[k] > ppn_max:
                ppn_max = ppn[k]
        else:
            desired[k] = 0
    total_w = sum(weights)
    if total_w <= 0 or pods <= 0:
        for k in ks:
            desired[k] = 0
        return 0.0
    if layout.several_types:
        return _cover_spot(layout, tick, dict(zip(ks, weights, strict=True)), pods, desired)
    goal_nodes = math.ceil(pods / ppn_max - 1e-9)
    share = [goal_nodes * w / total_w for w in weights]
    placed = 0
    for k, d in zip(ks, _spread_by_share(share, nodes, goal_nodes), strict=True):
        desired[k] = d
        placed += d * ppn[k]
    return float(placed)


def _spread_by_share(share: list[float], nodes: list[int], goal_nodes: int) -> list[int]:
    """``nodes`` (in place, and returned) brought to ``goal_nodes`` in all, near
    ``share`` (see :func:`_spread_spot`). ``below[i]`` is ``share[i] - nodes[i]`` and
    ``above[i]`` is ``nodes[i] - share[i]``, kept up to date as nodes move; every pick is
    the first largest of them (the lowest slot index on ties)."""
    current = sum(nodes)
    if current < goal_nodes:
        below = [s - d for s, d in zip(share, nodes, strict=True)]
        while current < goal_nodes:
            i = below.index(max(below))
            nodes[i] += 1
            below[i] = share[i] - nodes[i]
            current += 1
    elif current > goal_nodes:
        above = [d - s for s, d in zip(share, nodes, strict=True)]
        while current > goal_nodes:
            i = above.index(max(above))
            nodes[i] -= 1
            above[i] = nodes[i] - share[i]
            current -= 1
    _rebalance(share, nodes, max(2.0, REBALANCE_SHARE * goal_nodes), goal_nodes)
    return nodes


def _rebalance(share: list[float], nodes: list[int], tolerance: float, moves: int) -> None:
    """Move up to ``moves`` nodes, one at a time, from the slot most above its share to
    the one most below it, while the first exceeds its share by ``tolerance`` or more."""
    above = [d - s for s, d in zip(share, nodes, strict=True)]
    below: list[float] = []
    for _ in range(moves):
        top = max(above)
        if top < tolerance:
            break
        if not below:
            below = [s - d for s, d in zip(share, nodes, strict=True)]
        over, under = above.index(top), below.index(max(below))
        if over == under:
            break
        nodes[over] -= 1
        nodes[under] += 1
        for i in (over, under):
            below[i], above[i] = share[i] - nodes[i], nodes[i] - share[i]


def _cover_spot(
    layout: Layout, tick: Tick, weights: dict[int, float], pods: float, desired: list[int]
) -> float:
    """Several instance types: split ``pods`` over the AZs by their weighted slots'
    summed weight (``weights``, in slot order; the unweighted launchable slots are
    already at 0), and hold each AZ's share on those slots (:func:`adjust_cover`)."""
    total_w = sum(weights.values())
    ppn = layout.ppn
    placed = 0.0
    for ks in _by_az(layout, weights).values():
        share = pods * sum(weights[k] for k in ks) / total_w
        adjust_cover(share, ks, tick.price, ppn, desired)
        placed += sum(desired[k] * ppn[k] for k in ks)
    return placed


def _by_az(layout: Layout, slots: Iterable[int]) -> dict[str, list[int]]:
    """``slots`` grouped by AZ, each group in the given order."""
    out: dict[str, list[int]] = {}
    for k in slots:
        out.setdefault(layout.slots[k].az, []).append(k)
    return out


def adjust_cover(
    pods: float,
    candidates: Sequence[int],
    price: Sequence[float],
    ppn: Sequence[int],
    desired: list[int],
) -> None:
    """Change ``desired`` on ``candidates`` as little as it takes to hold ``pods``, and
    consolidate when that leaves the nodes dear.

    A shortfall is bought at the least cost (:func:`cheapest_cover`); a surplus releases
    whole nodes, dearest pod first, while the rest still holds ``pods``. Then, as
    Karpenter's consolidation, when the nodes cost more than ``1 + CONSOLIDATE_SHARE``
    times the cheapest cover of ``pods`` they are replaced by it (make-before-break in
    :func:`execute` keeps the old ones until the new ones run). Small load changes move
    no node between types.
    """
    have = sum(desired[k] * ppn[k] for k in candidates)
    if have + 1e-9 < pods:
        for k, nodes in cheapest_cover(pods - have, candidates, price, ppn).items():
            desired[k] += nodes
    else:
        release_dearest(have - pods, candidates, price, ppn, desired)
    ideal = cheapest_cover(pods, candidates, price, ppn)
    cost_now = sum(desired[k] * price[k] for k in candidates)
    if cost_now > (1.0 + CONSOLIDATE_SHARE) * sum(n * price[k] for k, n in ideal.items()):
        for k, nodes in ideal.items():
            desired[k] = nodes


def cheapest_cover(
    pods: float, candidates: Sequence[int], price: Sequence[float], ppn: Sequence[int]
) -> dict[int, int]:
    """Nodes per candidate slot holding ``pods`` at the least cost (``price`` in USD/hour
    and ``ppn`` pods per node, by slot): the exact minimum-cost cover
    (:func:`min_cost_cover`; of equal-cost covers, the one its programme meets first)."""
    out = dict.fromkeys(candidates, 0)
    need = math.ceil(pods - 1e-9)
    if need <= 0 or not candidates:
        return out
    counts = min_cost_cover(
        need,
        tuple(float(price[k]) for k in candidates),
        tuple(ppn[k] for k in candidates),
    )
    for k, n in zip(candidates, counts, strict=True):
        out[k] = n
    return out


@lru_cache(maxsize=8192)
def min_cost_cover(
    pods: int, prices: tuple[float, ...], pods_per_node: tuple[int, ...]
) -> tuple[int, ...]:
    """Nodes of each type (price in USD/hour, pods per node) holding at least ``pods``
    at the least total price: a dynamic programme over the pods held (unbounded
    covering knapsack), O(pods x types); cached, as prices change rarely."""
    n = len(prices)
    cost = [0.0] * (pods + 1)
    choice = [-1] * (pods + 1)
    for q in range(1, pods + 1):
        best, pick = math.inf, -1
        for j in range(n):
            c = cost[max(0, q - pods_per_node[j])] + prices[j]
            if c < best - 1e-12:
                best, pick = c, j
        cost[q], choice[q] = best, pick
    counts = [0] * n
    q = pods
    while q > 0:
        j = choice[q]
        counts[j] += 1
        q = max(0, q - pods_per_node[j])
    return tuple(counts)


def _spread_on_demand(layout: Layout, tick: Tick, pods: float, desired: list[int]) -> None:
    """On-demand pods spread evenly over launchable on-demand slots (fewest nodes first,
    so nothing moves between AZs just to rebalance; ties to the lowest slot index); with
    several instance types, evenly over the AZs and held at the least cost in each
    (:func:`adjust_cover`)."""
    ppn, active, launchable = layout.ppn, tick.active, tick.launchable
    od_slots = layout.od_slots
    usable = [k for k in od_slots if launchable[k]] or list(od_slots)
    if layout.several_types:
        _cover_on_demand(layout, tick, usable, pods, desired)
        return
    ppn_max = 0
    for k in usable:
        if ppn[k] > ppn_max:
            ppn_max = ppn[k]
    goal = math.ceil(max(0.0, pods) / ppn_max - 1e-9)
    held = 0
    if len(usable) < len(od_slots):  # the slots that cannot launch keep their nodes
        for k in od_slots:
            if k not in usable:
                desired[k] = active[k]
                held += active[k]
    goal = max(0, goal - held)
    nodes = [desired[k] for k in usable]  # by position in usable
    current = sum(nodes)
    while current < goal:
        nodes[nodes.index(min(nodes))] += 1
        current += 1
    while current > goal:
        nodes[nodes.index(max(nodes))] -= 1
        current -= 1
    for k, d in zip(usable, nodes, strict=True):
        desired[k] = d


def _cover_on_demand(
    layout: Layout, tick: Tick, usable: list[int], pods: float, desired: list[int]
) -> None:
    """Several instance types: on-demand pods split evenly over the AZs with a usable
    slot, each AZ's share held at the least cost; unusable slots keep what runs."""
    ppn = layout.ppn
    held = 0.0
    for k in layout.od_slots:
        if k not in usable:
            desired[k] = tick.active[k]
            held += tick.active[k] * ppn[k]
    by_az = _by_az(layout, usable)
    share = max(0.0, pods - held) / len(by_az)
    for ks in by_az.values():
        adjust_cover(share, ks, tick.price, ppn, desired)


def _clamp_pools(layout: Layout, desired: list[int], *, spot: bool) -> None:
    """Keep every pool of the kind within [min_nodes, max_nodes]: one node at a time
    from the slot with the most nodes, or to the one with the fewest (ties to the lowest
    slot index)."""
    for pool in layout.spot_pools if spot else layout.od_pools:
        nodes = desired[pool.start : pool.stop]
        total = sum(nodes)
        if pool.min_nodes <= total <= pool.max_nodes:
            continue
        while total > pool.max_nodes:
            nodes[nodes.index(max(nodes))] -= 1
            total -= 1
        while total < pool.min_nodes:
            nodes[nodes.index(min(nodes))] += 1
            total += 1
        desired[pool.start : pool.stop] = nodes


@lru_cache(maxsize=64)
def _dearest_first(prices: tuple[float, ...], ppn: tuple[int, ...]) -> tuple[int, ...]:
    """Slot indices, most expensive pod slot first."""
    return tuple(sorted(range(len(prices)), key=lambda k: -prices[k] / ppn[k]))


def _make_before_break(
    layout: Layout, tick: Tick, desired: list[int], pods_now: float
) -> list[int]:
    """Cancel pending nodes freely; release running ones only out of the surplus of
    running pods over ``pods_now``, most expensive pod slot first."""
    ppn = layout.ppn
    active, pending = tick.active, tick.pending
    if not any(map(operator.lt, desired, active)):
        return desired  # nothing to release
    running = 0
    for a, p, n in zip(active, pending, ppn, strict=True):
        running += (a - p) * n
    surplus = running - pods_now
    out = list(desired)
    for k in _dearest_first(tuple(tick.price), ppn):
        cut = active[k] - desired[k]
        if cut <= 0:
            continue
        cancel = min(cut, pending[k])
        allowed = max(0, math.floor(surplus / ppn[k])) if surplus > 0 else 0
        removed = min(cut - cancel, allowed)
        surplus -= removed * ppn[k]
        out[k] = active[k] - cancel - removed
    return out
