"""The windowed Gaussian baseline (NAB's ``windowedGaussian``, streaming).

The score of a value is how far it sits from the mean of the last ``window`` values, in
standard deviations, mapped to [0, 1] as ``erf(|z| / sqrt(2))`` (one minus the two-sided
Gaussian tail probability). Mean and variance are kept as running sums over a ring buffer,
so a step is O(1).

Any finite value is allowed. Values beyond ``HUGE`` (about 3e144) would overflow the sum
of squares, so they are left out of the plain running sums; while the window holds one,
mean and variance come from a second pair of running sums of every value scaled by the
exact power of two ``2**SCALE_EXP``, which cannot overflow. On values below ``HUGE`` (any
real metric) only the plain sums are used.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from agents.anomaly.base import AnomalyDetector, Observation, value_of

SQRT2 = math.sqrt(2.0)
HUGE = 2.0**480
"""Largest magnitude in the plain sums: 2**60 squares of it stay below the largest float."""
SCALE_EXP = -540
"""Binary exponent applied to every value in the scaled sums (the largest float becomes
about 2**484, its square 2**968)."""
SCALED_ONE = 2.0**SCALE_EXP


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
        self._sum = 0.0  # of the values up to HUGE in the window
        self._sumsq = 0.0
        self._since_resum = 0
        self._n_huge = 0  # values beyond HUGE in the window
        self._scaled_sum = 0.0  # of every value times 2**SCALE_EXP, kept while _n_huge > 0
        self._scaled_sumsq = 0.0

    def get_params(self) -> dict[str, Any]:
        return {"window": self.window}

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """Windows from 200 rows (about 17 hours at 5 minutes) to the default 6,400, doubling."""
        return {"window": [200, 400, 800, 1600, 3200, 6400]}

    def score_one(self, x: Observation) -> float:
        v = value_of(x)
        n = len(self._buf)
        if n < 2:
            return 0.0
        if self._n_huge:
            return self._scaled_score(v, n)
        mean = self._sum / n
        sd = math.sqrt(max(self._sumsq / n - mean * mean, 0.0))
        if sd <= 1e-12 * max(1.0, abs(mean)):
            return 0.0 if v == mean else 1.0
        return math.erf(abs(v - mean) / sd / SQRT2)

    def _scaled_score(self, v: float, n: int) -> float:
        """The score from the scaled sums: the same formula in units of 2**-SCALE_EXP."""
        mean = self._scaled_sum / n
        sd = math.sqrt(max(self._scaled_sumsq / n - mean * mean, 0.0))
        u = math.ldexp(v, SCALE_EXP)
        if sd <= 1e-12 * max(SCALED_ONE, abs(mean)):
            return 0.0 if u == mean else 1.0
        return math.erf(abs(u - mean) / sd / SQRT2)  # a quotient beyond the floats is inf: 1.0

    def learn_one(self, x: Observation) -> None:
        v = value_of(x)
        self._buf.append(v)
        if abs(v) > HUGE:
            self._n_huge += 1
            if self._n_huge == 1:
                self._resum_scaled()
            else:
                self._add_scaled(v, 1.0)
        else:
            self._sum += v
            self._sumsq += v * v
            if self._n_huge:
                self._add_scaled(v, 1.0)
        if len(self._buf) > self.window:
            old = self._buf.popleft()
            if abs(old) > HUGE:
                self._n_huge -= 1
            else:
                self._sum -= old
                self._sumsq -= old * old
            if self._n_huge:
                self._add_scaled(old, -1.0)
        self._since_resum += 1
        if self._since_resum >= self.window:  # bound the rounding drift of the running sums
            self._since_resum = 0
            if self._n_huge:
                plain = [b for b in self._buf if abs(b) <= HUGE]
                self._sum = math.fsum(plain)
                self._sumsq = math.fsum(b * b for b in plain)
                self._resum_scaled()
            else:
                self._sum = math.fsum(self._buf)
                self._sumsq = math.fsum(b * b for b in self._buf)

    def _add_scaled(self, v: float, sign: float) -> None:
        u = math.ldexp(v, SCALE_EXP)
        self._scaled_sum += sign * u
        self._scaled_sumsq += sign * (u * u)

    def _resum_scaled(self) -> None:
        scaled = [math.ldexp(b, SCALE_EXP) for b in self._buf]
        self._scaled_sum = math.fsum(scaled)
        self._scaled_sumsq = math.fsum(u * u for u in scaled)
