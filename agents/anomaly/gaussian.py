"""The windowed Gaussian baseline (NAB's ``windowedGaussian``, streaming).

The score of a value is how far it sits from the mean of the last ``window`` values, in
standard deviations, mapped to [0, 1] as ``erf(|z| / sqrt(2))`` (one minus the two-sided
Gaussian tail probability). Mean and variance are kept as running sums over a ring buffer,
so a step is O(1).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from agents.anomaly.base import AnomalyDetector, Observation, value_of

SQRT2 = math.sqrt(2.0)


class WindowedGaussian(AnomalyDetector):
    """Two-sided Gaussian tail score against a sliding window of past values.

    Parameters
    ----------
    window
        Number of past values (rows) the mean and standard deviation are taken over.
    """

    name = "windowed-gaussian"

    def __init__(self, *, window: int = 6400) -> None:
        if window < 2:
            raise ValueError(f"window(={window}) must be >= 2")
        self.window = window
        self._buf: deque[float] = deque()
        self._sum = 0.0
        self._sumsq = 0.0
        self._since_resum = 0

    def get_params(self) -> dict[str, Any]:
        return {"window": self.window}

    def score_one(self, x: Observation) -> float:
        v = value_of(x)
        n = len(self._buf)
        if n < 2:
            return 0.0
        mean = self._sum / n
        sd = math.sqrt(max(self._sumsq / n - mean * mean, 0.0))
        if sd <= 1e-12 * max(1.0, abs(mean)):
            return 0.0 if v == mean else 1.0
        return math.erf(abs(v - mean) / sd / SQRT2)

    def learn_one(self, x: Observation) -> None:
        v = value_of(x)
        self._buf.append(v)
        self._sum += v
        self._sumsq += v * v
        if len(self._buf) > self.window:
            old = self._buf.popleft()
            self._sum -= old
            self._sumsq -= old * old
        self._since_resum += 1
        if self._since_resum >= self.window:  # bound the rounding drift of the running sums
            self._since_resum = 0
            self._sum = math.fsum(self._buf)
            self._sumsq = math.fsum(b * b for b in self._buf)
