"""Every streaming anomaly detector by name (names contain no underscore, as NAB requires)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agents.anomaly.base import AnomalyDetector
from agents.anomaly.gaussian import WindowedGaussian
from agents.anomaly.novelty import NoveltyEnsemble
from agents.anomaly.spike import OpsEnsemble, RobustSpike
from sim.errors import InputError


@dataclass(frozen=True, slots=True)
class DetectorInfo:
    """A registered detector: how to build a fresh one and what it does."""

    name: str
    summary: str
    build: Callable[[], AnomalyDetector]


DETECTORS: Mapping[str, DetectorInfo] = {
    info.name: info
    for info in (
        DetectorInfo(
            NoveltyEnsemble.name,
            "range novelty of value, 1 h average and day-over-day change; one alert per episode",
            NoveltyEnsemble,
        ),
        DetectorInfo(
            RobustSpike.name,
            "robust z-score against the last hour's median and MAD; one alert per episode",
            RobustSpike,
        ),
        DetectorInfo(
            OpsEnsemble.name,
            "the larger of novelty-ensemble and robust-spike (for replay metrics)",
            OpsEnsemble,
        ),
        DetectorInfo(
            WindowedGaussian.name,
            "baseline: Gaussian tail of the value against the last 6,400 values",
            WindowedGaussian,
        ),
    )
}
DEFAULT_DETECTOR = NoveltyEnsemble.name


def make_detector(name: str, *, source: str = "--detector") -> AnomalyDetector:
    """A fresh detector ``name``; an unknown name raises InputError."""
    info = DETECTORS.get(name)
    if info is None:
        raise InputError(source, "", f"unknown detector {name!r}", ", ".join(sorted(DETECTORS)))
    return info.build()
