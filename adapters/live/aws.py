"""The one place ``opsbench live`` builds the boto3 implementations of the protocols
(:mod:`adapters.aws`).

They are imported lazily, inside the functions, so ``opsbench live --help`` and every
test with fakes run without boto3. Credentials come only from boto3's default chain
(environment, shared files, SSO, instance or task role); nothing here reads, prints or
logs them. Throttling and 5xx are retried by botocore's ``standard`` retry mode inside
the clients (:data:`MAX_ATTEMPTS` sends per call).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from adapters.protocols import AuditLog, MetricsSource, NodeGroups, SpotMarket
from adapters.errors import aws_error_line, aws_error_types
from adapters.times import utc_now
from sim.catalog import Catalogue, InstanceType, load_catalogue
from sim.errors import InputError, OpsbenchError

if TYPE_CHECKING:
    from adapters.aws.metrics import CloudWatchMetricsConfig

MAX_ATTEMPTS = 5
"""botocore ``standard`` retry mode: sends per call (throttling, 5xx)."""

NOTICE_WINDOW = timedelta(minutes=15)
"""How long a spot notice is kept for matching to a group's instances (a warning comes
two minutes before the reclaim; the instance leaves the group soon after)."""


@dataclass(frozen=True, slots=True)
class ScalingBackends:
    """What the live scaling loop reads and writes through, and the on-demand catalogue
    (instance type -> vCPUs, memory, on-demand USD/hour) of the region it prices with."""

    metrics: MetricsSource
    groups: NodeGroups
    market: SpotMarket
    catalogue: Mapping[str, InstanceType] | None = None


def on_demand_catalogue(region: str, extra: Path | None) -> dict[str, InstanceType]:
    """The shipped on-demand catalogue's rows of ``region``, with ``extra`` (a CSV in the
    same columns: ``instance_type, region, vcpus, memory_gib, gpu,
    on_demand_usd_per_hour, ...``) over them: types the shipped table lacks, or prices
    of the user's own (e.g. from the AWS Price List)."""
    from scenarios import data_path

    shipped = data_path("spot", "on_demand_prices.csv")
    try:
        catalogue = load_catalogue(shipped, region=region)
    except InputError:
        if extra is None:
            raise
        catalogue = Catalogue(region)  # the shipped table has no rows of the region
    if extra is not None:
        catalogue.update(load_catalogue(extra, region=region))
    return catalogue


def _aws() -> Any:
    """The boto3 implementations (:mod:`adapters.aws`), or one clear error without them."""
    try:
        import adapters.aws as implementations
    except ImportError as exc:  # boto3 missing
        raise OpsbenchError(f"live mode needs boto3 ({exc})") from None
    return implementations


@contextmanager
def aws_errors_as_one_line(what: str) -> Iterator[None]:
    """Turn a boto3 error inside into one :class:`OpsbenchError` line about ``what``."""
    try:
        yield
    except aws_error_types() as exc:
        raise OpsbenchError(f"{what}: {aws_error_line(exc)}") from None


def resolve_region(region: str | None) -> str:
    """``region``, else boto3's configured one (``AWS_REGION``, ``AWS_DEFAULT_REGION``,
    the profile's); one clear error if there is none."""
    if region:
        return region
    import boto3

    configured = boto3.session.Session().region_name
    if not configured:
        raise InputError(
            "--region",
            "",
            "no region given and boto3's configuration names none",
            "an AWS region, e.g. --region us-east-1 (or AWS_REGION)",
        )
    return str(configured)


def _clients(region: str | None, endpoint_url: str | None) -> Any:
    return _aws().AwsClients(
        resolve_region(region), endpoint_url=endpoint_url, max_attempts=MAX_ATTEMPTS
    )


def metrics_config(path: Path) -> CloudWatchMetricsConfig:
    """The CloudWatch queries of ``--metrics FILE`` (YAML: ``pools:`` one entry per node
    group, :class:`adapters.aws.metrics.CloudWatchMetricsConfig`)."""
    impl = _aws()
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror})"
        raise InputError(source, "(file)", problem, "a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise InputError(source, where, "not YAML", "a YAML mapping with `pools:`") from None
    config: CloudWatchMetricsConfig = impl.parse_metrics_config(data, source=source)
    return config


def check_metrics_cover(
    config: CloudWatchMetricsConfig, nodegroups: tuple[str, ...], path: Path
) -> None:
    """Every node group has its queries in ``config`` (read from ``path``)."""
    missing = [name for name in nodegroups if name not in config.pools]
    if missing:
        raise InputError(
            str(path),
            f"pools.{missing[0]}",
            "missing: the node group has no metric queries",
            "one entry under pools: per --nodegroup",
        )


def scaling_backends(
    *,
    cluster: str,
    metrics: CloudWatchMetricsConfig,
    region: str | None,
    endpoint_url: str | None,
    self_managed: bool = False,
    on_demand_prices: Path | None = None,
    notices_queue_url: str | None = None,
) -> ScalingBackends:
    """CloudWatch metrics (``metrics``: the queries per node group), the cluster's EKS
    managed node groups (Auto Scaling groups with ``self_managed``) and the EC2 spot
    market, on-demand prices from :func:`on_demand_catalogue`. With
    ``notices_queue_url`` (the SQS queue an EventBridge rule sends EC2's spot
    interruption warnings and rebalance recommendations to) the groups count the
    warnings for their instances as interruptions, as a replay's observation does."""
    impl = _aws()
    clients = _clients(region, endpoint_url)
    catalogue = on_demand_catalogue(clients.region, on_demand_prices)
    market = impl.Ec2SpotMarket(clients, catalogue, notices_queue_url=notices_queue_url)

    def recent_notices() -> Any:
        return market.notices(since=utc_now() - NOTICE_WINDOW)

    notices = recent_notices if notices_queue_url else None
    groups: NodeGroups = (
        impl.AsgNodeGroups(clients, notices=notices)
        if self_managed
        else impl.EksNodeGroups(clients, cluster, notices=notices)
    )
    return ScalingBackends(impl.CloudWatchMetrics(clients, metrics), groups, market, catalogue)


def audit_log(
    *,
    region: str | None,
    endpoint_url: str | None,
    trail_bucket: str | None,
    prefix: str,
    since: datetime | None = None,
) -> AuditLog:
    """Trail files in S3 (``trail_bucket``/``prefix``) or CloudTrail ``lookup_events``;
    a read without a cursor starts at ``since`` (naive UTC; None: everything)."""
    impl = _aws()
    clients = _clients(region, endpoint_url)
    log: AuditLog = (
        impl.S3TrailFiles(clients, trail_bucket, prefix, since=since)
        if trail_bucket is not None
        else impl.CloudTrailLookup(clients, start=since)
    )
    return log
