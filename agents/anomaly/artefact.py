"""A registered anomaly detector: which streaming detector, with which alert threshold.

The detectors learn online (:mod:`agents.anomaly.base`), so what training fixes — and the
registry versions — is the choice of detector and the score at which it alerts. On disk
(one file, JSON: nothing in it is executed)::

    detector.json   {"schema_version": 1, "detector": "novelty-ensemble", "threshold": 0.5}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.anomaly.base import AnomalyDetector
from agents.artifacts import read_metadata
from sim.errors import InputError

DETECTOR_FILE = "detector.json"
RETRAIN = "a folder written by `opsbench train anomaly` (register a new version to replace it)"


class DetectorArtefact(BaseModel):
    """``detector.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    detector: str = Field(min_length=1, max_length=64, description="a registered detector id")
    threshold: float = Field(gt=0, le=1, description="alert when the score >= threshold")

    def make(self) -> AnomalyDetector:
        """A fresh detector of this kind (an id this version does not know: InputError)."""
        from agents.registry import make_detector

        return make_detector(self.detector, source=DETECTOR_FILE, field="detector")


def save_detector(artefact: DetectorArtefact, folder: Path) -> Path:
    """Write ``detector.json`` into ``folder`` (created); returns the folder."""
    artefact.make()  # an unknown detector is refused before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DETECTOR_FILE).write_text(artefact.model_dump_json(indent=2) + "\n")
    return folder


def load_detector(folder: Path) -> DetectorArtefact:
    """Read and validate ``detector.json`` (InputError naming the file and field)."""
    path = folder / DETECTOR_FILE
    if not path.is_file():
        raise InputError(path, "", "no such file", RETRAIN)
    artefact = read_metadata(path, DetectorArtefact, RETRAIN)
    artefact.make()
    return artefact
