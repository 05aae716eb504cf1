"""Library anomaly detectors as baselines, wrapped in our ``learn_one``/``score_one`` contract.

Optional: the libraries come with the ``anomaly-baselines`` extra and are imported when a
detector is built, so the core package does not need them.

- ``river-hst``: river's ``HalfSpaceTrees`` behind river's ``MinMaxScaler`` (the pipeline
  river's documentation recommends), on the last ``shingle`` values.
- ``river-gaussian``: river's ``GaussianScorer`` (two-sided Gaussian tail of the value).
- ``pysad-loda``: pysad's ``LODA`` (histograms of sparse random projections).

Dropped after cross-validation (README, Anomaly detection): pysad's xStream (19.60 ± 11.10
standard, ~1k points/s), stumpy's streaming matrix profile discords (36.04 ± 11.90, ~2k
points/s and a minute of numba compilation per process) and pysad's RRCF (46 points/s).

Every wrapper feeds the library the value in the series' own unit
(:class:`agents.anomaly.units.UnitScale`: exact powers of two, so scores are scale-free and
the largest floats cannot overflow a library's arithmetic). Randomised models take a fixed
``seed``, so a detector is deterministic. Unbounded library scores ``s`` (LODA)
are mapped to [0, 1] by the increasing ``0.5 + 0.5 * s / (1 + |s|)``, which keeps their
order (NAB's threshold sweep sees the same ranking).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections import deque
from typing import Any

import numpy as np

from agents.anomaly.base import AnomalyDetector, Observation, value_of
from agents.anomaly.units import UnitScale


def squash(s: float) -> float:
    """An unbounded score as ``0.5 + 0.5 * s / (1 + |s|)`` in [0, 1] (NaN: 0)."""
    if math.isnan(s):
        return 0.0
    if math.isinf(s):
        return 1.0 if s > 0 else 0.0
    return min(1.0, max(0.0, 0.5 + 0.5 * s / (1.0 + abs(s))))


class ShingledLibraryDetector(AnomalyDetector):
    """A library model scored on the last ``shingle`` values, in the series' unit.

    Subclasses build the model in ``_build`` and implement ``_score`` (pure) and ``_learn``
    on the shingle, a float64 array of ``shingle`` values (oldest first). Until
    ``shingle - 1`` values are learnt there is no shingle and the score is 0.
    """

    def __init__(self, *, shingle: int, seed: int) -> None:
        if shingle < 1:
            raise ValueError(f"shingle(={shingle}) must be >= 1")
        self.shingle = shingle
        self.seed = seed
        self._unit = UnitScale()
        self._recent: deque[float] = deque(maxlen=max(shingle - 1, 1))
        self._learnt = 0
        self._model = self._build()

    @abstractmethod
    def _build(self) -> Any:
        """A fresh library model."""

    @abstractmethod
    def _score(self, features: np.ndarray) -> float:
        """The model's score of ``features`` in [0, 1]; changes no state."""

    @abstractmethod
    def _learn(self, features: np.ndarray) -> None:
        """Update the model with ``features``."""

    def _features(self, u: float) -> np.ndarray | None:
        if self._learnt < self.shingle - 1:
            return None
        past = list(self._recent)[-(self.shingle - 1) :] if self.shingle > 1 else []
        return np.asarray([*past, u], dtype=np.float64)

    def score_one(self, x: Observation) -> float:
        features = self._features(self._unit.scaled(value_of(x)))
        if features is None or self._learnt == 0:
            return 0.0
        return self._score(features)

    def learn_one(self, x: Observation) -> None:
        v = value_of(x)
        self._unit.learn(v)
        u = self._unit.scaled(v)
        features = self._features(u)
        if features is not None:
            self._learn(features)
        self._recent.append(u)
        self._learnt += 1


class RiverHalfSpaceTrees(ShingledLibraryDetector):
    """river's ``HalfSpaceTrees`` behind river's ``MinMaxScaler``.

    Parameters
    ----------
    n_trees, height, window_size
        river's parameters (trees, their depth, rows per reference window).
    shingle
        Consecutive values per point (1: the value alone).
    seed
        Seed of the random trees.
    """

    name = "river-hst"

    def __init__(
        self,
        *,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        shingle: int = 1,
        seed: int = 0,
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        super().__init__(shingle=shingle, seed=seed)

    def get_params(self) -> dict[str, Any]:
        return {
            "n_trees": self.n_trees,
            "height": self.height,
            "window_size": self.window_size,
            "shingle": self.shingle,
            "seed": self.seed,
        }

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """Reference windows of 100, 250 (river's default) and 1,000 rows; the value alone
        or a shingle of 4."""
        return {"window_size": [100, 250, 1000], "shingle": [1, 4]}

    def _build(self) -> Any:
        from river import anomaly, preprocessing

        self._scaler = preprocessing.MinMaxScaler()
        return anomaly.HalfSpaceTrees(
            n_trees=self.n_trees, height=self.height, window_size=self.window_size, seed=self.seed
        )

    @staticmethod
    def _dict(features: np.ndarray) -> dict[str, float]:
        return {f"v{i}": float(f) for i, f in enumerate(features)}

    def _score(self, features: np.ndarray) -> float:
        scaled = self._scaler.transform_one(self._dict(features))
        return min(1.0, max(0.0, float(self._model.score_one(scaled))))

    def _learn(self, features: np.ndarray) -> None:
        x = self._dict(features)
        self._scaler.learn_one(x)
        self._model.learn_one(self._scaler.transform_one(x))


class RiverGaussianScorer(ShingledLibraryDetector):
    """river's ``GaussianScorer``: ``2 |cdf(v) - 1/2|`` under a Gaussian fitted to the values.

    Parameters
    ----------
    window_size
        Rows the Gaussian is fitted on (None: every row so far).
    grace_period
        Rows before which the score is 0.
    """

    name = "river-gaussian"

    def __init__(self, *, window_size: int | None = None, grace_period: int = 100) -> None:
        self.window_size = window_size
        self.grace_period = grace_period
        super().__init__(shingle=1, seed=0)

    def get_params(self) -> dict[str, Any]:
        return {"window_size": self.window_size, "grace_period": self.grace_period}

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """Every row so far (river's default), or the last day or week of 5-minute rows."""
        return {"window_size": [None, 288, 2016]}

    def _build(self) -> Any:
        from river import anomaly

        return anomaly.GaussianScorer(window_size=self.window_size, grace_period=self.grace_period)

    def _score(self, features: np.ndarray) -> float:
        try:
            score = self._model.score_one(None, float(features[-1]))
        except TypeError:
            # river's rolling variance can round below 0 on a constant window, and its cdf then
            # fails on a complex sigma; river scores a zero sigma 1 (cdf 0), so that is kept
            return 1.0
        return min(1.0, max(0.0, float(score)))

    def _learn(self, features: np.ndarray) -> None:
        self._model.learn_one(None, float(features[-1]))


class PysadLODA(ShingledLibraryDetector):
    """pysad's ``LODA`` (negative log density, squashed to [0, 1]).

    Parameters
    ----------
    num_bins, num_random_cuts
        pysad's parameters.
    shingle
        Consecutive values per point.
    seed
        Seed of the projections.
    """

    name = "pysad-loda"

    def __init__(
        self, *, num_bins: int = 10, num_random_cuts: int = 100, shingle: int = 4, seed: int = 0
    ) -> None:
        self.num_bins = num_bins
        self.num_random_cuts = num_random_cuts
        super().__init__(shingle=shingle, seed=seed)

    def get_params(self) -> dict[str, Any]:
        return {
            "num_bins": self.num_bins,
            "num_random_cuts": self.num_random_cuts,
            "shingle": self.shingle,
            "seed": self.seed,
        }

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """The value alone or a shingle of 4 values."""
        return {"shingle": [1, 4]}

    def _build(self) -> Any:
        from pysad.models import LODA

        model = LODA(
            num_bins=self.num_bins, num_random_cuts=self.num_random_cuts, random_state=self.seed
        )
        model._init_model(self.shingle)  # so that scoring never initialises (a state change)
        return model

    def _score(self, features: np.ndarray) -> float:
        # a bin width that underflows gives an infinite density (score 0), not a warning
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return squash(float(np.asarray(self._model.score_partial(features)).reshape(-1)[0]))

    def _learn(self, features: np.ndarray) -> None:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            self._model.fit_partial(features)
