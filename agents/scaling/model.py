"""The trained scaling model: forecasters for two horizons plus the metadata that makes
an artefact safe to load.

On disk (a folder, by default under ``.opsbench/models/scaling/``)::

    metadata.json   what the model is: forecaster, horizons, feature list, training
                    range, library versions, and the sha256 of model.skops
    model.skops     the fitted forecasters, ``{"plan": ..., "forecast": ...}``, in the
                    skops format (:mod:`agents.lifecycle.artefacts`; never a pickle)

Loading refuses, with one line naming the file and field, a folder without metadata,
metadata that does not validate, a ``model.skops`` whose sha256 differs from the one
recorded at save, a feature list other than this version's (a schema mismatch), a
scikit-learn version other than the one that trained it (fitted estimators do not carry
across versions), and a ``model.skops`` that names any type outside
:data:`~agents.lifecycle.artefacts.SCALING_TRUSTED` (plus skops' defaults) or holds
malformed trees: a hash beside the file only proves it was not damaged, not who wrote
it, so nothing in the file is ever executed. Retrain with ``opsbench train scaling``.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import sklearn
import skops
from pydantic import BaseModel, ConfigDict, Field

from agents.forecasting.features import feature_names
from agents.forecasting.models import Forecaster
from agents.lifecycle.artefacts import SCALING_TRUSTED, dumps_skops, loads_skops
from agents.artifacts import (
    publish,
    read_metadata,
    resolve_folder,
    staging_folder,
    verified_payload,
)
from sim.errors import InputError

SCHEMA_VERSION = 1
METADATA_FILE = "metadata.json"
MODEL_FILE = "model.skops"


class TrainingRange(BaseModel):
    """What the model was trained on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="trace file or 'synthetic', and the scenario")
    first_bucket: str = Field(description="ISO start of the first working bucket")
    end: str = Field(description="ISO end (exclusive) of the training data")
    n_samples: dict[str, int] = Field(description="training samples per role (plan, forecast)")
    unit: Literal["requests/s"] = "requests/s"


class ModelMetadata(BaseModel):
    """``metadata.json`` of a saved scaling model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1]
    kind: Literal["scaling"]
    model_version: str = Field(min_length=8, description="first 12 hex of model.skops's sha256")
    forecaster: str
    step_s: int = Field(gt=0, description="working step, seconds")
    forecast_horizon_min: int = Field(gt=0, description="the reported horizon H, minutes")
    plan_horizon_min: int = Field(gt=0, description="feature horizon of the plan model, minutes")
    plan_window_min: tuple[int, int] = Field(
        description="minutes [first, end) after an origin whose busiest minute the plan covers"
    )
    quantiles: tuple[float, ...]
    feature_columns: tuple[str, ...]
    training: TrainingRange
    libraries: dict[str, str]
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ScalingModel:
    """Fitted forecasters by role and their metadata.

    ``"plan"`` forecasts the highest minute of load until ``plan_horizon_min`` (what
    capacity must cover); ``"forecast"`` the mean load ``forecast_horizon_min`` ahead
    (the reported forecast, scored by MASE).
    """

    forecasters: dict[str, Forecaster]
    metadata: ModelMetadata

    @property
    def version(self) -> str:
        return self.metadata.model_version

    def predict_row(self, role: str, row: np.ndarray) -> np.ndarray:
        """Quantile forecasts (``metadata.quantiles`` order, requests/s) of ``role`` for
        one feature row (``metadata.feature_columns`` order)."""
        return self.forecasters[role].predict_quantiles_row(row, self.metadata.quantiles)


def library_versions() -> dict[str, str]:
    """Versions that decide whether a saved model can be read back."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
    }


def save_model(
    forecasters: dict[str, Forecaster], metadata: dict[str, object], folder: Path
) -> ScalingModel:
    """Write ``model.skops`` and ``metadata.json`` into ``folder`` atomically.

    ``metadata`` holds every field of :class:`ModelMetadata` except ``model_version``,
    ``model_sha256``, ``schema_version``, ``kind`` and ``libraries``, which are filled in.
    """
    payload = dumps_skops(forecasters)
    digest = hashlib.sha256(payload).hexdigest()
    meta = ModelMetadata.model_validate(
        {
            **metadata,
            "schema_version": SCHEMA_VERSION,
            "kind": "scaling",
            "model_version": digest[:12],
            "model_sha256": digest,
            "libraries": library_versions(),
        }
    )
    staging = staging_folder(folder)
    (staging / MODEL_FILE).write_bytes(payload)
    (staging / METADATA_FILE).write_text(meta.model_dump_json(indent=2) + "\n")
    publish(staging, folder)
    return ScalingModel(forecasters=forecasters, metadata=meta)


def load_model(folder: Path, *, n_lags: int = 6) -> ScalingModel:
    """Read a saved model, refusing anything this code did not write (see the module
    docstring). Raises :class:`~sim.errors.InputError`."""
    retrain = "a model folder written by `opsbench train scaling` (retrain to replace it)"
    resolved = resolve_folder(folder, (METADATA_FILE, MODEL_FILE), retrain)
    meta_path, model_path = folder / METADATA_FILE, folder / MODEL_FILE  # named in errors
    meta = read_metadata(resolved / METADATA_FILE, ModelMetadata, retrain, shown=meta_path)
    payload = verified_payload(resolved / MODEL_FILE, meta.model_sha256, retrain, shown=model_path)
    expected = feature_names(n_lags)
    if meta.feature_columns != expected:
        missing = sorted(set(expected) - set(meta.feature_columns))
        extra = sorted(set(meta.feature_columns) - set(expected))
        raise InputError(
            meta_path,
            "feature_columns",
            f"the model's features differ from this version's (missing {missing or 'none'}, "
            f"unexpected {extra or 'none'}, or another order)",
            f"exactly {', '.join(expected)}; {retrain}",
        )
    trained_with = meta.libraries.get("scikit-learn")
    if trained_with != sklearn.__version__:
        raise InputError(
            meta_path,
            "libraries.scikit-learn",
            f"trained with {trained_with}, this is {sklearn.__version__}",
            retrain,
        )
    forecasters = loads_skops(
        payload, SCALING_TRUSTED, expect=dict, source=model_path, allowed=retrain
    )
    if set(forecasters) != {"plan", "forecast"} or not all(
        isinstance(f, Forecaster) for f in forecasters.values()
    ):
        raise InputError(model_path, "", "does not hold a plan and a forecast model", retrain)
    return ScalingModel(forecasters=forecasters, metadata=meta)
