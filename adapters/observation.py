"""The policy's :class:`~sim.control.Observation`, built from the read protocols.

One builder serves the replay (over :mod:`sim.adapters`) and the live loop (over the
boto3 adapters), so a policy sees the same shape from both:

- metrics: :meth:`MetricsSource.read` for every node group (None on a gap, with its age);
- nodes: :meth:`NodeGroups.describe` per group: pending, running and leaving counts,
  pending + running per zone, pending per zone;
- market: :meth:`SpotMarket.offerings` of the group's instance types in its zones: the
  price in force per zone (USD/hour) of the group's capacity type, whether spot
  capacity is on offer per zone (always True for an on-demand group) and the zones
  where a launch would succeed now;
- interruptions and launch failures since the last look: the difference of the group's
  cumulative counters between two looks.

A group with several instance types is priced at its cheapest type per zone, and a zone
is launchable (or has spot on offer) if any of its types is.

The builder is on the replay's hot path (every control tick), so it reuses what it
derived at the last look when an implementation hands over the very same object again:
the market maps while ``offerings`` returns the same sequence, the node counts while
``describe`` returns the same :class:`NodeGroupInfo`. Implementations that cache (the
simulator does) must therefore return a new object whenever anything in it changed; the
per-zone dicts handed to the policy are fresh copies at every look.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from adapters.protocols import (
    MetricsSource,
    NodeGroupInfo,
    NodeGroups,
    NodeState,
    Offering,
    SpotMarket,
)
from sim.control import Observation, PoolState

_NONE: Mapping[str, int] = MappingProxyType({})


class MissingOffering(LookupError):
    """The market offered nothing for a zone of a group (its price is unknown)."""

    def __init__(self, group: str, az: str, capacity_type: str) -> None:
        super().__init__(
            f"node group {group!r}: the spot market has no {capacity_type} offering "
            f"of its instance types in {az}"
        )
        self.group, self.az, self.capacity_type = group, az, capacity_type


@dataclass(frozen=True, slots=True)
class MarketView:
    """One group's market per zone, as :class:`~sim.control.PoolState` holds it."""

    price_usd_per_hour: Mapping[str, float]
    spot_available: Mapping[str, bool]
    launchable_azs: tuple[str, ...]


def market_view(info: NodeGroupInfo, offers: Sequence[Offering]) -> MarketView:
    """Price (USD/hour), spot on offer and launchability per zone of ``info``'s group.

    Only offerings of the group's instance types and capacity type count. Spot is on
    offer in a zone if :attr:`Offering.capacity_on_offer` says so (when given: the
    simulator tells the market apart from the zone's health) or else if the offering is
    available; an on-demand group always has it. Raises :class:`MissingOffering` for a
    zone no offering prices.
    """
    types = set(info.instance_types)
    price: dict[str, float] = {}
    on_offer: dict[str, bool] = {}
    launchable: dict[str, bool] = {}
    for offer in offers:
        if offer.capacity_type != info.capacity_type or offer.instance_type not in types:
            continue
        az = offer.az
        known = price.get(az)
        if known is None or offer.price_usd_per_hour < known:
            price[az] = offer.price_usd_per_hour
        market_up = offer.available if offer.capacity_on_offer is None else offer.capacity_on_offer
        on_offer[az] = on_offer.get(az, False) or market_up
        launchable[az] = launchable.get(az, False) or offer.available
    missing = [az for az in info.azs if az not in price]
    if missing:
        raise MissingOffering(info.name, missing[0], info.capacity_type)
    is_spot = info.capacity_type == "spot"
    return MarketView(
        price_usd_per_hour=MappingProxyType({az: price[az] for az in info.azs}),
        spot_available=MappingProxyType({az: on_offer[az] if is_spot else True for az in info.azs}),
        launchable_azs=tuple(az for az in info.azs if launchable[az]),
    )


@dataclass(frozen=True, slots=True)
class _NodeCounts:
    """A group's node counts as :class:`~sim.control.PoolState` holds them."""

    pending: int
    running: int
    leaving: int
    active_by_az: Mapping[str, int]  # pending + running
    pending_by_az: Mapping[str, int]

    @classmethod
    def of(cls, info: NodeGroupInfo) -> _NodeCounts:
        by_state = info.nodes_by_state_az
        pending = by_state.get(NodeState.PENDING, _NONE)
        running = by_state.get(NodeState.RUNNING, _NONE)
        leaving = by_state.get(NodeState.LEAVING, _NONE)
        return cls(
            pending=sum(pending.values()),
            running=sum(running.values()),
            leaving=sum(leaving.values()),
            active_by_az={az: pending.get(az, 0) + running.get(az, 0) for az in info.azs},
            pending_by_az={az: pending.get(az, 0) for az in info.azs},
        )


class _Group:
    """What the builder keeps of one group between looks."""

    __slots__ = ("counts", "info", "interruptions", "launch_failures", "offers", "view")

    def __init__(self, info: NodeGroupInfo, *, count_from_now: bool) -> None:
        self.info = info
        self.counts = _NodeCounts.of(info)
        self.offers: Sequence[Offering] | None = None
        self.view: MarketView | None = None
        self.interruptions = info.interruptions if count_from_now else 0
        self.launch_failures = info.launch_failures if count_from_now else 0


class ObservationBuilder:
    """Builds an :class:`~sim.control.Observation` at each look (see the module docstring).

    Parameters
    ----------
    metrics, groups, market
        Where the metrics, the node groups and the offerings come from.
    names
        The node groups to observe, in the order the policy sees them; default: every
        group ``groups.list()`` returns, asked at each look.
    count_from_first_look
        If True, the first look reports no interruptions or launch failures (counting
        starts there: a live loop joining groups that already have a history); if False
        (the replay) the first look reports every one since the groups were created.
    """

    def __init__(
        self,
        metrics: MetricsSource,
        groups: NodeGroups,
        market: SpotMarket,
        *,
        names: Sequence[str] | None = None,
        count_from_first_look: bool = False,
    ) -> None:
        self.metrics = metrics
        self.groups = groups
        self.market = market
        self.names = tuple(names) if names is not None else None
        self.count_from_first_look = count_from_first_look
        self._groups: dict[str, _Group] = {}

    def observe(self, now: datetime, sim_time_s: float) -> Observation:
        """What the policy sees at ``now`` (``sim_time_s``: seconds since the run's start)."""
        names = self.names if self.names is not None else tuple(self.groups.list())
        reading = self.metrics.read(names, now)
        describe = self.groups.describe
        states = {name: self._pool_state(describe(name)) for name in names}
        return Observation(sim_time_s, now, reading.metrics, reading.age_s, states)

    def _pool_state(self, info: NodeGroupInfo) -> PoolState:
        name = info.name
        group = self._groups.get(name)
        if group is None:
            group = _Group(info, count_from_now=self.count_from_first_look)
            self._groups[name] = group
        elif info is not group.info:
            old = group.info
            if (old.instance_types, old.capacity_type, old.azs) != (
                info.instance_types,
                info.capacity_type,
                info.azs,
            ):
                group.view = None
            group.info = info
            group.counts = _NodeCounts.of(info)
        offers = self.market.offerings(info.instance_types, info.azs)
        view = group.view
        if view is None or offers is not group.offers:
            view = group.view = market_view(info, offers)
            group.offers = offers
        counts = group.counts
        interruptions = info.interruptions - group.interruptions
        launch_failures = info.launch_failures - group.launch_failures
        group.interruptions, group.launch_failures = info.interruptions, info.launch_failures
        return PoolState(
            name,
            counts.pending,
            counts.running,
            counts.leaving,
            dict(counts.active_by_az),
            dict(counts.pending_by_az),
            view.price_usd_per_hour,
            view.spot_available,
            view.launchable_azs,
            interruptions,
            launch_failures,
        )
