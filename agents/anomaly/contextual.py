"""``contextual``: how surprising a value's level is after the levels just before it.

In the spirit of CAD OSE (NAB's "contextual anomaly detector", as described: the stream is
discretised, recent discretised values form contexts, and an anomaly is a context the
detector has not learnt), written from that description:

- each value is discretised into one of ``levels`` equal-width levels of the range
  ``[lo, hi]`` of the values learnt so far, or a level of its own below or above it
  (the range is online: CAD OSE takes the file's range in advance, which needs look-ahead);
- the *context* is the levels of the previous ``context_rows`` rows; for it and each of
  its shorter suffixes (down to the empty context) the detector counts the levels that
  followed it;
- the raw score is the mean over those ``context_rows + 1`` contexts of
  ``1 - n(context, level) / (n(context) + 1)``: 1 for a level never seen at all (a new
  range), high for a level never seen after the recent ones, near 0 for the usual
  continuation (the backoff to shorter contexts keeps a rare long context from scoring
  like a new level);
- one alert per episode (:class:`agents.anomaly.suppress.Refractory`); the first
  ``warmup_rows`` rows only learn.

Values are taken in the series' own unit (:mod:`agents.anomaly.units`), so the levels, and
the scores, are scale-free. State: the counts (at most ``context_rows + 1`` entries per row learnt).
Deterministic, no look-ahead.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from agents.anomaly.base import OnePassDetector, Observation, value_of
from agents.anomaly.suppress import Refractory
from agents.anomaly.units import UnitScale


class ContextualNovelty(OnePassDetector):
    """Novelty of a value's level after the context of the previous rows' levels.

    Parameters
    ----------
    levels
        Equal-width levels the range of values seen is cut into.
    context_rows
        Previous rows whose levels form the context.
    warmup_rows
        Rows that only learn (score 0).
    refractory_rows
        An output must beat every raw score of this many previous rows, else it is 0.
    """

    name = "contextual"

    def __init__(
        self,
        *,
        levels: int = 8,
        context_rows: int = 3,
        warmup_rows: int = 150,
        refractory_rows: int = 144,
    ) -> None:
        if levels < 1 or context_rows < 1 or warmup_rows < 1 or refractory_rows < 0:
            raise ValueError("levels, context_rows, warmup_rows >= 1; refractory_rows >= 0")
        self.levels = levels
        self.context_rows = context_rows
        self.warmup_rows = warmup_rows
        self.refractory_rows = refractory_rows
        self._unit = UnitScale()
        self._lo = self._hi = 0.0
        self._n = 0
        self._context: deque[int] = deque(maxlen=context_rows)
        self._seen: dict[tuple[int, ...], dict[int, int]] = {}
        self._totals: dict[tuple[int, ...], int] = {}
        self._refractory = Refractory(refractory_rows)

    def get_params(self) -> dict[str, Any]:
        return {
            "levels": self.levels,
            "context_rows": self.context_rows,
            "warmup_rows": self.warmup_rows,
            "refractory_rows": self.refractory_rows,
        }

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """8 or 16 levels; contexts of 3 or 6 rows; suppression over 6, 12 or 24 hours of
        5-minute rows (12 combinations)."""
        return {
            "levels": [8, 16],
            "context_rows": [3, 6],
            "refractory_rows": [72, 144, 288],
        }

    def _level(self, u: float) -> int:
        """``u``'s level: 0 .. levels - 1 inside the range, -1 below it, ``levels`` above."""
        if u < self._lo:
            return -1
        if u > self._hi:
            return self.levels
        width = self._hi - self._lo
        if width <= 0.0:
            return 0
        return min(self.levels - 1, int(self.levels * ((u - self._lo) / width)))

    def _step(self, x: Observation, *, commit: bool) -> float:
        v = value_of(x)
        n = self._n
        u = self._unit.scaled(v)
        level = self._level(u) if n else 0
        context = tuple(self._context)
        raw = 0.0
        if n > self.warmup_rows:
            total = 0.0
            for j in range(len(context) + 1):
                suffix = context[len(context) - j :]
                followers = self._seen.get(suffix)
                seen = followers.get(level, 0) if followers else 0
                total += 1.0 - seen / (self._totals.get(suffix, 0) + 1.0)
            raw = total / (self.context_rows + 1)
        out = self._refractory.output(n, raw)
        if commit:
            self._unit.learn(v)
            u = self._unit.scaled(v)
            for j in range(len(context) + 1):
                suffix = context[len(context) - j :]
                followers = self._seen.setdefault(suffix, {})
                followers[level] = followers.get(level, 0) + 1
                self._totals[suffix] = self._totals.get(suffix, 0) + 1
            if n == 0:
                self._lo = self._hi = u
            elif u < self._lo:
                self._lo = u
            elif u > self._hi:
                self._hi = u
            # the level as learnt: inside the range that now includes u
            self._context.append(self._level(u))
            self._refractory.commit(n, raw)
            self._n = n + 1
        return out
