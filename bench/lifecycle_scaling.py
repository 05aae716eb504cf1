"""Wiring the scaling forecaster's lifecycle loop into a replay: the registry, the feature
store and the training code behind :class:`agents.lifecycle.loop.Retrainer`.

:func:`manage` replaces a prepared predictive replay's policy with
:class:`~agents.lifecycle.loop.ManagedPredictive` when its scenario has a
``lifecycle.scaling`` section; :class:`RegistryRetrainer` trains each candidate from the
feature store (point-in-time, :func:`agents.scaling.training.train_model`), validates it
against the champion, and registers it as the model's challenger with its lineage
(parent, trigger, data range); promotions and rollbacks move the registry's aliases.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.lifecycle.drift import DriftReference
from agents.lifecycle.loop import ManagedPredictive, Retrained, RetrainRequest
from agents.lifecycle.registry import (
    CHALLENGER,
    ModelRef,
    ModelRegistry,
    ModelVersion,
    fetch_and_load,
    folder_digest,
)
from agents.scaling.model import ScalingModel
from agents.scaling.policy import PredictivePolicy
from agents.scaling.training import fit_model, training_inputs, training_store
from bench import registered_models as rm
from sim.lifecycle_events import LifecycleLog
from sim.world import World


@dataclass(slots=True)
class RegistryRetrainer:
    """Retrains through the feature store at ``store``; registers in ``registry`` as
    ``name`` (see the module)."""

    registry: ModelRegistry
    name: str
    store: Path
    forecaster: str
    plan_window: tuple[int, int]
    forecast_horizon_min: int
    plan_quantile: float
    scenario_id: str
    trace: str
    seed: int
    series_prefix: str

    def retrain(self, request: RetrainRequest) -> Retrained:
        started = time.perf_counter()
        source = f"{self.scenario_id}: replay up to {request.end.isoformat()}"
        inputs = training_inputs(
            request.minutes_rps, request.gap, request.end, source=source,
            forecaster=self.forecaster, plan_window=self.plan_window,
            forecast_horizon=self.forecast_horizon_min,
        )  # fmt: skip
        origins_from = np.datetime64(request.origins_from, "s")
        with training_store(self.store) as store:
            fitted = fit_model(
                inputs.series,
                inputs.peaks,
                store=store,
                source=source,
                forecaster=self.forecaster,
                plan_window=self.plan_window,
                forecast_horizon=self.forecast_horizon_min,
                series_id=f"{self.series_prefix}:{inputs.key}",
                origins_from=origins_from,
                shuffle_seed=request.shuffle_seed,
                champion=request.champion,
                plan_quantile=self.plan_quantile,
            )
        metrics = dict(fitted.metrics)
        gain = metrics.get("val_plan_pinball_gain")
        if not request.validate:
            accepted, reason = True, "injected: registered without the validation gate"
        elif gain is None:
            accepted, reason = False, "too few held-back origins to validate"
        elif gain >= 0:
            accepted, reason = True, f"plan pinball {gain:+.1%} against the champion"
        else:
            accepted, reason = False, f"plan pinball {gain:+.1%} against the champion"
        data_start = str(request.origins_from.isoformat())
        data_end = str(request.end.isoformat())
        model, sha, ref = None, None, None
        if accepted:  # a refused candidate is never saved (serialising is half the time)
            with tempfile.TemporaryDirectory(prefix="opsbench-retrain-") as scratch:
                folder = Path(scratch) / "model"
                model = fitted.save(folder).model
                fitted.reference.save(folder)
                sha = folder_digest(folder)
                meta = model.metadata
                version = rm.register(
                    self.registry,
                    self.name,
                    folder.resolve(),
                    {
                        "agent": "scaling",
                        "description": f"{self.forecaster} forecasters retrained in a replay "
                        f"of {self.scenario_id} ({request.trigger})",
                        "scenario": self.scenario_id,
                        "trace": self.trace,
                        "data_start": data_start,
                        "data_end": data_end,
                        "feature_store": f"{self.store} view load_forecast, training sets "
                        f"sha256 {fitted.training_sha256}",
                        "seed": self.seed,
                        "parent": request.champion_ref,
                        "params": {
                            "training_key": inputs.key,
                            "trigger": request.trigger,
                            "forecaster": self.forecaster,
                            "step_s": meta.step_s,
                            "plan_window_min": list(meta.plan_window_min),
                            "quantiles": list(meta.quantiles),
                            "n_samples": dict(meta.training.n_samples),
                            "shuffled_targets": request.shuffle_seed is not None,
                            "drift_reference": "drift_reference.json",
                        },
                        "metrics": metrics,
                        "libraries": dict(meta.libraries),
                    },
                    promote=False,
                )
                ref = version.ref
        return Retrained(
            model=model,
            reference=fitted.reference,
            metrics=metrics,
            accepted=accepted,
            reason=reason,
            artefact_sha256=sha,
            data_start=data_start,
            data_end=data_end,
            wall_s=time.perf_counter() - started,
            ref=ref,
        )

    def promote(self, ref: str) -> None:
        version = self.registry.resolve(ModelRef.parse(ref, source="lifecycle"))
        self.registry.promote(version.name, version.version)
        self.registry.remove_alias(version.name, CHALLENGER)

    def roll_back(self, ref: str) -> None:
        version = self.registry.resolve(ModelRef.parse(ref, source="lifecycle"))
        aliases = self.registry.resolve(ModelRef(version.name, None, version.version)).aliases
        if CHALLENGER in aliases:
            self.registry.remove_alias(version.name, CHALLENGER)


def manage(
    policy: PredictivePolicy,
    version: ModelVersion,
    *,
    world: World,
    registry: ModelRegistry,
    store: Path,
    log: LifecycleLog,
) -> ManagedPredictive:
    """The predictive ``policy`` (deciding with ``version``) under ``world``'s
    ``lifecycle.scaling`` loop, booking into ``log``."""
    settings = world.scenario.lifecycle.scaling  # type: ignore[union-attr]
    assert settings is not None and policy.model is not None
    reference = fetch_and_load(registry, version, DriftReference.load)
    meta = policy.model.metadata
    params = policy.params

    def make_policy(model: ScalingModel) -> PredictivePolicy:
        fresh = PredictivePolicy(params)
        fresh.use_model(model)
        return fresh

    retrainer = RegistryRetrainer(
        registry=registry,
        name=version.name,
        store=store,
        forecaster=meta.forecaster,
        plan_window=tuple(meta.plan_window_min),  # type: ignore[arg-type]
        forecast_horizon_min=meta.forecast_horizon_min,
        plan_quantile=params.quantile,
        scenario_id=world.scenario.id,
        trace=Path(world.workload.source).name,
        seed=world.seed,
        series_prefix=f"lifecycle:{world.scenario.id}:s{world.seed}",
    )
    return ManagedPredictive(
        policy,
        champion_ref=version.ref,
        champion_sha256=version.card.artefact_sha256,
        reference=reference,
        make_policy=make_policy,
        settings=settings,
        log=log,
        retrainer=retrainer,
        slo_error_budget=world.scenario.slo.error_budget,
        model_name=version.name,
    )
