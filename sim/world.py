"""Resolving a scenario into everything a replay needs, before anything runs.

:func:`prepare` reads and validates every file a scenario names (catalogue, trace,
spot prices, availability traces) and turns them into arrays and step functions. All
bad input is found here, so a replay that starts never fails half-way on a file and
never leaves partial output.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.audit.feed import AuditPlan, prepare_audit
from sim.catalog import load_catalogue
from sim.control import PoolSpec
from sim.errors import InputError
from sim.latency import LatencyModel
from sim.market.availability import AvailabilitySeries, availability_from_path, replay_availability
from sim.market.price_model import modelled_spot_prices
from sim.market.prices import PriceSeries, constant_price, replay_spot_prices
from sim.node_pools import simulated_pools
from sim.scenario import (
    LognormalDelay,
    ModelledSpotPrices,
    ReplayedAvailability,
    ReplayedSpotPrices,
    Scenario,
    TraceWorkload,
    UniformDelay,
)
from sim.seeding import component_rng
from sim.traces import WorkloadSeries, workload_rps_per_minute


@dataclass(frozen=True, slots=True)
class World:
    """A scenario with every input loaded: ready to replay."""

    scenario: Scenario
    source: str  # the scenario file
    seed: int
    duration_s: float
    workload: WorkloadSeries
    pools: tuple[PoolSpec, ...]
    prices: dict[tuple[int, str], PriceSeries]  # (pool index, AZ) -> USD/hour
    availability: dict[str, AvailabilitySeries]  # AZ -> spot capacity on offer
    latency: LatencyModel
    audit: AuditPlan | None = None  # the scenario's audit: section, validated

    @property
    def n_minutes(self) -> int:
        return int(self.workload.offered_rps.size)

    def input_digest(self) -> str:
        """SHA-256 (hex) of everything loaded for this replay: the scenario as validated,
        the seed and length, and the content of every series read from a file (load and
        its history, prices, availability), whatever file or override it came from.

        Two worlds with the same digest replay identically under the same policy; a
        different trace, price history or availability file gives a different digest
        even under the same scenario id, seed and length.
        """
        digest = hashlib.sha256()

        def add(*parts: object) -> None:
            for part in parts:
                if isinstance(part, np.ndarray):
                    digest.update(f"{part.dtype.str}{part.shape}".encode())
                    digest.update(np.ascontiguousarray(part).tobytes())
                else:
                    digest.update(repr(part).encode())
                digest.update(b"\x1f")

        add(self.scenario.model_dump_json(), self.seed, self.duration_s, self.workload.start)
        add(self.workload.offered_rps, self.workload.history_rps, self.workload.history_filled)
        add(self.pools, self.audit)
        for (pool, az), series in sorted(self.prices.items()):
            add(pool, az, series.times_s, series.prices_usd_per_hour)
        for az, availability in sorted(self.availability.items()):
            add(az, availability.times_s, availability.available)
        return digest.hexdigest()


def prepare(
    scenario: Scenario,
    *,
    source: Path,
    seed: int | None = None,
    days: float | None = None,
    trace_override: Path | None = None,
    trace_start: datetime | None = None,
    spot_availability_override: Path | None = None,
    spot_prices_override: Path | None = None,
) -> World:
    """Load and validate everything ``scenario`` refers to.

    Parameters
    ----------
    scenario
        The validated scenario.
    source
        The scenario file; relative paths inside it are resolved against its folder.
    seed
        Overrides ``scenario.seed``.
    days
        Overrides ``scenario.duration_days``.
    trace_override
        A CSV ``timestamp,value`` replacing the scenario's workload.
    trace_start
        With ``trace_override``: the first replayed minute (default: the trace's first
        timestamp); the trace before it is the replay's history.
    spot_availability_override
        A Can't-Be-Late trace JSON, or a folder of them, replacing spot availability.
    spot_prices_override
        A spot price history CSV (the scenario's format) replacing the spot prices.
    """
    base_dir = source.parent
    run_seed = scenario.seed if seed is None else seed
    duration_days = scenario.duration_days if days is None else days
    if not 0 < duration_days <= 366:  # also catches NaN; 366 is duration_days' own limit
        raise InputError(
            "--days", "", f"{duration_days} is out of range", "a number > 0 and <= 366"
        )
    _check_files_exist(scenario, source, trace_override is not None)
    duration_s = duration_days * 86400.0
    _check_shifts_in_run(scenario, source, duration_s)
    c = scenario.cluster
    if scenario.slo.p95_latency_ms <= c.base_latency_ms:
        raise InputError(
            source,
            "slo.p95_latency_ms",
            f"{scenario.slo.p95_latency_ms} ms leaves no room above "
            f"cluster.base_latency_ms={c.base_latency_ms} ms",
            "a target above the base latency",
        )
    latency = LatencyModel(
        workers_per_pod=c.pod_vcpu,
        rps_per_vcpu=c.rps_per_vcpu,
        p95_target_ms=scenario.slo.p95_latency_ms,
        base_latency_ms=c.base_latency_ms,
    )
    catalogue = load_catalogue(_resolve(base_dir, scenario.pricing.catalogue), region=c.region)
    pools = simulated_pools(scenario, catalogue, latency, source=source)
    workload = workload_rps_per_minute(
        scenario.workload,
        base_dir=base_dir,
        duration_s=duration_s,
        rng=component_rng(run_seed, "workload"),
        trace_override=trace_override,
        override_start=trace_start,
        history_rng=component_rng(run_seed, "workload-history"),
    )
    prices = _prices(scenario, base_dir, tuple(pools), duration_s, run_seed, spot_prices_override)
    spot_azs = sorted({az for p in pools if p.capacity_type == "spot" for az in p.azs})
    if spot_availability_override is not None:
        availability = availability_from_path(
            spot_availability_override, azs=spot_azs, duration_s=duration_s
        )
    else:
        availability = replay_availability(
            scenario.pricing.spot_availability,
            base_dir=base_dir,
            azs=spot_azs,
            duration_s=duration_s,
        )
    return World(
        scenario=scenario,
        source=str(source),
        seed=run_seed,
        duration_s=duration_s,
        workload=workload,
        pools=tuple(pools),
        prices=prices,
        availability=availability,
        latency=latency,
        audit=prepare_audit(scenario, source=source),
    )


def _prices(
    scenario: Scenario,
    base_dir: Path,
    pools: tuple[PoolSpec, ...],
    duration_s: float,
    seed: int,
    override: Path | None = None,
) -> dict[tuple[int, str], PriceSeries]:
    prices: dict[tuple[int, str], PriceSeries] = {}
    spot_keys = sorted(
        {(p.instance_type, az) for p in pools if p.capacity_type == "spot" for az in p.azs}
    )
    spot: dict[tuple[str, str], PriceSeries] = {}
    cfg = scenario.pricing.spot_prices
    if override is not None:
        if not spot_keys:
            raise InputError(
                "--spot-prices", "", "the scenario has no spot pool", "a scenario with spot pools"
            )
        if not override.is_file():
            raise InputError(
                "--spot-prices", "", f"{override} is not a file", "a spot price history CSV"
            )
        cfg = ReplayedSpotPrices(
            kind="replay",
            path=str(override.resolve()),
            instance_type=cfg.instance_type if cfg is not None else None,
            shift=cfg.shift if isinstance(cfg, ReplayedSpotPrices) else None,
        )
    if spot_keys and cfg is not None:
        if isinstance(cfg, ModelledSpotPrices):
            spot = modelled_spot_prices(
                cfg,
                base_dir=base_dir,
                pools=spot_keys,
                on_demand={p.instance_type: p.on_demand_usd_per_hour for p in pools},
                duration_s=duration_s,
                rng=component_rng(seed, "spot-prices"),
            )
        else:
            spot = replay_spot_prices(
                cfg, base_dir=base_dir, pools=spot_keys, duration_s=duration_s
            )
    for i, p in enumerate(pools):
        for az in p.azs:
            if p.capacity_type == "spot":
                prices[(i, az)] = spot[(p.instance_type, az)]
            else:
                prices[(i, az)] = constant_price(p.on_demand_usd_per_hour)
    return prices


def _check_files_exist(scenario: Scenario, source: Path, trace_overridden: bool) -> None:
    """Every file the scenario names exists (the error names the scenario's field)."""
    named: list[tuple[str, str]] = [("pricing.catalogue", scenario.pricing.catalogue)]
    if isinstance(scenario.workload, TraceWorkload) and not trace_overridden:
        named.append(("workload.path", scenario.workload.path))
    if isinstance(scenario.workload, TraceWorkload) and scenario.workload.shift is not None:
        named.append(("workload.shift.path", scenario.workload.shift.path))
    prices = scenario.pricing.spot_prices
    if isinstance(prices, ReplayedSpotPrices):
        named.append(("pricing.spot_prices.path", prices.path))
    elif isinstance(prices, ModelledSpotPrices):
        named.append(("pricing.spot_prices.calibrate_on", prices.calibrate_on))
    availability = scenario.pricing.spot_availability
    if isinstance(availability, ReplayedAvailability):
        named.extend(
            (f"pricing.spot_availability.files.{az}", f) for az, f in availability.files.items()
        )
    for field, name in named:
        resolved = _resolve(source.parent, name)
        if not resolved.is_file():
            raise InputError(
                source,
                field,
                f"file not found: {resolved}",
                "an existing file (relative paths are resolved against the scenario's folder)",
            )


def _check_shifts_in_run(scenario: Scenario, source: Path, duration_s: float) -> None:
    """Every regime change (workload, spot prices) starts before the end of the run."""
    shifts: list[tuple[str, float]] = []
    workload = scenario.workload
    if isinstance(workload, TraceWorkload) and workload.shift is not None:
        shifts.append(("workload.shift.at_h", workload.shift.at_h))
    prices = scenario.pricing.spot_prices
    if isinstance(prices, ReplayedSpotPrices) and prices.shift is not None:
        shifts.append(("pricing.spot_prices.shift.at_h", prices.shift.at_h))
    hours = duration_s / 3600.0
    for field, at_h in shifts:
        if not at_h < hours:
            raise InputError(
                source,
                field,
                f"{at_h:g} h is not before the end of the {hours:g}-hour replay",
                f"0 < at_h < {hours:g} (duration_days * 24, or --days * 24)",
            )


def _resolve(base_dir: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base_dir / p


def service_context_fields(world: World) -> dict[str, Any]:
    """The :class:`~sim.control.ControlContext` fields that describe the service and its
    control (pod size, service rate, SLO, delays, seed), as ``world``'s scenario states
    them: the same for a replay and for a live loop."""
    sc = world.scenario
    median_s, max_s = delay_bounds(sc.control.provisioning_delay)
    return {
        "target_utilization": sc.cluster.target_utilization,
        "pod_vcpu": sc.cluster.pod_vcpu,
        "rps_per_vcpu": sc.cluster.rps_per_vcpu,
        "service_rate_per_vcpu_rps": world.latency.service_rate_rps,
        "slo_p95_latency_ms": sc.slo.p95_latency_ms,
        "provisioning_delay_median_s": median_s,
        "provisioning_delay_max_s": max_s,
        "pod_start_delay_s": sc.control.pod_start_delay_s,
        "interruption_notice_s": sc.pricing.interruption_notice_s,
        "seed": world.seed,
    }


def delay_bounds(delay: UniformDelay | LognormalDelay) -> tuple[float, float]:
    """(median, max) of a provisioning-delay distribution, in seconds."""
    if isinstance(delay, UniformDelay):
        return 0.5 * (delay.low_s + delay.high_s), delay.high_s
    return delay.median_s, delay.high_s


def draw_delay(delay: UniformDelay | LognormalDelay, rng: np.random.Generator) -> float:
    """One provisioning delay (seconds) from the scenario's distribution."""
    if isinstance(delay, UniformDelay):
        return float(rng.uniform(delay.low_s, delay.high_s))
    value = delay.median_s * math.exp(delay.sigma * float(rng.standard_normal()))
    return float(min(max(value, delay.low_s), delay.high_s))
