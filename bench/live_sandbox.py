"""A moto server prepared as a small EKS fleet, for trying ``opsbench live`` without AWS.

``python -m bench.live_sandbox --endpoint-url http://127.0.0.1:PORT`` (or :func:`prepare`)
creates, on a moto server that already runs on the loopback interface:

- an EKS cluster (``opsbench-demo``) on three zones of the default VPC (the default
  scenario's zones) with two managed node groups of the default scenario's instance type,
  one on-demand and one spot (min 2, max 20, desired 4). moto names a fake Auto Scaling
  group in each node group's ``resources`` and creates none: the sandbox creates it
  under that name (a launch template with the group's instance type, the group's
  subnets), with the desired nodes spread over the zones as EC2 Auto Scaling places
  them, so a node group's nodes per zone read as on AWS;
- one self-managed Auto Scaling group (``opsbench live scale --self-managed``);
- per-minute CloudWatch metrics of every group, as an ALB and Container Insights publish
  them, with ``out_dir/metrics.yaml`` saying which metric is which
  (:func:`adapters.aws.metrics.parse_metrics_config` reads it): request rate, CPU, p95
  latency, 5xx errors and running pods for the :data:`RECENT_MIN` minutes up to the last
  whole minute before ``now`` (a read at once is fresh), and for the managed node groups
  the request rate of the ``history_days`` days before (what a policy that learns from
  history reads);
- EventBridge rules for EC2's spot interruption warnings and rebalance recommendations,
  delivering to an SQS queue (with the queue policy that lets them), and one sample notice
  of each, put on the default bus with ``put_events`` (moto routes it through the rules to
  the queue) about instances of the spot node group;
- an S3 bucket holding the shipped CloudTrail recording as CloudTrail delivers it: one
  gzipped ``{"Records": [...]}`` file per region and 5 minutes, under
  ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`` (the records' account and times
  as recorded).

The load is the default scenario's: its trace (the history and the week it replays), at
the weekday and time of day of ``now`` (the trace's clock read as UTC), scaled so that the
week's peak needs :data:`PEAK_SHARE` of the fleet's largest size at the scenario's target
utilisation; pods per node, requests/s per vCPU and the latency model are the scenario's
service, so a policy benchmarked on it proposes a size that fits the load.

It refuses any endpoint that is not loopback (it creates resources: never on a real
account) and signs with dummy credentials, never the user's. Given the seed and ``now``
it is deterministic: moto's generated ids (``POST /moto-api/seed``) and the noise (one
numpy Generator).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import math
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from adapters.times import minute_floor, utc_now
from sim.errors import InputError, OpsbenchError

CLUSTER = "opsbench-demo"
ON_DEMAND_GROUP = "web-on-demand"
SPOT_GROUP = "web-spot"
SELF_MANAGED_GROUP = "opsbench-demo-workers"
MANAGED_SIZE = (2, 20, 4)
"""Each managed node group's (min, max, desired) nodes."""
SELF_MANAGED_SIZE = (1, 10, 3)
"""The self-managed group's (min, max, desired) nodes."""
PEAK_SHARE = 0.5
"""The replayed week's peak needs this share of a service's largest fleet (at target)."""
RECENT_MIN = 15
"""Minutes of every metric published up to now (request rate: ``history_days`` days)."""
MAX_HISTORY_DAYS = 16.0
"""The default scenario's trace holds 16 days before the week it replays."""
NOTICE_QUEUE = "opsbench-demo-spot-notices"
TRAIL_BUCKET = "opsbench-demo-trail"
TRAIL_PREFIX = "AWSLogs/"
TRAIL_WINDOW_MIN = 5
DUMMY_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
IMAGE_ID = "ami-12c6146b"  # one of moto's Amazon Linux images
NAMESPACE = "default"  # the Kubernetes namespace of the services
PUT_BATCH = 1000  # put_metric_data's limit of metric data per request
PUT_THREADS = 2
INTERRUPTION = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"
BASE_ERROR_RATE = 0.0005
"""Share of requests answered 5xx while the pods keep up (more when they do not)."""
ENDPOINT_ALLOWED = (
    "a moto server on this machine: http://127.0.0.1:PORT, http://localhost:PORT or "
    "http://[::1]:PORT (the sandbox creates resources, so never a real AWS endpoint)"
)


@dataclass(frozen=True, slots=True)
class Sandbox:
    """What :func:`prepare` created (times naive UTC)."""

    endpoint_url: str
    region: str
    cluster: str
    nodegroups: tuple[str, ...]
    nodegroup_asgs: tuple[tuple[str, str], ...]
    """(node group, the Auto Scaling group behind it), per managed node group."""
    self_managed_group: str
    instance_type: str
    azs: tuple[str, ...]
    notices_queue_url: str
    notice_instances: tuple[tuple[str, str], ...]
    """(notice detail-type, instance id) of each sample notice sent."""
    trail_bucket: str
    trail_prefix: str
    trail_files: int
    trail_records: int
    trail_start: datetime
    """The first record's event time (the recording is from 2023: ``live security
    --since`` it to read it all)."""
    metrics_path: Path
    metrics_end: datetime
    """The end of the last minute published (a whole minute, at most ``now``)."""
    history_days: float
    seconds: float
    """Wall time the preparation took (s)."""

    def commands(self) -> list[str]:
        """The ``opsbench live`` commands to run against the sandbox next."""
        aws = f"--endpoint-url {self.endpoint_url} --region {self.region}"
        scale = (
            f"opsbench live scale --policy reactive --cluster {self.cluster} "
            f"--metrics {self.metrics_path} {aws}"
        )
        managed = (
            f"{scale} --nodegroup {','.join(self.nodegroups)} "
            f"--notices-queue-url {self.notices_queue_url} --once"
        )
        return [
            managed,
            f"{managed} --apply",
            f"{scale} --self-managed --nodegroup {self.self_managed_group} --once",
            f"opsbench live security --trail-bucket {self.trail_bucket} "
            f"--prefix {self.trail_prefix} {aws} --since {self.trail_start:%Y-%m-%dT%H:%M:%SZ} "
            "--once",
        ]


@dataclass(frozen=True, slots=True)
class Group:
    """One node group of the fleet and the service it runs (load is per service)."""

    name: str
    service: str
    min_size: int
    max_size: int
    desired: int
    history: bool
    """Whether its request rate has ``history_days`` of history (else :data:`RECENT_MIN`
    minutes, like its other metrics)."""


GROUPS = (
    Group(ON_DEMAND_GROUP, "web", *MANAGED_SIZE, history=True),
    Group(SPOT_GROUP, "web", *MANAGED_SIZE, history=True),
    # no history: a third 14-day series would make the preparation 50% longer, and moto's
    # get_metric_data slower for everyone (it scans every datapoint of the range asked)
    Group(SELF_MANAGED_GROUP, "workers", *SELF_MANAGED_SIZE, history=False),
)


@dataclass(frozen=True, slots=True)
class Service:
    """The default scenario's service, per pod and per node of the sandbox's type."""

    pods_per_node: int
    pod_capacity_rps: float
    """Requests/s one pod serves at utilisation 1 (its vCPUs x the service rate)."""
    target_utilization: float
    latency: Any  # sim.latency.LatencyModel: p95_ms(utilisation)


# --------------------------------------------------------------------------- endpoint


def check_loopback(endpoint_url: str) -> None:
    """Refuse (InputError naming --endpoint-url) any endpoint not on the loopback interface."""
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback:
        raise InputError(
            "--endpoint-url", "", f"{endpoint_url!r} is not loopback", ENDPOINT_ALLOWED
        )


def _moto_post(endpoint_url: str, path: str) -> None:
    """POST to moto's control API; InputError naming --endpoint-url if nothing answers."""
    request = urllib.request.Request(endpoint_url.rstrip("/") + path, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()
    except (urllib.error.URLError, OSError) as exc:
        raise InputError(
            "--endpoint-url",
            "",
            f"no moto server answers {endpoint_url}{path} ({exc})",
            "start one first: python -m moto.server -H 127.0.0.1 -p PORT",
        ) from None


class _Clients:
    """boto3 clients on the sandbox's endpoint, signed with dummy keys (never the user's)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        import boto3

        self._session = boto3.session.Session(region_name=region, **DUMMY_KEYS)
        self._config = Config(retries={"mode": "standard", "total_max_attempts": 2})
        self._endpoint_url = endpoint_url
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            config = self._config
            if service == "cloudwatch":  # tens of thousands of datapoints built here
                config = config.merge(Config(parameter_validation=False))
            self._made[service] = self._session.client(
                service, endpoint_url=self._endpoint_url, config=config
            )
        return self._made[service]


# --------------------------------------------------------------------------- fleet


def _subnets(ec2: Any, azs: Sequence[str]) -> dict[str, str]:
    """The default VPC's subnet of each zone."""
    found = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    by_az = {s["AvailabilityZone"]: s["SubnetId"] for s in found["Subnets"]}
    missing = [az for az in azs if az not in by_az]
    if missing:
        raise OpsbenchError(f"the server's default VPC has no subnet in {', '.join(missing)}")
    return {az: by_az[az] for az in azs}


def _spread(total: int, azs: Sequence[str]) -> dict[str, int]:
    """``total`` nodes over ``azs`` as EC2 Auto Scaling balances them."""
    base, extra = divmod(total, len(azs))
    return {az: base + (1 if i < extra else 0) for i, az in enumerate(azs)}


def _auto_scaling_group(
    aws: _Clients,
    name: str,
    group: Group,
    *,
    instance_type: str,
    subnets: Mapping[str, str],
    spot: bool,
    tags: Mapping[str, str],
) -> list[tuple[str, str]]:
    """Create Auto Scaling group ``name`` with ``group.desired`` nodes spread over the
    zones (moto would launch them all in the first subnet: they are launched per zone and
    attached). Returns the (instance id, zone) of its nodes."""
    template = f"{name}-nodes"
    aws("ec2").create_launch_template(
        LaunchTemplateName=template,
        LaunchTemplateData={"ImageId": IMAGE_ID, "InstanceType": instance_type},
    )
    autoscaling = aws("autoscaling")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
        MinSize=0,
        MaxSize=group.max_size,
        DesiredCapacity=0,
        VPCZoneIdentifier=",".join(subnets.values()),
        Tags=[
            {"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": name,
             "ResourceType": "auto-scaling-group"}
            for k, v in tags.items()
        ],
    )  # fmt: skip
    nodes: list[tuple[str, str]] = []
    for az, count in _spread(group.desired, list(subnets)).items():
        if count == 0:
            continue
        market = {"InstanceMarketOptions": {"MarketType": "spot"}} if spot else {}
        reply = aws("ec2").run_instances(
            LaunchTemplate={"LaunchTemplateName": template},
            MinCount=count,
            MaxCount=count,
            SubnetId=subnets[az],
            TagSpecifications=[
                {"ResourceType": "instance",
                 "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
            **market,
        )  # fmt: skip
        nodes.extend((i["InstanceId"], az) for i in reply["Instances"])
    autoscaling.attach_instances(AutoScalingGroupName=name, InstanceIds=[i for i, _ in nodes])
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=group.min_size, DesiredCapacity=group.desired
    )
    return nodes


def _cluster(
    aws: _Clients, account: str, subnets: Mapping[str, str], instance_type: str
) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]]]:
    """The EKS cluster, its managed node groups and their Auto Scaling groups, and the
    self-managed group. Returns ((node group, ASG) pairs, nodes per group)."""
    eks = aws("eks")
    role = f"arn:aws:iam::{account}:role/{CLUSTER}"
    eks.create_cluster(
        name=CLUSTER,
        roleArn=f"{role}-cluster",
        resourcesVpcConfig={"subnetIds": list(subnets.values())},
    )
    pairs: list[tuple[str, str]] = []
    nodes: dict[str, list[tuple[str, str]]] = {}
    for group in GROUPS:
        if group.name == SELF_MANAGED_GROUP:
            nodes[group.name] = _auto_scaling_group(
                aws, group.name, group, instance_type=instance_type, subnets=subnets,
                spot=False, tags={"opsbench:self-managed": "true"},
            )  # fmt: skip
            continue
        capacity = "SPOT" if group.name == SPOT_GROUP else "ON_DEMAND"
        created = eks.create_nodegroup(
            clusterName=CLUSTER,
            nodegroupName=group.name,
            scalingConfig={
                "minSize": group.min_size, "maxSize": group.max_size, "desiredSize": group.desired
            },
            subnets=list(subnets.values()),
            instanceTypes=[instance_type],
            capacityType=capacity,
            nodeRole=f"{role}-nodes",
            labels={"opsbench/service": group.service},
        )["nodegroup"]  # fmt: skip
        asg = created["resources"]["autoScalingGroups"][0]["name"]
        tags = {"eks:cluster-name": CLUSTER, "eks:nodegroup-name": group.name}
        nodes[group.name] = _auto_scaling_group(
            aws, asg, group, instance_type=instance_type, subnets=subnets,
            spot=capacity == "SPOT", tags=tags,
        )  # fmt: skip
        pairs.append((group.name, asg))
    return pairs, nodes


# --------------------------------------------------------------------------- load


def _service(world: Any, instance_type: str) -> Service:
    from sim.catalog import load_catalogue, lookup
    from sim.node_pools import pods_per_node
    from sim.world import service_context_fields

    scenario = world.scenario
    catalogue = load_catalogue(
        Path(world.source).parent / scenario.pricing.catalogue, region=scenario.cluster.region
    )
    shape = lookup(catalogue, instance_type, source="default scenario", field="instance_type")
    fields = service_context_fields(world)
    return Service(
        pods_per_node=pods_per_node(shape, scenario),
        pod_capacity_rps=fields["pod_vcpu"] * fields["service_rate_per_vcpu_rps"],
        target_utilization=fields["target_utilization"],
        latency=world.latency,
    )


def load_shape(world: Any, end: datetime, minutes: int) -> np.ndarray:
    """The scenario's offered load of the ``minutes`` minutes before ``end``, placed so
    that ``end`` falls at its weekday and time of day in the replayed week; divided by
    that week's peak (so the week peaks at 1)."""
    workload = world.workload
    history = np.asarray(workload.history_rps, dtype=float)
    week = np.asarray(workload.offered_rps, dtype=float)
    days = (end.weekday() - workload.start.weekday()) % 7
    at = history.size + days * 1440 + end.hour * 60 + end.minute
    if minutes > at:
        raise InputError(
            "--history-days", "", f"{minutes / 1440:g} days is more than the trace holds",
            f"at most {MAX_HISTORY_DAYS:g} days",
        )  # fmt: skip
    series = np.concatenate([history, week])
    return series[at - minutes : at] / float(week.max())


def _minute_metrics(
    rps: float, desired: int, service: Service, rng: np.random.Generator
) -> dict[str, float]:
    """One group's metrics of one minute serving ``rps`` requests/s on ``desired`` full
    nodes: CPU (%, per pod request), p95 (s), 5xx count and running pods."""
    pods = desired * service.pods_per_node
    capacity = pods * service.pod_capacity_rps
    utilization = min(1.0, rps / capacity) if capacity > 0 else 1.0
    shed = max(0.0, 1.0 - capacity / rps) if rps > 0 else 0.0
    errors = rng.poisson(rps * 60 * (BASE_ERROR_RATE + shed))
    cpu = min(100.0, 100.0 * utilization * rng.lognormal(0.0, 0.03))
    p95_s = service.latency.p95_ms(min(utilization, 0.99)) * rng.lognormal(0.0, 0.05) / 1000.0
    return {"cpu": cpu, "p95_s": p95_s, "errors": float(errors), "pods": float(pods)}


def _dimensions(name: str, load_balancer: str, target_group: str) -> dict[str, dict[str, str]]:
    return {
        "alb": {"LoadBalancer": load_balancer, "TargetGroup": target_group},
        "ci": {"ClusterName": CLUSTER, "Namespace": NAMESPACE, "Service": name},
    }


def _hex(rng: np.random.Generator, size: int = 16) -> str:
    return "".join(f"{v:x}" for v in rng.integers(0, 16, size))


def _metric_data(
    world: Any,
    service: Service,
    end: datetime,
    history_min: int,
    rng: np.random.Generator,
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, dict[str, dict[str, str]]]]:
    """(namespace, datum) of every metric of every group, and each group's dimensions."""
    shape = load_shape(world, end, max(history_min, RECENT_MIN))
    load_balancer = f"app/{CLUSTER}/{_hex(rng)}"
    data: list[tuple[str, dict[str, Any]]] = []
    dimensions: dict[str, dict[str, dict[str, str]]] = {}
    services = {g.service for g in GROUPS}
    for name in sorted(services):
        groups = [g for g in GROUPS if g.service == name]
        fleet = sum(g.max_size for g in groups) * service.pods_per_node
        peak_rps = PEAK_SHARE * fleet * service.pod_capacity_rps * service.target_utilization
        active = sum(g.desired for g in groups)
        for group in groups:
            dims = _dimensions(group.name, load_balancer, f"targetgroup/{group.name}/{_hex(rng)}")
            dimensions[group.name] = dims
            alb = [{"Name": k, "Value": v} for k, v in dims["alb"].items()]
            ci = [{"Name": k, "Value": v} for k, v in dims["ci"].items()]
            rps = shape * peak_rps * group.desired / active
            if not group.history:
                rps = rps[-RECENT_MIN:]
            for back, value in enumerate(rps[::-1], start=1):
                minute = (end - timedelta(minutes=back)).replace(tzinfo=UTC)
                data.append(("AWS/ApplicationELB", {
                    "MetricName": "RequestCount", "Dimensions": alb, "Timestamp": minute,
                    "Value": float(round(value * 60)), "Unit": "Count",
                }))  # fmt: skip
                if back > RECENT_MIN:
                    continue
                m = _minute_metrics(float(value), group.desired, service, rng)
                data += [
                    ("AWS/ApplicationELB", {"MetricName": "TargetResponseTime", "Dimensions": alb,
                      "Timestamp": minute, "Value": m["p95_s"], "Unit": "Seconds"}),
                    ("ContainerInsights", {"MetricName": "pod_cpu_utilization_over_pod_limit",
                      "Dimensions": ci, "Timestamp": minute, "Value": m["cpu"],
                      "Unit": "Percent"}),
                    ("ContainerInsights", {"MetricName": "service_number_of_running_pods",
                      "Dimensions": ci, "Timestamp": minute, "Value": m["pods"],
                      "Unit": "Count"}),
                ]  # fmt: skip
                if m["errors"] > 0:  # CloudWatch has no datapoint for a minute without 5xx
                    data.append(("AWS/ApplicationELB", {
                        "MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": alb,
                        "Timestamp": minute, "Value": m["errors"], "Unit": "Count",
                    }))  # fmt: skip
    return data, dimensions


def _put_metrics(cloudwatch: Any, data: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """``put_metric_data`` in batches of :data:`PUT_BATCH`, :data:`PUT_THREADS` at a time
    (one batch is serialised while the server stores another)."""
    by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for namespace, datum in data:
        by_namespace[namespace].append(datum)
    batches = [
        (namespace, items[start : start + PUT_BATCH])
        for namespace, items in by_namespace.items()
        for start in range(0, len(items), PUT_BATCH)
    ]
    with ThreadPoolExecutor(PUT_THREADS) as pool:
        for _ in pool.map(
            lambda batch: cloudwatch.put_metric_data(Namespace=batch[0], MetricData=batch[1]),
            batches,
        ):
            pass


def metrics_yaml(dimensions: Mapping[str, Mapping[str, Mapping[str, str]]]) -> str:
    """The metrics config of the groups (YAML, commented), as the sandbox publishes them."""
    lines = [
        "# opsbench live scale --metrics: which CloudWatch metric is which, per node group",
        "# (adapters.aws.metrics.CloudWatchMetricsConfig), written by bench.live_sandbox.",
        "# Request rate, p95 latency and 5xx: the node group's ALB target group",
        "# (AWS/ApplicationELB); CPU and running pods: Container Insights, per Kubernetes",
        "# service (namespace ContainerInsights, the default).",
        "max_age_s: 300  # a reading older than this (s) is stale: the loop holds",
        "lookback_min: 10  # minutes searched back for the freshest complete one",
        "pools:",
    ]
    for name, dims in dimensions.items():
        alb = json.dumps(dict(dims["alb"]))
        pods = json.dumps(dict(dims["ci"]))
        lines += [
            f"  {name}:",
            "    request_rate_rps:  # requests per minute (Sum) -> requests/s",
            "      namespace: AWS/ApplicationELB",
            "      metric_name: RequestCount",
            "      stat: Sum",
            "      scale: 0.016666666666666666",
            f"      dimensions: {alb}",
            "    cpu_utilization:  # the pods' CPU over their limit, % -> 0..1 (the HPA's)",
            "      metric_name: pod_cpu_utilization_over_pod_limit",
            "      stat: Average",
            "      scale: 0.01",
            f"      dimensions: {pods}",
            "    response_time_p95_ms:  # p95 response time, s -> ms",
            "      namespace: AWS/ApplicationELB",
            "      metric_name: TargetResponseTime",
            "      # on AWS: stat: p95. moto has no percentiles, so the sandbox publishes each",
            "      # minute's p95 as the minute's one datapoint, read as its Maximum",
            "      stat: Maximum",
            "      scale: 1000",
            f"      dimensions: {alb}",
            "    error_rate:  # 5xx per minute / requests per minute",
            "      namespace: AWS/ApplicationELB",
            "      metric_name: HTTPCode_Target_5XX_Count",
            "      stat: Sum",
            "      per_request: true",
            "      missing_as: 0  # CloudWatch has no datapoint for a minute without 5xx",
            f"      dimensions: {alb}",
            "    pod_count:  # running pods of the service",
            "      metric_name: service_number_of_running_pods",
            "      stat: Average",
            f"      dimensions: {pods}",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- notices


def _notices(
    aws: _Clients, account: str, region: str, spot_nodes: Sequence[tuple[str, str]], end: datetime
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The EventBridge rules -> SQS queue and one sample notice of each kind."""
    sqs, events = aws("sqs"), aws("events")
    url = sqs.create_queue(QueueName=NOTICE_QUEUE)["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{region}:{account}:{NOTICE_QUEUE}"
    rules = []
    for rule, detail_type in (("spot-interruption", INTERRUPTION), ("spot-rebalance", REBALANCE)):
        arn = events.put_rule(
            Name=f"{CLUSTER}-{rule}",
            EventPattern=json.dumps({"source": ["aws.ec2"], "detail-type": [detail_type]}),
            Description=f"{detail_type} -> {NOTICE_QUEUE}",
        )["RuleArn"]
        events.put_targets(Rule=f"{CLUSTER}-{rule}", Targets=[{"Id": "queue", "Arn": queue_arn}])
        rules.append(arn)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SpotNoticesFromEventBridge", "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rules}},
        }],
    }  # fmt: skip
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    sent = []
    samples = ((REBALANCE, 4, {}), (INTERRUPTION, 2, {"instance-action": "terminate"}))
    one_per_zone = list({az: (instance, az) for instance, az in reversed(spot_nodes)}.values())
    for (detail_type, minutes_ago, extra), (instance, az) in zip(
        samples, one_per_zone, strict=False
    ):
        events.put_events(
            Entries=[{
                "Source": "aws.ec2", "DetailType": detail_type,
                "Time": (end - timedelta(minutes=minutes_ago)).replace(tzinfo=UTC),
                "Resources": [f"arn:aws:ec2:{az}:instance/{instance}"],
                "Detail": json.dumps({"instance-id": instance, **extra}),
            }]
        )  # fmt: skip
        sent.append((detail_type, instance))
    return url, tuple(sent)


# --------------------------------------------------------------------------- trail


def shipped_trail() -> list[dict[str, Any]]:
    """The shipped CloudTrail recording, one record per line."""
    from scenarios import data_path

    path = data_path("security", "cloudtrail", "invictus_stratus_events.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def trail_files(
    records: Sequence[Mapping[str, Any]], prefix: str, rng: np.random.Generator
) -> Iterator[tuple[str, list[Mapping[str, Any]]]]:
    """(key, records) of each file CloudTrail would deliver: per account, region and
    :data:`TRAIL_WINDOW_MIN` minutes, named by the window's end (its delivery)."""
    windows: dict[tuple[str, str, datetime], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        moment = datetime.strptime(str(record["eventTime"]), "%Y-%m-%dT%H:%M:%SZ")
        start = moment.replace(minute=moment.minute - moment.minute % TRAIL_WINDOW_MIN, second=0)
        account = str(record.get("recipientAccountId") or record["userIdentity"]["accountId"])
        windows[(account, str(record["awsRegion"]), start)].append(record)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for (account, region, start), batch in sorted(windows.items()):
        end = start + timedelta(minutes=TRAIL_WINDOW_MIN)
        suffix = "".join(alphabet[i] for i in rng.integers(0, len(alphabet), 16))
        name = f"{account}_CloudTrail_{region}_{end:%Y%m%dT%H%MZ}_{suffix}.json.gz"
        yield f"{prefix}{account}/CloudTrail/{region}/{end:%Y/%m/%d}/{name}", batch


def _trail(aws: _Clients, rng: np.random.Generator) -> tuple[int, int, datetime]:
    """Put the shipped recording as trail files: (files, records, first event time)."""
    s3 = aws("s3")
    s3.create_bucket(Bucket=TRAIL_BUCKET)
    records = shipped_trail()
    files = 0
    for key, batch in trail_files(records, TRAIL_PREFIX, rng):
        body = gzip.compress(json.dumps({"Records": batch}).encode(), mtime=0)
        s3.put_object(Bucket=TRAIL_BUCKET, Key=key, Body=body)
        files += 1
    first = min(datetime.strptime(str(r["eventTime"]), "%Y-%m-%dT%H:%M:%SZ") for r in records)
    return files, len(records), first


# --------------------------------------------------------------------------- prepare


def prepare(
    endpoint_url: str,
    *,
    region: str = "us-east-1",
    out_dir: Path,
    now: datetime | None = None,
    history_days: float = 14.0,
    seed: int = 42,
) -> Sandbox:
    """Create the sandbox fleet on the moto server at ``endpoint_url`` (loopback only) and
    write ``out_dir/metrics.yaml``. ``now``: naive UTC (default: the clock);
    ``history_days``: days of request-rate history before ``now``."""
    began = time.perf_counter()
    check_loopback(endpoint_url)
    if not 0 < history_days <= MAX_HISTORY_DAYS:
        raise InputError(
            "--history-days", "", f"{history_days:g}", f"> 0 and <= {MAX_HISTORY_DAYS:g} days"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "--out", "is not a folder", "a folder (created if missing)")
    from bench.runner import prepare_run
    from sim import atomic

    _moto_post(endpoint_url, f"/moto-api/seed?a={seed}")
    aws = _Clients(endpoint_url, region)
    eks = aws("eks")
    if CLUSTER in eks.list_clusters()["clusters"]:
        raise InputError(
            "--endpoint-url", "", f"{endpoint_url} already holds cluster {CLUSTER}",
            f"a fresh server (restart it, or POST {endpoint_url}/moto-api/reset)",
        )  # fmt: skip
    world = prepare_run("default", lifecycle="off").world
    rng = np.random.default_rng(seed)
    pool = world.pools[0]
    instance_type, azs = pool.instance_type, tuple(pool.azs)
    end = minute_floor(now or utc_now())
    account = aws("sts").get_caller_identity()["Account"]
    subnets = _subnets(aws("ec2"), azs)
    pairs, nodes = _cluster(aws, account, subnets, instance_type)
    data, dimensions = _metric_data(
        world, _service(world, instance_type), end, math.ceil(history_days * 1440), rng
    )
    _put_metrics(aws("cloudwatch"), data)
    queue_url, sent = _notices(aws, account, region, nodes[SPOT_GROUP], end)
    files, records, trail_start = _trail(aws, rng)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.yaml"
    with atomic.writing_file(metrics_path) as staging:
        staging.write_text(metrics_yaml(dimensions), encoding="utf-8")
    return Sandbox(
        endpoint_url=endpoint_url,
        region=region,
        cluster=CLUSTER,
        nodegroups=tuple(name for name, _ in pairs),
        nodegroup_asgs=tuple(pairs),
        self_managed_group=SELF_MANAGED_GROUP,
        instance_type=instance_type,
        azs=azs,
        notices_queue_url=queue_url,
        notice_instances=sent,
        trail_bucket=TRAIL_BUCKET,
        trail_prefix=TRAIL_PREFIX,
        trail_files=files,
        trail_records=records,
        trail_start=trail_start,
        metrics_path=metrics_path,
        metrics_end=end,
        history_days=history_days,
        seconds=time.perf_counter() - began,
    )


def summary(sandbox: Sandbox) -> list[str]:
    """What was prepared and what to run next (lines for a terminal)."""
    groups = ", ".join(f"{n} (Auto Scaling group {a})" for n, a in sandbox.nodegroup_asgs)
    return [
        f"prepared {sandbox.endpoint_url} ({sandbox.region}) in {sandbox.seconds:.1f} s:",
        f"  EKS cluster {sandbox.cluster}: {groups}; {sandbox.instance_type} over "
        f"{', '.join(sandbox.azs)}",
        f"  self-managed Auto Scaling group {sandbox.self_managed_group}",
        f"  metrics up to {sandbox.metrics_end:%Y-%m-%d %H:%M} UTC ({sandbox.history_days:g} days"
        f" of request rate): {sandbox.metrics_path}",
        f"  spot notices queue {sandbox.notices_queue_url} "
        f"({len(sandbox.notice_instances)} sample notices)",
        f"  trail s3://{sandbox.trail_bucket}/{sandbox.trail_prefix}: {sandbox.trail_files} files, "
        f"{sandbox.trail_records:,} records",
        "next (the metrics are fresh for 5 minutes; opsbench live signs with your credential "
        "chain, so give it moto's dummy keys):",
        "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
        *(f"  {command}" for command in sandbox.commands()),
    ]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--endpoint-url", required=True, help="the moto server (loopback only)")
@click.option("--region", default="us-east-1", show_default=True, help="AWS region")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("opsbench-sandbox"),
    show_default=True,
    help="folder for metrics.yaml",
)
@click.option(
    "--history-days",
    type=float,
    default=14.0,
    show_default=True,
    help="days of request-rate history before now",
)
@click.option("--seed", type=int, default=42, show_default=True, help="ids and noise")
def cli(endpoint_url: str, region: str, out_dir: Path, history_days: float, seed: int) -> None:
    """Prepare a moto server as a small EKS fleet for opsbench live."""
    sandbox = prepare(
        endpoint_url, region=region, out_dir=out_dir, history_days=history_days, seed=seed
    )
    for line in summary(sandbox):
        click.echo(line)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr and exit 2 for any input error."""
    try:
        cli.main(args=argv, prog_name="python -m bench.live_sandbox", standalone_mode=False)
    except OpsbenchError as exc:
        click.echo(f"opsbench: error: {exc}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        click.echo(f"opsbench: error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(2)
    except (BotoCoreError, ClientError) as exc:  # the server failed a call: not bad input
        click.echo(f"opsbench: error: the moto server failed: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
