"""Streaming metric anomaly detectors (issue 6), following river's ``AnomalyDetector`` contract.

:mod:`.base` defines the contract (``learn_one``, pure ``score_one`` in [0, 1], prequential
``score_learn_one``) and a per-series :class:`DetectorBank`; :mod:`.gaussian` the windowed
Gaussian baseline; :mod:`.novelty` the ``novelty-ensemble`` detector; :mod:`.seasonal`,
:mod:`.contextual` and :mod:`.rank_ensemble` the detectors of issue 17; :mod:`.library`
the library baselines (the ``anomaly-baselines`` extra). They are registered
by name in :data:`agents.registry.DETECTORS` and scored on the Numenta Anomaly Benchmark by
``opsbench anomaly nab``.
"""

from agents.anomaly.base import AnomalyDetector, DetectorBank, Observation
from agents.anomaly.gaussian import WindowedGaussian
from agents.anomaly.novelty import NoveltyEnsemble

__all__ = [
    "AnomalyDetector",
    "DetectorBank",
    "NoveltyEnsemble",
    "Observation",
    "WindowedGaussian",
]
