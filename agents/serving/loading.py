"""An artefact folder (as the registry fetches it, or ``/opt/ml/model`` in the container)
to the predictor that serves it.

One loader per agent (the registry's agent names, :data:`AGENTS`):

``scaling``
    ``metadata.json`` + ``model.skops`` (:func:`agents.scaling.model.load_model`); card
    parameter ``quantile`` (default: the predictive policy's).
``cost-rl``
    ``metadata.json`` + ``model.zip`` (:func:`agents.cost.model.load_model`, the folder's
    parent trusted: the folder is the one being served).
``anomaly``
    ``detector.json`` (:mod:`agents.anomaly.artefact`); card parameter ``max_series``.
``security``
    ``analyser.skops`` + ``analyser.json`` (:mod:`agents.security.artefact`).

Every refusal is an :class:`~sim.errors.InputError` naming the file and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args


from agents.lifecycle.registry import (
    Agent,
    ModelRegistry,
    ModelVersion,
    fetch_and_load,
    folder_digest,
)
from agents.serving.protocol import Predictor
from sim.errors import InputError

AGENTS: tuple[str, ...] = get_args(Agent)


def _scaling(folder: Path, params: Mapping[str, Any]) -> Predictor:
    from agents.scaling.model import load_model
    from agents.serving.scaling import ScalingPredictor

    model = load_model(folder)
    quantile = params.get("quantile")
    if quantile is not None and quantile not in model.metadata.quantiles:
        raise InputError(
            "model card", "params.quantile", f"{quantile!r}",
            f"one of the model's quantiles {model.metadata.quantiles}",
        )  # fmt: skip
    return ScalingPredictor(model, quantile=quantile)


def _cost(folder: Path, params: Mapping[str, Any]) -> Predictor:
    from agents.cost.model import load_model
    from agents.serving.cost import CostPredictor

    return CostPredictor(load_model(folder, roots=(folder.resolve().parent,)))


def _anomaly(folder: Path, params: Mapping[str, Any]) -> Predictor:
    from agents.anomaly.artefact import load_detector
    from agents.serving.anomaly import MAX_SERIES, AnomalyPredictor, detector_version

    spec, factory = load_detector(folder)
    return AnomalyPredictor(
        factory,
        threshold=spec.threshold,
        model_version=detector_version(spec.detector, spec.params, spec.threshold),
        max_series=int(params.get("max_series", MAX_SERIES)),
    )


def _security(folder: Path, params: Mapping[str, Any]) -> Predictor:
    from agents.serving.security import SecurityPredictor
    from agents.security.artefact import load_folder

    return SecurityPredictor(load_folder(folder), model_version=folder_digest(folder)[:12])


LOADERS: Mapping[str, Callable[[Path, Mapping[str, Any]], Predictor]] = {
    "scaling": _scaling,
    "cost-rl": _cost,
    "anomaly": _anomaly,
    "security": _security,
}


def load_predictor(
    agent: str,
    folder: Path,
    card_params: Mapping[str, Any] | None = None,
    *,
    model_version: str | None = None,
) -> Predictor:
    """The predictor of ``agent`` for the artefact in ``folder`` (see the module);
    ``model_version`` (a registered version's ``NAME/VERSION``) replaces the one the
    artefact gives in every answer."""
    loader = LOADERS.get(agent)
    if loader is None:
        raise InputError("--agent", "", f"unknown agent {agent!r}", ", ".join(LOADERS))
    if not folder.is_dir():
        raise InputError(folder, "", "is not a folder", "an artefact folder")
    predictor = loader(folder, card_params or {})
    if model_version is not None:
        predictor.model_version = model_version  # type: ignore[misc]
    return predictor


def load_version_predictor(registry: ModelRegistry, version: ModelVersion) -> Predictor:
    """The predictor of a registered version: its artefact fetched (digest checked) into a
    scratch folder that is removed once loaded; answers carry ``NAME/VERSION``."""
    return fetch_and_load(
        registry,
        version,
        lambda folder: load_predictor(
            version.card.agent, folder, version.card.params, model_version=version.ref
        ),
    )
