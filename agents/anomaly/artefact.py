"""A registered anomaly detector: which streaming detector, with which hyper-parameters
and alert threshold.

The detectors learn online (:mod:`agents.anomaly.base`), so what training fixes — and the
registry versions — is the choice of detector, its parameters and the score at which it
alerts. On disk (one file, JSON: nothing in it is executed)::

    detector.json   {"schema_version": 1, "detector": "novelty-ensemble", "params": {},
                     "threshold": 0.5}
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.anomaly.base import AnomalyDetector
from agents.artifacts import read_metadata, resolve_folder
from sim.errors import InputError

DETECTOR_FILE = "detector.json"
RETRAIN = (
    'a detector.json written by `opsbench train anomaly`: {"schema_version": 1, "detector": '
    'NAME, "params": {...}, "threshold": T in (0, 1]}'
)


class DetectorArtefact(BaseModel):
    """``detector.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = 1
    detector: str = Field(min_length=1, max_length=64, description="a registered detector id")
    params: dict[str, Any] = Field(default_factory=dict, description="its hyper-parameters")
    threshold: float = Field(gt=0, le=1, description="alert when the score >= threshold")

    def factory(self, *, source: str = DETECTOR_FILE) -> Callable[[], AnomalyDetector]:
        """A builder of fresh detectors of this kind, checked by building one: an unknown
        id or bad parameters are an InputError naming ``source``."""
        from agents.registry import DETECTORS

        make = partial(DETECTORS.make, self.detector, self.params, source=source,
                       field="detector")  # fmt: skip
        try:
            make()
        except (TypeError, ValueError) as exc:
            problem = " ".join(str(exc).split())
            raise InputError(source, "params", problem, f"parameters of {self.detector}") from None
        return make


def save_detector(artefact: DetectorArtefact, folder: Path) -> Path:
    """Write ``detector.json`` into ``folder`` (created); returns the folder."""
    artefact.factory()  # an unknown detector is refused before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DETECTOR_FILE).write_text(artefact.model_dump_json(indent=2) + "\n")
    return folder


def load_detector(folder: Path) -> tuple[DetectorArtefact, Callable[[], AnomalyDetector]]:
    """``detector.json`` of ``folder`` validated, and a builder of its detectors
    (InputError naming the file and field otherwise)."""
    shown = folder / DETECTOR_FILE
    resolved = resolve_folder(folder, (DETECTOR_FILE,), RETRAIN)
    artefact = read_metadata(resolved / DETECTOR_FILE, DetectorArtefact, RETRAIN, shown=shown)
    return artefact, artefact.factory(source=str(shown))
