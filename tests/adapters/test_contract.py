"""One contract per adapter protocol, checked over every implementation.

Each protocol of :mod:`adapters.protocols` has a *case*: an implementation plus what the
contract needs to know about the world behind it (which group may be resized, a time
whose last minute is a telemetry gap, ...). The cases come from pytest fixtures named in
the registries below; every contract test runs once per name.

Adding an implementation is one entry: write a fixture returning its case (any object
with the attributes of the matching ``*Case`` class below; here, with what it builds on
the moto server in ``tests/adapters/conftest.py``) and append the fixture's name to the
registry of its protocol, marked ``aws`` when it needs the moto server, e.g.::

    NODE_GROUPS = ["sim_node_groups", on_moto("eks_node_groups")]

A case is built afresh for every test (tests change node groups), so keep it cheap.
The simulator's cases come from short replays (three hours) of a small scenario: the
``credential-theft`` cluster (on-demand and spot pools over three zones, benign
CloudTrail activity and the cluster's own calls) with a spot storm at one hour. The
boto3 implementations' cases are small worlds on the (wiped) moto server: CloudWatch
metric data, an EKS cluster with managed node groups, Auto Scaling groups, EC2's
instance-type offerings and a spot-notices queue fed by EventBridge; the realistic spot
price history moto does not serve comes from botocore's Stubber.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudtrail_stub import EventHistory
from opsbench_testing import shipped_doc

from adapters.aws.audit import CloudTrailLookup, S3TrailFiles
from adapters.aws.clients import AwsClients
from adapters.aws.metrics import CloudWatchMetrics, parse_metrics_config
from adapters.aws.nodegroups import AsgNodeGroups, EksNodeGroups
from adapters.aws.spot import Ec2SpotMarket
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


def on_moto(fixture: str) -> Any:
    """A registry entry whose case needs the moto server (marked ``aws``)."""
    return pytest.param(fixture, marks=pytest.mark.aws, id=fixture)


METRICS_SOURCES = ["sim_metrics", on_moto("cloudwatch_metrics")]
NODE_GROUPS = ["sim_node_groups", on_moto("eks_node_groups"), on_moto("asg_node_groups")]
SPOT_MARKETS = ["sim_spot_market", on_moto("ec2_spot_market")]
AUDIT_LOGS = ["sim_audit_log", on_moto("s3_trail_files"), on_moto("cloudtrail_lookup")]

# --------------------------------------------------------------------------- cases


POOL_WITHOUT_DATA = "no-such-pool"


@dataclass(frozen=True)
class MetricsCase:
    """``fresh``: a source and a time whose minute just ended was delivered for every pool
    of ``pools``; ``gap``: a source and a time at which no minute is fresh enough to use
    (an older minute was delivered). No data was ever delivered for
    :data:`POOL_WITHOUT_DATA`.

    Fresh enough is the source's own limit: the simulator delivers each minute as it
    ends, so a gap is the minute just ended missing; CloudWatch publishes minutes late
    (a minute or more), so :class:`~adapters.aws.metrics.CloudWatchMetrics` reads the
    freshest complete minute up to its ``max_age_s`` old and its gap is one that long.
    A source that needs each pool configured (CloudWatch: which metrics are the pool's)
    configures :data:`POOL_WITHOUT_DATA` with metrics nobody publishes: asking for a pool
    it has no configuration for is a configuration error there (``KeyError``), not a gap.
    """

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


# --------------------------------------------------------------------------- boto3's, on moto

MOTO_NOW = datetime(2024, 5, 1, 12, 0, 30)  # naive UTC, 30 s into a minute
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
ROLE = "arn:aws:iam::123456789012:role/"  # moto's account

# field: (namespace, metric name, statistic, scale, value published); moto serves no
# percentiles, so the latency is the minute's Maximum
CW_QUERIES: dict[str, tuple[str, str, str, float, float]] = {
    "request_rate_rps": ("AWS/ApplicationELB", "RequestCount", "Sum", 1 / 60, 7200.0),
    "cpu_utilization": ("ContainerInsights", "pod_cpu_utilization", "Average", 0.01, 55.0),
    "response_time_p95_ms": ("AWS/ApplicationELB", "TargetResponseTime", "Maximum", 1e3, 0.18),
    "error_rate": ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", 1.0, 6.0),
    "pod_count": ("ContainerInsights", "service_number_of_running_pods", "Average", 1.0, 12.0),
}


def _cw_dimensions(namespace: str, pool: str) -> dict[str, str]:
    """A pool's ALB target group, or its Kubernetes service in Container Insights."""
    if namespace == "AWS/ApplicationELB":
        return {"LoadBalancer": "app/contract/50dc6c495c0c9188",
                "TargetGroup": f"targetgroup/{pool}/73e2d6bc24d8a067"}  # fmt: skip
    return {"ClusterName": "contract", "Namespace": "default", "Service": pool}


@pytest.fixture
def cloudwatch_metrics(aws: AwsClients, boto_client: Any) -> MetricsCase:
    """Three minutes of two pools' metrics, the last ending at ``MOTO_NOW``'s minute;
    the gap is read ``max_age_s`` later (default config)."""
    pools = ("web-on-demand", "web-spot")
    config = parse_metrics_config(
        {"pools": {pool: {field: {"namespace": namespace, "metric_name": name, "stat": stat,
                                  "scale": scale, "dimensions": _cw_dimensions(namespace, pool),
                                  **({"per_request": True, "missing_as": 0}
                                     if field == "error_rate" else {})}
                          for field, (namespace, name, stat, scale, _) in CW_QUERIES.items()}
                   for pool in (*pools, POOL_WITHOUT_DATA)}},
        source="contract metrics config",
    )  # fmt: skip
    last_minute = MOTO_NOW.replace(second=0) - timedelta(minutes=1)
    for namespace in {namespace for namespace, *_ in CW_QUERIES.values()}:
        boto_client("cloudwatch").put_metric_data(
            Namespace=namespace,
            MetricData=[
                {"MetricName": name, "Value": value,
                 "Dimensions": [{"Name": k, "Value": v}
                                for k, v in _cw_dimensions(namespace, pool).items()],
                 "Timestamp": (last_minute - timedelta(minutes=back, seconds=-20)).replace(
                     tzinfo=UTC)}
                for space, name, _, _, value in CW_QUERIES.values() if space == namespace
                for pool in pools
                for back in range(3)
            ],
        )  # fmt: skip
    source = CloudWatchMetrics(aws, config)
    stale = MOTO_NOW + timedelta(seconds=config.max_age_s + 60)
    return MetricsCase(pools=pools, fresh=(source, MOTO_NOW), gap=(source, stale))


@pytest.fixture
def eks_node_groups(
    aws: AwsClients, boto_client: Any, default_subnets: dict[str, str], make_asg: Any
) -> NodeGroupsCase:
    """EKS cluster ``contract``: managed node groups ``on-demand`` and ``spot`` over three
    zones. moto names an Auto Scaling group behind each without creating it: the
    on-demand one's is created (its instances are the group's nodes)."""
    eks = boto_client("eks")
    subnets = [default_subnets[az] for az in ZONES]
    eks.create_cluster(name="contract", roleArn=ROLE + "eks-cluster", version="1.29",
                       resourcesVpcConfig={"subnetIds": subnets})  # fmt: skip
    for name, types, capacity, (low, high, desired) in (
        ("on-demand", ["c5a.2xlarge"], "ON_DEMAND", (2, 8, 3)),
        ("spot", ["c5a.2xlarge", "c5.2xlarge"], "SPOT", (0, 10, 4)),
    ):
        eks.create_nodegroup(
            clusterName="contract", nodegroupName=name, nodeRole=ROLE + "eks-node",
            subnets=subnets, instanceTypes=types, capacityType=capacity,
            scalingConfig={"minSize": low, "maxSize": high, "desiredSize": desired},
        )  # fmt: skip
    group = eks.describe_nodegroup(clusterName="contract", nodegroupName="on-demand")
    asg = group["nodegroup"]["resources"]["autoScalingGroups"][0]["name"]
    make_asg(asg, ["c5a.2xlarge"], ZONES, min_size=2, max_size=8, desired=3)
    return NodeGroupsCase(groups=EksNodeGroups(aws, "contract"), group="on-demand")


@pytest.fixture
def asg_node_groups(aws: AwsClients, make_asg: Any) -> NodeGroupsCase:
    """Self-managed groups: ``workers`` (on-demand, two zones) and ``spot-workers``."""
    make_asg("workers", ["c5a.2xlarge"], ZONES[:2], min_size=1, max_size=4, desired=2)
    make_asg("spot-workers", ["c5a.2xlarge", "c5.2xlarge"], ZONES, min_size=0, max_size=6,
             desired=1, spot=True)  # fmt: skip
    return NodeGroupsCase(groups=AsgNodeGroups(aws), group="workers")


SPOT_HISTORY = ("c5a.2xlarge", datetime(2024, 5, 1, 6, 0), datetime(2024, 5, 1, 12, 0))
# EC2's answer over SPOT_HISTORY, newest first over two pages, with the price in force at
# the start in each zone (stamped when it was set): (zone, price, time)
SPOT_PAGES = (
    [("us-east-1b", "0.131400", datetime(2024, 5, 1, 11, 2, 51)),
     ("us-east-1a", "0.127900", datetime(2024, 5, 1, 9, 47, 9)),
     ("us-east-1c", "0.140200", datetime(2024, 5, 1, 8, 16, 33)),
     ("us-east-1b", "0.128800", datetime(2024, 5, 1, 6, 41, 2))],
    [("us-east-1a", "0.125100", datetime(2024, 5, 1, 3, 12, 44)),
     ("us-east-1c", "0.138600", datetime(2024, 4, 30, 23, 55, 3)),
     ("us-east-1b", "0.129700", datetime(2024, 4, 30, 21, 2, 31))],
)  # fmt: skip


@pytest.fixture
def spot_price_history(aws: AwsClients, routed_stubber: Any) -> Iterator[None]:
    """``describe_spot_price_history`` over a window (a request with an ``EndTime``)
    answered by the Stubber with :data:`SPOT_PAGES`; the offerings' ask for the price now
    (no ``EndTime``) reaches moto."""
    instance_type, start, end = SPOT_HISTORY
    expected = {
        "InstanceTypes": [instance_type], "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": start.replace(tzinfo=UTC), "EndTime": end.replace(tzinfo=UTC),
        "Filters": [{"Name": "availability-zone", "Values": list(ZONES)}],
    }  # fmt: skip
    stub = routed_stubber(
        aws.client("ec2"),
        lambda operation, params: operation == "DescribeSpotPriceHistory" and "EndTime" in params,
    )
    token = "AAEAAU0XbUpk0pQFJvLLOdn2V0="
    for page, (rows, next_token) in enumerate(zip(SPOT_PAGES, (token, ""), strict=True)):
        stub.add_response(
            "describe_spot_price_history",
            {"SpotPriceHistory": [
                {"AvailabilityZone": az, "InstanceType": instance_type,
                 "ProductDescription": "Linux/UNIX", "SpotPrice": price,
                 "Timestamp": when.replace(tzinfo=UTC)}
                for az, price, when in rows
             ], "NextToken": next_token},
            {**expected, "NextToken": token} if page else expected,
        )  # fmt: skip
    with stub:
        yield


@pytest.fixture
def ec2_spot_market(
    aws: AwsClients, notices_queue: str, send_notice: Any, spot_price_history: None
) -> SpotMarketCase:
    """Offerings of moto's instance-type offerings (spot priced by moto's synthetic rows),
    the stubbed history, and four notices through EventBridge -> SQS, three after
    ``notices_since``."""
    since = MOTO_NOW - timedelta(minutes=10)
    interruption, rebalance = (
        "EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation",
    )  # fmt: skip
    for kind, instance, after_s, zone in (
        (rebalance, "i-0d44c44ffa75b1432", -240, "us-east-1c"),
        (rebalance, "i-0b22a22eec53b9321", 127, "us-east-1b"),
        (interruption, "i-0a11f11aab42a8210", 365, "us-east-1a"),
        (interruption, "i-0e55d55abc86c2543", 461, "us-east-1b"),
    ):
        detail = {"instance-action": "terminate"} if kind == interruption else {}
        send_notice(kind, instance, since + timedelta(seconds=after_s), zone=zone, **detail)
    market = Ec2SpotMarket.with_shipped_catalogue(
        aws, notices_queue_url=notices_queue, clock=lambda: MOTO_NOW
    )
    return SpotMarketCase(
        market=market,
        instance_types=("c5a.2xlarge", "c5.2xlarge"),
        azs=ZONES,
        history=SPOT_HISTORY,
        notices_since=since,
    )


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


def _cases_of(registry: list[Any]) -> Any:
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
    assert 60 <= reading.age_s < math.inf  # at least the minute just ended is missing, not all
    _age_matches(reading.age_s, reading.minute_end, now)


def test_metrics_pool_without_data_is_none(metrics_case: MetricsCase) -> None:
    source, now = metrics_case.fresh
    reading = source.read([*metrics_case.pools, POOL_WITHOUT_DATA], now)
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
