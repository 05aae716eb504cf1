"""Fixtures of the adapter tests: moto (tests/aws_moto.py) and the AWS adapters' client
factory pointed at it; helpers to inject throttling and to stub a client (or one kind of
call of it); small worlds on moto (subnets, Auto Scaling groups, a spot-notices queue)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_moto import REGION, MotoServer, boto_client, moto, moto_server  # noqa: F401 (fixtures)
from aws_faults import RetryLog, Throttle, retry_log, throttle  # noqa: F401 (fixtures)
from botocore.stub import Stubber

from adapters.aws.clients import AwsClients


@pytest.fixture
def aws(moto: MotoServer) -> AwsClients:  # noqa: F811 (the fixture above)
    """The adapters' client factory on the wiped moto server (3 sends per call)."""
    return AwsClients(REGION, endpoint_url=moto.url, max_attempts=3, connect_timeout_s=2)


class RoutedStubber(Stubber):
    """botocore's Stubber answering only the calls ``routed(operation, params)`` picks
    (each checked against the service model and the queued expected parameters, as the
    Stubber checks every call); every other call of the client reaches the server.

    For one operation moto serves unrealistically while the rest of the client stays on
    moto, e.g. ``describe_spot_price_history`` with a time window (moto's rows are
    synthetic) beside the instance-type offerings moto lists."""

    ROUTED = "opsbench_routed_to_stub"  # the request context's mark, set per call

    def __init__(self, client: Any, routed: Callable[[str, Mapping[str, Any]], bool]) -> None:
        super().__init__(client)
        self.routed = routed

    def _assert_expected_params(self, model: Any, params: Any, context: Any, **kwargs: Any) -> None:
        context[self.ROUTED] = self.routed(model.name, params)
        if context[self.ROUTED]:
            super()._assert_expected_params(model, params, context, **kwargs)

    def _get_response_handler(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        if not context.get(self.ROUTED):
            return None  # no answer: botocore sends the request
        return super()._get_response_handler(model, params, context, **kwargs)


@pytest.fixture
def routed_stubber() -> Callable[..., RoutedStubber]:
    """``routed_stubber(client, routed)``: a :class:`RoutedStubber` (activate it)."""
    return RoutedStubber


# --------------------------------------------------------------------------- moto worlds


@pytest.fixture
def default_subnets(boto_client: Callable[[str], Any]) -> dict[str, str]:  # noqa: F811
    """Zone -> the default VPC's subnet there (moto creates one per zone)."""
    subnets = boto_client("ec2").describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}]
    )["Subnets"]
    return {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}


LAUNCH_IMAGE = "ami-0abcdef1234567890"  # moto checks no image unless told to


@pytest.fixture
def make_asg(
    boto_client: Callable[[str], Any],  # noqa: F811
    default_subnets: dict[str, str],
) -> Callable[..., str]:
    """``make_asg(name, types, azs, min_size=, max_size=, desired=, spot=False)``: an Auto
    Scaling group on a launch template of ``types[0]`` over the default subnets of
    ``azs``; ``spot``: a mixed-instances group of ``types`` buying no on-demand. moto
    launches its instances at once. Returns the name."""

    def make(
        name: str, types: Sequence[str], azs: Sequence[str], *, min_size: int, max_size: int,
        desired: int, spot: bool = False,
    ) -> str:  # fmt: skip
        boto_client("ec2").create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": LAUNCH_IMAGE, "InstanceType": types[0]},
        )
        template = {"LaunchTemplateName": name}
        placement: dict[str, Any] = (
            {"MixedInstancesPolicy": {
                "LaunchTemplate": {"LaunchTemplateSpecification": template,
                                   "Overrides": [{"InstanceType": t} for t in types]},
                "InstancesDistribution": {"OnDemandBaseCapacity": 0,
                                          "OnDemandPercentageAboveBaseCapacity": 0,
                                          "SpotAllocationStrategy": "price-capacity-optimized"},
            }}
            if spot
            else {"LaunchTemplate": template}
        )  # fmt: skip
        boto_client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=min_size, MaxSize=max_size,
            DesiredCapacity=desired,
            VPCZoneIdentifier=",".join(default_subnets[az] for az in azs), **placement,
        )  # fmt: skip
        return name

    return make


SPOT_DETAIL_TYPES = ("EC2 Spot Instance Interruption Warning",
                     "EC2 Instance Rebalance Recommendation")  # fmt: skip


@pytest.fixture
def notices_queue(boto_client: Callable[[str], Any]) -> str:  # noqa: F811
    """An SQS queue fed by an EventBridge rule for EC2's two spot notices; its URL."""
    sqs = boto_client("sqs")
    url = sqs.create_queue(QueueName="spot-notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto_client("events")
    events.put_rule(
        Name="spot-notices",
        EventPattern=json.dumps({"source": ["aws.ec2"], "detail-type": list(SPOT_DETAIL_TYPES)}),
    )
    events.put_targets(Rule="spot-notices", Targets=[{"Id": "queue", "Arn": arn}])
    return url


@pytest.fixture
def send_notice(boto_client: Callable[[str], Any]) -> Callable[..., None]:  # noqa: F811
    """``send_notice(detail_type, instance, when, zone=..., **detail)``: what EC2 puts on the
    default event bus (a rule routes it on)."""

    def send(
        detail_type: str, instance: str, when: datetime, *, zone: str = "us-east-1a",
        **detail: Any,
    ) -> None:  # fmt: skip
        boto_client("events").put_events(
            Entries=[{
                "Source": "aws.ec2", "DetailType": detail_type,
                "Time": when.replace(tzinfo=UTC),
                "Resources": [f"arn:aws:ec2:{zone}:instance/{instance}"],
                "Detail": json.dumps({"instance-id": instance, **detail}),
            }]
        )  # fmt: skip

    return send
