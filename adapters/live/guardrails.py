"""What ``opsbench live scale --apply`` may write: the guardrails around a policy's proposal.

A policy proposes a desired size per node group; :func:`guard` turns each proposal into
the size actually written (or ``None``: no write) and the reason, checking, in order:

1. the kill switch: while its file exists nothing is written at all;
2. the group's bounds: the written size is never outside ``[min_size, max_size]``;
3. the step: at most ``max_step_nodes`` nodes up or down per interval (a group whose
   current desired size is further than one step outside its bounds is left alone);
4. the budget: the fleet's cost per hour at the sizes being written stays within
   ``budget_usd_per_hour`` (an increase is cut to the largest size that fits; a decrease
   is always allowed);
5. the cooldown: at least ``cooldown_s`` between two writes to one group;
6. no change: a target equal to the current desired size is not written.

Pricing (:func:`node_price_usd_per_hour`): a node of a group costs the *highest* current
price among the group's offerings of its own capacity type (every instance type x every
zone of the group, on-demand price for on-demand groups, current spot price for spot
groups), whether or not the offering is available now: a group with several instance
types or zones may land a node on any of them, so the cap holds wherever it lands. A
group with no offering of its capacity type has no price, and is never grown under a
budget. The fleet is the node groups the loop sizes (``--nodegroup``), nothing else.

Everything here is pure: times, sizes and prices come in as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from adapters.protocols import NodeGroupInfo, Offering


class Guardrails(BaseModel):
    """The limits of ``--apply`` (flags ``--max-step``, ``--budget-usd-per-hour``,
    ``--cooldown``, ``--kill-switch``, ``--max-metrics-age``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_step_nodes: int = Field(default=2, ge=1, description="nodes up or down per interval")
    budget_usd_per_hour: float | None = Field(
        default=None, gt=0, description="cap on the fleet's cost per hour (USD); None: no cap"
    )
    cooldown_s: float = Field(default=300.0, ge=0, description="seconds between writes per group")
    kill_switch: Path = Field(
        default=Path("opsbench-live.stop"), description="while this file exists, write nothing"
    )
    max_metrics_age_s: float = Field(
        default=300.0, gt=0, description="older metrics count as stale: hold (seconds)"
    )


@dataclass(frozen=True, slots=True)
class GroupProposal:
    """One group's state and what the policy proposes for it.

    ``price_usd_per_hour`` is one node's price (:func:`node_price_usd_per_hour`; None when
    the group cannot be priced); ``last_write`` the time of the last write to the group
    (None: never written by this loop).
    """

    info: NodeGroupInfo
    proposed: int
    price_usd_per_hour: float | None
    last_write: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The size to write for one group (None: no write) and why."""

    nodegroup: str
    write: int | None
    reason: str


def node_price_usd_per_hour(info: NodeGroupInfo, offerings: Sequence[Offering]) -> float | None:
    """One node's price in ``info``'s group: the highest current price of its capacity type
    over the group's instance types and zones (see the module docstring); None if the
    market has no such offering."""
    types, azs = set(info.instance_types), set(info.azs)
    prices = [
        o.price_usd_per_hour
        for o in offerings
        if o.capacity_type == info.capacity_type
        and o.instance_type in types
        and (not azs or o.az in azs)
        and math.isfinite(o.price_usd_per_hour)
    ]
    return max(prices) if prices else None


def fleet_cost_usd_per_hour(
    sizes: Mapping[str, int], prices: Mapping[str, float | None]
) -> float | None:
    """Cost per hour (USD) of ``sizes`` nodes per group at ``prices``; None when a group
    holding nodes has no price."""
    total = 0.0
    for name, size in sizes.items():
        price = prices.get(name)
        if size > 0 and price is None:
            return None
        total += size * (price or 0.0)
    return total


def _bounded(info: NodeGroupInfo, proposed: int, max_step: int) -> tuple[int | None, str]:
    """The proposal within the bounds and one step of the current size, or None (and
    why) when no size satisfies both."""
    current = info.desired_size
    low = max(info.min_size, current - max_step)
    high = min(info.max_size, current + max_step)
    if low > high:
        return None, (
            f"current desired {current} is more than {max_step} nodes outside "
            f"[{info.min_size}, {info.max_size}]: left alone"
        )
    target = min(max(proposed, low), high)
    notes = []
    if not info.min_size <= proposed <= info.max_size:
        notes.append(f"proposal {proposed} clamped to [{info.min_size}, {info.max_size}]")
    if target != min(max(proposed, info.min_size), info.max_size):
        notes.append(f"step limited to {max_step} nodes")
    return target, "; ".join(notes)


def guard(
    proposals: Sequence[GroupProposal],
    rails: Guardrails,
    *,
    now: datetime,
    kill_switch_present: bool,
) -> list[Verdict]:
    """The verdict for each proposal, in order (see the module docstring).

    Under a budget, groups are taken in the given order: a group's increase is priced
    with the groups before it at their verdicts and the groups after it at their current
    desired sizes, so the sum of the written sizes' costs stays within the budget.
    """
    if kill_switch_present:
        reason = f"kill switch {rails.kill_switch} present: nothing written"
        return [Verdict(p.info.name, None, reason) for p in proposals]
    sizes = {p.info.name: p.info.desired_size for p in proposals}
    prices = {p.info.name: p.price_usd_per_hour for p in proposals}
    verdicts = []
    for p in proposals:
        verdict = _one(p, rails, now=now, sizes=sizes, prices=prices)
        if verdict.write is not None:
            sizes[p.info.name] = verdict.write
        verdicts.append(verdict)
    return verdicts


def _nodes_within(left_usd_per_hour: float, price_usd_per_hour: float, target: int) -> int:
    """How many nodes at ``price_usd_per_hour`` fit in what the budget has left (``target``
    when the price is 0 or so small that the count overflows, e.g. a denormal price: any
    target fits then; a negative count when the rest of the fleet is already over)."""
    if price_usd_per_hour <= 0:
        return target
    ratio = left_usd_per_hour / price_usd_per_hour
    if not math.isfinite(ratio):
        return target if ratio > 0 else -1
    return math.floor(ratio + 1e-9)


def _one(
    p: GroupProposal,
    rails: Guardrails,
    *,
    now: datetime,
    sizes: Mapping[str, int],
    prices: Mapping[str, float | None],
) -> Verdict:
    name, current = p.info.name, p.info.desired_size
    target, note = _bounded(p.info, p.proposed, rails.max_step_nodes)
    if target is None:
        return Verdict(name, None, note)
    notes = [note] if note else []
    budget = rails.budget_usd_per_hour
    if budget is not None and target > current:
        price = p.price_usd_per_hour
        others = {k: v for k, v in sizes.items() if k != name}
        rest = fleet_cost_usd_per_hour(others, prices)
        if price is None or rest is None:
            return Verdict(
                name,
                None,
                f"no price for the fleet's nodes: not grown under a budget of ${budget:g}/h",
            )
        fits = _nodes_within(budget - rest, price, target)
        if fits < target:
            # the bounds come first: a group below its minimum still rises to it
            low = max(p.info.min_size, current - rails.max_step_nodes)
            cost = rest + target * price
            notes.append(f"fleet ${cost:,.2f}/h at {target} would exceed the budget ${budget:g}/h")
            target = max(fits, current, low)
    if target == current:
        return Verdict(name, None, "; ".join([*notes, f"no change ({current})"]))
    if p.last_write is not None:
        since = (now - p.last_write).total_seconds()
        if since < rails.cooldown_s:
            return Verdict(
                name,
                None,
                "; ".join(
                    [
                        *notes,
                        f"cooldown: {since:.0f} s since the last write < {rails.cooldown_s:g} s",
                    ]
                ),
            )
    return Verdict(name, target, "; ".join([*notes, f"{current} -> {target}"]))
