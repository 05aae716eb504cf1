"""Streaming metric anomaly detectors (issue 6), following river's ``AnomalyDetector`` contract.

:mod:`.base` defines the contract (``learn_one``, pure ``score_one`` in [0, 1], prequential
``score_learn_one``) and a per-series :class:`DetectorBank`; :mod:`.gaussian` the windowed
Gaussian baseline; :mod:`.novelty` the ``novelty-ensemble`` detector; :mod:`.registry` the
detectors by name. Scored on the Numenta Anomaly Benchmark by ``opsbench anomaly nab``.
"""

from agents.anomaly.base import AnomalyDetector, DetectorBank, Observation
from agents.anomaly.gaussian import WindowedGaussian
from agents.anomaly.novelty import NoveltyEnsemble
from agents.anomaly.registry import DEFAULT_DETECTOR, DETECTORS, make_detector

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "AnomalyDetector",
    "DetectorBank",
    "NoveltyEnsemble",
    "Observation",
    "WindowedGaussian",
    "make_detector",
]
