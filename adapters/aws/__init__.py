"""The protocols of :mod:`adapters.protocols` against AWS, with boto3 (one module per
service; every adapter takes its clients from :class:`~adapters.aws.clients.AwsClients`)."""

from adapters.aws.audit import CloudTrailLookup, S3TrailFiles
from adapters.aws.clients import AwsClients
from adapters.aws.metrics import (
    CloudWatchMetrics,
    CloudWatchMetricsConfig,
    parse_metrics_config,
)
from adapters.aws.nodegroups import AsgNodeGroups, EksNodeGroups
from adapters.aws.spot import Ec2SpotMarket

__all__ = [
    "AsgNodeGroups",
    "AwsClients",
    "CloudTrailLookup",
    "CloudWatchMetrics",
    "CloudWatchMetricsConfig",
    "Ec2SpotMarket",
    "EksNodeGroups",
    "S3TrailFiles",
    "parse_metrics_config",
]
