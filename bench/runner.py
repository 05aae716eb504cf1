"""The composition root: scenario file → world → policy (+ its model) → replay → summary.

:func:`prepare_run` loads and validates everything a replay needs into a
:class:`PreparedRun`; :func:`attach_model` hands a policy that declares a model need
(:class:`sim.control.PolicyNeeds`) its trained model; :func:`run` replays and returns the
summary. Bad input is found before anything is written: the world is prepared (every
file read and validated) first, and telemetry goes to a hidden sibling folder that is
moved into ``--out`` only when the run has finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from agents.anomaly.watch import watcher_for
from agents.lifecycle.registry import ModelRef, ModelRegistry, ModelVersion, fetch_and_load
from agents.registry import make_policy
from bench.security_replay import audit_model_key, audit_watcher_for
from features import DEFAULT_STORE
from sim.control import ModelKind, ModelPolicy, Policy
from sim.engine import Replay
from sim.lifecycle_events import LifecycleLog
from sim.errors import InputError
from sim.scenario import Scenario
from sim.scenario_files import find_scenario, load_scenario_file
from sim.watch import MetricWatcher
from sim.summary import summarise
from sim.telemetry import FanoutSink, ParquetSink, TelemetrySink
from sim.atomic import staging_path
from sim.world import World, delay_bounds, prepare

STORE_MICRO_BATCH_S = 3600.0  # simulated seconds per micro-batch when streaming to a store
TRACE_TRAIN_FRACTION = 0.7
"""With ``--trace``: the share of the trace that is history (training), as in
``opsbench forecast eval``; every policy replays the rest."""
MODELS_DIR = Path(".opsbench") / "models"
"""Where trained models are kept unless ``--models`` says otherwise."""

ProgressText = Callable[[str], None]


@dataclass(slots=True)
class PreparedRun:
    """Everything one replay needs, loaded and validated.

    Attributes
    ----------
    world
        The scenario with every input loaded.
    policy
        The policy, built and its parameters validated; a policy that needs a model
        gets it from :func:`attach_model` before :func:`run`.
    scenario_path
        The scenario file.
    model_version
        The registered version (``NAME/VERSION``) of the trained model the policy decides
        with (set by :func:`attach_model`; ``None`` for policies without a model).
    model_sha256
        That version's artefact digest (part of the run id: the registry's numbering is
        local, the digest is the model's content).
    trace
        The ``--trace`` replacing the scenario's workload, if any.
    lifecycle
        The log the scenario's lifecycle loops book into (set by :func:`attach_model`
        when the scenario has a ``lifecycle:`` section for the policy's model).
    models_dir
        The registry :func:`attach_model` was given; the audit events' analyser comes
        from it too (``None`` or :data:`MODELS_DIR`, the CLI's default: the default
        registry, ``$OPSBENCH_MODEL_DIR`` if set).
    """

    world: World
    policy: Policy
    scenario_path: Path
    model_version: str | None = None
    model_sha256: str | None = None
    trace: Path | None = None
    lifecycle: LifecycleLog | None = None
    models_dir: Path | str | None = None

    @property
    def run_id(self) -> str:
        """The run's identity: scenario, policy, seed and length for people to read, then a
        digest of its content (every input loaded, the policy's parameters and model, the
        security model that watches the audit events), so
        two replays share a run id exactly when they replay the same thing."""
        world, policy = self.world, self.policy
        params = getattr(policy, "params", None)
        digest = hashlib.sha256()
        digest.update(world.input_digest().encode())
        digest.update(policy.name.encode())
        digest.update(params.model_dump_json().encode() if params is not None else b"{}")
        digest.update((self.model_sha256 or "").encode())
        digest.update((audit_model_key(world) or "").encode())  # the analyser that alerts
        days = world.duration_s / 86400.0
        return (
            f"{world.scenario.id}-{policy.name}-s{world.seed}-{days:g}d-{digest.hexdigest()[:12]}"
        )


def trace_split(path: Path) -> tuple[datetime, float]:
    """Where ``--trace`` replays start and how many days remain.

    The split of ``opsbench forecast eval``: the trace on its working step (5 minutes
    for 1-minute data), the first ``floor(0.7 * n)`` steps are history (training), the
    replay starts at the next step and runs to the trace's end, so every policy replays
    the same evaluation part and the predictive model trains only on what precedes it.
    """
    from agents.forecasting import to_working_series
    from sim.traces import load_trace

    trace = load_trace(path)
    series = to_working_series(trace)
    cut = int(np.floor(TRACE_TRAIN_FRACTION * series.values.size))
    if cut < 1 or cut >= series.values.size:
        raise InputError(
            path, "--trace", f"{series.values.size} working steps cannot be split 70/30", ">= 2"
        )
    start_s = int(series.timestamps[cut].astype("datetime64[s]").astype(np.int64))
    end_s = int(trace.timestamps[-1].astype(np.int64)) + trace.step_s
    minutes = (end_s - start_s) // 60
    start = datetime(1970, 1, 1) + timedelta(seconds=start_s)
    return start, minutes * 60 / 86400.0


class NullSink:
    """Discards telemetry (the writer still hashes every row)."""

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        return None

    def close(self) -> None:
        return None


LifecycleMode = Literal["on", "monitor", "off"]


def with_lifecycle(scenario: Scenario, mode: LifecycleMode) -> Scenario:
    """``scenario`` with its ``lifecycle:`` section as ``mode`` says (see
    :func:`prepare_run`)."""
    section = scenario.lifecycle
    if section is None or mode == "on":
        return scenario
    if mode == "off":
        return scenario.model_copy(update={"lifecycle": None})
    scaling = section.scaling
    if scaling is not None:
        scaling = scaling.model_copy(update={"retrain_on_drift": False, "injected_challengers": []})
    security = section.security
    if security is not None:
        security = security.model_copy(update={"retrain": False})
    return scenario.model_copy(
        update={"lifecycle": section.model_copy(update={"scaling": scaling, "security": security})}
    )


def load(ref: str) -> tuple[Scenario, Path]:
    """The scenario named by ``ref`` (a file path or a shipped id) and its file."""
    path = find_scenario(ref)
    return load_scenario_file(path), path


def prepare_run(
    ref: str,
    *,
    policy: str | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    trace: Path | None = None,
    days: float | None = None,
    spot_availability: Path | None = None,
    spot_prices: Path | None = None,
    lifecycle: LifecycleMode = "on",
) -> PreparedRun:
    """Load and validate everything a replay needs; raise InputError on bad input.

    ``policy`` overrides the scenario's policy (its parameters then come from
    ``params`` only); ``params`` otherwise overrides the scenario's ``control.params``.
    ``lifecycle``: ``on`` (the scenario's ``lifecycle:`` section as written), ``monitor``
    (its monitors only: nothing retrained, no challenger injected — the "never retrain"
    baseline) or ``off`` (the section ignored).
    """
    scenario, path = load(ref)
    scenario = with_lifecycle(scenario, lifecycle)
    name = policy or scenario.control.policy
    if params is None:
        params = scenario.control.params if name == scenario.control.policy else {}
    built = make_policy(
        name,
        params,
        source=str(path) if policy is None else "--policy",
        field="control.policy" if policy is None else "",
    )
    trace_start = None
    if trace is not None:
        if not trace.exists():
            raise InputError(trace, "--trace", "no such file", "a CSV with columns timestamp,value")
        trace_start, rest_days = trace_split(trace)
        days = rest_days if days is None else days
    watcher_for(scenario.detection, source=str(path))  # an unknown detector: exit 2 before any run
    world = prepare(
        scenario,
        source=path,
        seed=seed,
        days=days,
        trace_override=trace,
        trace_start=trace_start,
        spot_availability_override=spot_availability,
        spot_prices_override=spot_prices,
    )
    return PreparedRun(world, built, path, trace=trace)


def _registry(models_dir: Path | str) -> ModelRegistry:
    from agents.lifecycle.open import open_registry

    return open_registry(models_dir)


def _cost_model(
    prepared: PreparedRun,
    policy: ModelPolicy,
    *,
    registry: ModelRegistry,
    ref: ModelRef | None,
    **_: Any,
) -> ModelVersion:
    """cost-rl: ``ref``, else the champion of ``cost-rl-<scenario>`` if it has any version,
    else the shipped model (registered as ``cost-rl-shipped`` at first use)."""
    from agents.cost.model import load_model
    from bench import registered_models as rm

    if ref is None:
        name = rm.default_name("cost-rl", prepared.world.scenario.id)
        ref = ModelRef(name) if registry.versions(name) else rm.shipped_cost_ref(registry)
    version = registry.resolve(ref)
    rm.check_agent(version, "cost-rl", who=f"policy {policy.name!r}")
    model = fetch_and_load(
        registry, version, lambda folder: load_model(folder, roots=(folder.resolve(),))
    )
    policy.use_model(model)
    return version


def _scaling_model(
    prepared: PreparedRun,
    policy: ModelPolicy,
    *,
    registry: ModelRegistry,
    ref: ModelRef | None,
    store: Path,
    retrain: bool,
    promote: bool,
    progress: ProgressText | None,
) -> ModelVersion:
    """predictive: ``ref``; else, of model ``scaling-<scenario>`` (plus the trace's and the
    forecaster's names where they are not the scenario's), the version trained on this
    world's history (the champion if it was), trained and registered first if none was."""
    from agents.forecasting.series import MIN_WORKING_STEP_S
    from agents.registry import DEFAULT_FORECASTER
    from agents.scaling.model import load_model
    from agents.scaling.training import (
        plan_window_min,
        train_model,
        training_inputs,
        training_store,
    )
    from bench import registered_models as rm

    if ref is not None:
        version = registry.resolve(ref)
        rm.check_agent(version, "scaling", who=f"policy {policy.name!r}")
        policy.use_model(fetch_and_load(registry, version, load_model))
        return version
    world = prepared.world
    workload = world.workload
    control = world.scenario.control
    median_s, _ = delay_bounds(control.provisioning_delay)
    window = plan_window_min(
        median_s + control.pod_start_delay_s, max(MIN_WORKING_STEP_S, control.interval_s)
    )
    forecaster = policy.params.model  # type: ignore[attr-defined]
    trace = Path(workload.source).name
    inputs = training_inputs(
        workload.history_rps,
        workload.history_filled,
        workload.start,
        source=f"{world.scenario.id}: {trace}",
        forecaster=forecaster,
        plan_window=window,
    )
    extra = [] if prepared.trace is None else [Path(prepared.trace).stem]
    extra += [] if forecaster == DEFAULT_FORECASTER else [forecaster]
    name = rm.default_name("scaling", world.scenario.id, *extra)
    found = None if retrain else rm.matching_version(registry, name, inputs.key)
    if found is not None:
        policy.use_model(fetch_and_load(registry, found, load_model))
        return found
    with tempfile.TemporaryDirectory(prefix="opsbench-train-") as scratch:
        folder = Path(scratch) / "model"
        with training_store(store) as feature_store:
            trained = train_model(
                inputs.series,
                inputs.peaks,
                store=feature_store,
                folder=folder,
                source=f"{world.scenario.id}: {trace}",
                forecaster=forecaster,
                plan_window=window,
                progress=progress,
            )
        meta = trained.model.metadata
        trained.reference.save(folder)  # versioned with the model it describes
        version = rm.register(
            registry,
            name,
            folder.resolve(),
            {
                "agent": "scaling",
                "description": f"{forecaster} forecasters for the predictive scaling policy",
                "scenario": world.scenario.id,
                "trace": trace,
                "data_start": meta.training.first_bucket,
                "data_end": meta.training.end,
                "feature_store": f"{store} view load_forecast, training sets sha256 "
                f"{trained.training_sha256}",
                "seed": world.seed,
                "params": {
                    "training_key": inputs.key,
                    "forecaster": forecaster,
                    "step_s": meta.step_s,
                    "forecast_horizon_min": meta.forecast_horizon_min,
                    "plan_horizon_min": meta.plan_horizon_min,
                    "plan_window_min": list(meta.plan_window_min),
                    "quantiles": list(meta.quantiles),
                    "n_samples": dict(meta.training.n_samples),
                    "drift_reference": "drift_reference.json",
                },
                "metrics": trained.metrics,
                "libraries": dict(meta.libraries),
            },
            promote=promote,
        )
    policy.use_model(trained.model)
    return version


MODEL_LOADERS: Mapping[ModelKind, Callable[..., ModelVersion]] = {
    "scaling": _scaling_model,
    "cost": _cost_model,
}
"""How the composition root provides each kind of model a policy may declare it needs."""


def attach_model(
    prepared: PreparedRun,
    *,
    models_dir: Path | str = MODELS_DIR,
    store: Path = DEFAULT_STORE,
    model: str | None = None,
    retrain: bool = False,
    promote: bool = False,
    progress: ProgressText | None = None,
    kinds: frozenset[str] | None = None,
) -> ModelVersion | None:
    """Give a policy that declares a model need (``policy.needs.model``) its model from the
    registry at ``models_dir`` (a folder or a registry URI): ``model`` (a reference, see
    :class:`~agents.lifecycle.registry.ModelRef`), else the default for the world, trained
    and registered first where that kind of model is trained on demand (always with
    ``retrain``; ``promote`` makes a version trained here the champion). Returns the
    version used (None for a policy without a model). ``kinds``: attach only the parts
    needing these kinds of model (e.g. ``{"scaling"}`` when the caller hands the mix its
    own)."""
    prepared.models_dir = models_dir
    policy = prepared.policy
    # a composed controller (agents.cost.composed): each part with its own model
    parts = [
        p
        for p in getattr(policy, "parts", (policy,))
        if p.needs.model is not None and (kinds is None or p.needs.model in kinds)
    ]
    if not parts:
        if model is not None:
            raise InputError(
                "--model", "", f"policy {policy.name!r} uses no trained model",
                "--model only with a policy that needs one (opsbench policies)",
            )  # fmt: skip
        return None
    if model is not None and len(parts) > 1:
        kinds = ", ".join(str(p.needs.model) for p in parts)
        raise InputError(
            "--model", "", f"policy {policy.name!r} decides with {len(parts)} models ({kinds})",
            "no --model: each part gets its default model",
        )  # fmt: skip
    registry = _registry(models_dir)
    options = dict(
        ref=None if model is None else ModelRef.parse(model),
        store=store,
        retrain=retrain,
        promote=promote,
        progress=progress,
    )
    versions = [_attach_part(prepared, part, registry, **options) for part in parts]
    prepared.model_version = " + ".join(v.ref for v in versions)
    prepared.model_sha256 = "+".join(v.card.artefact_sha256 for v in versions)
    return versions[0]


def _attach_part(
    prepared: PreparedRun, part: Policy, registry: ModelRegistry, **options: Any
) -> ModelVersion:
    """Give ``part`` (the prepared policy, or a part of a composed one) its model through
    :data:`MODEL_LOADERS` (``options``: their keyword arguments); a predictive part goes
    under the scenario's ``lifecycle.scaling`` loop if it has one."""
    kind = part.needs.model
    assert kind is not None
    if not isinstance(part, ModelPolicy):
        raise TypeError(f"policy {part.name!r} needs a {kind} model but has no use_model")
    version = MODEL_LOADERS[kind](prepared, part, registry=registry, **options)
    store: Path = options["store"]
    lifecycle = prepared.world.scenario.lifecycle
    if kind == "scaling" and lifecycle is not None and lifecycle.scaling is not None:
        from agents.scaling.policy import PredictivePolicy
        from bench.lifecycle_scaling import manage

        assert isinstance(part, PredictivePolicy)
        prepared.lifecycle = prepared.lifecycle or LifecycleLog()
        managed = manage(
            part,
            version,
            world=prepared.world,
            registry=registry,
            store=store,
            log=prepared.lifecycle,
        )
        if part is prepared.policy:
            prepared.policy = managed
        else:
            prepared.policy.replace_part(part, managed)  # type: ignore[attr-defined]
    return version


def audit_registry(models_dir: Path | str | None) -> ModelRegistry | None:
    """The registry the audit events' analyser comes from: ``None`` (the security model's
    default registry, ``$OPSBENCH_MODEL_DIR`` if set) for no registry or the CLI's default
    :data:`MODELS_DIR`, else ``models_dir``'s."""
    if models_dir is None or Path(models_dir) == MODELS_DIR:
        return None
    return _registry(models_dir)


def metric_watcher(world: World, log: LifecycleLog | None) -> MetricWatcher | None:
    """The scenario's metric anomaly watcher (None without ``detection:``), under its
    paging-rate monitor when the scenario has ``lifecycle.anomaly``."""
    detection = world.scenario.detection
    watcher = watcher_for(detection, source=world.scenario.id)
    lifecycle = world.scenario.lifecycle
    if watcher is None or detection is None or lifecycle is None or lifecycle.anomaly is None:
        return watcher
    from agents.lifecycle.anomaly_loop import ManagedMetricWatcher

    assert log is not None
    return ManagedMetricWatcher(
        watcher,
        settings=lifecycle.anomaly,
        log=log,
        model_name=f"anomaly-{detection.detector}",
        start=world.workload.start,
    )


def run(
    prepared: PreparedRun,
    *,
    out: Path | None = None,
    progress: Callable[[float], None] | None = None,
    store: Path | None = None,
    sinks: Sequence[TelemetrySink] = (),
) -> dict[str, Any]:
    """Replay ``prepared``; write telemetry + summary.json under ``out``; with ``store``,
    stream telemetry into that feature store while the replay runs; every batch also goes
    to each of ``sinks`` (e.g. a :class:`~sim.telemetry.MemorySink`)."""
    world, policy = prepared.world, prepared.policy
    if policy.needs.model is not None and prepared.model_version is None:
        raise ValueError(f"policy {policy.name!r} needs a model: call attach_model first")
    run_id = prepared.run_id
    staging: Path | None = None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InputError(out, "--out", "exists and is not a directory", "a directory path")
        try:
            staging = staging_path(out)  # also removes partials of writers that died
            staging.mkdir()
        except OSError as exc:
            raise InputError(
                out,
                "--out",
                f"cannot create a folder here: {exc.strerror or exc}",
                "a directory path whose parents are directories",
            ) from None
    feature_store = None
    store_sink = None
    try:
        every_sink: list[TelemetrySink] = [*sinks]
        if staging is not None:
            every_sink.append(ParquetSink(staging))
        if store is not None:
            from features.sink import FeatureStoreSink
            from features.store import FeatureStore
            from features.views import VIEWS

            feature_store = FeatureStore(store, views=VIEWS, lake=store.parent / "lake")
            store_sink = FeatureStoreSink(feature_store, run_id)
            every_sink.append(store_sink)
        sink: TelemetrySink = FanoutSink(*every_sink) if every_sink else NullSink()
        if world.scenario.lifecycle is not None and prepared.lifecycle is None:
            prepared.lifecycle = LifecycleLog()
        # the registered shipped analyser (trained and registered at first use)
        audit_watcher = audit_watcher_for(
            world,
            registry=audit_registry(prepared.models_dir),
            log=prepared.lifecycle,
        )
        watcher = metric_watcher(world, prepared.lifecycle)
        started = time.perf_counter()
        replay = Replay(
            world,
            policy,
            sink,
            micro_batch_s=STORE_MICRO_BATCH_S if store else None,
            watcher=watcher,
            audit_watcher=audit_watcher,
            lifecycle=prepared.lifecycle,
        )
        truth = replay.run(progress)
        summary = summarise(replay, truth, policy=policy.name, wall_s=time.perf_counter() - started)
        summary["run_id"] = run_id
        summary["model_version"] = prepared.model_version
        if world.scenario.lifecycle is not None:
            from bench.lifecycle_report import lifecycle_block

            loops = [*getattr(policy, "parts", (policy,)), audit_watcher, watcher]
            summary["lifecycle"] = lifecycle_block(replay, truth, loops)
        if store_sink is not None:  # the run is complete in the store (or refused there)
            store_sink.finish(summary["telemetry_sha256"])
        if staging is not None and out is not None:
            (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            if replay.audit is not None:  # ground truth beside the telemetry, never in it
                replay.audit.write_labels(staging / "audit_labels.csv")
            from bench.plots import plot_overview
            from bench.run_context import write_run_context

            write_run_context(staging, world)
            plot_overview(staging)
            out.mkdir(exist_ok=True)
            for item in staging.iterdir():
                os.replace(item, out / item.name)
            staging.rmdir()
        return summary
    finally:
        if feature_store is not None:
            feature_store.close()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
