"""The policy's observation built from the read protocols (adapters/observation.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from adapters.observation import MissingOffering, ObservationBuilder
from adapters.protocols import (
    MetricsReading,
    NodeGroupInfo,
    NodeState,
    Offering,
    PricePoint,
    SpotNotice,
)
from sim.control import PoolMetrics

NOW = datetime(2024, 3, 1, 12, 0)
AZS = ("a", "b")


@dataclass
class FakeMetrics:
    reading: MetricsReading
    asked: list[tuple[str, ...]] = field(default_factory=list)

    def read(self, pools: Sequence[str], now: datetime) -> MetricsReading:
        self.asked.append(tuple(pools))
        return self.reading


@dataclass
class FakeGroups:
    infos: dict[str, NodeGroupInfo]

    def list(self) -> Sequence[str]:
        return list(self.infos)

    def describe(self, name: str) -> NodeGroupInfo:
        return self.infos[name]

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        raise AssertionError("the builder never writes")


@dataclass
class FakeMarket:
    offers: Sequence[Offering]

    def offerings(self, instance_types: Sequence[str], azs: Sequence[str]) -> Sequence[Offering]:
        return self.offers

    def price_history(
        self, instance_type: str, azs: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[PricePoint]:
        return []

    def notices(self, since: datetime) -> Sequence[SpotNotice]:
        return []


def group(name: str, capacity_type: str, **kw: object) -> NodeGroupInfo:
    base = NodeGroupInfo(
        name=name,
        instance_types=("m5.large",),
        capacity_type=capacity_type,
        azs=AZS,
        min_size=0,
        max_size=10,
        desired_size=5,
        nodes_by_state_az={
            NodeState.PENDING: {"a": 1},
            NodeState.RUNNING: {"a": 2, "b": 2},
            NodeState.LEAVING: {"b": 1},
        },
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def offer(az: str, capacity_type: str, price: float, available: bool, **kw: object) -> Offering:
    return Offering("m5.large", az, capacity_type, price, available, **kw)  # type: ignore[arg-type]


MARKET = [
    offer("a", "on-demand", 0.096, True),
    offer("b", "on-demand", 0.096, True),
    offer("a", "spot", 0.03, True),
    offer("b", "spot", 0.04, True),
]
FRESH = MetricsReading({"od": PoolMetrics(100.0, 0.5, 80.0, 0.0, 0.0, 4.0)}, 12.0)


def builder(
    infos: list[NodeGroupInfo],
    offers: Sequence[Offering] = MARKET,
    reading: MetricsReading = FRESH,
    **kw: bool,
) -> ObservationBuilder:
    return ObservationBuilder(
        FakeMetrics(reading), FakeGroups({i.name: i for i in infos}), FakeMarket(offers), **kw
    )


def test_counts_prices_and_metrics() -> None:
    obs = builder([group("od", "on-demand"), group("sp", "spot")]).observe(NOW, 30.0)
    assert (obs.now, obs.sim_time_s, obs.metrics_age_s) == (NOW, 30.0, 12.0)
    assert obs.metrics == FRESH.metrics
    od, sp = obs.pools["od"], obs.pools["sp"]
    assert (od.nodes_pending, od.nodes_running, od.nodes_leaving) == (1, 4, 1)
    assert od.nodes_by_az == {"a": 3, "b": 2} and od.pending_by_az == {"a": 1, "b": 0}
    assert dict(od.price_usd_per_hour) == {"a": 0.096, "b": 0.096}
    assert dict(sp.price_usd_per_hour) == {"a": 0.03, "b": 0.04}
    assert dict(od.spot_available) == {"a": True, "b": True}
    assert od.launchable_azs == sp.launchable_azs == AZS


def test_gap_passes_through_with_its_age() -> None:
    gap = MetricsReading(None, 180.0)
    obs = builder([group("od", "on-demand")], reading=gap).observe(NOW, 0.0)
    assert obs.metrics is None and obs.metrics_age_s == 180.0


def test_zone_down_is_not_launchable_but_keeps_spot_on_offer() -> None:
    # an AZ outage: nothing launches in b, yet the spot market there still has capacity
    offers = [
        offer("a", "on-demand", 0.096, True, capacity_on_offer=True),
        offer("b", "on-demand", 0.096, False, capacity_on_offer=True),
        offer("a", "spot", 0.03, False, capacity_on_offer=False),
        offer("b", "spot", 0.04, False, capacity_on_offer=True),
    ]
    obs = builder([group("od", "on-demand"), group("sp", "spot")], offers).observe(NOW, 0.0)
    assert obs.pools["od"].launchable_azs == ("a",)
    assert dict(obs.pools["od"].spot_available) == {"a": True, "b": True}
    assert obs.pools["sp"].launchable_azs == ()
    assert dict(obs.pools["sp"].spot_available) == {"a": False, "b": True}


def test_without_capacity_on_offer_spot_follows_available() -> None:
    offers = [*MARKET[:2], offer("a", "spot", 0.03, False), offer("b", "spot", 0.04, True)]
    obs = builder([group("sp", "spot")], offers).observe(NOW, 0.0)
    assert dict(obs.pools["sp"].spot_available) == {"a": False, "b": True}
    assert obs.pools["sp"].launchable_azs == ("b",)


def test_several_instance_types_cheapest_and_any_launchable() -> None:
    info = group("sp", "spot", instance_types=("m5.large", "m6i.large"))
    offers = [
        *MARKET,
        Offering("m6i.large", "a", "spot", 0.02, False),
        Offering("m6i.large", "b", "spot", 0.05, False),
        Offering("c5.large", "a", "spot", 0.001, True),  # not the group's: ignored
    ]
    state = builder([info], offers).observe(NOW, 0.0).pools["sp"]
    assert dict(state.price_usd_per_hour) == {"a": 0.02, "b": 0.04}
    assert state.launchable_azs == AZS


def test_a_zone_without_offering_is_an_error() -> None:
    with pytest.raises(MissingOffering, match=r"'sp'.*spot.*in b"):
        builder([group("sp", "spot")], MARKET[:3]).observe(NOW, 0.0)


def test_interruptions_and_failures_since_the_last_look() -> None:
    infos = FakeGroups({"sp": group("sp", "spot", interruptions=3, launch_failures=1)})
    b = ObservationBuilder(FakeMetrics(FRESH), infos, FakeMarket(MARKET))
    first = b.observe(NOW, 0.0).pools["sp"]
    assert (first.interruptions_last_interval, first.launch_failures_last_interval) == (3, 1)
    infos.infos["sp"] = group("sp", "spot", interruptions=5, launch_failures=1)
    second = b.observe(NOW, 60.0).pools["sp"]
    assert (second.interruptions_last_interval, second.launch_failures_last_interval) == (2, 0)
    third = b.observe(NOW, 120.0).pools["sp"]
    assert (third.interruptions_last_interval, third.launch_failures_last_interval) == (0, 0)


def test_count_from_first_look() -> None:
    info = group("sp", "spot", interruptions=3, launch_failures=1)
    state = builder([info], count_from_first_look=True).observe(NOW, 0.0).pools["sp"]
    assert (state.interruptions_last_interval, state.launch_failures_last_interval) == (0, 0)


def test_names_fix_the_groups_and_their_order() -> None:
    infos = [group("od", "on-demand"), group("sp", "spot")]
    metrics = FakeMetrics(FRESH)
    b = ObservationBuilder(
        metrics, FakeGroups({i.name: i for i in infos}), FakeMarket(MARKET), names=["sp"]
    )
    assert list(b.observe(NOW, 0.0).pools) == ["sp"]
    assert metrics.asked == [("sp",)]


def test_reused_objects_give_fresh_zone_maps() -> None:
    b = builder([group("od", "on-demand")])
    first = b.observe(NOW, 0.0).pools["od"]
    first.nodes_by_az["a"] = 99  # type: ignore[index]  # a policy scribbling on its copy
    second = b.observe(NOW, 60.0).pools["od"]
    assert second.nodes_by_az == {"a": 3, "b": 2}
    assert second.price_usd_per_hour is first.price_usd_per_hour  # same offerings: reused


def test_new_offerings_rebuild_the_market_view() -> None:
    market = FakeMarket(MARKET)
    b = ObservationBuilder(FakeMetrics(FRESH), FakeGroups({"sp": group("sp", "spot")}), market)
    assert b.observe(NOW, 0.0).pools["sp"].price_usd_per_hour["a"] == 0.03
    market.offers = [*MARKET[:2], offer("a", "spot", 0.05, True), MARKET[3]]
    assert b.observe(NOW, 60.0).pools["sp"].price_usd_per_hour["a"] == 0.05
