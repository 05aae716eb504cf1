"""Right-sizing in the cost mix: the minimum-cost cover of pods by instance types, the
incremental cover with consolidation, the layouts that use it, and a replay."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.cost.plan import (
    CONSOLIDATE_SHARE,
    Layout,
    adjust_cover,
    cheapest_cover,
    min_cost_cover,
)
from bench import runner


def _brute_force(pods: int, prices: list[float], ppn: list[int]) -> float:
    """The least price of nodes holding ``pods`` (every count up to what one type needs)."""
    bounds = [math.ceil(pods / n) for n in ppn]
    best = math.inf
    for counts in itertools.product(*(range(b + 1) for b in bounds)):
        if sum(c * n for c, n in zip(counts, ppn, strict=True)) >= pods:
            best = min(best, sum(c * p for c, p in zip(counts, prices, strict=True)))
    return best


@settings(max_examples=150, deadline=None)
@given(
    pods=st.integers(min_value=1, max_value=40),
    types=st.lists(
        st.tuples(st.integers(min_value=1, max_value=16), st.floats(min_value=0.01, max_value=5)),
        min_size=1,
        max_size=3,
    ),
)
def test_min_cost_cover_is_the_optimum(pods: int, types: list[tuple[int, float]]) -> None:
    ppn = [n for n, _ in types]
    prices = [p for _, p in types]
    counts = min_cost_cover(pods, tuple(prices), tuple(ppn))
    assert sum(c * n for c, n in zip(counts, ppn, strict=True)) >= pods
    cost = sum(c * p for c, p in zip(counts, prices, strict=True))
    assert cost == pytest.approx(_brute_force(pods, prices, ppn), rel=1e-9)


def test_a_greedy_fill_is_not_the_cover() -> None:
    # 12 pods: one 10-pod node ($1.00) + one 3-pod node ($0.31) = $1.31 (cheapest per pod
    # first); four 3-pod nodes = $1.24.
    ppn = [10, 3]
    assert cheapest_cover(12, [0, 1], [1.0, 0.31], ppn) == {0: 0, 1: 4}
    assert cheapest_cover(11.2, [0, 1], [1.0, 0.31], ppn) == {0: 0, 1: 4}
    assert cheapest_cover(0, [0, 1], [1.0, 0.31], ppn) == {0: 0, 1: 0}


def test_adjust_cover_buys_a_shortfall_cheaply_and_keeps_what_runs() -> None:
    ppn = [31, 7, 1]
    price = [1.232, 0.308, 0.085]
    desired = [0, 2, 0]  # 14 pods on the middle type
    adjust_cover(20, [0, 1, 2], price, ppn, desired)
    # 6 more pods: six 1-pod nodes $0.51 > one 7-pod node $0.308; the two running stay
    assert desired == [0, 3, 0]


def test_adjust_cover_releases_the_dearest_pods_first() -> None:
    ppn = [31, 7, 1]
    price = [1.232, 0.308, 0.085]
    desired = [1, 2, 3]  # 48 pods
    adjust_cover(40, [0, 1, 2], price, ppn, desired)
    assert desired == [1, 2, 0]  # the 1-pod nodes ($0.085 a pod) go first: 45 pods left
    assert sum(d * n for d, n in zip(desired, ppn, strict=True)) >= 40


def test_adjust_cover_consolidates_when_the_nodes_cost_too_much_more() -> None:
    ppn = [31, 1]
    price = [1.0, 0.2]
    desired = [0, 30]  # 30 small nodes: $6.00 for what one big node holds for $1.00
    adjust_cover(30, [0, 1], price, ppn, desired)
    assert desired == [1, 0]
    within = [0, 5]  # $1.00 = the cheapest cover: no swap
    adjust_cover(5, [0, 1], price, ppn, within)
    assert within == [0, 5]
    near = [0, 6]  # $1.20 for 6 pods vs one big node at $1.00: more than 10% dearer
    assert 1.2 > (1 + CONSOLIDATE_SHARE) * 1.0
    adjust_cover(6, [0, 1], price, ppn, near)
    assert near == [1, 0]


def test_only_layouts_with_several_types_use_the_cover() -> None:
    default = runner.prepare_run("default", policy="spot-greedy", days=0.1).world
    sized = runner.prepare_run("right-sizing", policy="spot-greedy", days=0.1).world
    assert not Layout.of(default.pools).several_types
    assert Layout.of(sized.pools).several_types


def test_right_sizing_costs_less_than_one_type_for_the_same_load() -> None:
    """One replayed day of the default week: the spot mix on seven types against the same
    mix on c5a.2xlarge alone (same load, availability and price series)."""
    costs = {}
    for scenario in ("default", "right-sizing"):
        summary = runner.run(runner.prepare_run(scenario, policy="spot-greedy", days=1))
        costs[scenario] = summary["cost_usd"]
        assert summary["slo_attainment"] >= 0.999
    assert costs["right-sizing"] < costs["default"]


def test_bench_right_sizing_compares_each_policy_on_both_worlds() -> None:
    from bench.right_sizing import OPTIMUM, right_sizing

    result = right_sizing(days=0.25, policies=("on-demand", "spot-greedy"))
    cells = {(c["scenario"], c["policy"]): c for c in result["cells"]}
    assert set(cells) == {
        (s, p) for s in ("default", "right-sizing") for p in ("on-demand", "spot-greedy", OPTIMUM)
    }
    for row in result["policies"]:
        one = cells["default", row["policy"]]["cost_usd"]
        many = cells["right-sizing", row["policy"]]["cost_usd"]
        assert row["saving"] == pytest.approx(1 - many / one)
        optimum = result["optimum"]["right-sizing"]["cost_usd"]
        assert row["right_sized_gap_to_optimum"] == pytest.approx(many / optimum - 1)
        assert many >= optimum * (1 - 1e-6)  # no policy beats the episode optimum
    market = result["optimum"]["right-sizing"]
    assert 0 <= market["spot_on_offer_share"] <= 1 and market["cheapest_spot_saving"] < 1
