"""An artefact folder (as the registry fetches it, or ``/opt/ml/model`` in the container)
to the predictor that serves it.

One loader per agent (the registry's agent names, :data:`AGENTS`):

``scaling``
    ``metadata.json`` + ``model.pkl`` (:func:`agents.scaling.model.load_model`); card
    parameter ``quantile`` (default: the predictive policy's).
``cost-rl``
    ``metadata.json`` + ``model.zip`` (:func:`agents.cost.model.load_model`, the folder's
    parent trusted: the folder is the one being served).
``anomaly``
    ``detector.json``: ``{"detector": NAME, "params": {...}, "threshold": T}`` (a detector
    of :data:`agents.registry.DETECTORS`; the threshold in (0, 1]); card parameter
    ``max_series``.
``security``
    the fitted analyser as :func:`bench.security_model.load_analyser` reads it.

Every refusal is an :class:`~sim.errors.InputError` naming the file and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field

from agents.lifecycle.registry import Agent, folder_digest
from agents.serving.protocol import Predictor
from sim.errors import InputError

AGENTS: tuple[str, ...] = get_args(Agent)
DETECTOR_FILE = "detector.json"


class DetectorFile(BaseModel):
    """``detector.json`` of an anomaly artefact."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    detector: str = Field(description="a registered detector id")
    params: dict[str, Any] = Field(default_factory=dict, description="its hyper-parameters")
    threshold: float = Field(gt=0, le=1, description="score at or above which a point alerts")


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
    from agents.artifacts import read_metadata, resolve_folder
    from agents.registry import DETECTORS
    from agents.serving.anomaly import MAX_SERIES, AnomalyPredictor, detector_version

    allowed = '{"detector": NAME, "params": {...}, "threshold": T in (0, 1]}'
    resolved = resolve_folder(folder, (DETECTOR_FILE,), allowed)
    shown = str(folder / DETECTOR_FILE)
    spec = read_metadata(resolved / DETECTOR_FILE, DetectorFile, allowed, shown=Path(shown))
    DETECTORS.spec(spec.detector, source=shown, field="detector")
    factory = partial(DETECTORS.make, spec.detector, spec.params, source=shown, field="detector")
    try:
        factory()
    except (TypeError, ValueError) as exc:
        problem = " ".join(str(exc).split())
        raise InputError(shown, "params", problem, f"parameters of {spec.detector}") from None
    return AnomalyPredictor(
        factory,
        threshold=spec.threshold,
        model_version=detector_version(spec.detector, spec.params, spec.threshold),
        max_series=int(params.get("max_series", MAX_SERIES)),
    )


def _security(folder: Path, params: Mapping[str, Any]) -> Predictor:
    from bench import security_model
    from agents.serving.security import SecurityPredictor

    load_analyser = getattr(security_model, "load_analyser", None)  # lands with safe artefacts
    if load_analyser is None:
        raise InputError(folder, "", "this version cannot read a security artefact folder",
                         "a version with bench.security_model.load_analyser")  # fmt: skip
    return SecurityPredictor(load_analyser(folder), model_version=folder_digest(folder)[:12])


LOADERS: Mapping[str, Callable[[Path, Mapping[str, Any]], Predictor]] = {
    "scaling": _scaling,
    "cost-rl": _cost,
    "anomaly": _anomaly,
    "security": _security,
}


def load_predictor(
    agent: str, folder: Path, card_params: Mapping[str, Any] | None = None
) -> Predictor:
    """The predictor of ``agent`` for the artefact in ``folder`` (see the module)."""
    loader = LOADERS.get(agent)
    if loader is None:
        raise InputError("--agent", "", f"unknown agent {agent!r}", ", ".join(LOADERS))
    if not folder.is_dir():
        raise InputError(folder, "", "is not a folder", "an artefact folder")
    return loader(folder, card_params or {})
