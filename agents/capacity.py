"""Turning "this many pods" into nodes per pool and AZ, cheapest feasible capacity first.

- :func:`price_per_pod` ranks pools by the price of one pod slot where they can launch
  now (the reactive rule's ``price`` expander and the oracle both use it);
- :func:`allocate_by_az` fills pools in that order, respecting each pool's
  [min, max], and spreads each pool's nodes evenly over its feasible AZs;
- :func:`make_before_break_by_az` holds back scale-in of running nodes until the
  nodes already serving cover the load, so a move from on-demand to spot (or back)
  never opens a capacity gap while replacements boot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from sim.control import PoolSpec, PoolState


def price_per_pod(spec: PoolSpec, state: PoolState) -> float:
    """Cheapest price (USD/hour) of one pod slot in the pool's launchable AZs; inf if none."""
    prices = [state.price_usd_per_hour[az] for az in state.launchable_azs]
    return min(prices) / spec.pods_per_node if prices else math.inf


def spread(total: int, azs: tuple[str, ...], prices: Mapping[str, float]) -> dict[str, int]:
    """``total`` nodes spread evenly over ``azs``; the cheapest AZs take the remainder."""
    if not azs:
        return {}
    base, extra = divmod(total, len(azs))
    order = sorted(azs, key=lambda az: (prices[az], azs.index(az)))
    return {az: base + (1 if order.index(az) < extra else 0) for az in azs}


def allocate_by_az(
    pods_needed: float,
    specs: tuple[PoolSpec, ...],
    states: Mapping[str, PoolState],
    feasible_azs: Mapping[str, tuple[str, ...]],
) -> dict[str, dict[str, int]]:
    """Nodes per pool and AZ holding ``pods_needed`` at the lowest price.

    Pools are filled cheapest first (price per pod slot over their feasible AZs); a
    pool's nodes are spread evenly over its feasible AZs, so one AZ's loss never
    takes more than its share. A pool with no feasible AZ keeps only its minimum.
    """

    def pool_price(spec: PoolSpec) -> float:
        azs = feasible_azs[spec.name]
        prices = states[spec.name].price_usd_per_hour
        return min(prices[az] for az in azs) / spec.pods_per_node if azs else math.inf

    totals = {s.name: s.min_nodes for s in specs}
    remaining = pods_needed - sum(s.min_nodes * s.pods_per_node for s in specs)
    for i in sorted(range(len(specs)), key=lambda i: (pool_price(specs[i]), i)):
        spec = specs[i]
        if remaining <= 0 or not feasible_azs[spec.name]:
            continue
        add = max(
            0, min(spec.max_nodes - spec.min_nodes, math.ceil(remaining / spec.pods_per_node))
        )
        totals[spec.name] += add
        remaining -= add * spec.pods_per_node
    result = {}
    for spec in specs:
        azs = feasible_azs[spec.name] or spec.azs
        by_az = dict.fromkeys(spec.azs, 0)
        by_az.update(spread(totals[spec.name], azs, states[spec.name].price_usd_per_hour))
        result[spec.name] = by_az
    return result


def make_before_break_by_az(
    desired: Mapping[str, Mapping[str, int]],
    pods_needed_now: float,
    specs: tuple[PoolSpec, ...],
    states: Mapping[str, PoolState],
) -> dict[str, dict[str, int]]:
    """Limit scale-in per pool and AZ so running nodes keep covering ``pods_needed_now``.

    Pending nodes can always be cancelled; running nodes are removed, most expensive
    slot first, only out of the surplus of running pod slots over the current need.
    """
    result = {name: dict(by_az) for name, by_az in desired.items()}
    running_pods = sum(
        (states[s.name].nodes_by_az[az] - states[s.name].pending_by_az[az]) * s.pods_per_node
        for s in specs
        for az in s.azs
    )
    surplus = running_pods - pods_needed_now
    slots = sorted(
        ((s, az) for s in specs for az in s.azs),
        key=lambda slot: -states[slot[0].name].price_usd_per_hour[slot[1]] / slot[0].pods_per_node,
    )
    for spec, az in slots:
        state = states[spec.name]
        active = state.nodes_by_az[az]
        cut = active - desired[spec.name][az]
        if cut <= 0:
            continue
        cancel_pending = min(cut, state.pending_by_az[az])
        allowed = max(0, math.floor(surplus / spec.pods_per_node)) if surplus > 0 else 0
        removed = min(cut - cancel_pending, allowed)
        surplus -= removed * spec.pods_per_node
        result[spec.name][az] = active - cancel_pending - removed
    return result


def adjust_by_az(
    pods_needed: float,
    specs: tuple[PoolSpec, ...],
    states: Mapping[str, PoolState],
) -> dict[str, dict[str, int]]:
    """Nodes per pool and AZ holding ``pods_needed``, changing the fleet as little as
    possible (as the Cluster Autoscaler does): missing pods get new nodes one at a time
    on the cheapest pod slot that can launch now (the emptiest AZ of the cheapest pool);
    surplus whole nodes go, most expensive slot first, pending ones before running ones.
    Nodes are never moved between pools or AZs just because prices changed.
    """
    counts = {s.name: dict(states[s.name].nodes_by_az) for s in specs}
    pending = {s.name: dict(states[s.name].pending_by_az) for s in specs}
    capacity = sum(sum(counts[s.name].values()) * s.pods_per_node for s in specs)
    if capacity < pods_needed:
        while capacity < pods_needed:
            best: tuple[float, int, str, PoolSpec] | None = None
            for spec in specs:
                state = states[spec.name]
                if sum(counts[spec.name].values()) >= spec.max_nodes:
                    continue
                for az in state.launchable_azs:
                    key = (state.price_usd_per_hour[az] / spec.pods_per_node, counts[spec.name][az])
                    if best is None or key < best[:2]:
                        best = (*key, az, spec)
            if best is None:
                break
            _, _, az, spec = best
            counts[spec.name][az] += 1
            capacity += spec.pods_per_node
        return counts
    slots = sorted(
        ((s, az) for s in specs for az in s.azs),
        key=lambda slot: -states[slot[0].name].price_usd_per_hour[slot[1]] / slot[0].pods_per_node,
    )
    for spec, az in slots:
        while (
            counts[spec.name][az] > 0
            and sum(counts[spec.name].values()) > spec.min_nodes
            and capacity - spec.pods_per_node >= pods_needed
        ):
            counts[spec.name][az] -= 1
            pending[spec.name][az] = max(0, pending[spec.name][az] - 1)
            capacity -= spec.pods_per_node
    return counts


def clamp_by_az(
    by_az: Mapping[str, Mapping[str, int]], specs: tuple[PoolSpec, ...]
) -> dict[str, dict[str, int]]:
    """Each pool's counts brought within its [min, max]: surplus nodes leave the fullest
    AZ first, missing ones join the emptiest (what the simulator's clamp would do)."""
    result = {name: dict(counts) for name, counts in by_az.items()}
    for spec in specs:
        counts = result[spec.name]
        while sum(counts.values()) > spec.max_nodes:
            fullest = max(spec.azs, key=lambda az: (counts[az], -spec.azs.index(az)))
            counts[fullest] -= 1
        while sum(counts.values()) < spec.min_nodes:
            emptiest = min(spec.azs, key=lambda az: (counts[az], spec.azs.index(az)))
            counts[emptiest] += 1
    return result
