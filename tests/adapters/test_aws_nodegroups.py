"""EksNodeGroups and AsgNodeGroups against moto (and a stubbed EKS reply naming a real
Auto Scaling group): list, describe, desired size within [min, max] checked before any
write (moto checks nothing)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from adapters.aws.nodegroups import AsgNodeGroups, EksNodeGroups, node_state, nodes_by_state_az
from adapters.protocols import DesiredSizeOutOfBounds, NodeGroups, NodeState

pytestmark = pytest.mark.aws

ACCOUNT = "123456789012"
IMAGE = "ami-0abcdef1234567890"  # moto does not check images unless told to


def _default_subnets(boto_client) -> dict[str, str]:
    """Zone -> the default VPC's subnet there."""
    subnets = boto_client("ec2").describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}]
    )["Subnets"]
    return {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}


@pytest.fixture
def cluster(boto_client) -> dict[str, str]:
    """EKS cluster ``prod`` with managed node groups ``web`` (on-demand, 2 zones) and
    ``batch`` (spot, 3 zones); returns zone -> subnet."""
    subnets = _default_subnets(boto_client)
    eks = boto_client("eks")
    eks.create_cluster(
        name="prod", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": list(subnets.values())[:3]}, version="1.29",
    )  # fmt: skip
    node_role = f"arn:aws:iam::{ACCOUNT}:role/eks-node"
    eks.create_nodegroup(
        clusterName="prod", nodegroupName="web", nodeRole=node_role,
        subnets=[subnets["us-east-1a"], subnets["us-east-1b"]],
        scalingConfig={"minSize": 2, "maxSize": 6, "desiredSize": 3},
        instanceTypes=["c5.xlarge"], capacityType="ON_DEMAND",
    )  # fmt: skip
    eks.create_nodegroup(
        clusterName="prod", nodegroupName="batch", nodeRole=node_role,
        subnets=[subnets[z] for z in ("us-east-1a", "us-east-1b", "us-east-1c")],
        scalingConfig={"minSize": 0, "maxSize": 10, "desiredSize": 1},
        instanceTypes=["m5.large", "m5a.large"], capacityType="SPOT",
    )  # fmt: skip
    return subnets


def test_eks_groups_are_listed_and_described(aws, cluster) -> None:
    groups = EksNodeGroups(aws, "prod")
    assert isinstance(groups, NodeGroups)
    assert sorted(groups.list()) == ["batch", "web"]
    web = groups.describe("web")
    assert (web.min_size, web.max_size, web.desired_size) == (2, 6, 3)
    assert (web.instance_types, web.capacity_type) == (("c5.xlarge",), "on-demand")
    assert web.azs == ("us-east-1a", "us-east-1b")
    assert web.nodes_by_state_az == {}  # moto backs no Auto Scaling group
    batch = groups.describe("batch")
    assert (batch.capacity_type, batch.instance_types) == ("spot", ("m5.large", "m5a.large"))
    assert batch.azs == ("us-east-1a", "us-east-1b", "us-east-1c")


def test_eks_unknown_group_is_a_key_error(aws, cluster) -> None:
    with pytest.raises(KeyError):
        EksNodeGroups(aws, "prod").describe("nope")
    with pytest.raises(KeyError):
        EksNodeGroups(aws, "prod", nodegroups=["web"]).describe("batch")


def test_eks_set_desired_updates_the_scaling_config(aws, cluster, boto_client) -> None:
    EksNodeGroups(aws, "prod").set_desired("web", 5, by_az={"us-east-1a": 5})
    scaling = boto_client("eks").describe_nodegroup(clusterName="prod", nodegroupName="web")[
        "nodegroup"
    ]["scalingConfig"]
    assert scaling == {"minSize": 2, "maxSize": 6, "desiredSize": 5}


@pytest.mark.parametrize("desired", [1, 7])
def test_eks_desired_outside_bounds_is_never_sent(aws, cluster, boto_client, desired) -> None:
    groups = EksNodeGroups(aws, "prod")
    with pytest.raises(DesiredSizeOutOfBounds) as caught:
        groups.set_desired("web", desired)
    assert (caught.value.min_size, caught.value.max_size) == (2, 6)
    # moto would have accepted it: the size is unchanged because nothing was sent
    assert groups.describe("web").desired_size == 3


def _eks_reply(asg_name: str) -> dict:
    """A describe_nodegroup reply as EKS sends it for a managed node group."""
    created = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    return {
        "nodegroup": {
            "nodegroupName": "web",
            "nodegroupArn": f"arn:aws:eks:us-east-1:{ACCOUNT}:nodegroup/prod/web/"
            "6ec7a5c5-1c7b-4a0e-9a3b-2f1c7e0d9d11",
            "clusterName": "prod",
            "version": "1.29",
            "releaseVersion": "1.29.3-20240424",
            "createdAt": created,
            "modifiedAt": created,
            "status": "ACTIVE",
            "capacityType": "ON_DEMAND",
            "scalingConfig": {"minSize": 1, "maxSize": 5, "desiredSize": 2},
            "instanceTypes": ["t3.medium"],
            "subnets": [],
            "amiType": "AL2_x86_64",
            "nodeRole": f"arn:aws:iam::{ACCOUNT}:role/eks-node",
            "resources": {"autoScalingGroups": [{"name": asg_name}]},
            "diskSize": 20,
            "health": {"issues": []},
            "updateConfig": {"maxUnavailable": 1},
            "tags": {},
        }
    }


def test_eks_nodes_come_from_the_groups_auto_scaling_group(aws, asg) -> None:
    groups = EksNodeGroups(aws, "prod")
    with Stubber(aws.client("eks")) as stub:
        stub.add_response(
            "describe_nodegroup", _eks_reply(asg), {"clusterName": "prod", "nodegroupName": "web"}
        )
        info = groups.describe("web")
        stub.assert_no_pending_responses()
    assert info.count(NodeState.RUNNING) == 2
    assert sum(info.nodes_by_state_az[NodeState.RUNNING].values()) == 2


# --------------------------------------------------------------------------- ASG


@pytest.fixture
def asg(boto_client) -> str:
    """Auto Scaling group ``workers`` (launch template, default subnets), 2 in [1, 4]."""
    subnets = _default_subnets(boto_client)
    ec2 = boto_client("ec2")
    ec2.create_launch_template(
        LaunchTemplateName="workers",
        LaunchTemplateData={"ImageId": IMAGE, "InstanceType": "m5.large"},
    )
    boto_client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="workers", LaunchTemplate={"LaunchTemplateName": "workers"},
        MinSize=1, MaxSize=4, DesiredCapacity=2,
        VPCZoneIdentifier=",".join([subnets["us-east-1a"], subnets["us-east-1b"]]),
    )  # fmt: skip
    return "workers"


def test_asg_is_listed_and_described_with_its_instances(aws, asg) -> None:
    groups = AsgNodeGroups(aws)
    assert groups.list() == ("workers",)
    info = groups.describe("workers")
    assert (info.min_size, info.max_size, info.desired_size) == (1, 4, 2)
    assert (info.instance_types, info.capacity_type) == (("m5.large",), "on-demand")
    assert info.azs == ("us-east-1a", "us-east-1b")
    assert info.count(NodeState.RUNNING) == 2
    assert set(info.nodes_by_state_az[NodeState.RUNNING]) <= {"us-east-1a", "us-east-1b"}


def test_asg_set_desired_launches_and_never_honours_cooldown(aws, asg, boto_client) -> None:
    groups = AsgNodeGroups(aws, ["workers"])
    sent: list[dict] = []
    aws.client("autoscaling").meta.events.register(
        "provide-client-params.auto-scaling.SetDesiredCapacity",
        lambda params, **_: sent.append(dict(params)),
    )
    groups.set_desired("workers", 4)
    assert sent == [
        {"AutoScalingGroupName": "workers", "DesiredCapacity": 4, "HonorCooldown": False}
    ]
    info = groups.describe("workers")
    assert info.desired_size == 4
    assert info.count(NodeState.RUNNING) == 4


@pytest.mark.parametrize("desired", [0, 5])
def test_asg_desired_outside_bounds_is_never_sent(aws, asg, desired) -> None:
    groups = AsgNodeGroups(aws)
    with pytest.raises(DesiredSizeOutOfBounds):
        groups.set_desired("workers", desired)
    assert groups.describe("workers").desired_size == 2


def test_asg_unknown_group_is_a_key_error(aws, asg) -> None:
    with pytest.raises(KeyError):
        AsgNodeGroups(aws).describe("nope")


def test_spot_only_mixed_instances_group_is_spot(aws, boto_client) -> None:
    subnets = _default_subnets(boto_client)
    ec2 = boto_client("ec2")
    ec2.create_launch_template(
        LaunchTemplateName="spot", LaunchTemplateData={"ImageId": IMAGE, "InstanceType": "m5.large"}
    )
    boto_client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="spot-workers", MinSize=0, MaxSize=3, DesiredCapacity=0,
        VPCZoneIdentifier=subnets["us-east-1a"],
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "spot"},
                "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "m5a.large"}],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 0,
                "SpotAllocationStrategy": "price-capacity-optimized",
            },
        },
    )  # fmt: skip
    info = AsgNodeGroups(aws).describe("spot-workers")
    assert (info.capacity_type, info.instance_types) == ("spot", ("m5.large", "m5a.large"))


def test_lifecycle_states_map_to_node_states() -> None:
    instances = [
        {"InstanceId": "i-1", "AvailabilityZone": "us-east-1a", "LifecycleState": "Pending"},
        {"InstanceId": "i-2", "AvailabilityZone": "us-east-1a", "LifecycleState": "Pending:Wait"},
        {"InstanceId": "i-3", "AvailabilityZone": "us-east-1b", "LifecycleState": "InService",
         "HealthStatus": "Healthy"},
        {"InstanceId": "i-4", "AvailabilityZone": "us-east-1b", "LifecycleState": "InService",
         "HealthStatus": "Unhealthy"},
        {"InstanceId": "i-5", "AvailabilityZone": "us-east-1a",
         "LifecycleState": "Terminating:Wait"},
        {"InstanceId": "i-6", "AvailabilityZone": "us-east-1a", "LifecycleState": "Terminated"},
        {"InstanceId": "i-7", "AvailabilityZone": "us-east-1a", "LifecycleState": "Standby"},
    ]  # fmt: skip
    assert nodes_by_state_az(instances) == {
        NodeState.PENDING: {"us-east-1a": 2},
        NodeState.RUNNING: {"us-east-1b": 1},
        NodeState.LEAVING: {"us-east-1b": 1, "us-east-1a": 2},
    }
    with pytest.raises(ValueError, match="Hibernating"):
        node_state({"InstanceId": "i-8", "LifecycleState": "Hibernating"})


def test_interruption_warnings_for_the_groups_instances_count_once(aws, asg) -> None:
    """``interruptions``: the warnings for the group's own instances, each instance once
    however often its warning is seen; rebalance recommendations and other instances'
    warnings do not count; without a source of notices it stays 0."""
    from adapters.protocols import NoticeKind, SpotNotice

    plain = AsgNodeGroups(aws)
    ids = [i["InstanceId"] for i in aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[asg])["AutoScalingGroups"][0]["Instances"]]  # fmt: skip
    at = datetime(2024, 5, 1, 12, 0)
    received = [
        SpotNotice(NoticeKind.INTERRUPTION, at, ids[0]),
        SpotNotice(NoticeKind.REBALANCE, at, ids[1]),
        SpotNotice(NoticeKind.INTERRUPTION, at, "i-0notinthisgroup0"),
    ]
    groups = AsgNodeGroups(aws, notices=lambda: received)
    assert plain.describe(asg).interruptions == 0
    assert groups.describe(asg).interruptions == 1
    assert groups.describe(asg).interruptions == 1  # seen again: still one
    received.append(SpotNotice(NoticeKind.INTERRUPTION, at, ids[1]))
    assert groups.describe(asg).interruptions == 2
    received.clear()  # the warnings aged out of the market's window: the count stays
    assert groups.describe(asg).interruptions == 2


def _update(update_id: str, status: str) -> dict:
    created = datetime(2024, 5, 1, 12, tzinfo=UTC)
    return {"update": {"id": update_id, "status": status, "type": "ConfigUpdate",
                       "params": [{"type": "DesiredSize", "value": "4"}],
                       "createdAt": created, "errors": []}}  # fmt: skip


def test_eks_refuses_a_write_while_its_last_update_is_in_progress(aws, cluster) -> None:
    """EKS applies one config update of a group at a time: the adapter asks
    ``describe_update`` (which moto lacks: Stubber, validated against the service model)
    about the update it sent last, refuses a new write while that one is InProgress
    (nothing sent), and writes again once it is Successful."""
    from adapters.protocols import WriteRefused

    groups = EksNodeGroups(aws, "prod")
    eks = aws.client("eks")
    described = groups._nodegroup("web")
    reply = {"nodegroup": described}
    key = {"clusterName": "prod", "nodegroupName": "web"}
    with Stubber(eks) as stub:
        stub.add_response("describe_nodegroup", reply, key)
        stub.add_response("update_nodegroup_config", _update("u-1", "InProgress"),
                          {**key, "scalingConfig": {"desiredSize": 4}})  # fmt: skip
        groups.set_desired("web", 4)
        stub.add_response("describe_nodegroup", reply, key)
        stub.add_response("describe_update", _update("u-1", "InProgress"),
                          {"name": "prod", "nodegroupName": "web", "updateId": "u-1"})  # fmt: skip
        with pytest.raises(WriteRefused, match="u-1 is still in progress"):
            groups.set_desired("web", 5)
        stub.add_response("describe_nodegroup", reply, key)
        stub.add_response("describe_update", _update("u-1", "Successful"),
                          {"name": "prod", "nodegroupName": "web", "updateId": "u-1"})  # fmt: skip
        stub.add_response("update_nodegroup_config", _update("u-2", "InProgress"),
                          {**key, "scalingConfig": {"desiredSize": 5}})  # fmt: skip
        groups.set_desired("web", 5)
        stub.assert_no_pending_responses()


def test_a_refusal_from_eks_is_a_write_refused(aws, cluster) -> None:
    from adapters.protocols import WriteRefused

    groups = EksNodeGroups(aws, "prod")
    key = {"clusterName": "prod", "nodegroupName": "web"}
    described = {"nodegroup": groups._nodegroup("web")}
    with Stubber(aws.client("eks")) as stub:
        stub.add_response("describe_nodegroup", described, key)
        stub.add_client_error(
            "update_nodegroup_config", "ResourceInUseException", "an update is in progress", 409
        )
        with pytest.raises(WriteRefused, match="ResourceInUseException: an update is in progress"):
            groups.set_desired("web", 4)
