"""The episode-level optimum: hand-computed optima on tiny episodes, the parsing of a
market window, and the bound against policies replayed by the fast fleet model."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.cost.controller import Controller
from agents.cost.episode_optimum import (
    LP_KIND,
    MILP_KIND,
    Episode,
    episode_from_market,
    min_minute_prices,
    slo_pod_capacity_rps,
    solve,
)
from agents.cost.fleet import FleetModel, Market
from agents.cost.heuristics import MixRule, OnDemandRule, SpotGreedyRule
from agents.cost.plan import Layout
from sim.control import PoolSpec
from sim.latency import LatencyModel
from sim.market.prices import PriceSeries
from sim.scenario import LognormalDelay
from sim.traffic import ServiceModel

OD, SPOT_A, SPOT_B = 0, 1, 2


def _episode(
    need: list[float],
    prices: list[list[float]],
    *,
    spot: tuple[bool, ...] = (False, True, True),
    azs: tuple[str, ...] = ("a", "a", "b"),
    od_min: int = 0,
    bans: dict[str, list[tuple[float, float]]] | None = None,
    reclaims: tuple[tuple[float, str, float], ...] = (),
    lead_s: float = 0.0,
) -> Episode:
    """Slots of one pod per node; prices USD/hour per slot and minute."""
    n = len(need)
    table = np.array([p if len(p) == n else p * n for p in prices], dtype=np.float64)
    return Episode(
        need_pods=np.array(need, dtype=np.float64),
        price_usd_per_hour=table,
        pods_per_node=(1,) * len(spot),
        slot_az=azs,
        slot_spot=spot,
        od_pools=((tuple(k for k, s in enumerate(spot) if not s), od_min),),
        spot_bans=bans or {},
        reclaims=reclaims,
        outages=(),
        lead_s=lead_s,
        notice_s=120.0,
        drain_s=30.0,
        interval_s=60.0,
    )


def test_constant_load_and_prices_sit_on_the_cheapest_available_slot() -> None:
    # spot in b is cheaper but never on offer; 2 nodes on spot a for 30 minutes
    ep = _episode([2.0] * 30, [[3.0], [1.0], [0.5]], bans={"b": [(0.0, 1800.0)]}, lead_s=75.0)
    opt = solve(ep)
    assert opt.kind == LP_KIND
    assert opt.cost_usd == pytest.approx(2 * 1.0 * 30 / 60)
    assert opt.serving_nodes[SPOT_A] == pytest.approx(np.full(30, 2.0))
    with_minimum = solve(_episode([2.0] * 30, [[3.0], [1.0], [0.5]], od_min=1,
                                  bans={"b": [(0.0, 1800.0)]}))  # fmt: skip
    assert with_minimum.cost_usd == pytest.approx((1 * 3.0 + 1 * 1.0) * 30 / 60)


def test_a_gap_longer_than_the_lead_is_bridged_on_demand() -> None:
    # spot only from 300 s on; 4 nodes; lead 75 s: every spot node starting to serve in
    # minute 5 costs a billed minute first (its booting), cheaper than on-demand there
    ep = _episode([4.0] * 10, [[3.0], [1.0]], spot=(False, True), azs=("a", "a"),
                  bans={"a": [(0.0, 300.0)]}, lead_s=75.0)  # fmt: skip
    opt = solve(ep)
    assert opt.serving_nodes[OD, :5] == pytest.approx(np.full(5, 4.0))
    assert opt.cost_usd == pytest.approx((5 * 4 * 3.0 + 8 * 1.0 + 4 * 4 * 1.0) / 60)


@pytest.mark.parametrize(
    ("fraction", "expected_node_minutes"),
    [
        # all reclaimed: spot serves minutes 0-3 (the noticed nodes through minute 3),
        # on-demand minutes 4-6, spot again 7-9
        (1.0, 4 * 7 * 1.0 + 4 * 3 * 3.0),
        # a quarter reclaimed: 16/3 spot nodes before the drop leave 4 after it
        (0.25, 2 * 4 * 1.0 + 2 * (16 / 3) * 1.0 + 3 * 4 * 1.0 + 3 * 4 * 1.0),
    ],
)
def test_reclaims_leave_one_minus_the_fraction(
    fraction: float, expected_node_minutes: float
) -> None:
    ep = _episode([4.0] * 10, [[3.0], [1.0]], spot=(False, True), azs=("a", "a"),
                  bans={"a": [(120.0, 420.0)]}, reclaims=((120.0, "a", fraction),))  # fmt: skip
    assert solve(ep).cost_usd == pytest.approx(expected_node_minutes / 60)


def test_nodes_noticed_mid_minute_still_serve_into_the_next_minutes() -> None:
    # a drop at 150 s reclaims every spot node; the noticed nodes bill and serve until
    # 270 s, into minute 4: on-demand is needed only from minute 5 (any policy could
    # hold spot through minute 4 with its notices)
    ep = _episode([4.0] * 10, [[3.0], [1.0]], spot=(False, True), azs=("a", "a"),
                  bans={"a": [(150.0, 420.0)]}, reclaims=((150.0, "a", 1.0),))  # fmt: skip
    assert solve(ep).cost_usd == pytest.approx((4 * 5 * 1.0 + 4 * 2 * 3.0 + 4 * 3 * 1.0) / 60)


def test_a_price_spike_shifts_to_on_demand() -> None:
    spot_prices = [1.0] * 3 + [5.0] * 3 + [1.0] * 4
    ep = _episode([2.0] * 10, [[3.0], spot_prices], spot=(False, True), azs=("a", "a"))
    opt = solve(ep)
    assert opt.serving_nodes[OD] == pytest.approx([0, 0, 0, 2, 2, 2, 0, 0, 0, 0])
    assert opt.cost_usd == pytest.approx(2 * (7 * 1.0 + 3 * 3.0) / 60)


@pytest.mark.parametrize(("lead_s", "extra"), [(0.0, 0.0), (75.0, 3.0), (150.0, 3.0)])
def test_a_load_step_pays_one_booting_minute_per_new_node(lead_s: float, extra: float) -> None:
    ep = _episode([2.0] * 5 + [5.0] * 5, [[1.0]], spot=(False,), azs=("a",), lead_s=lead_s)
    assert solve(ep).cost_usd == pytest.approx((35.0 + extra) / 60)


def test_violation_minutes_give_up_the_dearest_minutes() -> None:
    need = [2.0] * 4 + [10.0] + [2.0] * 5
    ep = _episode(need, [[1.0]], spot=(False,), azs=("a",))
    assert solve(ep).cost_usd == pytest.approx(28.0 / 60)
    # the minute given up needs nothing at all (a lower bound asks nothing of it)
    assert solve(ep, violation_minutes=1).cost_usd == pytest.approx(18.0 / 60)


def test_whole_nodes_cost_at_least_the_relaxation() -> None:
    ep = _episode([2.5] * 6, [[1.0]], spot=(False,), azs=("a",))
    assert solve(ep).cost_usd == pytest.approx(15.0 / 60)
    whole = solve(ep, integer=True)
    assert whole.kind == MILP_KIND
    assert whole.cost_usd == pytest.approx(18.0 / 60)


def test_slo_capacity_is_the_calibrated_load_per_vcpu() -> None:
    latency = LatencyModel(workers_per_pod=2, rps_per_vcpu=50.0, p95_target_ms=200.0,
                           base_latency_ms=20.0)  # fmt: skip
    service = ServiceModel(latency, queue_limit_per_pod=200, request_timeout_ms=30_000.0)
    assert slo_pod_capacity_rps(service, 200.0) == pytest.approx(100.0, rel=1e-3)


def test_minute_prices_are_the_lowest_in_force() -> None:
    series = PriceSeries(np.array([0.0, 90.0, 100.0]), np.array([2.0, 1.0, 3.0]))
    assert min_minute_prices(series, 0.0, 3).tolist() == [2.0, 1.0, 3.0]
    assert min_minute_prices(series, 30.0, 2).tolist() == [2.0, 1.0]  # [30, 90), [90, 150)


def _layout(od_min: int = 1) -> Layout:
    def pool(name: str, kind: str, min_nodes: int) -> PoolSpec:
        return PoolSpec(name=name, instance_type="c5a.2xlarge", capacity_type=kind,
                        azs=("a", "b"), min_nodes=min_nodes, max_nodes=60, vcpus=8,
                        memory_gib=16.0, pods_per_node=7, on_demand_usd_per_hour=0.308,
                        rps_per_node_at_target=210.0)  # fmt: skip

    return Layout.of([pool("od", "on-demand", od_min), pool("spot", "spot", 0)])


def _market(
    offered: list[float],
    spot_prices: tuple[float, float],
    downs: dict[str, list[tuple[int, int]]],
    *,
    reclaim_fraction: float = 0.25,
    storms: list[tuple[float, float, tuple[str, ...], float]] | None = None,
) -> Market:
    """Two AZs; ``downs`` per AZ: (first minute, minutes) without spot."""
    n = len(offered)
    transitions = []
    for az, spans in downs.items():
        for first, length in spans:
            transitions += [(first * 60.0, az, False), ((first + length) * 60.0, az, True)]
    transitions = [x for x in sorted(transitions) if 0.0 < x[0] < n * 60.0]
    available0 = {az: not any(f == 0 for f, _ in downs.get(az, [])) for az in ("a", "b")}
    prices = [[0.308] * (n + 1)] * 2 + [[p] * (n + 1) for p in spot_prices]
    return Market(
        start=datetime(2024, 1, 1),
        offered_rps=list(offered),
        gaps=[False] * n,
        prices=prices,
        available0=available0,
        transitions=transitions,
        history_rps=np.full(60, offered[0]),
        reclaim_fraction=reclaim_fraction,
        storms=storms or [],
    )


def test_a_market_window_becomes_bans_and_reclaims() -> None:
    market = _market([350.0] * 30, (0.1, 0.2), {"a": [(0, 3), (10, 5)], "b": [(20, 20)]},
                     storms=[(600.0, 120.0, ("b",), 0.5)])  # fmt: skip
    ep = episode_from_market(_layout(), market, pod_capacity_rps=50.0, lead_s=75.0,
                             notice_s=120.0, drain_s=30.0, interval_s=60.0)  # fmt: skip
    assert ep.spot_bans == {"a": [(0.0, 180.0), (600.0, 900.0)],
                            "b": [(600.0, 720.0), (1200.0, 1800.0)]}  # fmt: skip
    assert ep.reclaims == ((600.0, "a", 0.25), (600.0, "b", 0.5), (1200.0, "b", 0.25))
    assert ep.need_pods == pytest.approx(np.full(30, 7.0))
    assert ep.od_pools == (((0, 1), 1),)
    assert ep.price_usd_per_hour[2:, 0].tolist() == [0.1, 0.2]


LATENCY = LatencyModel(workers_per_pod=1, rps_per_vcpu=50.0, p95_target_ms=200.0,
                       base_latency_ms=20.0)  # fmt: skip
SERVICE = ServiceModel(LATENCY, queue_limit_per_pod=200, request_timeout_ms=30_000.0)


def _replay(layout: Layout, market: Market, rule: MixRule, seed: int) -> tuple[float, int]:
    """(cost USD, violation minutes) of ``rule`` on ``market`` in the fast fleet model."""
    pod_rate = SERVICE.pod_rate_rps * 0.6
    rngs = tuple(np.random.default_rng(seed + i) for i in range(3))
    model = FleetModel(
        layout, market, service=SERVICE, slo_p95_ms=200.0,
        delay=LognormalDelay(kind="lognormal", median_s=120.0, sigma=0.35, low_s=60.0,
                             high_s=300.0),
        pod_start_delay_s=15.0, drain_s=30.0, notice_s=120.0,
        pod_rate_at_target_rps=pod_rate, rngs=rngs,  # type: ignore[arg-type]
    )  # fmt: skip
    ctrl = Controller(layout, pod_rate_rps=pod_rate, slo_p95_ms=200.0, start=market.start,
                      history_rps=market.history_rps)  # fmt: skip
    ctrl.observe(model.tick())
    violations = 0
    for _ in range(market.n_minutes):
        model.apply(ctrl.desired(rule.mix(ctrl)))
        violations += not model.advance().ok
        ctrl.observe(model.tick())
    return model.cost, violations


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    levels=st.lists(st.floats(100.0, 2500.0), min_size=2, max_size=4),
    spot_prices=st.tuples(st.floats(0.05, 0.3), st.floats(0.05, 0.3)),
    down_a=st.lists(st.tuples(st.integers(0, 80), st.integers(1, 40)), max_size=2),
    down_b=st.lists(st.tuples(st.integers(0, 80), st.integers(1, 40)), max_size=2),
    fraction=st.sampled_from([0.25, 1.0]),
    seed=st.integers(0, 1000),
)
def test_the_optimum_never_exceeds_a_replayed_policy_at_its_slo(
    levels: list[float],
    spot_prices: tuple[float, float],
    down_a: list[tuple[int, int]],
    down_b: list[tuple[int, int]],
    fraction: float,
    seed: int,
) -> None:
    offered = [x for level in levels for x in [level] * 25]
    market = _market(offered, spot_prices, {"a": down_a, "b": down_b},
                     reclaim_fraction=fraction)  # fmt: skip
    layout = _layout()
    ep = episode_from_market(
        layout, market, pod_capacity_rps=slo_pod_capacity_rps(SERVICE, 200.0), lead_s=75.0,
        notice_s=120.0, drain_s=30.0, interval_s=60.0,
    )  # fmt: skip
    for rule in (OnDemandRule(), SpotGreedyRule()):
        cost, violations = _replay(layout, market, rule, seed)
        bound = solve(ep, violation_minutes=violations).cost_usd
        assert bound <= cost + 1e-9, (rule.name, bound, cost, violations)


def test_bench_cost_reports_the_optimum_below_every_policy_at_the_slo() -> None:
    from bench.cost import SLO_TARGET, run_set, targets

    result = run_set("preempt-p3", days=0.5, policies=("on-demand", "spot-greedy"))
    opt = result["optimum"]
    assert opt["optimum_kind"] == LP_KIND
    assert opt["optimum_violation_minutes"] == 0  # 720 minutes at 99.9%
    market = result["market"]
    assert market["cheapest_spot_saving"] == market["market_bound_savings"]
    for row in result["policies"].values():
        assert row["gap_to_optimum"] == pytest.approx(
            row["cost_usd"] / opt["optimum_cost_usd"] - 1.0, abs=1e-4
        )
        if row["slo_attainment"] >= SLO_TARGET:
            assert opt["optimum_cost_usd"] <= row["cost_usd"]
    assert targets(result) == {}  # no cost-rl in the run: no targets
