"""``seasonal-residual``: robust z-score of what a seasonal profile learnt online does not explain.

Written from the description of additive Holt-Winters smoothing without trend and of the
robust z-score (median and interquartile range):

- the season (``season_s``: a day or a week) is cut into slots of ``slot_s`` seconds found
  from ``x["timestamp"]`` (row ``i`` at ``i * step_s`` without one);
- a level ``L`` (exponential smoothing of the deseasonalised value, span ``level_span``
  rows) and a seasonal offset ``S[slot]`` per slot (smoothing weight ``season_weight``) are
  learnt online; the prediction of a value is ``L + S[slot]``;
- its residual ``r`` is scored against the last ``window`` residuals: ``z = |r - median| /
  (IQR / 1.349)`` (the IQR floored at a tiny fraction of the level), and the raw score is
  ``z / (z + 6)`` (0.5 at six robust standard deviations);
- one alert per episode (:class:`agents.anomaly.suppress.Refractory`); the first
  ``warmup_rows`` rows only learn.

Values are taken in the series' own unit (:mod:`agents.anomaly.units`), so scores are
scale-free. State: one float per slot, ``window`` residuals. Deterministic, no look-ahead.
"""

from __future__ import annotations

from typing import Any

from agents.anomaly.base import OnePassDetector, Observation, timestamp_of, value_of
from agents.anomaly.suppress import Refractory
from agents.anomaly.units import UnitScale
from agents.anomaly.window import SortedWindow

Z_HALF = 6.0
"""Robust z-score that maps to a raw score of 0.5."""
IQR_TO_SD = 1.349
"""Interquartile range of a standard normal distribution."""


class SeasonalResidual(OnePassDetector):
    """Robust z-score of the residual of an online additive seasonal profile.

    Parameters
    ----------
    season_s
        The season, in seconds (86,400: daily; 604,800: weekly).
    slot_s
        Seconds per seasonal slot.
    level_span
        Span, in rows, of the level's exponential smoothing (alpha = 2 / (span + 1)).
    season_weight
        Weight of a new observation in its slot's offset.
    window
        Residuals the median and IQR are taken over, in rows.
    warmup_rows
        Rows that only learn (score 0).
    refractory_rows
        An output must beat every raw score of this many previous rows, else it is 0.
    step_s
        Seconds per row assumed when observations carry no timestamp.
    """

    name = "seasonal-residual"

    def __init__(
        self,
        *,
        season_s: float = 86_400.0,
        slot_s: float = 3_600.0,
        level_span: int = 12,
        season_weight: float = 0.1,
        window: int = 2016,
        warmup_rows: int = 150,
        refractory_rows: int = 144,
        step_s: float = 300.0,
    ) -> None:
        if season_s <= 0 or slot_s <= 0 or step_s <= 0 or not 0 < season_weight <= 1:
            raise ValueError("season_s, slot_s, step_s must be > 0 and season_weight in (0, 1]")
        if level_span < 1 or window < 4 or warmup_rows < 1 or refractory_rows < 0:
            raise ValueError("level_span, warmup_rows >= 1, window >= 4, refractory_rows >= 0")
        self.season_s = season_s
        self.slot_s = slot_s
        self.level_span = level_span
        self.season_weight = season_weight
        self.window = window
        self.warmup_rows = warmup_rows
        self.refractory_rows = refractory_rows
        self.step_s = step_s
        self._alpha = 2.0 / (level_span + 1.0)
        self._slots = max(1, int(season_s // slot_s))
        self._offset = [0.0] * self._slots
        self._unit = UnitScale()
        self._level = 0.0
        self._n = 0
        self._residuals = SortedWindow(window)
        self._refractory = Refractory(refractory_rows)

    def get_params(self) -> dict[str, Any]:
        return {
            "season_s": self.season_s,
            "slot_s": self.slot_s,
            "level_span": self.level_span,
            "season_weight": self.season_weight,
            "window": self.window,
            "warmup_rows": self.warmup_rows,
            "refractory_rows": self.refractory_rows,
            "step_s": self.step_s,
        }

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """Daily or weekly season; a level over 1 or 4 hours of 5-minute rows; suppression
        over 6, 12 or 24 hours (12 combinations)."""
        return {
            "season_s": [86_400.0, 604_800.0],
            "level_span": [12, 48],
            "refractory_rows": [72, 144, 288],
        }

    def _slot(self, t: float) -> int:
        return min(self._slots - 1, int((t % self.season_s) // self.slot_s))

    def _step(self, x: Observation, *, commit: bool) -> float:
        v = value_of(x)
        n = self._n
        t = timestamp_of(x, n * self.step_s)
        u = self._unit.scaled(v)
        slot = self._slot(t)
        if n == 0:
            residual = 0.0
        else:
            residual = u - (self._level + self._offset[slot])
        raw = 0.0
        if n > self.warmup_rows and len(self._residuals) >= 4:
            med = self._residuals.quantile(0.5)
            iqr = self._residuals.quantile(0.75) - self._residuals.quantile(0.25)
            scale = max(iqr / IQR_TO_SD, 1e-9 * max(1.0, abs(self._level)))
            z = abs(residual - med) / scale
            raw = z / (z + Z_HALF)
        out = self._refractory.output(n, raw)
        if commit:
            self._unit.learn(v)
            u = self._unit.scaled(v)
            if n == 0:
                self._level = u
            else:
                self._level += self._alpha * (u - self._offset[slot] - self._level)
                self._offset[slot] += self.season_weight * (u - self._level - self._offset[slot])
                self._residuals.add(residual)
            self._refractory.commit(n, raw)
            self._n = n + 1
        return out
