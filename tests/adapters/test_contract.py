"""One contract per adapter protocol, checked over every implementation.

Each protocol of :mod:`adapters.protocols` has a *case*: an implementation plus what the
contract needs to know about the world behind it (which group may be resized, a time
whose last minute is a telemetry gap, ...). The cases come from pytest fixtures named in
the registries below; every contract test runs once per name.

Adding an implementation is one entry: write a fixture returning its case (any object
with the attributes of the matching ``*Case`` class below; here, or in
``tests/adapters/conftest.py`` for the boto3 ones over the moto server) and append the
fixture's name to the registry of its protocol, e.g.::

    NODE_GROUPS = ["sim_node_groups", "eks_node_groups"]

A case is built afresh for every test (tests change node groups), so keep it cheap.
The simulator's cases come from short replays (three hours) of a small scenario: the
``credential-theft`` cluster (on-demand and spot pools over three zones, benign
CloudTrail activity and the cluster's own calls) with a spot storm at one hour.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudtrail_stub import EventHistory
from opsbench_testing import shipped_doc

from adapters.aws.audit import CloudTrailLookup, S3TrailFiles
from adapters.protocols import (
    AuditLog,
    DesiredSizeOutOfBounds,
    MetricsSource,
    NodeGroups,
    NodeState,
    NoticeKind,
    SpotMarket,
)
from agents.registry import make_policy
from scenarios import data_path
from sim.control import PoolMetrics
from sim.engine import Replay
from sim.scenario_files import load_scenario_file
from sim.telemetry import MemorySink
from sim.world import World, prepare

# --------------------------------------------------------------------------- registries

METRICS_SOURCES = ["sim_metrics"]
NODE_GROUPS = ["sim_node_groups"]
SPOT_MARKETS = ["sim_spot_market"]
AUDIT_LOGS = ["sim_audit_log", "s3_trail_files", "cloudtrail_lookup"]

# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class MetricsCase:
    """``fresh``: a source and a time whose minute just ended was delivered for every pool
    of ``pools``; ``gap``: a source and a time whose minute just ended is a telemetry gap
    (an older minute was delivered)."""

    pools: tuple[str, ...]
    fresh: tuple[MetricsSource, datetime]
    gap: tuple[MetricsSource, datetime]


@dataclass(frozen=True)
class NodeGroupsCase:
    """``group``: a group (of ``groups.list()``) whose desired size may move by one now."""

    groups: NodeGroups
    group: str


@dataclass(frozen=True)
class SpotMarketCase:
    """Offerings are asked for ``instance_types`` x ``azs``; ``history`` names an instance
    type and a window [start, end) with spot prices; ``notices_since`` a time after which
    at least two notices were sent."""

    market: SpotMarket
    instance_types: tuple[str, ...]
    azs: tuple[str, ...]
    history: tuple[str, datetime, datetime]
    notices_since: datetime


@dataclass(frozen=True)
class AuditLogCase:
    """At least three records have event times before ``until``."""

    log: AuditLog
    until: datetime


# --------------------------------------------------------------------------- the simulator's

SIM_HOURS = 3.0
STORM_AT_H = 1.0


def _sim_doc(*, gap_at_end: bool) -> dict[str, Any]:
    doc = shipped_doc("credential-theft")
    doc["id"] = "adapter-contract"
    doc["duration_days"] = SIM_HOURS / 24.0
    doc["audit"]["campaigns"] = []
    doc["audit"]["watch"] = False
    doc["cluster"]["pools"][1]["min_nodes"] = 4  # spot nodes for the storm to interrupt
    doc["pricing"]["spot_availability"] = {"kind": "always"}
    faults: dict[str, Any] = {
        "spot_storms": [
            {
                "azs": ["us-east-1c", "us-east-1d", "us-east-1f"],
                "start_h": STORM_AT_H,
                "duration_h": 0.25,
                "interrupt_fraction": 0.9,
            }
        ]
    }
    if gap_at_end:
        faults["telemetry_gaps"] = [{"start_h": SIM_HOURS - 0.25, "duration_h": 0.25}]
    doc["faults"] = faults
    return doc


@cache
def _sim_world(gap_at_end: bool) -> World:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adapter-contract.yaml"
        path.write_text(yaml.safe_dump(_sim_doc(gap_at_end=gap_at_end), sort_keys=False))
        return prepare(load_scenario_file(path), source=path)


def _sim_replay(*, gap_at_end: bool = False) -> Replay:
    """A replay of the small scenario, run to its end (its clock stays there)."""
    world = _sim_world(gap_at_end)
    policy = make_policy("reactive", {}, source="test", field="policy")
    replay = Replay(world, policy, MemorySink())
    replay.run()
    return replay


@pytest.fixture
def sim_metrics() -> MetricsCase:
    fresh, gap = _sim_replay(), _sim_replay(gap_at_end=True)
    return MetricsCase(
        pools=tuple(fresh.node_groups.list()),
        fresh=(fresh.metrics_source, fresh.clock()),
        gap=(gap.metrics_source, gap.clock()),
    )


@pytest.fixture
def sim_node_groups() -> NodeGroupsCase:
    replay = _sim_replay()
    return NodeGroupsCase(groups=replay.node_groups, group="on-demand")


@pytest.fixture
def sim_spot_market() -> SpotMarketCase:
    replay = _sim_replay()
    spot = replay.node_groups.describe("spot")
    return SpotMarketCase(
        market=replay.spot_market,
        instance_types=spot.instance_types,
        azs=spot.azs,
        history=(spot.instance_types[0], replay.start, replay.clock()),
        notices_since=replay.start + timedelta(hours=STORM_AT_H),
    )


@pytest.fixture
def sim_audit_log() -> AuditLogCase:
    replay = _sim_replay()
    return AuditLogCase(log=replay.audit_log, until=replay.clock())


# --------------------------------------------------------------------------- boto3 audit logs

TRAIL_BUCKET = "opsbench-contract-trail"


def _trail_records() -> list[dict[str, Any]]:
    """The first 60 records of the shipped CloudTrail recording, by event time."""
    path = data_path("security", "cloudtrail", "invictus_stratus_events.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()[:60]
    return sorted((json.loads(line) for line in lines), key=_event_time)


@pytest.fixture
def s3_trail_files(aws: Any, boto_client: Any) -> AuditLogCase:
    """S3TrailFiles on moto: the records as CloudTrail delivers them, one gzipped trail
    file per region folder and 5 minutes, named by delivery time (the window's end)."""
    records = _trail_records()
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=TRAIL_BUCKET)
    windows: dict[datetime, list[dict[str, Any]]] = {}
    for record in records:
        moment = _event_time(record)
        start = moment.replace(minute=moment.minute - moment.minute % 5, second=0)
        windows.setdefault(start, []).append(record)
    folder = "AWSLogs/123456789012/CloudTrail/us-east-1/"
    for n, (start, batch) in enumerate(sorted(windows.items())):
        end = start + timedelta(minutes=5)
        name = f"123456789012_CloudTrail_us-east-1_{end:%Y%m%dT%H%MZ}_{n:04d}contractFILE.json.gz"
        body = gzip.compress(json.dumps({"Records": batch[::-1]}).encode())
        s3.put_object(Bucket=TRAIL_BUCKET, Key=f"{folder}{end:%Y/%m/%d}/{name}", Body=body)
    log = S3TrailFiles(aws, TRAIL_BUCKET, "AWSLogs/")
    return AuditLogCase(log=log, until=_event_time(records[-1]) + timedelta(hours=1))


@pytest.fixture
def cloudtrail_lookup(aws: Any) -> AuditLogCase:
    """CloudTrailLookup on a client whose lookup_events answers like CloudTrail's event
    history over the records (moto has none): by StartTime/EndTime, newest first, paged."""
    records = _trail_records()
    EventHistory(aws.client("cloudtrail"), records)
    return AuditLogCase(
        log=CloudTrailLookup(aws), until=_event_time(records[-1]) + timedelta(minutes=1)
    )


def _cases_of(registry: list[str]) -> Any:
    """A fixture giving the case of each fixture named in ``registry``, one test each."""

    @pytest.fixture(params=registry)
    def case(request: pytest.FixtureRequest) -> Any:
        return request.getfixturevalue(request.param)

    return case


metrics_case = _cases_of(METRICS_SOURCES)
node_groups_case = _cases_of(NODE_GROUPS)
spot_market_case = _cases_of(SPOT_MARKETS)
audit_log_case = _cases_of(AUDIT_LOGS)


# --------------------------------------------------------------------------- MetricsSource


def _age_matches(age_s: float, minute_end: datetime | None, now: datetime) -> None:
    if minute_end is not None:
        assert math.isclose(age_s, (now - minute_end).total_seconds(), abs_tol=1e-3)


def test_metrics_fresh_minute_has_every_pool(metrics_case: MetricsCase) -> None:
    source, now = metrics_case.fresh
    assert isinstance(source, MetricsSource)
    reading = source.read(metrics_case.pools, now)
    assert reading.metrics is not None
    assert set(reading.metrics) == set(metrics_case.pools)
    for pool_metrics in reading.metrics.values():
        assert isinstance(pool_metrics, PoolMetrics)
        assert pool_metrics.request_rate_rps >= 0
        assert 0 <= pool_metrics.error_rate <= 1
    assert 0 <= reading.age_s < 120
    _age_matches(reading.age_s, reading.minute_end, now)


def test_metrics_gap_is_none_with_its_age(metrics_case: MetricsCase) -> None:
    source, now = metrics_case.gap
    reading = source.read(metrics_case.pools, now)
    assert reading.metrics is None
    assert 60 <= reading.age_s < math.inf  # the minute just ended is missing, an older one not
    _age_matches(reading.age_s, reading.minute_end, now)


def test_metrics_pool_without_data_is_none(metrics_case: MetricsCase) -> None:
    source, now = metrics_case.fresh
    reading = source.read([*metrics_case.pools, "no-such-pool"], now)
    assert reading.metrics is None


# --------------------------------------------------------------------------- NodeGroups


def _snapshot(groups: NodeGroups) -> dict[str, tuple[int, dict[str, dict[str, int]]]]:
    out = {}
    for name in groups.list():
        info = groups.describe(name)
        nodes = {str(s): dict(by_az) for s, by_az in info.nodes_by_state_az.items()}
        out[name] = (info.desired_size, nodes)
    return out


def test_list_and_describe_agree(node_groups_case: NodeGroupsCase) -> None:
    groups = node_groups_case.groups
    assert isinstance(groups, NodeGroups)
    names = list(groups.list())
    assert node_groups_case.group in names
    assert len(set(names)) == len(names)
    for name in names:
        info = groups.describe(name)
        assert info.name == name
        assert 0 <= info.min_size <= info.desired_size <= info.max_size
        assert info.capacity_type in ("on-demand", "spot")
        assert info.instance_types and info.azs
        assert info.launch_failures >= 0 and info.interruptions >= 0
        for state, by_az in info.nodes_by_state_az.items():
            assert state in set(NodeState)
            assert set(by_az) <= set(info.azs)
            assert all(n >= 0 for n in by_az.values())
    with pytest.raises(KeyError):
        groups.describe("no-such-group")


def test_set_desired_shows_in_describe(node_groups_case: NodeGroupsCase) -> None:
    groups, name = node_groups_case.groups, node_groups_case.group
    before = _snapshot(groups)
    info = groups.describe(name)
    target = info.desired_size + 1 if info.desired_size < info.max_size else info.desired_size - 1
    groups.set_desired(name, target)
    assert groups.describe(name).desired_size == target
    after = _snapshot(groups)
    assert {k: v for k, v in after.items() if k != name} == {
        k: v for k, v in before.items() if k != name
    }


def test_out_of_bounds_raises_and_changes_nothing(node_groups_case: NodeGroupsCase) -> None:
    groups, name = node_groups_case.groups, node_groups_case.group
    info = groups.describe(name)
    before = _snapshot(groups)
    for bad in (info.max_size + 1, info.min_size - 1):
        with pytest.raises(DesiredSizeOutOfBounds) as raised:
            groups.set_desired(name, bad)
        assert (raised.value.group, raised.value.desired) == (name, bad)
        assert (raised.value.min_size, raised.value.max_size) == (info.min_size, info.max_size)
        assert _snapshot(groups) == before


# --------------------------------------------------------------------------- SpotMarket


def test_offerings_cover_types_zones_and_capacity_types(spot_market_case: SpotMarketCase) -> None:
    case = spot_market_case
    assert isinstance(case.market, SpotMarket)
    offers = case.market.offerings(case.instance_types, case.azs)
    keys = [(o.instance_type, o.az, o.capacity_type) for o in offers]
    want = {
        (t, az, c) for t in case.instance_types for az in case.azs for c in ("on-demand", "spot")
    }
    assert len(keys) == len(set(keys))
    assert set(keys) == want
    for offer in offers:
        assert math.isfinite(offer.price_usd_per_hour) and offer.price_usd_per_hour > 0
        assert isinstance(offer.available, bool)


def test_price_history_in_window_oldest_first(spot_market_case: SpotMarketCase) -> None:
    instance_type, start, end = spot_market_case.history
    azs = spot_market_case.azs
    points = spot_market_case.market.price_history(instance_type, azs, start, end)
    assert points
    times = [p.time for p in points]
    assert times == sorted(times)
    for p in points:
        assert p.instance_type == instance_type and p.az in azs
        assert math.isfinite(p.price_usd_per_hour) and p.price_usd_per_hour > 0
        assert p.time < end
    for az in azs:  # at most the one price in force at the start is older than it
        assert sum(1 for p in points if p.az == az and p.time <= start) <= 1


def test_notices_since_are_ordered(spot_market_case: SpotMarketCase) -> None:
    market, since = spot_market_case.market, spot_market_case.notices_since
    notices = list(market.notices(since))
    assert len(notices) >= 2
    times = [n.time for n in notices]
    assert times == sorted(times) and times[0] >= since
    for n in notices:
        assert n.kind in set(NoticeKind) and n.instance_id
        if n.action_time is not None:
            assert n.action_time >= n.time
    later = times[len(times) // 2]
    assert list(market.notices(later)) == [n for n in notices if n.time >= later]


# --------------------------------------------------------------------------- AuditLog


def _event_time(record: Any) -> datetime:
    return datetime.strptime(str(record["eventTime"]), "%Y-%m-%dT%H:%M:%SZ")


def _ids(records: Sequence[Any]) -> list[str]:
    return [str(r["eventID"]) for r in records]


def test_cursor_resumes_without_repeating_or_skipping(audit_log_case: AuditLogCase) -> None:
    log, until = audit_log_case.log, audit_log_case.until
    assert isinstance(log, AuditLog)
    whole = log.read(None, until)
    assert len(whole.records) >= 3
    times = [_event_time(r) for r in whole.records]
    assert times == sorted(times) and times[-1] < until
    assert sum(whole.kinds.values()) == len(whole.records)
    assert list(whole.malformed) == []  # a clean log: nothing to report
    middle = times[len(times) // 2]
    first = log.read(None, middle)
    assert all(_event_time(r) < middle for r in first.records)
    rest = log.read(first.cursor, until)
    assert _ids(first.records) + _ids(rest.records) == _ids(whole.records)
    assert list(log.read(rest.cursor, until).records) == []
