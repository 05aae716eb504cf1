"""``run_context.json``: what a replay's ``--out`` folder needs from its world beyond the
telemetry and the summary, so that ``overview.png`` can be redrawn from the folder alone.

It holds the SLO target, what one serving pod handles, and every fault window the replay
injected or lived through (:func:`fault_spans`), in hours since the replay start:

- windows (``end_h > start_h``): AZ outages, spot interruption storms and telemetry gaps
  as the scenario declares them, and the stretches in which the spot availability (a
  replayed trace) had no capacity in an AZ of a spot pool;
- instants (``end_h == start_h``): a workload or spot-price regime change, an attack
  campaign's start, a new principal's first session, a challenger model injected.

Everything is clipped to the replay (a window starting at or after its end is left out).
The file is not telemetry: the telemetry hash does not cover it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import InputError
from sim.scenario import ReplayedSpotPrices, TraceWorkload
from sim.node_pools import pod_rps_at_target
from sim.world import World

FILE_NAME = "run_context.json"

WINDOW_KINDS: tuple[str, ...] = ("az_outage", "spot_storm", "spot_unavailable", "telemetry_gap")
"""Fault kinds that last a while, in drawing order."""
INSTANT_KINDS: tuple[str, ...] = (
    "workload_shift",
    "spot_price_shift",
    "attack_campaign",
    "principal_arrival",
    "injected_challenger",
)
"""Fault kinds that happen at one instant."""
FAULT_KINDS = (*WINDOW_KINDS, *INSTANT_KINDS)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FaultSpan(_Model):
    """One fault the replay injected or lived through (hours since the replay start)."""

    kind: str = Field(pattern="^(" + "|".join(FAULT_KINDS) + ")$")
    label: str = Field(max_length=200, description="what and where, e.g. 'AZ outage us-east-1d'")
    azs: tuple[str, ...] = Field(default=(), max_length=20, description="the AZs it hit, if any")
    start_h: float = Field(ge=0)
    end_h: float = Field(ge=0, description="== start_h for an instant")


class RunContext(_Model):
    """The content of ``run_context.json``."""

    slo_p95_latency_ms: float = Field(gt=0)
    target_utilization: float = Field(gt=0, le=1)
    pod_rps_at_target: float = Field(gt=0, description="requests/s one pod serves at the target")
    pod_rps_max: float = Field(gt=0, description="requests/s one pod serves at saturation")
    faults: tuple[FaultSpan, ...]


def fault_spans(world: World) -> tuple[FaultSpan, ...]:
    """Every fault window and instant of ``world``'s replay, sorted by start, kind, label."""
    sc = world.scenario
    end_h = world.duration_s / 3600.0
    spans: list[FaultSpan] = []

    def window(
        kind: str, label: str, start_h: float, duration_h: float, azs: tuple[str, ...] = ()
    ) -> None:
        if start_h < end_h:
            stop_h = min(start_h + duration_h, end_h)
            spans.append(FaultSpan(kind=kind, label=label, start_h=start_h, end_h=stop_h, azs=azs))

    def instant(kind: str, label: str, at_h: float) -> None:
        if at_h < end_h:
            spans.append(FaultSpan(kind=kind, label=label, start_h=at_h, end_h=at_h))

    f = sc.faults
    for outage in f.az_outages:
        window(
            "az_outage", f"AZ outage {outage.az}", outage.start_h, outage.duration_h, (outage.az,)
        )
    for storm in f.spot_storms:
        label = f"spot storm {', '.join(storm.azs)} ({storm.interrupt_fraction:.0%})"
        window("spot_storm", label, storm.start_h, storm.duration_h, tuple(storm.azs))
    for gap in f.telemetry_gaps:
        window("telemetry_gap", "telemetry gap", gap.start_h, gap.duration_h)
    for az, series in sorted(world.availability.items()):
        for start_s, stop_s in _unavailable_stretches(
            series.times_s, series.available, world.duration_s
        ):
            window(
                "spot_unavailable",
                f"no spot capacity {az}",
                start_s / 3600.0,
                (stop_s - start_s) / 3600.0,
                (az,),
            )
    if isinstance(sc.workload, TraceWorkload) and sc.workload.shift is not None:
        instant(
            "workload_shift",
            f"workload shift to {Path(sc.workload.shift.path).stem}",
            sc.workload.shift.at_h,
        )
    prices = sc.pricing.spot_prices
    if isinstance(prices, ReplayedSpotPrices) and prices.shift is not None:
        instant("spot_price_shift", "spot price shift", prices.shift.at_h)
    if sc.audit is not None:
        for campaign in sc.audit.campaigns:
            instant("attack_campaign", f"attack {campaign.id}", campaign.start_h)
        for arrival in sc.audit.arrivals:
            instant("principal_arrival", f"new principal {arrival.id}", arrival.at_h)
    scaling = sc.lifecycle.scaling if sc.lifecycle is not None else None
    for injected in scaling.injected_challengers if scaling is not None else []:
        instant("injected_challenger", f"bad challenger ({injected.training})", injected.at_h)
    return tuple(sorted(spans, key=lambda s: (s.start_h, FAULT_KINDS.index(s.kind), s.label)))


def _unavailable_stretches(
    times_s: np.ndarray, available: np.ndarray, duration_s: float
) -> list[tuple[float, float]]:
    """[start, stop) seconds of each stretch of a step function that is unavailable."""
    bounds = np.append(times_s, max(duration_s, float(times_s[-1])))
    return [
        (float(bounds[i]), float(bounds[i + 1]))
        for i in range(len(available))
        if not available[i] and bounds[i] < duration_s and bounds[i + 1] > bounds[i]
    ]


def run_context(world: World) -> RunContext:
    """The context of ``world``'s replay."""
    sc = world.scenario
    return RunContext(
        slo_p95_latency_ms=sc.slo.p95_latency_ms,
        target_utilization=sc.cluster.target_utilization,
        pod_rps_at_target=pod_rps_at_target(sc, world.latency),
        pod_rps_max=sc.cluster.pod_vcpu * world.latency.service_rate_rps,
        faults=fault_spans(world),
    )


def write_run_context(run_dir: Path, world: World) -> Path:
    """Write ``run_dir/run_context.json``; returns its path."""
    path = run_dir / FILE_NAME
    path.write_text(run_context(world).model_dump_json(indent=2) + "\n")
    return path


def read_run_context(run_dir: Path) -> RunContext:
    """Read ``run_dir/run_context.json``.

    Raises
    ------
    InputError
        The file is missing, not JSON, or not a run context (one line naming the field).
    """
    path = run_dir / FILE_NAME
    if not path.is_file():
        raise InputError(run_dir, FILE_NAME, "missing", "a folder written by opsbench replay --out")
    try:
        return RunContext.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            path, "", f"not JSON: {exc}", "a run context written by opsbench replay"
        ) from None
    except RecursionError:
        raise InputError(path, "", "JSON nested too deeply", "a run context") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise InputError(
            path, field, error["msg"], "a run context written by opsbench replay"
        ) from None
