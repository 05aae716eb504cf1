"""The live scaling loop with in-memory protocols: shadow writes nothing, apply writes
within the guardrails, the decision records, holds on missing or stale metrics, the kill
switch, and the cooldown across runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.live.context import live_context
from adapters.live.guardrails import Guardrails
from adapters.live.loop import RECORD_FIELDS, LiveScaler, last_writes_from
from adapters.protocols import DesiredSizeOutOfBounds, WriteRefused
from agents.registry import make_policy
from live.fakes import (
    AZS,
    T0,
    FakeMarket,
    FakeMetrics,
    FakeNodeGroups,
    NoWriteNodeGroups,
    default_world,
    group,
    metrics,
)
from sim.control import NEEDS_NOTHING, ControlContext, Decision, Observation


class Scripted:
    """Proposes ``sizes`` per pool, with one record per pool (as the predictive policy)."""

    name = "scripted"
    needs = NEEDS_NOTHING

    def __init__(self, sizes: Mapping[str, int]) -> None:
        self.sizes = dict(sizes)
        self.observations: list[Observation] = []

    def reset(self, context: ControlContext) -> None:
        self.context = context

    def decide(self, observation: Observation) -> Decision:
        self.observations.append(observation)
        records = tuple({"pool": p, "target_nodes": n} for p, n in self.sizes.items())
        return Decision(dict(self.sizes), ("scripted",), records=records)


def scaler(
    groups: FakeNodeGroups,
    policy: Any,
    source: FakeMetrics,
    tmp_path: Path,
    *,
    apply: bool,
    market: FakeMarket | None = None,
    **rails: Any,
) -> LiveScaler:
    infos = [groups.describe(n) for n in sorted(groups.groups)]
    market = market or FakeMarket()
    ctx = live_context(
        default_world(),
        infos,
        market.offerings(["c5a.2xlarge"], AZS),
        cluster="prod",
        start=T0,
        interval_s=60,
        history=None,
    )
    guard = Guardrails(kill_switch=tmp_path / "stop", **rails)
    return LiveScaler(
        policy,
        ctx,
        metrics=source,
        groups=groups,
        market=market,
        names=sorted(groups.groups),
        rails=guard,
        apply=apply,
        cluster="prod",
    )


def busy() -> FakeMetrics:
    return FakeMetrics({"a": metrics(2000, 0.95, 17), "b": metrics(2000, 0.95, 17)})


def two_groups(cls: type[FakeNodeGroups] = FakeNodeGroups) -> FakeNodeGroups:
    return cls({"a": group("a", 3, 1, 10), "b": group("b", 2, 0, 10, "spot")})


def test_shadow_makes_no_write_call_and_says_what_it_would_write(tmp_path: Path) -> None:
    groups = two_groups(NoWriteNodeGroups)  # raises on any set_desired
    records = scaler(groups, Scripted({"a": 8, "b": 1}), busy(), tmp_path, apply=False).step(
        T0 + timedelta(minutes=1)
    )
    assert [(r["nodegroup"], r["target_desired"], r["applied"]) for r in records] == [
        ("a", 5, False),
        ("b", 1, False),
    ]
    assert records[0]["reason"].startswith("shadow: would write 5")
    assert {r["mode"] for r in records} == {"shadow"}


def test_shadow_with_the_reactive_policy_on_a_busy_fleet(tmp_path: Path) -> None:
    """The replay's own reactive policy proposes a scale-out; shadow writes nothing."""
    groups = two_groups(NoWriteNodeGroups)
    policy = make_policy("reactive", {}, source="--policy", field="")
    records = scaler(groups, policy, busy(), tmp_path, apply=False).step(T0 + timedelta(minutes=1))
    assert sum(r["proposed_desired"] for r in records) > 5
    assert not any(r["applied"] for r in records)
    assert records[0]["policy_reasons"][0].startswith("hpa replicas=")


def test_apply_writes_within_the_guardrails(tmp_path: Path) -> None:
    groups = two_groups()
    loop = scaler(groups, Scripted({"a": 8, "b": 1}), busy(), tmp_path, apply=True, cooldown_s=120)
    first = loop.step(T0 + timedelta(minutes=1))
    assert groups.writes == [("a", 5), ("b", 1)]
    assert [r["applied"] for r in first] == [True, True]
    assert first[0]["reason"] == "written: step limited to 2 nodes; 3 -> 5"
    loop.step(T0 + timedelta(minutes=2))  # cooldown: nothing
    assert groups.writes == [("a", 5), ("b", 1)]
    loop.step(T0 + timedelta(minutes=3))
    assert groups.writes[-1] == ("a", 7)


def test_decision_records_carry_the_fields_and_the_policys_own_record(tmp_path: Path) -> None:
    groups = two_groups()
    records = scaler(groups, Scripted({"a": 4, "b": 2}), busy(), tmp_path, apply=True).step(
        T0 + timedelta(minutes=1)
    )
    for rec in records:
        assert tuple(rec) == RECORD_FIELDS
        assert json.loads(json.dumps(rec)) == rec  # JSON lines as they are
        assert rec["policy_records"] == [
            {"pool": rec["nodegroup"], "target_nodes": {"a": 4, "b": 2}[rec["nodegroup"]]}
        ]
    a, b = records
    assert (a["current_desired"], a["proposed_desired"], a["applied"]) == (3, 4, True)
    assert (b["current_desired"], b["proposed_desired"], b["applied"]) == (2, 2, False)
    assert (a["cluster"], a["policy"], a["time"]) == ("prod", "scripted", "2024-05-01T12:01:00")


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (FakeMetrics(None), "hold: metrics missing"),
        (FakeMetrics({"a": metrics(900, 0.9)}), "hold: metrics missing"),  # b has no data
        (FakeMetrics({"a": metrics(900, 0.9), "b": metrics(9, 0.9)}, age_s=900), "stale"),
    ],
)
def test_missing_or_stale_metrics_hold(source: FakeMetrics, why: str, tmp_path: Path) -> None:
    groups = two_groups()
    policy = Scripted({"a": 6, "b": 4})
    records = scaler(groups, policy, source, tmp_path, apply=True).step(T0 + timedelta(minutes=1))
    assert groups.writes == []
    assert all(not r["applied"] and why in r["reason"] for r in records)
    assert policy.observations[0].metrics is None  # the policy saw a gap, as in a replay


def test_the_kill_switch_file_stops_all_writes(tmp_path: Path) -> None:
    groups = two_groups()
    loop = scaler(groups, Scripted({"a": 6, "b": 4}), busy(), tmp_path, apply=True, cooldown_s=0)
    (tmp_path / "stop").touch()
    records = loop.step(T0 + timedelta(minutes=1))
    assert groups.writes == []
    assert all("kill switch" in r["reason"] for r in records)
    (tmp_path / "stop").unlink()
    loop.step(T0 + timedelta(minutes=2))
    assert groups.writes == [("a", 5), ("b", 4)]


class ShrunkNodeGroups(FakeNodeGroups):
    """The bounds moved between describe and write: every write is refused."""

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        raise DesiredSizeOutOfBounds(name, desired, 0, 1)


def test_a_write_refused_for_bounds_is_recorded_not_raised(tmp_path: Path) -> None:
    groups = two_groups(ShrunkNodeGroups)
    loop = scaler(groups, Scripted({"a": 5, "b": 2}), busy(), tmp_path, apply=True)
    [a, _] = loop.step(T0 + timedelta(minutes=1))
    assert not a["applied"] and a["reason"].startswith("refused by the node group")
    assert "a" not in loop.last_writes  # no cooldown started by a write that did not happen


class BusyNodeGroups(FakeNodeGroups):
    """Every write is refused by the cloud (an update still in progress)."""

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        raise WriteRefused(name, "the previous update u-1 is still in progress")


def test_a_write_the_cloud_refuses_is_recorded_and_the_loop_goes_on(tmp_path: Path) -> None:
    groups = two_groups(BusyNodeGroups)
    loop = scaler(groups, Scripted({"a": 5, "b": 2}), busy(), tmp_path, apply=True)
    for minute in (1, 2):
        [a, _] = loop.step(T0 + timedelta(minutes=minute))
        assert not a["applied"] and a["reason"] == (
            "write refused: the previous update u-1 is still in progress"
        )
    assert "a" not in loop.last_writes


def test_the_cooldown_survives_a_restart_through_the_records(tmp_path: Path) -> None:
    groups = two_groups()
    first = scaler(groups, Scripted({"a": 6, "b": 2}), busy(), tmp_path, apply=True)
    records = first.step(T0 + timedelta(minutes=1))
    writes = last_writes_from(json.loads(json.dumps(r)) for r in records)
    assert writes == {"a": T0 + timedelta(minutes=1)}
    again = LiveScaler(
        Scripted({"a": 6, "b": 2}),
        first.context,
        metrics=busy(),
        groups=groups,
        market=FakeMarket(),
        names=["a", "b"],
        rails=first.rails,
        apply=True,
        last_writes=writes,
    )
    [a, _] = again.step(T0 + timedelta(minutes=2))
    assert not a["applied"] and a["reason"].startswith("cooldown")


def test_one_step_asks_the_cloud_once_per_group_and_per_offering(tmp_path: Path) -> None:
    """The observation builder and the guardrails share one look per step: one describe
    per group, one offerings call per distinct (types, zones), one metrics read."""
    calls: list[str] = []

    class Counting(FakeNodeGroups):
        def describe(self, name: str) -> Any:
            calls.append(f"describe {name}")
            return super().describe(name)

    class CountingMarket(FakeMarket):
        def offerings(self, instance_types: Any, azs: Any) -> Any:
            calls.append("offerings")
            return super().offerings(instance_types, azs)

    groups = Counting({"a": group("a", 3, 1, 10), "b": group("b", 2, 0, 10, "spot")})
    source = busy()
    policy = Scripted({"a": 4, "b": 3})
    live = scaler(groups, policy, source, tmp_path, apply=True, market=CountingMarket())
    calls.clear()
    for minute in (1, 2):
        live.step(T0 + timedelta(minutes=minute))
    assert sorted(calls) == sorted(["describe a", "describe b", "offerings"] * 2)
    assert len(source.reads) == 2
