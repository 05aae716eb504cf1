"""The guardrails of ``opsbench live scale --apply``: bounds, step, budget, cooldown, kill
switch (unit cases and hypothesis properties, of the pure function and of the loop)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.live.context import live_context
from adapters.live.guardrails import (
    GroupProposal,
    Guardrails,
    fleet_cost_usd_per_hour,
    guard,
    node_price_usd_per_hour,
)
from adapters.live.loop import LiveScaler
from adapters.protocols import NodeGroupInfo, Offering
from agents.registry import make_policy
from live.fakes import AZS, T0, FakeMarket, FakeMetrics, FakeNodeGroups, default_world, group
from live.fakes import metrics as pool_metrics

RAILS = Guardrails(max_step_nodes=2, cooldown_s=300, kill_switch=Path("/nonexistent/stop"))


def one(info: NodeGroupInfo, proposed: int, rails: Guardrails = RAILS, **kw: object) -> tuple:
    price = kw.pop("price", 0.5)
    last = kw.pop("last_write", None)
    [v] = guard(
        [GroupProposal(info, proposed, price, last)],  # type: ignore[arg-type]
        rails,
        now=T0,
        kill_switch_present=bool(kw.pop("kill", False)),
    )
    return v.write, v.reason


def test_a_proposal_outside_the_bounds_is_clamped_and_stepped() -> None:
    assert one(group("a", 5, lo=2, hi=6), 50) == (6, "proposal 50 clamped to [2, 6]; 5 -> 6")
    write, reason = one(group("a", 5, lo=2, hi=20), 50)
    assert write == 7 and "step limited to 2 nodes" in reason
    write, reason = one(group("a", 5, lo=4, hi=20), 0)
    assert write == 4 and "clamped to [4, 20]" in reason


def test_no_change_is_not_written() -> None:
    assert one(group("a", 5), 5) == (None, "no change (5)")


def test_a_group_far_outside_its_bounds_is_left_alone() -> None:
    write, reason = one(group("a", 30, lo=0, hi=10), 10)
    assert write is None and "left alone" in reason


def test_cooldown_between_writes_per_group() -> None:
    info = group("a", 5)
    write, reason = one(info, 7, last_write=T0 - timedelta(seconds=100))
    assert write is None and reason.startswith("cooldown: 100 s")
    assert one(info, 7, last_write=T0 - timedelta(seconds=300))[0] == 7


def test_the_kill_switch_stops_every_write() -> None:
    write, reason = one(group("a", 5), 7, kill=True)
    assert write is None and "kill switch" in reason


def test_the_budget_cuts_an_increase_and_never_a_decrease() -> None:
    rails = RAILS.model_copy(update={"budget_usd_per_hour": 3.2})
    # 6 nodes at $0.50 = $3.00 fits, 7 would be $3.50
    write, reason = one(group("a", 5), 7, rails, price=0.5)
    assert write == 6 and "would exceed the budget" in reason
    write, reason = one(group("a", 7), 8, rails, price=0.5)  # already over: held
    assert write is None
    assert one(group("a", 9), 7, rails, price=0.5)[0] == 7  # decreases always pass


def test_the_budget_counts_the_whole_fleet_in_order() -> None:
    rails = RAILS.model_copy(update={"budget_usd_per_hour": 5.0})
    a, b = group("a", 4), group("b", 4)
    verdicts = guard(
        [GroupProposal(a, 6, 0.5), GroupProposal(b, 6, 0.5)],
        rails,
        now=T0,
        kill_switch_present=False,
    )
    # a: 6 + 4 nodes = $5.00 fits; then b at 6 would make 12 nodes = $6.00: b held at 4
    assert [v.write for v in verdicts] == [6, None]


def test_a_denormal_price_fits_any_target_without_overflow() -> None:
    """Found by the property below in CI: $1/h over a price of 2.2e-311 is infinity
    nodes, which ``math.floor`` refused (OverflowError) instead of letting the step pass."""
    rails = RAILS.model_copy(update={"budget_usd_per_hour": 1.0})
    assert one(group("a", 4), 6, rails, price=2.225073858507e-311)[0] == 6
    over = RAILS.model_copy(update={"budget_usd_per_hour": 1e-300})
    write, reason = one(group("a", 4), 6, over, price=1e300)  # 4 nodes already far over
    assert write is None and "would exceed the budget" in reason


def test_an_unpriced_group_is_not_grown_under_a_budget() -> None:
    rails = RAILS.model_copy(update={"budget_usd_per_hour": 100.0})
    write, reason = one(group("a", 4), 6, rails, price=None)
    assert write is None and "no price" in reason
    assert one(group("a", 4), 6, RAILS, price=None)[0] == 6  # no budget: no price needed


def test_a_node_is_priced_at_the_highest_offering_of_its_capacity_type() -> None:
    info = NodeGroupInfo("s", ("c5a.2xlarge", "c5.2xlarge"), "spot", AZS, 0, 10, 2)
    offerings = [
        Offering("c5a.2xlarge", AZS[0], "spot", 0.10, True),
        Offering("c5a.2xlarge", AZS[1], "spot", 0.14, False),
        Offering("c5.2xlarge", AZS[0], "spot", 0.12, True),
        Offering("c5.2xlarge", AZS[0], "on-demand", 0.34, True),
        Offering("c5.2xlarge", "us-east-1f", "spot", 0.90, True),  # not the group's zone
        Offering("m5.2xlarge", AZS[0], "spot", 0.80, True),  # not the group's type
    ]
    assert node_price_usd_per_hour(info, offerings) == 0.14
    assert node_price_usd_per_hour(replace(info, capacity_type="on-demand"), offerings) == 0.34
    assert node_price_usd_per_hour(info, []) is None
    assert fleet_cost_usd_per_hour({"a": 2, "b": 0}, {"a": 0.5, "b": None}) == 1.0
    assert fleet_cost_usd_per_hour({"a": 2, "b": 1}, {"a": 0.5, "b": None}) is None


@st.composite
def proposals(draw: st.DrawFn) -> list[GroupProposal]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        lo = draw(st.integers(0, 10))
        hi = draw(st.integers(lo, 40))
        current = draw(st.integers(0, 45))
        info = group(f"g{i}", current, lo=lo, hi=hi)
        price = draw(st.one_of(st.none(), st.floats(0.0, 5.0)))
        ago = draw(st.one_of(st.none(), st.floats(0, 1000)))
        last = None if ago is None else T0 - timedelta(seconds=ago)
        out.append(GroupProposal(info, draw(st.integers(-10, 100)), price, last))
    return out


@given(
    proposals(),
    st.integers(1, 6),
    st.one_of(st.none(), st.floats(0.5, 50.0)),
    st.booleans(),
)
def test_property_a_write_stays_in_bounds_steps_budget(
    given_proposals: list[GroupProposal], step: int, budget: float | None, kill: bool
) -> None:
    rails = RAILS.model_copy(update={"max_step_nodes": step, "budget_usd_per_hour": budget})
    verdicts = guard(given_proposals, rails, now=T0, kill_switch_present=kill)
    sizes = {p.info.name: p.info.desired_size for p in given_proposals}
    prices = {p.info.name: p.price_usd_per_hour for p in given_proposals}
    for p, v in zip(given_proposals, verdicts, strict=True):
        if kill:
            assert v.write is None
        if v.write is None:
            continue
        info = p.info
        assert info.min_size <= v.write <= info.max_size
        assert abs(v.write - info.desired_size) <= step
        assert v.write != info.desired_size
        assert p.last_write is None or (T0 - p.last_write).total_seconds() >= rails.cooldown_s
        sizes[info.name] = v.write
        grows_cost = v.write > info.desired_size and (p.price_usd_per_hour or 0.0) > 0
        if budget is not None and grows_cost and v.write > info.min_size:
            # an increase that costs something keeps the fleet within the budget (a free
            # one cannot break it: the fleet may already be over it, e.g. a group above
            # its maximum by more than a step is left alone)
            cost = fleet_cost_usd_per_hour(sizes, prices)
            assert cost is not None and cost <= budget + 1e-6


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 5000), st.floats(0.01, 1.0), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 5),
    st.integers(0, 25),
    st.integers(1, 4),
    st.booleans(),
)
def test_property_the_loop_never_writes_outside_bounds_or_step(
    stream: list[tuple[float, float, bool]],
    lo: int,
    span: int,
    step: int,
    kill: bool,
) -> None:
    """Over random metric streams (load, CPU, gaps) with the reactive policy and random
    group bounds: every applied change stays in [min, max] and within max_step of the
    size before it; with the kill switch on, nothing is written."""
    hi = lo + span
    groups = FakeNodeGroups({"a": group("a", lo, lo, hi), "b": group("b", hi, lo, hi, "spot")})
    market = FakeMarket()
    infos = [groups.describe("a"), groups.describe("b")]
    offerings = market.offerings(["c5a.2xlarge"], AZS)
    ctx = live_context(
        default_world(), infos, offerings, cluster="c", start=T0, interval_s=60, history=None
    )
    source = FakeMetrics()
    rails = RAILS.model_copy(update={"max_step_nodes": step, "cooldown_s": 0})
    scaler = LiveScaler(
        make_policy("reactive", {}, source="--policy", field=""),
        ctx,
        metrics=source,
        groups=groups,
        market=market,
        names=["a", "b"],
        rails=rails,
        apply=True,
        kill_switch_present=lambda: kill,
    )
    for minute, (rps, cpu, gap) in enumerate(stream, start=1):
        pods = float(sum(groups.describe(n).desired_size for n in ("a", "b")) * 7)
        source.metrics = None if gap else {n: pool_metrics(rps, cpu, pods) for n in ("a", "b")}
        before = {n: groups.describe(n).desired_size for n in ("a", "b")}
        writes = len(groups.writes)
        scaler.step(T0 + timedelta(minutes=minute))
        for name, size in groups.writes[writes:]:
            assert lo <= size <= hi
            assert abs(size - before[name]) <= step
        if kill or gap:
            assert len(groups.writes) == writes
