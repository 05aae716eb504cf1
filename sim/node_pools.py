"""A scenario's node pools as simulated pools: instance types resolved, pods packed.

A pool (:class:`~sim.scenario.NodePool`) names one ``instance_type``, a list
``instance_types``, or Karpenter-style ``requirements`` (families, sizes, a vCPU range)
over the region's on-demand catalogue. Each allowed type becomes its own simulated pool
(:class:`~sim.control.PoolSpec`) over the pool's AZs, named ``<pool>/<type>`` when the
pool allows more than one type, so that a mix policy chooses type x AZ x capacity type
by price per pod (right-sizing). The types are ordered by on-demand price per pod
(then name); the pool's ``min_nodes`` are held on the type with the cheapest node (the
least a node-count floor can cost), ``max_nodes`` bounds each type.

Pods are packed per node after the node's overheads (:func:`pods_per_node`); a type
named explicitly that fits no pod is an error, a type that ``requirements`` match but
that fits no pod is left out (it does not meet the pool's need), and requirements that
leave no type are an error.
"""

from __future__ import annotations

import math
from pathlib import Path

from sim.catalog import InstanceType, lookup
from sim.control import PoolSpec
from sim.errors import InputError
from sim.latency import LatencyModel
from sim.scenario import MAX_NODES_PER_CLUSTER, NodePool, Scenario


def pods_per_node(instance: InstanceType, scenario: Scenario) -> int:
    """Pods of the scenario's size that fit on one node after its overheads."""
    c = scenario.cluster
    by_cpu = math.floor((instance.vcpus - c.node_overhead_vcpu) / c.pod_vcpu)
    by_memory = math.floor((instance.memory_gib - c.node_overhead_memory_gib) / c.pod_memory_gib)
    return max(0, min(by_cpu, by_memory))


def pod_rps_at_target(scenario: Scenario, latency: LatencyModel) -> float:
    """Requests/s one pod of the scenario's size serves at its target utilisation."""
    c = scenario.cluster
    return c.pod_vcpu * latency.service_rate_rps * c.target_utilization


def family_and_size(instance_type: str) -> tuple[str, str]:
    """``("c5a", "2xlarge")`` of ``"c5a.2xlarge"`` (size ``""`` without a dot)."""
    family, _, size = instance_type.partition(".")
    return family, size


def allowed_types(
    pool: NodePool,
    index: int,
    catalogue: dict[str, InstanceType],
    scenario: Scenario,
    *,
    source: Path,
) -> list[tuple[InstanceType, int]]:
    """The pool's instance types with their pods per node, cheapest on-demand pod first.

    Raises
    ------
    InputError
        An unknown type, a named type that fits no pod, or requirements no type meets.
    """
    where = f"cluster.pools[{index}]"
    c = scenario.cluster
    if pool.requirements is None:
        names = [pool.instance_type] if pool.instance_type is not None else pool.instance_types
        assert names is not None  # the model requires one of the three
        field = "instance_type" if pool.instance_type is not None else "instance_types"
        found: list[tuple[InstanceType, int]] = []
        for name in names:
            instance = lookup(catalogue, name, source=str(source), field=f"{where}.{field}")
            fit = pods_per_node(instance, scenario)
            if fit < 1:
                raise InputError(
                    source,
                    f"{where}.{field}",
                    f"{name} ({instance.vcpus} vCPU, {instance.memory_gib} GiB) fits no "
                    f"pod of {c.pod_vcpu} vCPU / {c.pod_memory_gib} GiB after node overheads",
                    "a larger instance type or smaller pods",
                )
            found.append((instance, fit))
    else:
        req = pool.requirements
        found = []
        for instance in catalogue.values():
            family, size = family_and_size(instance.name)
            if family not in req.families or (req.sizes is not None and size not in req.sizes):
                continue
            if not req.min_vcpus <= instance.vcpus <= req.max_vcpus:
                continue
            fit = pods_per_node(instance, scenario)
            if fit >= 1:
                found.append((instance, fit))
        if not found:
            raise InputError(
                source,
                f"{where}.requirements",
                f"no catalogue type of families {req.families}"
                + (f", sizes {req.sizes}" if req.sizes is not None else "")
                + f" and {req.min_vcpus}-{req.max_vcpus} vCPUs fits a pod of {c.pod_vcpu} vCPU"
                f" / {c.pod_memory_gib} GiB",
                "requirements some type of the catalogue's region meets",
            )
    return sorted(found, key=lambda item: (item[0].on_demand_usd_per_hour / item[1], item[0].name))


def simulated_pools(
    scenario: Scenario,
    catalogue: dict[str, InstanceType],
    latency: LatencyModel,
    *,
    source: Path,
) -> tuple[PoolSpec, ...]:
    """Every pool of the scenario, one :class:`PoolSpec` per allowed instance type.

    Raises
    ------
    InputError
        As :func:`allowed_types`, or more nodes than a cluster may hold over all types.
    """
    pod_rate_rps = pod_rps_at_target(scenario, latency)
    specs: list[PoolSpec] = []
    for i, pool in enumerate(scenario.cluster.pools):
        types = allowed_types(pool, i, catalogue, scenario, source=source)
        several = len(types) > 1
        smallest = min(range(len(types)), key=lambda j: types[j][0].on_demand_usd_per_hour)
        for j, (instance, fit) in enumerate(types):
            specs.append(
                PoolSpec(
                    name=f"{pool.name}/{instance.name}" if several else pool.name,
                    instance_type=instance.name,
                    capacity_type=pool.capacity_type,
                    azs=tuple(pool.azs),
                    min_nodes=pool.min_nodes if j == smallest else 0,
                    max_nodes=pool.max_nodes,
                    vcpus=instance.vcpus,
                    memory_gib=instance.memory_gib,
                    pods_per_node=fit,
                    on_demand_usd_per_hour=instance.on_demand_usd_per_hour,
                    rps_per_node_at_target=fit * pod_rate_rps,
                )
            )
    total = sum(s.max_nodes for s in specs)
    if total > MAX_NODES_PER_CLUSTER:
        raise InputError(
            source,
            "cluster.pools",
            f"max_nodes over every pool and instance type sum to {total}",
            f"at most {MAX_NODES_PER_CLUSTER} nodes per cluster (Kubernetes' documented limit)",
        )
    return tuple(specs)


def allowed_types_text(pool: NodePool) -> str:
    """The pool's allowed types as written (``c5a.2xlarge``, ``c5a.2xlarge|c5.2xlarge``
    or ``families c5a,c5 sizes 2xlarge,4xlarge``), for listings."""
    if pool.instance_type is not None:
        return pool.instance_type
    if pool.instance_types is not None:
        return "|".join(pool.instance_types)
    req = pool.requirements
    assert req is not None
    text = "families " + ",".join(req.families)
    if req.sizes is not None:
        text += " sizes " + ",".join(req.sizes)
    return text
