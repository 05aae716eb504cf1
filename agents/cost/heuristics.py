"""The cost baselines as mix rules (see :mod:`agents.cost.plan` for what a mix is).

``on-demand``
    Everything on on-demand; never launches spot.
``spot-greedy``
    Everything on spot, spread evenly over the AZs that can launch; on-demand only for
    what spot cannot hold (no AZ on offer). No buffer, nothing kept.
``price-capacity``
    EC2 Fleet's / Karpenter's price-capacity-optimized allocation: among the AZs that
    can launch, those whose capacity score (share of the last hour with spot on offer,
    as seen at control ticks) is within ``capacity_band`` of the best, and of those the
    cheapest takes the spot part; a ``buffer`` of extra spot; on-demand fills the rest.
``uniform-progress``
    Can't-Be-Late's Uniform Progress rule (NSDI'24) adapted to serving: the SLO target
    (99.9% of minutes) is the progress line, allowing ``0.1% x elapsed`` violation
    minutes. While behind the line it holds the whole plan on on-demand; it goes back
    to spot only once ahead by ``margin_min`` minutes. On spot and ahead by that margin,
    it does not buy on-demand for all of a spot shortfall (it waits for spot, running
    hotter: on-demand fills ``slack_fill`` of it), as Can't-Be-Late idles while it has
    slack; spot nodes that cannot be relaunched are all kept.
``hindsight``
    A foresight rule (not the optimum: see :mod:`agents.cost.episode_optimum`): it
    knows the whole future (the load and the replayed availability; not injected faults).
    Plans exactly the pods the highest load of the next lead time
    needs (as the ``oracle``, with the longest provisioning delay as the lead), puts the
    spot part on the cheapest AZ with spot on offer (one that keeps it through the lead
    time first), buffers the reclaim share when a drop is foreseen, and keeps stranded
    spot nodes when the load of the next hours will use them. Per tick this solves the
    linear programme min sum(price x nodes) s.t. capacity >= need (a fractional
    knapsack: cheapest first); it is not a dynamic programme over the whole episode.
    With ``foresee_load: false`` it keeps the shared plan and foresees only the market
    (``hindsight-mix`` in ``opsbench bench cost``): a diagnostic of what the load
    foresight is worth, **not** a bound on the mix (it costs more than ``spot-greedy``
    where availability flaps, because it buffers every foreseen drop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agents.cost.controller import Controller
from agents.cost.plan import Mix
from sim.control import Foresight

KEEP_LOOKAHEAD_S = 3 * 3600.0


class MixRule:
    """A cost policy's choice of mix; ``plan`` may override the shared plan."""

    name = "rule"

    def reset(self, ctrl: Controller, foresight: Foresight | None) -> None:
        """Prepare for a new run."""

    def plan(self, ctrl: Controller) -> float | None:
        """Planned pods, or None for the shared plan."""
        return None

    def mix(self, ctrl: Controller) -> Mix:
        raise NotImplementedError


class OnDemandRule(MixRule):
    name = "on-demand"

    def mix(self, ctrl: Controller) -> Mix:
        n = len(ctrl.layout.spot_slots)
        return Mix(od_floor=1.0, od_fill=1.0, spot_buffer=0.0, keep=0.0, weights=(0.0,) * n)


class SpotGreedyRule(MixRule):
    name = "spot-greedy"

    def mix(self, ctrl: Controller) -> Mix:
        n = len(ctrl.layout.spot_slots)
        return Mix(od_floor=0.0, od_fill=1.0, spot_buffer=0.0, keep=0.0, weights=(1.0,) * n)


@dataclass
class PriceCapacityRule(MixRule):
    capacity_band: float = 0.1
    buffer: float = 0.1
    name: str = "price-capacity"

    def mix(self, ctrl: Controller) -> Mix:
        tick = ctrl.tick
        assert tick is not None
        spot = ctrl.layout.spot_slots
        scores = {
            j: 1.0 - ctrl.tracker.unavail[j] for j, k in enumerate(spot) if tick.launchable[k]
        }
        weights = [0.0] * len(spot)
        if scores:
            best = max(scores.values())
            top = [j for j, s in scores.items() if s >= best - self.capacity_band]
            slots = ctrl.layout.slots
            choice = min(top, key=lambda j: (tick.price[spot[j]] / slots[spot[j]].pods_per_node, j))
            weights[choice] = 1.0
        return Mix(0.0, 1.0, self.buffer, 0.0, tuple(weights))


@dataclass
class UniformProgressRule(MixRule):
    target: float = 0.999
    margin_min: float = 1.0
    slack_fill: float = 0.85
    buffer: float = 0.1
    name: str = "uniform-progress"
    on_demand: bool = field(default=False, init=False)

    def reset(self, ctrl: Controller, foresight: Foresight | None) -> None:
        self.on_demand = False

    def mix(self, ctrl: Controller) -> Mix:
        tr = ctrl.tracker
        ahead = (1.0 - self.target) * tr.minutes - tr.violations
        if ahead < 0:
            self.on_demand = True
        elif self.on_demand and ahead >= self.margin_min:
            self.on_demand = False
        n = len(ctrl.layout.spot_slots)
        if self.on_demand:
            return Mix(1.0, 1.0, 0.0, 1.0, (1.0,) * n)
        fill = self.slack_fill if ahead >= self.margin_min else 1.0
        return Mix(0.0, fill, self.buffer, 1.0, (1.0,) * n)


@dataclass
class HindsightRule(MixRule):
    foresee_load: bool = True
    name: str = "hindsight"
    foresight: Foresight | None = field(default=None, init=False)
    lead_s: float = field(default=0.0, init=False)
    notice_s: float = field(default=120.0, init=False)

    def configure(self, lead_s: float, notice_s: float) -> None:
        self.lead_s = lead_s
        self.notice_s = notice_s

    def reset(self, ctrl: Controller, foresight: Foresight | None) -> None:
        if foresight is None:
            raise ValueError("hindsight needs foresight of the workload and market")
        self.foresight = foresight

    def plan(self, ctrl: Controller) -> float | None:
        assert self.foresight is not None and ctrl.tick is not None
        if not self.foresee_load:
            return None
        now = ctrl.tick.t_s
        ahead = self.foresight.offered_rps(now, now + self.lead_s)
        return math.ceil(float(ahead.max()) / ctrl.pod_rate_rps - 1e-9) if ahead.size else 0.0

    def mix(self, ctrl: Controller) -> Mix:
        fs, tick = self.foresight, ctrl.tick
        assert fs is not None and tick is not None
        now = tick.t_s
        layout = ctrl.layout
        spot = layout.spot_slots
        horizon = now + self.lead_s + self.notice_s
        open_now = [j for j, k in enumerate(spot) if tick.launchable[k]]
        weights = [0.0] * len(spot)
        if open_now:  # spot nodes outlive drops (a drop reclaims a share): launch wherever
            # spot is on offer, preferring an AZ that keeps it through the lead time
            best = min(
                open_now,
                key=lambda j: (
                    not fs.spot_available_throughout(layout.slots[spot[j]].az, now, horizon),
                    tick.price[spot[j]] / layout.slots[spot[j]].pods_per_node,
                    j,
                ),
            )
            weights[best] = 1.0
        drop_soon = any(
            tick.active[k] > 0
            and not fs.spot_available_throughout(layout.slots[k].az, now, horizon)
            for k in spot
        )
        buffer = fs.spot_reclaim_fraction if drop_soon else 0.0
        held = sum(
            tick.active[k] * layout.slots[k].pods_per_node for k in spot if not tick.launchable[k]
        )
        later = fs.offered_rps(now, now + KEEP_LOOKAHEAD_S)
        need_later = float(later.max()) / ctrl.pod_rate_rps if later.size else 0.0
        keep = 1.0 if held and need_later >= held else 0.0
        return Mix(0.0, 1.0, buffer, keep, tuple(weights))
