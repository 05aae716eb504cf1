"""``adaptive-resonance``: fuzzy ART categories of recent windows (in the spirit of ARTime).

Written from the published description of ARTime (Mark Hampton's NAB entry: windows of a
downsampled series, their Haar wavelet coefficients, categories learnt by adaptive resonance
with a vigilance, an anomaly when no category resonates) and of fuzzy ART (Carpenter,
Grossberg and Rosen, 1991: complement coding, choice ``|I ^ w| / (alpha + |w|)``, match
``|I ^ w| / |I|``, fast learning ``w <- I ^ w``). Simplified, and with no look-ahead:

- **Blocks**: every ``step_rows`` rows form one block; its representative is the block's
  maximum or minimum, whichever lies farther from the block's mean (a spike survives the
  downsampling). Every row is scored, with the block so far as the newest representative
  (ARTime scores only a block's last row); categories learn at a block's last row.
- **Noise chomp**: a representative closer than ``chomp`` widths of the range ``[lo, hi]``
  of every value learnt so far to the median of the recent representatives (``median_rows``
  rows of them) is replaced by that median, so ordinary noise gives flat windows.
- **Features** of the last ``window`` representatives (``window`` a power of two): their
  shape (each value's height above the window's minimum, in widths of the range learnt
  before the newest value, squashed into [0, 1)), its full-depth Haar average and details,
  and the window's mean position against that range (squashed). ARTime
  normalises the series by the file's range (look-ahead) and then each window to its own
  [0, 1], which blows noise up to full scale and leans on its adaptive vigilance; here
  shapes keep their size relative to the range learnt so far.
- **Fuzzy ART** on the complement-coded features: the categories whose match reaches the
  ``vigilance`` may resonate, the one of highest choice does and learns (fast learning);
  when none does, a new category holds the input (at most ``max_categories``: beyond that
  the category of highest choice learns it instead). Categories are learnt from the first
  complete window on.
- **Score** (ARTime's adaptive lower vigilance, simplified): the anomaly bound is the
  vigilance or, if lower, the smallest best match of the previous ``trend_rows`` rows; a
  best match ``m`` below it scores ``(bound - m) / (1 - m)`` (0 just at the bound, 1 for no
  overlap at all), else 0. So an anomaly is a window that no category resonates with and
  that is less like every category than any window of the trend period. One alert per
  episode (:class:`agents.anomaly.suppress.Refractory`); the first ``warmup_rows`` rows only
  learn. ARTime's gradual vigilance updates and its masking are not reproduced (the
  refractory rule stands for the masking).

Values are taken in the series' own unit (:mod:`agents.anomaly.units`), so scores are
scale-free. State: O(max_categories x window) numbers plus ``median_rows / step_rows``
representatives. Deterministic (no randomness), no look-ahead.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from agents.anomaly.base import OnePassDetector, Observation, value_of
from agents.anomaly.suppress import Refractory
from agents.anomaly.units import UnitScale
from agents.anomaly.window import SortedWindow

CHOICE_ALPHA = 0.001
"""Fuzzy ART's choice parameter (small: prefer the category that fits most tightly)."""


def haar(xs: list[float]) -> list[float]:
    """Full-depth Haar transform of ``xs`` (length a power of two) with averages and
    half-differences (``(a + b) / 2``, ``(a - b) / 2``): the overall average first, then the
    details from the coarsest to the finest scale. Inputs in [0, 1] give an average in
    [0, 1] and details in [-0.5, 0.5]."""
    approx = xs
    details: list[list[float]] = []
    while len(approx) > 1:
        pairs = range(0, len(approx), 2)
        details.append([(approx[i] - approx[i + 1]) * 0.5 for i in pairs])
        approx = [(approx[i] + approx[i + 1]) * 0.5 for i in pairs]
    out = list(approx)
    for level in reversed(details):
        out.extend(level)
    return out


def _squash(r: float) -> float:
    """``r >= 0`` (range widths) into [0, 1): ``r / (1 + r)`` (0.5 at one width)."""
    return r / (1.0 + r)


def window_features(reps: list[float], lo: float, hi: float) -> list[float]:
    """The feature vector (each in [0, 1]) of a window of representatives, in series units,
    against the range ``[lo, hi]`` learnt before the newest value:

    - the shape: each value's height above the window's minimum, in widths of the range,
      squashed by ``r / (1 + r)`` (0.5 at one width, so moves beyond the range still grade);
    - its Haar average and details (the details shifted by 0.5);
    - the window's mean position: ``(mean - lo) / width`` centred and squashed to (0, 1)
      (0.25 at ``lo``, 0.75 at ``hi``).
    """
    width = hi - lo
    if width <= 0.0:
        return [0.0] * len(reps) + [0.0] + [0.5] * (len(reps) - 1) + [0.5]
    low = min(reps)
    shape = [_squash((r - low) / width) for r in reps]
    coefficients = haar(shape)
    centred = 2.0 * (sum(reps) / len(reps) - lo) / width - 1.0
    position = 0.5 + 0.5 * centred / (1.0 + abs(centred))
    return [*shape, coefficients[0], *(c + 0.5 for c in coefficients[1:]), position]


class SlidingMin:
    """The smallest number recorded over the last ``rows`` rows (an increasing deque)."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._kept: deque[tuple[int, float]] = deque()  # (row, value), increasing values

    def value(self, row: int, default: float) -> float:
        """The smallest value recorded at rows ``row - rows .. row - 1`` (``default`` if none)."""
        for r, v in self._kept:
            if r >= row - self.rows:
                return v
        return default

    def record(self, row: int, v: float) -> None:
        """Record row ``row``'s value (rows in increasing order)."""
        kept = self._kept
        while kept and kept[0][0] < row + 1 - self.rows:
            kept.popleft()
        while kept and kept[-1][1] >= v:
            kept.pop()
        kept.append((row, v))


class FuzzyArt:
    """Fuzzy ART categories of complement-coded inputs (fast learning), capped in number.

    Parameters
    ----------
    dim
        Features per input (each in [0, 1]); categories hold ``2 * dim`` weights.
    max_categories
        Categories kept at most.
    """

    def __init__(self, dim: int, max_categories: int) -> None:
        self.dim = dim
        self.count = 0
        self._weights = np.zeros((max_categories, 2 * dim))
        self._sizes = np.zeros(max_categories)  # |w_j|

    def code(self, features: list[float]) -> np.ndarray:
        """The complement code ``(f, 1 - f)`` of a feature vector."""
        f = np.asarray(features, dtype=np.float64)
        return np.concatenate((f, 1.0 - f))

    def search(self, coded: np.ndarray, vigilance: float) -> tuple[int, float, bool]:
        """The category to learn ``coded``, the best match, and whether it resonates.

        The category is the one of highest choice among those whose match reaches the
        vigilance (resonance); without one, -1 (a new category), or the category of highest
        choice when no new one fits. With no category yet: (-1, 0.0, False).
        """
        c = self.count
        if c == 0:
            return -1, 0.0, False
        overlap = np.minimum(self._weights[:c], coded).sum(axis=1)
        match = overlap / self.dim
        choice = overlap / (CHOICE_ALPHA + self._sizes[:c])
        best_match = float(match.max())
        eligible = np.where(match >= vigilance, choice, -1.0)
        j = int(eligible.argmax())
        if eligible[j] >= 0.0:
            return j, best_match, True
        if c < len(self._sizes):
            return -1, best_match, False
        return int(choice.argmax()), best_match, False

    def learn(self, coded: np.ndarray, category: int) -> None:
        """Fast learning: ``w <- coded ^ w`` for ``category``, or a new category (-1)."""
        if category < 0:
            category = self.count
            self._weights[category] = coded
            self.count += 1
        else:
            np.minimum(self._weights[category], coded, out=self._weights[category])
        self._sizes[category] = float(self._weights[category].sum())


class AdaptiveResonance(OnePassDetector):
    """Fuzzy ART categories of windows of a downsampled series; new category = anomaly.

    Parameters
    ----------
    step_rows
        Rows per block (one representative each); categories learn at a block's last row.
    window
        Representatives per window (a power of two, >= 2).
    vigilance
        Match in [0, 1] a category needs to resonate (higher: finer categories).
    chomp
        A representative within this fraction of the learnt range of the recent median is
        taken as the median.
    median_rows
        Rows whose representatives the median is taken over.
    max_categories
        Categories kept at most.
    trend_rows
        Rows whose smallest best match bounds what counts as an anomaly.
    warmup_rows
        Rows that only learn (score 0).
    refractory_rows
        An output must beat every raw score of this many previous rows, else it is 0.
    """

    name = "adaptive-resonance"

    def __init__(
        self,
        *,
        step_rows: int = 2,
        window: int = 4,
        vigilance: float = 0.85,
        chomp: float = 0.1,
        median_rows: int = 2016,
        max_categories: int = 256,
        trend_rows: int = 288,
        warmup_rows: int = 300,
        refractory_rows: int = 144,
    ) -> None:
        if step_rows < 1 or window < 2 or window & (window - 1):
            raise ValueError("step_rows must be >= 1 and window a power of two >= 2")
        if not 0.0 < vigilance < 1.0 or chomp < 0.0:
            raise ValueError("vigilance must be in (0, 1) and chomp >= 0")
        if min(median_rows, max_categories, warmup_rows, trend_rows) < 1 or refractory_rows < 0:
            raise ValueError(
                "median_rows, max_categories, warmup_rows, trend_rows >= 1; refractory >= 0"
            )
        self.step_rows = step_rows
        self.window = window
        self.vigilance = vigilance
        self.chomp = chomp
        self.median_rows = median_rows
        self.max_categories = max_categories
        self.trend_rows = trend_rows
        self.warmup_rows = warmup_rows
        self.refractory_rows = refractory_rows
        self._unit = UnitScale()
        self._n = 0
        self._lo = self._hi = 0.0
        self._block: list[float] = []  # the current block's values, in units
        self._medians = SortedWindow(max(1, median_rows // step_rows))
        self._reps: deque[float] = deque(maxlen=window)
        self._art = FuzzyArt(2 * window + 1, max_categories)
        self._trend = SlidingMin(trend_rows)
        self._refractory = Refractory(refractory_rows)

    def get_params(self) -> dict[str, Any]:
        return {
            "step_rows": self.step_rows,
            "window": self.window,
            "vigilance": self.vigilance,
            "chomp": self.chomp,
            "median_rows": self.median_rows,
            "max_categories": self.max_categories,
            "trend_rows": self.trend_rows,
            "warmup_rows": self.warmup_rows,
            "refractory_rows": self.refractory_rows,
        }

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """Vigilance 0.8, 0.85 or 0.9; windows of 4 or 8 blocks of 2 or 4 rows; a trend
        period of 12 or 24 hours and suppression over 6 or 12 hours of 5-minute rows (48
        combinations). The first design (no trend bound) was cross-validated over the same
        space without ``trend_rows``; this one was declared before its own run."""
        return {
            "vigilance": [0.8, 0.85, 0.9],
            "window": [4, 8],
            "step_rows": [2, 4],
            "trend_rows": [144, 288],
            "refractory_rows": [72, 144],
        }

    def _representative(self, block: list[float]) -> float:
        """The block's maximum or minimum, whichever is farther from its mean (max on a tie)."""
        top, bottom = max(block), min(block)
        mean = sum(block) / len(block)
        return top if top - mean >= mean - bottom else bottom

    def _step(self, x: Observation, *, commit: bool) -> float:
        v = value_of(x)
        n = self._n
        u = self._unit.scaled(v)  # the unit the first non-zero value fixes, if v is it
        lo, hi = (u, u) if n == 0 else (min(self._lo, u), max(self._hi, u))
        block = [*self._block, u]
        raw = 0.0
        complete = len(block) == self.step_rows
        rep = self._representative(block)  # of the block so far
        if len(self._medians):
            median = self._medians.quantile(0.5)
            if abs(rep - median) <= self.chomp * (hi - lo):
                rep = median
        reps = [*self._reps, rep][-self.window :]
        if len(reps) == self.window:
            # against the range before this value: a spike is measured, not the new scale
            ref_lo, ref_hi = (self._lo, self._hi) if self._hi > self._lo else (lo, hi)
            coded = self._art.code(window_features(reps, ref_lo, ref_hi))
            category, best, _ = self._art.search(coded, self.vigilance)
            if self._art.count:
                bound = self._trend.value(n, self.vigilance)
                bound = min(bound, self.vigilance)
                if best < bound and n >= self.warmup_rows:
                    raw = (bound - best) / (1.0 - best)
                if commit:
                    self._trend.record(n, best)
            if commit and complete:
                self._art.learn(coded, category)
        out = self._refractory.output(n, raw)
        if commit:
            self._unit.learn(v)
            self._lo, self._hi = lo, hi
            if complete:
                self._medians.add(self._representative(block))
                self._reps.append(rep)
                self._block = []
            else:
                self._block.append(u)
            self._refractory.commit(n, raw)
            self._n = n + 1
        return out
