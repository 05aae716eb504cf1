"""The shared plan rule (:func:`agents.cost.plan.execute`) and action decoding over a
batch of fleets, as numpy arrays (``E`` fleets x ``K`` slots).

Every greedy one-node-at-a-time loop of :mod:`agents.cost.plan` (spread spot by weight,
trim the excess, rebalance, spread on-demand, clamp pools) gives a node to (or takes one
from) the slot with the highest key, ties to the lowest slot index; ``n`` such steps pick
the ``n`` best items of per-slot sequences ``v_k, v_k - 1, ...``. :func:`top_n_items`
picks them in closed form, so no loop runs over fleets or nodes. The result equals
:func:`~agents.cost.plan.execute`'s except when two keys differ by less than 1e-9 and
are not equal (then the lower slot index wins here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from agents.cost.plan import OD_FILL_MIN, REBALANCE_SHARE, SPOT_BUFFER_MAX, Layout

_TIE = 1e9  # keys are compared on a 1e-9 grid
_TIE_INT = 10**9
_NONE = -(10**12)  # the level of a slot that takes no part


@dataclass(frozen=True, slots=True)
class MixBatch:
    """:class:`~agents.cost.plan.Mix` per fleet: ``(E,)`` shares and ``(E, n_spot)``
    weights, already in range."""

    od_floor: np.ndarray
    od_fill: np.ndarray
    spot_buffer: np.ndarray
    keep: np.ndarray
    weights: np.ndarray


def decode_actions(actions: np.ndarray, n_spot: int) -> MixBatch:
    """:func:`agents.cost.plan.decode_action` of every row of ``actions`` ``(E, 4 + n_spot)``."""
    a = np.minimum(np.maximum(np.asarray(actions, dtype=np.float64), -1.0), 1.0)
    return MixBatch(
        od_floor=np.maximum(0.0, a[:, 0]),
        od_fill=1.0 - (1.0 - OD_FILL_MIN) * np.maximum(0.0, a[:, 1]),
        spot_buffer=SPOT_BUFFER_MAX * np.maximum(0.0, a[:, 2]),
        keep=np.maximum(0.0, a[:, 3]),
        weights=(a[:, 4 : 4 + n_spot] + 1.0) / 2.0,
    )


def top_n_items(
    values: np.ndarray, mask: np.ndarray, n: np.ndarray, *, integer: bool = False
) -> np.ndarray:
    """How many of the ``n`` best items each slot holds, per row.

    Slot ``k`` (where ``mask``) offers items worth ``values[k], values[k] - 1, ...``; items
    rank by worth (highest first), ties to the lower slot index: the outcome of ``n``
    steps of "one more to ``argmax(values - taken)``". Shapes ``(E, K)``, ``(E, K)``,
    ``(E,)``; returns int64 ``(E, K)``. ``integer``: ``values`` are whole numbers.
    Only the rows with ``n > 0`` are computed.
    """
    out = np.zeros(values.shape, dtype=np.int64)
    rows = np.flatnonzero(n > 0)
    if rows.size == 0:
        return out
    if rows.size != out.shape[0]:
        values, mask, n = values[rows], mask[rows], n[rows]
    k = np.arange(values.shape[1])
    if integer:
        a = np.where(mask, values, _NONE).astype(np.int64)
    else:  # worth on a 1e-9 grid: whole level and fraction
        grid = np.rint(values * _TIE).astype(np.int64)
        level = grid // _TIE_INT
        frac = grid - level * _TIE_INT
        a = np.where(mask, level, _NONE)
    srt = -np.sort(-a, axis=1)
    sums = np.cumsum(srt, axis=1)
    cutoff = np.max(np.floor_divide(sums - n[:, None], k + 1) + 1, axis=1)  # the n-th item's level
    base = np.maximum(0, a - cutoff[:, None])
    rest = n - base.sum(axis=1)
    part = mask & (a >= cutoff[:, None])
    if integer:  # equal worth at the cut-off level: the lower slot index first
        rank = np.cumsum(part, axis=1) - part
    else:
        ahead = part[:, None, :] & (
            (frac[:, None, :] > frac[:, :, None])
            | ((frac[:, None, :] == frac[:, :, None]) & (k[None, None, :] < k[None, :, None]))
        )
        rank = ahead.sum(axis=2)
    take = np.where(part & (rank < rest[:, None]), base + 1, base)
    out[rows] = np.where(mask.any(axis=1)[:, None], take, 0)
    return out


@dataclass(frozen=True, slots=True)
class PlanLayout:
    """The layout's constants as arrays."""

    ppn: np.ndarray  # (K,) int64 pods per node
    spot: np.ndarray  # (S,) spot slot indices
    od: np.ndarray  # (O,) on-demand slot indices
    pool_slots: tuple[np.ndarray, ...]
    pool_spot: tuple[bool, ...]
    pool_min: tuple[int, ...]
    pool_max: tuple[int, ...]
    od_min_pods: float

    @classmethod
    def of(cls, layout: Layout) -> PlanLayout:
        """The arrays of ``layout``; a layout with several instance types per capacity
        type is refused (its right-sizing cover, :func:`agents.cost.plan.adjust_cover`,
        runs in the scalar environment only)."""
        if layout.several_types:
            raise InputError(
                "scenario",
                "cluster.pools",
                "several instance types per capacity type: the vectorised environment "
                "holds one type per capacity type and AZ",
                "one instance type per pool kind, or the scalar SpotFleet-v0",
            )
        return cls(
            ppn=np.array([s.pods_per_node for s in layout.slots], dtype=np.int64),
            spot=np.array(layout.spot_slots, dtype=np.int64),
            od=np.array(layout.od_slots, dtype=np.int64),
            pool_slots=tuple(np.array(ks, dtype=np.int64) for ks in layout.pool_slots),
            pool_spot=tuple(p.capacity_type == "spot" for p in layout.pools),
            pool_min=tuple(p.min_nodes for p in layout.pools),
            pool_max=tuple(p.max_nodes for p in layout.pools),
            od_min_pods=layout.od_min_pods,
        )


def _ceil_nodes(pods: np.ndarray, ppn: np.ndarray) -> np.ndarray:
    return np.ceil(pods / ppn - 1e-9).astype(np.int64)


def execute_batch(
    lay: PlanLayout,
    active: np.ndarray,
    pending: np.ndarray,
    price: np.ndarray,
    launchable: np.ndarray,
    mix: MixBatch,
    plan: np.ndarray,
) -> np.ndarray:
    """:func:`agents.cost.plan.execute` per fleet with ``pods_now = plan_pods = plan``
    (as :meth:`agents.cost.controller.Controller.desired`): desired nodes ``(E, K)``.

    ``active``/``pending`` int64 ``(E, K)`` nodes, ``price`` USD/hour ``(E, K)``,
    ``launchable`` bool ``(E, K)``, ``plan`` pods ``(E,)``."""
    sp, ppn = lay.spot, lay.ppn
    ppn_s = ppn[sp]
    od_base = np.maximum(mix.od_floor * plan, lay.od_min_pods)
    spot_part = np.maximum(0.0, plan - od_base)
    spot_goal = spot_part * (1.0 + mix.spot_buffer)
    act_s = active[:, sp]
    launch_s = launchable[:, sp]
    held = (act_s * ppn_s * ~launch_s).sum(axis=1).astype(np.float64)
    releasing = held > spot_goal

    spread = _spread_spot(act_s, launch_s, ppn_s, mix.weights, spot_goal - held)
    if releasing.any():
        rel = np.flatnonzero(releasing)
        spread[rel] = _release_stranded(
            act_s[rel],
            launch_s[rel],
            price[rel][:, sp] / ppn_s,
            ppn_s,
            (1.0 - mix.keep[rel]) * (held[rel] - spot_goal[rel]),
        )
    desired = active.copy()
    desired[:, sp] = spread
    _clamp_pools(lay, desired, spot=True)
    placed = (desired[:, sp] * ppn_s).sum(axis=1)
    shortfall = np.maximum(0.0, spot_part - placed / (1.0 + mix.spot_buffer))
    _spread_on_demand(lay, desired, launchable, od_base + mix.od_fill * shortfall)
    _clamp_pools(lay, desired, spot=False)
    return _make_before_break(lay, active, pending, price, desired, plan)


def _release_stranded(
    act_s: np.ndarray,
    launch_s: np.ndarray,
    price_per_pod: np.ndarray,
    ppn_s: np.ndarray,
    release: np.ndarray,
) -> np.ndarray:
    """Spot held in AZs that cannot launch exceeds the goal: release ``release`` pods of
    it, most expensive pod slot first; launchable spot slots go to zero."""
    rows = np.arange(act_s.shape[0])
    d = act_s.copy()
    order = np.argsort(-price_per_pod, axis=1, kind="stable")
    for r in range(ppn_s.size):
        j = order[:, r]
        p = ppn_s[j]
        cut = np.minimum(d[rows, j], np.floor(release / p + 1e-9).astype(np.int64))
        cut = np.where(launch_s[rows, j], 0, np.maximum(cut, 0))
        d[rows, j] -= cut
        release = release - cut * p
    d[launch_s] = 0
    return d


def _spread_spot(
    act_s: np.ndarray,
    launch_s: np.ndarray,
    ppn_s: np.ndarray,
    weights: np.ndarray,
    pods: np.ndarray,
) -> np.ndarray:
    """``plan._spread_spot`` over spot slots: desired spot nodes ``(E, S)``."""
    wmask = launch_s & (weights > 0.05)
    total_w = (weights * wmask).sum(axis=1)
    ok = (total_w > 0) & (pods > 0)
    wmask &= ok[:, None]
    ppn_max = np.where(wmask, ppn_s, 0).max(axis=1)
    goal = np.where(ok, _ceil_nodes(pods, np.maximum(ppn_max, 1)), 0)
    share = goal[:, None] * weights / np.where(ok, total_w, 1.0)[:, None]
    d = np.where(launch_s & ~wmask, 0, act_s)
    need = goal - (d * wmask).sum(axis=1)
    sign = np.where(need < 0, -1, 1)[:, None]  # add to the most short, or take from the most over
    d = d + sign * top_n_items(sign * (share - d), wmask, np.abs(need))
    tolerance = np.maximum(2.0, REBALANCE_SHARE * goal)[:, None]
    excess = d - share
    over = wmask & (excess >= tolerance)
    moved = np.where(over, np.floor(excess - tolerance).astype(np.int64) + 1, 0)
    d = d - moved
    return d + top_n_items(share - d, wmask & ~over, moved.sum(axis=1))


def _spread_on_demand(
    lay: PlanLayout, desired: np.ndarray, launchable: np.ndarray, pods: np.ndarray
) -> None:
    """``plan._spread_on_demand``, in place on ``desired``."""
    od = lay.od
    launch_o = launchable[:, od]
    usable = launch_o | ~launch_o.any(axis=1)[:, None]
    ppn_o = lay.ppn[od]
    ppn_max = np.where(usable, ppn_o, 0).max(axis=1)
    d = desired[:, od]
    goal = _ceil_nodes(np.maximum(0.0, pods), ppn_max)
    goal = np.maximum(0, goal - (d * ~usable).sum(axis=1))
    need = goal - (d * usable).sum(axis=1)
    sign = np.where(need < 0, -1, 1)[:, None]  # add to the fewest, or take from the most
    d = d + sign * top_n_items(-sign * d, usable, np.abs(need), integer=True)
    desired[:, od] = d


def _clamp_pools(lay: PlanLayout, desired: np.ndarray, *, spot: bool) -> None:
    """``plan._clamp_pools``, in place on ``desired``."""
    for ks, is_spot, lo, hi in zip(
        lay.pool_slots, lay.pool_spot, lay.pool_min, lay.pool_max, strict=True
    ):
        if is_spot != spot:
            continue
        d = desired[:, ks]
        total = d.sum(axis=1)
        everything = np.ones_like(d, dtype=bool)
        sign = np.where(total > hi, -1, 1)[:, None]  # take from the most, or add to the fewest
        n = np.maximum(total - hi, 0) + np.maximum(lo - total, 0)
        d = d + sign * top_n_items(-sign * d, everything, n, integer=True)
        desired[:, ks] = d


def _make_before_break(
    lay: PlanLayout,
    active: np.ndarray,
    pending: np.ndarray,
    price: np.ndarray,
    desired: np.ndarray,
    pods_now: np.ndarray,
) -> np.ndarray:
    """``plan._make_before_break``: cancel pending nodes freely, release running ones
    only out of the surplus of running pods over ``pods_now``, dearest pod slot first."""
    if not (desired < active).any():
        return desired
    ppn = lay.ppn
    surplus = ((active - pending) * ppn).sum(axis=1) - pods_now
    order = np.argsort(-price / ppn, axis=1, kind="stable")
    if (ppn == ppn[0]).all():  # one pod size: the allowance is whole nodes, used in order
        p = int(ppn[0])
        rows = np.arange(active.shape[0])[:, None]
        cut = (active - desired)[rows, order]
        cancel = np.minimum(np.maximum(cut, 0), pending[rows, order])
        wanted = np.maximum(cut - cancel, 0)
        allowed = np.where(surplus > 0, np.maximum(0.0, np.floor(surplus / p)), 0.0)
        removed = np.minimum(
            np.maximum(allowed[:, None] - (np.cumsum(wanted, axis=1) - wanted), 0), wanted
        ).astype(np.int64)
        out = np.empty_like(desired)
        out[rows, order] = active[rows, order] - cancel - removed
        return np.where(active > desired, out, desired)
    rows = np.arange(active.shape[0])
    out = desired.copy()
    for r in range(ppn.size):
        k = order[:, r]
        a, p = active[rows, k], ppn[k]
        cut = a - desired[rows, k]
        cancel = np.minimum(cut, pending[rows, k])
        allowed = np.where(surplus > 0, np.maximum(0, np.floor(surplus / p)), 0).astype(np.int64)
        removed = np.minimum(cut - cancel, allowed)
        cutting = cut > 0
        surplus = np.where(cutting, surplus - removed * p, surplus)
        out[rows, k] = np.where(cutting, a - cancel - removed, out[rows, k])
    return out
