"""EKS managed node groups and self-managed Auto Scaling groups as
:class:`~adapters.protocols.NodeGroups`.

Both check ``min <= desired <= max`` themselves before any write
(:class:`~adapters.protocols.DesiredSizeOutOfBounds`; the write is never sent), read
instance states from the Auto Scaling group behind the node group, and ignore ``by_az``
(EKS and Auto Scaling place instances across zones themselves).

Instance lifecycle states map to :class:`~adapters.protocols.NodeState` as: ``Pending*``
-> pending; ``InService`` and healthy -> running; ``InService`` but ``Unhealthy``,
``Terminating*``, ``Detaching``, ``EnteringStandby`` and ``Standby`` -> leaving (not
serving, or about to stop). ``Terminated``, ``Detached`` and warm-pool states are not
nodes of the group. ``interruptions`` counts the EC2 spot interruption warnings received
for the group's instances (given a source of notices, e.g.
:meth:`adapters.aws.spot.Ec2SpotMarket.notices`: each instance counts once, from the first
look that sees both the warning and the instance in the group; cumulative); without one it
is 0. ``launch_failures`` is not read (0): failed launches show in the node counts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from adapters.aws.clients import AwsClients
from adapters.errors import aws_error_line
from adapters.protocols import (
    DesiredSizeOutOfBounds,
    NodeGroupInfo,
    NodeState,
    NoticeKind,
    SpotNotice,
    WriteRefused,
)

log = logging.getLogger(__name__)

EKS_CAPACITY_TYPES = {
    "ON_DEMAND": "on-demand",
    "SPOT": "spot",
    "CAPACITY_BLOCK": "on-demand",  # reserved ahead, never reclaimed like spot
}

_LEAVING = {"Terminating", "Terminating:Wait", "Terminating:Proceed", "Detaching",
            "EnteringStandby", "Standby"}  # fmt: skip
_GONE = {"Terminated", "Detached"}


def node_state(instance: Mapping[str, Any]) -> NodeState | None:
    """The :class:`NodeState` of one ``Instances[]`` item of an Auto Scaling group
    (``None``: not a node of the group any more, or in a warm pool)."""
    lifecycle = str(instance.get("LifecycleState", ""))
    if lifecycle in _GONE or lifecycle.startswith("Warmed:"):
        return None
    if lifecycle.startswith("Pending"):
        return NodeState.PENDING
    if lifecycle in _LEAVING:
        return NodeState.LEAVING
    if lifecycle == "InService":
        healthy = instance.get("HealthStatus", "Healthy") == "Healthy"
        return NodeState.RUNNING if healthy else NodeState.LEAVING
    raise ValueError(f"instance {instance.get('InstanceId')}: unknown LifecycleState {lifecycle!r}")


def nodes_by_state_az(
    instances: Iterable[Mapping[str, Any]],
) -> dict[NodeState, dict[str, int]]:
    """Count an Auto Scaling group's instances per :class:`NodeState` and zone."""
    counts: dict[NodeState, Counter[str]] = {}
    for instance in instances:
        state = node_state(instance)
        if state is not None:
            counts.setdefault(state, Counter())[str(instance["AvailabilityZone"])] += 1
    return {state: dict(by_az) for state, by_az in counts.items()}


def check_bounds(name: str, desired: int, min_size: int, max_size: int) -> None:
    """Raise :class:`DesiredSizeOutOfBounds` unless ``min_size <= desired <= max_size``."""
    if not min_size <= desired <= max_size:
        raise DesiredSizeOutOfBounds(name, desired, min_size, max_size)


Notices = Callable[[], Sequence[SpotNotice]]
"""The spot notices received recently (e.g. ``lambda: market.notices(since=...)``)."""


class InterruptionCounter:
    """Interruption warnings per group, cumulative: an instance of the group with a
    warning counts once, however often the warning is seen again."""

    def __init__(self, notices: Notices | None) -> None:
        self._notices = notices
        self._interrupted: dict[str, set[str]] = {}

    def count(self, group: str, instance_ids: Iterable[str]) -> int:
        """The group's interruptions so far, counting the warnings for ``instance_ids``
        (the group's instances now)."""
        seen = self._interrupted.setdefault(group, set())
        if self._notices is not None:
            ids = set(instance_ids)
            seen.update(
                n.instance_id
                for n in self._notices()
                if n.kind is NoticeKind.INTERRUPTION and n.instance_id in ids
            )
        return len(seen)


def _auto_scaling_groups(autoscaling: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """The Auto Scaling groups of ``names`` (all when empty), every page."""
    kwargs: dict[str, Any] = {"AutoScalingGroupNames": list(names)} if names else {}
    paginator = autoscaling.get_paginator("describe_auto_scaling_groups")
    return [g for page in paginator.paginate(**kwargs) for g in page["AutoScalingGroups"]]


class EksNodeGroups:
    """The managed node groups of one EKS cluster.

    Parameters
    ----------
    clients
        The client factory (``eks``; ``ec2`` for subnet zones; ``autoscaling`` for
        the instances of the group's Auto Scaling groups).
    cluster
        The EKS cluster name.
    nodegroups
        Restrict :meth:`list` (and :meth:`describe`) to these node groups; ``None``: all
        of the cluster's.
    notices
        Where spot interruption warnings come from (counted in ``interruptions``).
    """

    def __init__(
        self,
        clients: AwsClients,
        cluster: str,
        nodegroups: Sequence[str] | None = None,
        *,
        notices: Notices | None = None,
    ) -> None:
        self._eks = clients.client("eks")
        self._ec2 = clients.client("ec2")
        self._autoscaling = clients.client("autoscaling")
        self.cluster = cluster
        self.nodegroups = tuple(nodegroups) if nodegroups is not None else None
        self._interruptions = InterruptionCounter(notices)
        self._updates: dict[str, str] = {}  # group -> the id of the last update sent

    def list(self) -> Sequence[str]:
        """The node groups' names (``list_nodegroups``, every page)."""
        if self.nodegroups is not None:
            return self.nodegroups
        paginator = self._eks.get_paginator("list_nodegroups")
        return tuple(
            name
            for page in paginator.paginate(clusterName=self.cluster)
            for name in page["nodegroups"]
        )

    def describe(self, name: str) -> NodeGroupInfo:
        """``describe_nodegroup``; zones from its subnets; nodes from its Auto Scaling
        groups (``{}`` if EKS names none that exist). ``KeyError`` if unknown."""
        group = self._nodegroup(name)
        scaling = group["scalingConfig"]
        capacity = str(group.get("capacityType", "ON_DEMAND"))
        if capacity not in EKS_CAPACITY_TYPES:
            raise ValueError(
                f"node group {name!r}: capacityType {capacity!r} is not one of "
                f"{', '.join(EKS_CAPACITY_TYPES)}"
            )
        asg_names = [a["name"] for a in group.get("resources", {}).get("autoScalingGroups", [])]
        asgs = _auto_scaling_groups(self._autoscaling, asg_names) if asg_names else []
        instances = [i for g in asgs for i in g["Instances"]]
        return NodeGroupInfo(
            name=name,
            instance_types=tuple(group.get("instanceTypes") or ()),
            capacity_type=EKS_CAPACITY_TYPES[capacity],
            azs=self._zones(group.get("subnets", [])),
            min_size=int(scaling["minSize"]),
            max_size=int(scaling["maxSize"]),
            desired_size=int(scaling["desiredSize"]),
            nodes_by_state_az=nodes_by_state_az(instances),
            interruptions=self._interruptions.count(name, (i["InstanceId"] for i in instances)),
        )

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        """``update_nodegroup_config(scalingConfig={"desiredSize": desired})`` after
        checking the group's current [minSize, maxSize].

        EKS applies a config update asynchronously and takes one update of a group at a
        time: while the update this object last sent is ``InProgress``
        (``describe_update``) the write is refused (:class:`WriteRefused`) without being
        sent; an update that ``Failed`` is logged with EKS's errors; a refusal from EKS
        (e.g. ``ResourceInUseException``, ``AccessDeniedException``) is a
        :class:`WriteRefused` too."""
        scaling = self._nodegroup(name)["scalingConfig"]
        check_bounds(name, desired, int(scaling["minSize"]), int(scaling["maxSize"]))
        self._check_previous_update(name)
        try:
            reply = self._eks.update_nodegroup_config(
                clusterName=self.cluster, nodegroupName=name, scalingConfig={"desiredSize": desired}
            )
        except ClientError as exc:
            raise WriteRefused(name, aws_error_line(exc)) from None
        update = reply.get("update", {})
        if update.get("status") == "Failed":
            raise WriteRefused(name, f"update {update.get('id')} failed: {update.get('errors')}")
        if update.get("id"):
            self._updates[name] = str(update["id"])

    def _check_previous_update(self, name: str) -> None:
        """Refuse while the last update sent to ``name`` is in progress."""
        update_id = self._updates.get(name)
        if update_id is None:
            return
        try:
            update = self._eks.describe_update(
                name=self.cluster, nodegroupName=name, updateId=update_id
            )["update"]
        except ClientError as exc:  # unknown to EKS (moto has no describe_update): not in progress
            reason = aws_error_line(exc)
            log.warning("node group %s: describe_update %s: %s", name, update_id, reason)
            del self._updates[name]
            return
        status = update.get("status")
        if status == "InProgress":
            raise WriteRefused(name, f"the previous update {update_id} is still in progress")
        if status in ("Failed", "Cancelled"):
            log.warning(
                "node group %s: update %s %s: %s", name, update_id, status, update.get("errors")
            )
        del self._updates[name]

    def _nodegroup(self, name: str) -> dict[str, Any]:
        if self.nodegroups is not None and name not in self.nodegroups:
            raise KeyError(name)
        try:
            reply = self._eks.describe_nodegroup(clusterName=self.cluster, nodegroupName=name)
        except self._eks.exceptions.ResourceNotFoundException:
            raise KeyError(name) from None
        return dict(reply["nodegroup"])

    def _zones(self, subnets: Sequence[str]) -> tuple[str, ...]:
        if not subnets:
            return ()
        paginator = self._ec2.get_paginator("describe_subnets")
        zones = {
            s["AvailabilityZone"]
            for page in paginator.paginate(SubnetIds=list(subnets))
            for s in page["Subnets"]
        }
        return tuple(sorted(zones))


class AsgNodeGroups:
    """Self-managed node groups: EC2 Auto Scaling groups.

    Parameters
    ----------
    clients
        The client factory (``autoscaling``; ``ec2`` for a launch template's type).
    names
        The Auto Scaling groups to manage; ``None``: every group of the region.
    notices
        Where spot interruption warnings come from (counted in ``interruptions``).
    """

    def __init__(
        self,
        clients: AwsClients,
        names: Sequence[str] | None = None,
        *,
        notices: Notices | None = None,
    ) -> None:
        self._autoscaling = clients.client("autoscaling")
        self._ec2 = clients.client("ec2")
        self.names = tuple(names) if names is not None else None
        self._interruptions = InterruptionCounter(notices)

    def list(self) -> Sequence[str]:
        """The groups' names (``describe_auto_scaling_groups``, every page)."""
        if self.names is not None:
            return self.names
        return tuple(g["AutoScalingGroupName"] for g in _auto_scaling_groups(self._autoscaling, []))

    def describe(self, name: str) -> NodeGroupInfo:
        """One group with its instances counted per state and zone; ``KeyError`` if
        unknown. Capacity type is spot when a mixed-instances policy buys no on-demand."""
        group = self._group(name)
        return NodeGroupInfo(
            name=name,
            instance_types=self._instance_types(group),
            capacity_type=_asg_capacity_type(group),
            azs=tuple(sorted(group.get("AvailabilityZones", []))),
            min_size=int(group["MinSize"]),
            max_size=int(group["MaxSize"]),
            desired_size=int(group["DesiredCapacity"]),
            nodes_by_state_az=nodes_by_state_az(group.get("Instances", [])),
            interruptions=self._interruptions.count(
                name, (i["InstanceId"] for i in group.get("Instances", []))
            ),
        )

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        """``set_desired_capacity(HonorCooldown=False)`` after checking [MinSize, MaxSize]
        (the controller keeps its own cooldown); a refusal from Auto Scaling is a
        :class:`WriteRefused`."""
        group = self._group(name)
        check_bounds(name, desired, int(group["MinSize"]), int(group["MaxSize"]))
        try:
            self._autoscaling.set_desired_capacity(
                AutoScalingGroupName=name, DesiredCapacity=desired, HonorCooldown=False
            )
        except ClientError as exc:  # e.g. ScalingActivityInProgress, AccessDenied
            raise WriteRefused(name, aws_error_line(exc)) from None

    def _group(self, name: str) -> dict[str, Any]:
        if self.names is not None and name not in self.names:
            raise KeyError(name)
        groups = _auto_scaling_groups(self._autoscaling, [name])
        if not groups:
            raise KeyError(name)
        return groups[0]

    def _instance_types(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        """Mixed-instances overrides, else the launch template's type, else the types
        of the running instances."""
        mixed = group.get("MixedInstancesPolicy")
        if mixed:
            spec = mixed.get("LaunchTemplate", {})
            overrides = [
                o["InstanceType"] for o in spec.get("Overrides", []) if "InstanceType" in o
            ]
            if overrides:
                return tuple(dict.fromkeys(overrides))
            template = spec.get("LaunchTemplateSpecification")
        else:
            template = group.get("LaunchTemplate")
        if template:
            found = self._template_type(template)
            if found:
                return (found,)
        return tuple(
            sorted({i["InstanceType"] for i in group.get("Instances", []) if "InstanceType" in i})
        )

    def _template_type(self, template: Mapping[str, Any]) -> str | None:
        key = {k: template[k] for k in ("LaunchTemplateId", "LaunchTemplateName") if k in template}
        key = {"LaunchTemplateId": key["LaunchTemplateId"]} if "LaunchTemplateId" in key else key
        reply = self._ec2.describe_launch_template_versions(
            **key, Versions=[str(template.get("Version") or "$Default")]
        )
        versions = reply.get("LaunchTemplateVersions", [])
        if not versions:
            return None
        found = versions[0].get("LaunchTemplateData", {}).get("InstanceType")
        return str(found) if found else None


def _asg_capacity_type(group: Mapping[str, Any]) -> str:
    distribution = (group.get("MixedInstancesPolicy") or {}).get("InstancesDistribution")
    if not distribution:
        return "on-demand"
    base = int(distribution.get("OnDemandBaseCapacity", 0))
    above = int(distribution.get("OnDemandPercentageAboveBaseCapacity", 100))
    return "spot" if base == 0 and above == 0 else "on-demand"
