"""The streaming anomaly detector contract (river's ``AnomalyDetector``).

A detector watches ONE series. Each observation ``x`` is a mapping of named numbers:
``x["value"]`` (required: the metric's value, in the metric's own unit) and, optionally,
``x["timestamp"]`` (seconds since the epoch) for detectors that know about time of day.
The value, and the timestamp where a detector reads it, must be finite (ValueError
otherwise); any finite value, up to the largest float, scores in [0, 1] without overflow.

- :meth:`AnomalyDetector.score_one` returns a score in [0, 1] (higher = more anomalous) from
  what was learnt so far. It is pure: it never changes the detector's state.
- :meth:`AnomalyDetector.learn_one` updates the state with ``x``.
- Use is prequential: score a point, then learn it (:meth:`score_learn_one` does both, and
  detectors may fuse them for speed; the result must equal ``score_one`` then ``learn_one``).
- No look-ahead: a score depends only on the points learnt before it and on ``x`` itself.
- Deterministic: no randomness, so the same stream always gives the same scores.
- Nothing aliases the caller's data: a detector copies the numbers it keeps.

Hyper-parameters are keyword-only constructor arguments, stored unchanged and fixed in
advance; :meth:`clone` builds a fresh, unfitted copy with the same hyper-parameters.
:meth:`search_space` declares the few values of each hyper-parameter that
``opsbench anomaly cv`` may choose between (on training files only, see :mod:`bench.anomaly_cv`).
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Self

Observation = Mapping[str, float]


def value_of(x: Observation) -> float:
    """``x["value"]`` as a finite float (raises ValueError otherwise)."""
    v = float(x["value"])
    if not math.isfinite(v):
        raise ValueError(f"value(={v}) must be finite")
    return v


def timestamp_of(x: Observation, default: float) -> float:
    """``x["timestamp"]`` as a finite float, ``default`` without one (ValueError if not finite)."""
    ts = x.get("timestamp")
    if ts is None:
        return default
    t = float(ts)
    if not math.isfinite(t):
        raise ValueError(f"timestamp(={t}) must be finite")
    return t


class AnomalyDetector(ABC):
    """A streaming, per-series anomaly detector (river's contract)."""

    name: str = ""

    @abstractmethod
    def learn_one(self, x: Observation) -> None:
        """Update the state with one observation."""

    @abstractmethod
    def score_one(self, x: Observation) -> float:
        """Anomaly score of ``x`` in [0, 1] given what was learnt so far; changes no state."""

    def score_learn_one(self, x: Observation) -> float:
        """Score ``x``, then learn it (the prequential step). Returns the score."""
        score = self.score_one(x)
        self.learn_one(x)
        return score

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to the constructor."""
        return {}

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """Values each tunable hyper-parameter may take in cross-validation.

        Every list holds the constructor's default; a hyper-parameter not named keeps its
        default. The space is declared in advance (never from scores) and kept small: every
        combination is run over every file. Default: nothing to choose.
        """
        return {}

    def clone(self) -> Self:
        """A fresh, unfitted detector with the same hyper-parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))


class OnePassDetector(AnomalyDetector):
    """A detector whose score and learning share one pass, :meth:`_step`: ``score_one`` is
    the pass without committing, ``learn_one`` and ``score_learn_one`` the pass that commits
    (so the prequential step computes everything once)."""

    @abstractmethod
    def _step(self, x: Observation, *, commit: bool) -> float:
        """Score ``x``; with ``commit`` also learn it. Returns the score."""

    def score_one(self, x: Observation) -> float:
        return self._step(x, commit=False)

    def learn_one(self, x: Observation) -> None:
        self._step(x, commit=True)

    def score_learn_one(self, x: Observation) -> float:
        return self._step(x, commit=True)


class DetectorBank:
    """One detector per series, created on first sight from a factory (per-series state).

    Parameters
    ----------
    factory
        Builds a fresh detector for a new series key.
    """

    def __init__(self, factory: Callable[[], AnomalyDetector]) -> None:
        self._factory = factory
        self._detectors: dict[str, AnomalyDetector] = {}

    def score_learn_one(self, key: str, x: Observation) -> float:
        """Score then learn ``x`` on series ``key``'s own detector."""
        det = self._detectors.get(key)
        if det is None:
            det = self._detectors[key] = self._factory()
        return det.score_learn_one(x)

    def __len__(self) -> int:
        return len(self._detectors)
