"""The policy's :class:`~sim.control.Observation` from the protocols (live loop's copy).

TODO(lead, at merge): replace :class:`ObservationBuilder` by the shared builder of
``adapters/observation.py`` (the one the replay uses); this local version exists only
because that module was not on main when the live loop was written. It follows the
replay's :meth:`sim.engine.Replay._observe`:

- nodes per state from :attr:`NodeGroupInfo.nodes_by_state_az` (a group whose nodes
  cannot be listed counts its desired size as running, spread over its zones);
- per zone: the group's price in force (the highest of its instance types' offerings
  of its capacity type in that zone), whether spot is on offer (always for on-demand),
  and the zones where a launch would succeed now (an available offering);
- interruptions and launch failures since the previous look (the counters are
  cumulative);
- the metrics only when the freshest complete minute is at most ``max_metrics_age_s``
  old (otherwise None: a telemetry gap, as in a replay).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from adapters.protocols import MetricsReading, NodeGroupInfo, NodeState, Offering
from sim.control import Observation, PoolState


def _spread(total: int, azs: Sequence[str]) -> dict[str, int]:
    """``total`` nodes over ``azs`` as evenly as an Auto Scaling group places them."""
    if not azs:
        return {}
    base, extra = divmod(max(total, 0), len(azs))
    return {az: base + (1 if i < extra else 0) for i, az in enumerate(azs)}


class ObservationBuilder:
    """Builds one :class:`Observation` per interval; remembers the failure counters."""

    def __init__(self, max_metrics_age_s: float) -> None:
        self.max_metrics_age_s = max_metrics_age_s
        self._seen: dict[str, tuple[int, int]] = {}

    def pool_state(self, info: NodeGroupInfo, offerings: Sequence[Offering]) -> PoolState:
        """One group's nodes and market now."""
        mine = [
            o
            for o in offerings
            if o.capacity_type == info.capacity_type and o.instance_type in info.instance_types
        ]
        price: dict[str, float] = {}
        available: dict[str, bool] = {}
        for az in info.azs:
            here = [o for o in mine if o.az == az]
            if here:
                price[az] = max(o.price_usd_per_hour for o in here)
            available[az] = info.capacity_type != "spot" or any(o.available for o in here)
        launchable = tuple(az for az in info.azs if any(o.az == az and o.available for o in mine))
        if info.nodes_by_state_az:
            by_state = info.nodes_by_state_az
            pending = dict(by_state.get(NodeState.PENDING, {}))
            running = dict(by_state.get(NodeState.RUNNING, {}))
            active = {az: pending.get(az, 0) + running.get(az, 0) for az in info.azs}
            counts = (info.count(NodeState.PENDING), info.count(NodeState.RUNNING))
            leaving = info.count(NodeState.LEAVING)
        else:
            active = _spread(info.desired_size, info.azs)
            pending = {}
            counts, leaving = (0, info.desired_size), 0
        last_interruptions, last_failures = self._seen.get(
            info.name, (info.interruptions, info.launch_failures)
        )
        self._seen[info.name] = (info.interruptions, info.launch_failures)
        return PoolState(
            name=info.name,
            nodes_pending=counts[0],
            nodes_running=counts[1],
            nodes_leaving=leaving,
            nodes_by_az=active,
            pending_by_az={az: pending.get(az, 0) for az in info.azs},
            price_usd_per_hour=price,
            spot_available=available,
            launchable_azs=launchable,
            interruptions_last_interval=max(0, info.interruptions - last_interruptions),
            launch_failures_last_interval=max(0, info.launch_failures - last_failures),
        )

    def observe(
        self,
        *,
        now: datetime,
        start: datetime,
        reading: MetricsReading,
        groups: Mapping[str, NodeGroupInfo],
        offerings: Sequence[Offering],
    ) -> Observation:
        """The observation at ``now`` (``start``: the loop's t = 0)."""
        fresh = reading.metrics is not None and reading.age_s <= self.max_metrics_age_s
        return Observation(
            sim_time_s=(now - start).total_seconds(),
            now=now,
            metrics=reading.metrics if fresh else None,
            metrics_age_s=reading.age_s,
            pools={name: self.pool_state(info, offerings) for name, info in groups.items()},
        )
