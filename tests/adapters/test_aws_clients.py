"""AwsClients: one cached client per service from the default credential chain, botocore
standard retries; throttling is retried (RetryAttempts) and given up after max attempts."""

from __future__ import annotations

import pytest
from aws_moto import REGION
from botocore.exceptions import ClientError

from adapters.aws.clients import AwsClients
from adapters.aws.nodegroups import AsgNodeGroups, EksNodeGroups

pytestmark = pytest.mark.aws


def test_one_client_per_service_with_standard_retries(moto) -> None:
    clients = AwsClients(REGION, endpoint_url=moto.url, max_attempts=7)
    eks = clients.client("eks")
    assert clients.client("eks") is eks
    assert eks.meta.endpoint_url == moto.url
    assert eks.meta.region_name == REGION
    assert eks.meta.config.retries == {"mode": "standard", "total_max_attempts": 7}


def test_credentials_come_from_the_default_chain_and_never_show(moto, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY123456")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-printed-secret")
    clients = AwsClients(REGION, endpoint_url=moto.url)
    credentials = clients.client("sts")._request_signer._credentials
    assert credentials.access_key == "AKIAEXAMPLEKEY123456"  # read from the environment
    assert "never-printed-secret" not in repr(clients)
    assert "AKIA" not in repr(clients)


def test_without_an_endpoint_the_environment_decides(moto) -> None:
    # the test environment points every client without an endpoint at a closed port
    clients = AwsClients(REGION)
    assert clients.client("eks").meta.endpoint_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"retry_mode": "legacy"}, "retry_mode"),
        ({"read_timeout_s": 0}, "timeouts"),
    ],
)
def test_bad_settings_are_refused(kwargs, text) -> None:
    with pytest.raises(ValueError, match=text):
        AwsClients(REGION, **kwargs)


def _cluster_with_group(boto_client) -> None:
    eks = boto_client("eks")
    eks.create_cluster(
        name="prod", roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": []},
    )  # fmt: skip
    eks.create_nodegroup(
        clusterName="prod", nodegroupName="web", nodeRole="arn:aws:iam::123456789012:role/node",
        subnets=[], scalingConfig={"minSize": 1, "maxSize": 4, "desiredSize": 2},
    )  # fmt: skip


def test_eks_throttling_is_retried_then_answered(aws, boto_client, throttle, retry_log) -> None:
    _cluster_with_group(boto_client)
    groups = EksNodeGroups(aws, "prod")
    eks = aws.client("eks")
    hook = throttle(eks, "eks", "DescribeNodegroup", times=2)
    retries = retry_log(eks, "eks", "DescribeNodegroup")
    assert groups.describe("web").desired_size == 2
    assert hook.sends == 3  # two throttled, the third reached moto
    assert retries.attempts == [2]


def test_eks_throttling_gives_up_after_max_attempts(aws, boto_client, throttle) -> None:
    _cluster_with_group(boto_client)
    groups = EksNodeGroups(aws, "prod")
    hook = throttle(aws.client("eks"), "eks", "DescribeNodegroup", times=10)
    with pytest.raises(ClientError) as caught:
        groups.describe("web")
    assert hook.sends == 3  # max_attempts of the fixture's factory
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["ResponseMetadata"]["MaxAttemptsReached"] is True
    assert error["ResponseMetadata"]["RetryAttempts"] == 2


def test_auto_scaling_throttling_is_retried(aws, boto_client, throttle, retry_log) -> None:
    # an empty region: the listing still has to get past two Throttling answers
    autoscaling = aws.client("autoscaling")
    hook = throttle(
        autoscaling, "auto-scaling", "DescribeAutoScalingGroups", times=2,
        protocol="query", status=400, code="Throttling",
    )  # fmt: skip
    retries = retry_log(autoscaling, "auto-scaling", "DescribeAutoScalingGroups")
    assert AsgNodeGroups(aws).list() == ()
    assert hook.sends == 3
    assert retries.attempts == [2]
