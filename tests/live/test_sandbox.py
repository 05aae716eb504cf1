"""``bench.live_sandbox``: a moto server prepared as a small EKS fleet, read back through
the boto3 adapters (node groups with nodes per zone, fresh metrics and their history, the
trail files, the spot notices), the reactive policy's proposal on it, ``opsbench live
security`` against it end to end, and the refusals (a non-loopback endpoint, a server
prepared before)."""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from aws_moto import REGION, MotoServer, moto_server, set_test_environment  # noqa: F401

import bench.live_sandbox as live_sandbox
from adapters.aws import (
    AsgNodeGroups,
    AwsClients,
    CloudWatchMetrics,
    Ec2SpotMarket,
    EksNodeGroups,
    S3TrailFiles,
)
from adapters.aws.metrics import parse_metrics_config
from adapters.live.context import MetricsHistory
from adapters.protocols import NodeState, NoticeKind
from bench.live_sandbox import Sandbox, load_shape, prepare
from opsbench_testing import assert_one_line_error, run_main

pytestmark = pytest.mark.aws

NOW = datetime(2024, 7, 3, 12, 30, 40)  # a Wednesday around noon: the trace is busy
HISTORY_DAYS = 0.5  # enough to compare with the trace (predictive on two days: test_live_moto.py)
SEED = 7


@pytest.fixture(scope="module")
def prepared(
    moto_server: MotoServer,  # noqa: F811 (the fixture imported above)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MotoServer, Sandbox]]:
    """One sandbox for the module (the tests only read it), in the AWS environment of a
    test (dummy keys; clients without the server's URL point at a closed port)."""
    with pytest.MonkeyPatch.context() as env:
        set_test_environment(env)
        moto_server.reset()
        out = tmp_path_factory.mktemp("sandbox")
        sandbox = prepare(
            moto_server.url, out_dir=out, now=NOW, history_days=HISTORY_DAYS, seed=SEED
        )
        yield moto_server, sandbox


@pytest.fixture
def sandbox(prepared: tuple[MotoServer, Sandbox]) -> Sandbox:
    return prepared[1]


@pytest.fixture
def aws(sandbox: Sandbox) -> AwsClients:
    return AwsClients(REGION, endpoint_url=sandbox.endpoint_url, max_attempts=2)


@pytest.fixture(scope="module")
def world() -> Any:
    from bench.runner import prepare_run

    return prepare_run("default", lifecycle="off").world


def metrics_config(sandbox: Sandbox) -> Any:
    data = yaml.safe_load(sandbox.metrics_path.read_text(encoding="utf-8"))
    return parse_metrics_config(data, source=str(sandbox.metrics_path))


# --------------------------------------------------------------------------- node groups


def test_managed_node_groups_have_their_nodes_per_zone(aws: AwsClients, sandbox: Sandbox) -> None:
    groups = EksNodeGroups(aws, sandbox.cluster)
    assert sorted(groups.list()) == sorted(sandbox.nodegroups) == ["web-on-demand", "web-spot"]
    capacity = {}
    for name in sandbox.nodegroups:
        info = groups.describe(name)
        capacity[name] = info.capacity_type
        assert info.instance_types == (sandbox.instance_type,)
        assert info.azs == sandbox.azs and len(info.azs) == 3
        assert (info.min_size, info.max_size, info.desired_size) == (2, 20, 4)
        running = info.nodes_by_state_az[NodeState.RUNNING]
        assert set(running) == set(sandbox.azs)  # spread over the zones, as on AWS
        assert sum(running.values()) == info.count(NodeState.RUNNING) == 4
    assert capacity == {"web-on-demand": "on-demand", "web-spot": "spot"}


def test_the_self_managed_group_is_an_auto_scaling_group(aws: AwsClients, sandbox: Sandbox) -> None:
    groups = AsgNodeGroups(aws)
    assert sandbox.self_managed_group in groups.list()
    info = groups.describe(sandbox.self_managed_group)
    assert info.instance_types == (sandbox.instance_type,) and info.capacity_type == "on-demand"
    assert (info.min_size, info.max_size, info.desired_size) == (1, 10, 3)
    assert info.nodes_by_state_az[NodeState.RUNNING] == {az: 1 for az in sandbox.azs}


# --------------------------------------------------------------------------- metrics


def test_the_metrics_are_fresh_and_fit_the_default_scenarios_service(
    aws: AwsClients, sandbox: Sandbox, world: Any
) -> None:
    config = metrics_config(sandbox)
    pools = [*sandbox.nodegroups, sandbox.self_managed_group]
    assert sorted(config.pools) == sorted(pools)
    reading = CloudWatchMetrics(aws, config).read(pools, NOW)
    assert reading.metrics is not None, reading
    assert reading.minute_end == sandbox.metrics_end == NOW.replace(second=0)
    assert reading.age_s == 40.0  # the last whole minute before now
    service = live_sandbox._service(world, sandbox.instance_type)
    for name, m in reading.metrics.items():
        desired = 3 if name == sandbox.self_managed_group else 4
        assert m.pod_count == desired * service.pods_per_node
        capacity_rps = m.pod_count * service.pod_capacity_rps
        assert m.request_rate_rps > 0
        # CPU is the load over the pods' capacity (3% noise), saturating at 1
        assert m.cpu_utilization == pytest.approx(
            min(1.0, m.request_rate_rps / capacity_rps), rel=0.15
        )
        assert 0 <= m.error_rate < 0.05
        assert world.latency.p95_ms(0.0) * 0.7 < m.response_time_p95_ms < 2000


def _request_counts(aws: AwsClients, dimensions: dict[str, str], end: datetime) -> np.ndarray:
    """The raw per-minute RequestCount of the ``HISTORY_DAYS`` before ``end``, read in
    6-hour requests (moto's get_metric_data is quadratic in the minutes asked)."""
    cloudwatch = aws.client("cloudwatch")
    minutes = int(HISTORY_DAYS * 1440)
    start = end - timedelta(minutes=minutes)
    values = np.full(minutes, np.nan)
    query = {
        "Id": "requests",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "RequestCount",
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
            "Period": 60,
            "Stat": "Sum",
        },
    }
    chunk = start
    while chunk < end:
        until = min(end, chunk + timedelta(hours=6))
        reply = cloudwatch.get_metric_data(
            MetricDataQueries=[query],
            StartTime=chunk.replace(tzinfo=UTC),
            EndTime=until.replace(tzinfo=UTC),
        )
        result = reply["MetricDataResults"][0]
        for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
            at = int((stamp.astimezone(UTC).replace(tzinfo=None) - start).total_seconds() // 60)
            values[at] = value
        chunk = until
    return values


def test_the_request_rate_history_is_the_scenarios_trace_over_the_days_asked(
    aws: AwsClients, sandbox: Sandbox, world: Any
) -> None:
    config = metrics_config(sandbox)
    names = list(sandbox.nodegroups)
    end = sandbox.metrics_end
    start = end - timedelta(days=HISTORY_DAYS)
    metrics = CloudWatchMetrics(aws, config)
    if isinstance(metrics, MetricsHistory):  # the adapter reads history itself
        offered = np.asarray(metrics.history(names, start, end).offered_rps)
    else:
        offered = sum(
            _request_counts(aws, config.pools[n].request_rate_rps.dimensions, end) / 60
            for n in names
        )
    assert offered.shape == (int(HISTORY_DAYS * 1440),)
    assert not np.isnan(offered).any()  # every minute of the days asked
    shape = load_shape(world, end, offered.size)  # the trace, peak of its week = 1
    scale = offered[shape > 0.05] / shape[shape > 0.05]
    assert np.allclose(scale, np.median(scale), rtol=0.02)  # the trace, linearly scaled
    service = live_sandbox._service(world, sandbox.instance_type)
    node_rps = service.pods_per_node * service.pod_capacity_rps * service.target_utilization
    assert np.median(scale) == pytest.approx(live_sandbox.PEAK_SHARE * 40 * node_rps, rel=0.01)


def test_the_self_managed_group_has_only_the_recent_minutes(
    aws: AwsClients, sandbox: Sandbox
) -> None:
    config = metrics_config(sandbox)
    name = sandbox.self_managed_group
    dimensions = config.pools[name].request_rate_rps.dimensions
    counts = _request_counts(aws, dimensions, sandbox.metrics_end)
    assert np.flatnonzero(~np.isnan(counts)).tolist() == list(
        range(counts.size - live_sandbox.RECENT_MIN, counts.size)
    )


def test_the_same_seed_and_time_give_the_same_data(world: Any, sandbox: Sandbox) -> None:
    """moto's ids follow its seed (``POST /moto-api/seed``); the rest is one Generator."""
    service = live_sandbox._service(world, sandbox.instance_type)

    def made(seed: int) -> tuple[Any, ...]:
        rng = np.random.default_rng(seed)
        data, dims = live_sandbox._metric_data(world, service, sandbox.metrics_end, 30, rng)
        keys = [k for k, _ in live_sandbox.trail_files(live_sandbox.shipped_trail(), "P/", rng)]
        return data, dims, keys

    assert made(SEED) == made(SEED)
    assert made(SEED)[1] != made(SEED + 1)[1]  # the seed matters (target group ids)


def test_the_reactive_policy_proposes_a_size_that_fits_the_load(
    aws: AwsClients, sandbox: Sandbox, tmp_path: Path
) -> None:
    """What ``opsbench live scale --policy reactive --once`` decides (shadow)."""
    from adapters.live.context import live_context
    from adapters.live.guardrails import Guardrails
    from adapters.live.loop import LiveScaler
    from bench.runner import prepare_run

    prepared = prepare_run("default", policy="reactive", lifecycle="off")
    config = metrics_config(sandbox)
    names = sandbox.nodegroups
    groups = EksNodeGroups(aws, sandbox.cluster)
    market = Ec2SpotMarket.with_shipped_catalogue(aws, clock=lambda: NOW)
    infos = [groups.describe(n) for n in names]
    start = NOW.replace(second=0)
    context = live_context(
        prepared.world,
        infos,
        market.offerings([sandbox.instance_type], list(sandbox.azs)),
        cluster=sandbox.cluster,
        start=start,
        interval_s=60,
        history=None,
    )
    scaler = LiveScaler(
        prepared.policy,
        context,
        metrics=CloudWatchMetrics(aws, config),
        groups=groups,
        market=market,
        names=names,
        rails=Guardrails(kill_switch=tmp_path / "stop"),
        cluster=sandbox.cluster,
    )
    records = {r["nodegroup"]: r for r in scaler.step(NOW)}
    reading = CloudWatchMetrics(aws, config).read(names, NOW)
    assert reading.metrics is not None
    offered = sum(m.request_rate_rps for m in reading.metrics.values())
    pool = context.pools[0]
    needed = math.ceil(offered / pool.rps_per_node_at_target)  # nodes at the target
    proposed = sum(r["proposed_desired"] for r in records.values())
    assert 8 < proposed <= 40, records  # busy: more than the 4 + 4 nodes, within max
    assert proposed <= max(needed, 8) + 2, (proposed, needed)  # not beyond what the load needs
    assert records["web-spot"]["proposed_desired"] > 4  # added on the cheapest (spot) pool
    assert all(rec["applied"] is False for rec in records.values())
    assert records["web-spot"]["reason"].startswith("shadow: would write 6")  # max step 2
    assert [groups.describe(n).desired_size for n in names] == [4, 4]  # nothing written


# --------------------------------------------------------------------------- trail, notices


def test_every_shipped_trail_record_is_read_from_cloudtrail_style_files(
    aws: AwsClients, sandbox: Sandbox
) -> None:
    shipped = live_sandbox.shipped_trail()
    batch = S3TrailFiles(aws, sandbox.trail_bucket, sandbox.trail_prefix).read(None, NOW)
    assert len(batch.records) == sandbox.trail_records == len(shipped) == 2900
    assert {r["eventID"] for r in batch.records} == {r["eventID"] for r in shipped}
    assert batch.kinds == {"trail-file": 2900}
    keys = [
        o["Key"]
        for page in aws.client("s3").get_paginator("list_objects_v2").paginate(
            Bucket=sandbox.trail_bucket
        )
        for o in page["Contents"]
    ]  # fmt: skip
    assert len(keys) == sandbox.trail_files
    for key in keys:  # AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<name>
        parts = key.split("/")
        account, region, name = parts[1], parts[3], parts[-1]
        assert parts[0] == "AWSLogs" and parts[2] == "CloudTrail" and len(parts) == 8
        stamp, suffix = name.removesuffix(".json.gz").split("_")[-2:]
        assert name.startswith(f"{account}_CloudTrail_{region}_") and len(suffix) == 16
        assert stamp.startswith("".join(parts[4:7])) and stamp.endswith("Z")
        assert int(stamp[-3:-1]) % 5 == 0  # delivered every 5 minutes


def test_the_sample_spot_notices_reach_the_queue_through_eventbridge(
    aws: AwsClients, sandbox: Sandbox
) -> None:
    market = Ec2SpotMarket.with_shipped_catalogue(aws, notices_queue_url=sandbox.notices_queue_url)
    notices = market.notices(NOW - timedelta(minutes=15))
    assert [(n.kind, n.instance_id) for n in notices] == [
        (NoticeKind.REBALANCE, sandbox.notice_instances[0][1]),
        (NoticeKind.INTERRUPTION, sandbox.notice_instances[1][1]),
    ]
    spot = EksNodeGroups(aws, sandbox.cluster).describe("web-spot")
    assert {n.az for n in notices} <= set(spot.azs) and len({n.az for n in notices}) == 2
    asg = dict(sandbox.nodegroup_asgs)["web-spot"]
    reply = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg])
    instances = {i["InstanceId"] for i in reply["AutoScalingGroups"][0]["Instances"]}
    assert {n.instance_id for n in notices} <= instances  # the spot group's own nodes
    assert all(n.time < NOW for n in notices) and market.rejected == []


# --------------------------------------------------------------------------- opsbench live security


def test_live_security_once_scores_every_record_of_the_prepared_trail(
    sandbox: Sandbox,
    small_analyser: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live_cli = importlib.import_module("bench.cli.live")  # the module, not the group
    monkeypatch.setattr(live_cli, "security_model", lambda _models: small_analyser)
    out = tmp_path / "alerts.jsonl"
    args = [
        "live", "security", "--trail-bucket", sandbox.trail_bucket,
        "--prefix", sandbox.trail_prefix, "--endpoint-url", sandbox.endpoint_url,
        "--region", sandbox.region, "--once",
        "--since", f"{sandbox.trail_start:%Y-%m-%dT%H:%M:%SZ}",  # default: the last hour
    ]  # fmt: skip
    code, stdout, stderr = run_main(capsys, [*args, "--out", str(out), "--json"])
    assert code == 0, stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [json.loads(line) for line in stdout.splitlines()] == lines
    assert {line["kind"] for line in lines} == {"alert"}  # no malformed record
    frame, _ = small_analyser.analyse(live_sandbox.shipped_trail())  # every record, scored
    expected = set(frame.loc[frame["is_alert"], "eventID"])
    assert expected and {line["eventID"] for line in lines} == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl"]  # nothing else

    code, stdout, stderr = run_main(capsys, args)  # without --json: what was read
    assert code == 0, stderr
    said = " ".join(stdout.split())  # rich wraps at the terminal's width
    assert f"2,900 records (trail-file 2,900), 2,900 scored, {len(lines):,} alerts" in said


# --------------------------------------------------------------------------- refusals


def _no_server_call(*_: Any, **__: Any) -> None:
    raise AssertionError("the sandbox called the server")


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.5:5000", "https://eks.us-east-1.amazonaws.com", "http://localhost.evil.com:1"],
)
def test_a_non_loopback_endpoint_is_refused_before_any_call(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(live_sandbox, "_Clients", _no_server_call)
    monkeypatch.setattr(live_sandbox, "_moto_post", _no_server_call)
    out = tmp_path / "sandbox"
    with pytest.raises(SystemExit) as exited:
        live_sandbox.main(["--endpoint-url", url, "--out", str(out)])
    captured = capsys.readouterr()
    code = exited.value.code if isinstance(exited.value.code, int) else 1
    assert_one_line_error(code, captured.out, captured.err, "--endpoint-url", repr(url))
    assert not out.exists()


def test_loopback_endpoints_are_accepted() -> None:
    for url in ("http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000"):
        live_sandbox.check_loopback(url)  # no error


def test_a_server_prepared_before_is_refused_in_one_line(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "again"
    with pytest.raises(SystemExit) as exited:
        live_sandbox.main(["--endpoint-url", sandbox.endpoint_url, "--out", str(out)])
    captured = capsys.readouterr()
    code = exited.value.code if isinstance(exited.value.code, int) else 1
    assert_one_line_error(code, captured.out, captured.err, "already holds cluster opsbench-demo")
    assert not out.exists()
