"""The replay summary: honest cost and SLO figures from a run's ground truth.

Definitions (all per simulated minute, then aggregated):

- ``slo_attainment``: fraction of minutes whose p95 latency met the target with no
  request dropped; ``slo_violation_minutes`` the others.
- ``wasted_node_hours``: serving capacity above what the offered load needed at the
  scenario's target utilisation (over-provisioning), counted in pod slots and
  converted to node-hours at the serving fleet's mean pods per node that minute.
- ``idle_node_hours``: node-hours billed while a node could not serve (booting,
  pods starting, draining): the price of every launch and scale-in. Together with
  ``wasted_node_hours`` it accounts for every node-hour not spent on load.
- ``time_to_capacity_min`` / ``time_to_capacity_max_min``: mean / longest length of
  the episodes (runs of minutes, ``under_capacity_episodes`` of them) in which the
  serving pods were fewer than the offered load needed at the target utilisation: how
  long capacity takes to catch up with a ramp (or a loss of nodes);
  ``under_capacity_minutes`` their total.
- ``p95_latency_ms``: the 95th percentile over minutes of the per-minute p95.
- ``cost_usd``: the sum of every billing line item (per second, 60 s minimum).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.engine import Replay, Truth
from sim.watch import FaultWindow, detection_summary


def waste_node_hours(truth: Truth) -> float:
    """Serving node-hours beyond what the load needed at the target utilisation."""
    spare_pods = np.maximum(0.0, truth.serving_pods - truth.needed_pods)
    pods_per_node = np.divide(
        truth.serving_pods,
        truth.serving_nodes,
        out=np.ones_like(truth.serving_pods),
        where=truth.serving_nodes > 0,
    )
    return float((spare_pods / pods_per_node).sum() / 60.0)


def under_capacity_runs(truth: Truth) -> np.ndarray:
    """Lengths (minutes) of the runs of minutes whose serving pods were short of need."""
    short = (truth.serving_pods + 1e-9 < truth.needed_pods).astype(np.int8)
    edges = np.diff(np.concatenate(([0], short, [0])))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def idle_node_hours(truth: Truth) -> float:
    """Billed node-hours during which the nodes did not serve."""
    return float(np.maximum(0.0, truth.billed_nodes - truth.serving_nodes).sum() / 60.0)


def summarise(replay: Replay, truth: Truth, *, policy: str, wall_s: float) -> dict[str, Any]:
    """The summary of a finished replay, as printed by ``opsbench replay --json``."""
    world = replay.world
    sc = world.scenario
    cluster = replay.cluster
    slo_ok = (truth.p95_ms <= sc.slo.p95_latency_ms) & (truth.dropped < 0.5)
    offered = float(truth.offered.sum())
    dropped = float(truth.dropped.sum())
    cost = cluster.cost_usd["on-demand"] + cluster.cost_usd["spot"]
    runs = under_capacity_runs(truth)
    return {
        "scenario": sc.id,
        "policy": policy,
        "seed": world.seed,
        "sim_days": world.duration_s / 86400.0,
        "start": world.workload.start.isoformat(),
        "cost_usd": round(cost, 6),
        "on_demand_cost_usd": round(cluster.cost_usd["on-demand"], 6),
        "spot_cost_usd": round(cluster.cost_usd["spot"], 6),
        "node_hours": round(cluster.usage_s / 3600.0, 6),
        "wasted_node_hours": round(waste_node_hours(truth), 6),
        "idle_node_hours": round(idle_node_hours(truth), 6),
        "slo_attainment": round(float(slo_ok.mean()) if slo_ok.size else 1.0, 6),
        "slo_violation_minutes": int((~slo_ok).sum()),
        "under_capacity_episodes": int(runs.size),
        "under_capacity_minutes": int(runs.sum()),
        "time_to_capacity_min": round(float(runs.mean()), 3) if runs.size else 0.0,
        "time_to_capacity_max_min": int(runs.max()) if runs.size else 0,
        "p95_latency_ms": round(
            float(np.percentile(truth.p95_ms, 95)) if truth.p95_ms.size else 0.0, 3
        ),
        "offered_requests": round(offered, 1),
        "dropped_requests": round(dropped, 1),
        "error_rate": dropped / offered if offered > 0 else 0.0,
        "error_budget_used": (dropped / offered / sc.slo.error_budget)
        if offered > 0 and sc.slo.error_budget > 0
        else 0.0,
        "interruptions": cluster.interruptions,
        "node_failures": cluster.failures,
        "launch_failures": sum(p.launch_failures for p in cluster.pools),
        "workload_filled_minutes": world.workload.filled_minutes,
        "telemetry_rows": dict(replay.telemetry.rows),
        "telemetry_sha256": replay.telemetry.sha256(),
        "wall_s": round(wall_s, 3),
        **(
            {"detection": _detection(replay, np.flatnonzero(~slo_ok).tolist())}
            if replay.watcher is not None
            else {}
        ),
        **({"security": replay.audit.summary()} if replay.audit is not None else {}),
    }


def _detection(replay: Replay, slo_violation_minutes: list[int]) -> dict[str, Any]:
    """Alerts scored against the scenario's AZ outages and spot storms (see sim.watch)."""
    f = replay.world.scenario.faults
    end = replay.world.duration_s
    faults = [
        FaultWindow(
            kind, min(w.start_h * 3600.0, end), min((w.start_h + w.duration_h) * 3600.0, end)
        )
        for kind, windows in (("az_outage", f.az_outages), ("spot_storm", f.spot_storms))
        for w in windows
        if w.start_h * 3600.0 < end
    ]
    return detection_summary(replay.alerts, faults, end, slo_violation_minutes)
