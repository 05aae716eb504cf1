"""The trained scaling model: forecasters for two horizons plus the metadata that makes
an artefact safe to load.

On disk (a folder, by default under ``.opsbench/models/scaling/``)::

    metadata.json   what the model is: forecaster, horizons, feature list, training
                    range, library versions, and the sha256 of model.pkl
    model.pkl       the fitted forecasters (pickle)

Loading refuses, with one line naming the file and field, a folder without metadata,
metadata that does not validate, a ``model.pkl`` whose sha256 differs from the one
recorded at save (so only a file this code wrote is ever unpickled), a feature list
other than this version's (a schema mismatch), and a scikit-learn version other than
the one that trained it (pickles do not carry across versions). Retrain with
``opsbench train scaling``.
"""

from __future__ import annotations

import hashlib
import pickle
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import sklearn
from pydantic import BaseModel, ConfigDict, Field

from agents.forecasting.features import feature_names
from agents.forecasting.models import Forecaster
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
MODEL_FILE = "model.pkl"


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
    model_version: str = Field(min_length=8, description="first 12 hex of model.pkl's sha256")
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
    """Versions that decide whether a pickle can be read back."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
    }


def save_model(
    forecasters: dict[str, Forecaster], metadata: dict[str, object], folder: Path
) -> ScalingModel:
    """Write ``model.pkl`` and ``metadata.json`` into ``folder`` atomically.

    ``metadata`` holds every field of :class:`ModelMetadata` except ``model_version``,
    ``model_sha256``, ``schema_version``, ``kind`` and ``libraries``, which are filled in.
    """
    payload = pickle.dumps(forecasters, protocol=pickle.HIGHEST_PROTOCOL)
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
    forecasters = pickle.loads(payload)  # sha256-verified: written by save_model
    if not isinstance(forecasters, dict) or set(forecasters) != {"plan", "forecast"}:
        raise InputError(model_path, "", "does not hold a plan and a forecast model", retrain)
    return ScalingModel(forecasters=forecasters, metadata=meta)
