"""The replay sweep of ``opsbench bench all``: scenarios x policies x seeds, each replay a
:class:`RunSpec`, run by any executor (:mod:`bench.executors`) to the same result rows.

A run spec names a scenario, a policy, a seed and optionally the simulated days; it is the
only thing a replay depends on besides the models it uses, which :func:`prepare_models`
trains and registers before the sweep fans out (each model once, here, not once per
worker). Each replay then takes the path ``opsbench replay`` takes
(:func:`bench.runner.prepare_run`, :func:`~bench.runner.attach_model`,
:func:`~bench.runner.run`; no telemetry written) and returns a :class:`RunRow`: the run's
identity (``run_id``, ``telemetry_sha256``), its headline metrics (every number in the
replay summary: cost, SLO attainment, violation minutes, p95 latency, dropped requests,
interruptions, ...; see :func:`headline_metrics`) and the wall time of the task.

Seeds: ``--seeds N`` replays each scenario with its own seed and the N-1 integers after it,
so the first seed's rows are the numbers ``opsbench replay SCENARIO --policy P`` gives.

Which pairs run (:func:`plan_sweep`): every policy on every scenario, except the cost
policies (the mix policies, alone or in a ``SIZING+MIX`` pair) on a scenario without both
spot and on-demand pools; such pairs are listed as skipped, never silently dropped.
Scenarios with a ``lifecycle:`` section retrain and register models while they replay
(``opsbench bench lifecycle`` measures them) and are refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.registry import places_on_spot_and_on_demand
from bench import runner
from bench.executors import Executor
from bench.report_data import RunSeries
from sim.errors import InputError
from sim.lifecycle_events import LifecycleLog
from sim.scenario import Scenario
from sim.telemetry import MemorySink

SCALING_POLICIES = ("static", "reactive", "predictive", "oracle")
SCENARIOS = (
    "default", "nasa-diurnal", "worldcup-flash-crowd", "google-steady", "elb-spiky",
    "az-outage", "spot-storm", "large-fleet", "credential-theft",
)  # fmt: skip
"""The full sweep: every shipped scenario without a ``lifecycle:`` section, own length."""
QUICK_SCENARIOS = ("default", "spot-storm")
QUICK_POLICIES = (
    "static", "reactive", "predictive", "oracle", "on-demand", "uniform-progress", "cost-rl",
    "hindsight",
)  # fmt: skip
QUICK_DAYS = 1.0
"""``--quick``: :data:`QUICK_POLICIES` on :data:`QUICK_SCENARIOS`, one simulated day each."""
IDENTITY_FIELDS = frozenset({"seed", "sim_days", "wall_s"})
"""Numbers in a summary that identify or time the run rather than measure the policy."""


class RunSpec(BaseModel):
    """One replay of a sweep: everything it depends on besides the models it uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str = Field(description="a shipped scenario id or a scenario file (absolute)")
    policy: str = Field(description="a registered policy name (opsbench policies)")
    seed: int = Field(ge=0, description="the root seed of the replay")
    days: float | None = Field(
        default=None, gt=0, description="simulated days (None: the scenario's duration)"
    )

    @property
    def label(self) -> str:
        """``scenario / policy / seed`` for people."""
        return f"{self.scenario} / {self.policy} / seed {self.seed}"


class ReplayTask(BaseModel):
    """A run spec and the model registry and feature store its replay reads (paths as
    given: the executors' workers share this process's working directory)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: RunSpec
    models_dir: str = str(runner.MODELS_DIR)
    store: str
    keep_series: bool = Field(
        default=False, description="also return the binned time series (for the report)"
    )


class RunRow(BaseModel):
    """The result of one replay: identity, headline metrics and the task's wall time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    policy: str
    seed: int
    sim_days: float
    run_id: str
    telemetry_sha256: str
    model_version: str | None
    metrics: dict[str, float] = Field(description="headline metrics (see headline_metrics)")
    wall_s: float = Field(description="wall seconds of the whole task: load, model, replay")
    series: RunSeries | None = Field(default=None, description="when the task kept it")

    def without_wall_time(self) -> dict[str, Any]:
        """The row with ``wall_s`` left out: equal across executors."""
        return self.model_dump(exclude={"wall_s"})


def headline_metrics(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number in a replay summary (nested sections as ``section.name``), except
    :data:`IDENTITY_FIELDS` and the lifecycle block; a value that is undefined for the run
    (``None``, e.g. a detection delay with no fault) has no entry."""
    metrics: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if not prefix and (key in IDENTITY_FIELDS or key == "lifecycle"):
            continue
        if isinstance(value, Mapping):
            metrics.update(headline_metrics(value, prefix=f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                metrics[name] = float(value)
    return metrics


def replay(task: ReplayTask) -> RunRow:
    """One replay of ``task.spec`` through the composition root (what ``opsbench replay``
    does, without writing telemetry); module-level so every executor can ship it."""
    started = time.perf_counter()
    spec = task.spec
    prepared = runner.prepare_run(spec.scenario, policy=spec.policy, seed=spec.seed, days=spec.days)
    runner.attach_model(prepared, models_dir=task.models_dir, store=Path(task.store))
    memory = MemorySink() if task.keep_series else None
    summary = runner.run(prepared, sinks=[memory] if memory is not None else [])
    series = None
    if memory is not None:
        from bench.run_series import series_from_memory  # matplotlib: only where needed

        series = series_from_memory(memory, summary, prepared.world)
    return RunRow(
        scenario=summary["scenario"],
        policy=summary["policy"],
        seed=summary["seed"],
        sim_days=summary["sim_days"],
        run_id=summary["run_id"],
        telemetry_sha256=summary["telemetry_sha256"],
        model_version=summary["model_version"],
        metrics=headline_metrics(summary),
        wall_s=round(time.perf_counter() - started, 4),
        series=series,
    )


class SweepPlan(BaseModel):
    """The run specs of a sweep and the (scenario, policy) pairs it skips, with why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specs: tuple[RunSpec, ...]
    skipped: tuple[tuple[str, str, str], ...] = ()


def _has_spot_and_on_demand(scenario: Scenario) -> bool:
    return {p.capacity_type for p in scenario.cluster.pools} == {"spot", "on-demand"}


def plan_sweep(
    scenarios: Sequence[str],
    policies: Sequence[str],
    *,
    seeds: int,
    days: float | None,
) -> SweepPlan:
    """The run specs of ``scenarios`` x ``policies`` x ``seeds`` seeds (each scenario's own
    seed and the ones after it); every scenario and policy is validated here (InputError)
    before anything runs."""
    from agents.registry import POLICIES

    if seeds < 1:
        raise InputError("--seeds", "", f"{seeds}", "an integer >= 1")
    if days is not None and not days > 0:
        raise InputError("--days", "", f"{days}", "a number of simulated days > 0")
    for name in policies:
        if name not in POLICIES:
            raise InputError("--policy", "", f"unknown policy {name!r}", POLICIES.allowed())
    specs: list[RunSpec] = []
    skipped: list[tuple[str, str, str]] = []
    for ref in scenarios:
        scenario, path = runner.load(ref)
        if scenario.lifecycle is not None:
            raise InputError(
                path, "lifecycle", f"scenario {scenario.id!r} retrains and registers models "
                "while it replays: not part of a sweep",
                "a scenario without a lifecycle: section (opsbench bench lifecycle runs these)",
            )  # fmt: skip
        # a file is named by its absolute path: workers may not share the caller's search path
        name = ref if path.stem == ref and not Path(ref).suffix else str(path.resolve())
        for policy in policies:
            if places_on_spot_and_on_demand(policy) and not _has_spot_and_on_demand(scenario):
                skipped.append((scenario.id, policy, "no spot and on-demand pools"))
                continue
            specs += [
                RunSpec(scenario=name, policy=policy, seed=scenario.seed + k, days=days)
                for k in range(seeds)
            ]
    for policy in policies:
        if not any(s.policy == policy for s in specs):
            raise InputError(
                "--policy", "", f"{policy!r} applies to none of the scenarios "
                f"({', '.join(scenarios)}): cost policies need spot and on-demand pools",
                "a policy that runs on at least one scenario",
            )  # fmt: skip
    return SweepPlan(specs=tuple(specs), skipped=tuple(skipped))


def prepare_models(
    specs: Sequence[RunSpec],
    *,
    models_dir: str,
    store: Path,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Validate each (scenario, policy) pair once and train and register, here and once,
    every model the sweep's replays will load: each model policy's model for each distinct
    world (a synthetic workload's history depends on the seed), and the security analyser
    that watches audit events. The replays then only read the registry."""
    from bench.security_replay import audit_watcher_for

    needs_model: dict[tuple[str, str], bool] = {}
    done: set[tuple[str, str, int, float | None]] = set()
    audit_ready = False
    for spec in specs:
        pair = (spec.scenario, spec.policy)
        world_key = (spec.scenario, spec.policy, spec.seed, spec.days)
        if needs_model.get(pair) is False or world_key in done:
            continue
        done.add(world_key)
        prepared = runner.prepare_run(
            spec.scenario, policy=spec.policy, seed=spec.seed, days=spec.days
        )
        needs_model[pair] = prepared.policy.needs.model is not None
        if needs_model[pair]:
            runner.attach_model(prepared, models_dir=models_dir, store=store, progress=progress)
        world = prepared.world
        if not audit_ready and world.audit is not None and world.audit.config.watch:
            audit_watcher_for(
                world,
                registry=runner.audit_registry(models_dir),
                log=LifecycleLog(),
                progress=progress,
            )
            audit_ready = True


def run_sweep(
    specs: Sequence[RunSpec],
    executor: Executor,
    *,
    models_dir: str,
    store: Path,
    on_done: Callable[[int, RunRow], None] = lambda _index, _row: None,
) -> list[RunRow]:
    """Replay every spec on ``executor``; rows in the specs' order. Call
    :func:`prepare_models` first, so that no replay trains a model. The first run of each
    (scenario, policy) pair keeps its binned time series (:attr:`RunRow.series`)."""
    first: set[tuple[str, str]] = set()
    tasks = []
    for spec in specs:
        pair = (spec.scenario, spec.policy)
        tasks.append(
            ReplayTask(
                spec=spec, models_dir=models_dir, store=str(store), keep_series=pair not in first
            )
        )
        first.add(pair)
    return executor.map(replay, tasks, on_done)
