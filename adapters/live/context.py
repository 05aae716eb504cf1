"""The :class:`~sim.control.ControlContext` a policy is reset with in live mode.

A replay tells a policy, once, the pools it sizes and the service it serves. Live, the
pools are the node groups (:class:`~adapters.protocols.NodeGroups`): their names, bounds,
capacity types and zones as the cloud describes them; each node's vCPUs and memory come
from the on-demand catalogue (the node's pods per node follow the service's pod size),
its on-demand price from the market's on-demand offerings (the catalogue's price where
the market has none). The service (pod size, requests/s per vCPU, target utilisation,
SLO, provisioning delays) is not something a node group knows: it comes from the
scenario the policy was benchmarked on (``--scenario``), as does the policy's model.

A group with several instance types is sized on the type with the fewest pods per node
(the capacity the group is sure to have); the other types are kept for pricing.

History: a policy that learns from the load before it starts (``predictive`` needs at
least two days) reads it through :class:`~adapters.protocols.MetricsHistory` when the
metrics source also implements it (CloudWatch does: ``get_metric_data`` over the last
:data:`HISTORY_DAYS`). :class:`~adapters.protocols.MetricsSource` alone gives only the
freshest minute, so without it the history is empty and a policy needing history refuses
to start (one line, exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from adapters.protocols import LoadHistory, MetricsHistory, NodeGroupInfo, Offering
from sim.catalog import InstanceType, load_catalogue, lookup
from sim.control import ControlContext, PoolSpec
from sim.errors import InputError
from sim.node_pools import pod_rps_at_target, pods_per_node
from sim.world import World, service_context_fields

HISTORY_DAYS = 14.0
"""How much load history a live context asks a :class:`MetricsHistory` for (days)."""


def _catalogue(world: World) -> dict[str, InstanceType]:
    scenario = world.scenario
    path = Path(world.source).parent / scenario.pricing.catalogue
    return load_catalogue(path, region=scenario.cluster.region)


def pool_spec(
    info: NodeGroupInfo,
    world: World,
    offerings: Sequence[Offering],
    catalogue: Mapping[str, InstanceType],
) -> PoolSpec:
    """The :class:`PoolSpec` of node group ``info`` serving ``world``'s service."""
    source = f"node group {info.name}"
    if not info.instance_types:
        raise InputError(source, "instance_types", "none described", "one or more instance types")
    shapes = [
        lookup(catalogue, t, source=source, field="instance_types") for t in info.instance_types
    ]
    fits = [pods_per_node(shape, world.scenario) for shape in shapes]
    smallest = int(np.argmin(fits))
    shape, fit = shapes[smallest], fits[smallest]
    if fit < 1:
        c = world.scenario.cluster
        raise InputError(
            source,
            "instance_types",
            f"{shape.name} fits no pod of {c.pod_vcpu} vCPU / {c.pod_memory_gib} GiB",
            "instance types larger than the scenario's pods",
        )
    on_demand = [
        o.price_usd_per_hour
        for o in offerings
        if o.capacity_type == "on-demand" and o.instance_type == shape.name
    ]
    return PoolSpec(
        name=info.name,
        instance_type=shape.name,
        capacity_type=info.capacity_type,
        azs=tuple(info.azs),
        min_nodes=info.min_size,
        max_nodes=info.max_size,
        vcpus=shape.vcpus,
        memory_gib=shape.memory_gib,
        pods_per_node=fit,
        on_demand_usd_per_hour=max(on_demand) if on_demand else shape.on_demand_usd_per_hour,
        rps_per_node_at_target=fit * pod_rps_at_target(world.scenario, world.latency),
    )


def live_context(
    world: World,
    groups: Sequence[NodeGroupInfo],
    offerings: Sequence[Offering],
    *,
    cluster: str,
    start: datetime,
    interval_s: float,
    history: LoadHistory | None,
    catalogue: Mapping[str, InstanceType] | None = None,
) -> ControlContext:
    """The context for a live loop over ``groups`` from ``start`` (a minute boundary), the
    service as ``world``'s scenario describes it; node shapes from ``catalogue`` (the
    live region's; default: the scenario's catalogue)."""
    if catalogue is None:
        catalogue = _catalogue(world)
    offered = np.empty(0) if history is None else np.asarray(history.offered_rps, dtype=float)
    gap = np.empty(0, dtype=bool) if history is None else np.asarray(history.gap, dtype=bool)
    return ControlContext(
        scenario_id=f"live-{cluster}",
        pools=tuple(pool_spec(g, world, offerings, catalogue) for g in groups),
        start=start,
        duration_s=float("inf"),  # runs until stopped
        interval_s=interval_s,
        **service_context_fields(world),
        history_offered_rps=offered,
        history_gap=gap,
    )


def read_history(source: object, pools: Sequence[str], start: datetime) -> LoadHistory | None:
    """The :data:`HISTORY_DAYS` before ``start`` from ``source`` if it implements
    :class:`~adapters.protocols.MetricsHistory` (from its first minute with data: minutes
    before the metrics existed are not load), else None."""
    if not isinstance(source, MetricsHistory):
        return None
    got = source.history(pools, start - timedelta(days=HISTORY_DAYS), start)
    observed = np.flatnonzero(~np.asarray(got.gap, dtype=bool))
    first = int(observed[0]) if observed.size else len(got.gap)
    return LoadHistory(
        offered_rps=np.asarray(got.offered_rps, dtype=float)[first:],
        gap=np.asarray(got.gap, dtype=bool)[first:],
        start=got.start + timedelta(minutes=first),
    )


def history_days(history: LoadHistory | None) -> float:
    """How many days ``history`` spans (0 without one)."""
    return 0.0 if history is None else len(history.gap) / (24 * 60)
