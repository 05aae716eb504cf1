"""``robust-spike`` and ``ops-ensemble``: fast alerts on sudden departures from the recent
level, for watching a service's own metrics in the closed loop.

``novelty-ensemble`` alerts only where a metric has never been, which keeps false alarms
rare on NAB but cannot see a fault whose metrics stay inside levels reached before (an
AZ outage on an evening that already had a worse busy minute). ``robust-spike`` asks a
different question: *is this minute far from the last hour?* Its score of a value ``v``
against the last ``window`` values (median ``m``, median absolute deviation ``d``) is
``z / (z + z_half)`` with ``z = |v - m| / max(1.4826 d, floor * |m|, tiny)``, counted only
above ``z_min`` robust standard deviations; one alert per episode (a score is kept only
when it beats every score of the previous ``refractory_rows`` rows). Median and MAD shrug
off the spikes themselves, so a burst does not raise its own baseline.

``ops-ensemble`` is the larger of the two detectors' scores on the same stream: the
novelty detector's rare, early alarms for never-seen levels plus the spike detector's
quick ones for sudden jumps.

State per series: the last ``window`` values (60 floats); each step sorts them (60 log 60
comparisons). Deterministic, no look-ahead. Hyper-parameters are fixed defaults, chosen
once for replay metrics (one value per simulated minute), never tuned per run.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from typing import Any

from agents.anomaly.base import AnomalyDetector, Observation, value_of
from agents.anomaly.novelty import NoveltyEnsemble

MAD_TO_SD = 1.4826
QUARTER_MAX = sys.float_info.max / 4
"""Beyond this magnitude a window is scored on quartered values (see ``RobustSpike._raw``)."""


class RobustSpike(AnomalyDetector):
    """Robust z-score of a value against the recent window; one alert per episode.

    Parameters
    ----------
    window
        Past values (rows) the median and MAD are taken over.
    z_min
        Robust standard deviations below which the score is 0.
    z_half
        ``z`` at which the score is 0.5 (above ``z_min``).
    floor
        Smallest scale as a fraction of the median (a flat series still needs a real jump).
    refractory_rows
        Rows after an alert during which only a higher score is reported.
    """

    name = "robust-spike"

    def __init__(
        self,
        *,
        window: int = 60,
        z_min: float = 8.0,
        z_half: float = 8.0,
        floor: float = 0.05,
        refractory_rows: int = 30,
    ) -> None:
        if window < 5:
            raise ValueError(f"window(={window}) must be >= 5")
        self.window = window
        self.z_min = z_min
        self.z_half = z_half
        self.floor = floor
        self.refractory_rows = refractory_rows
        self._values: deque[float] = deque(maxlen=window)
        self._recent: deque[float] = deque(maxlen=max(1, refractory_rows))

    def get_params(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "z_min": self.z_min,
            "z_half": self.z_half,
            "floor": self.floor,
            "refractory_rows": self.refractory_rows,
        }

    def _raw(self, v: float) -> float:
        if len(self._values) < self.window:
            return 0.0
        ordered = sorted(self._values)
        if max(-ordered[0], ordered[-1], abs(v)) > QUARTER_MAX:
            # Sums and differences could overflow: work on quartered values (exact, and z
            # is a ratio; only the absolute 1e-9 floor of the scale does not follow).
            ordered = [0.25 * u for u in ordered]
            v *= 0.25
        median = _median(ordered)
        mad = _median(sorted(abs(u - median) for u in ordered))
        scale = max(MAD_TO_SD * mad, self.floor * abs(median), 1e-9)
        z = abs(v - median) / scale
        if z < self.z_min:
            return 0.0
        return z / (z + self.z_half) if z != math.inf else 1.0

    def score_one(self, x: Observation) -> float:
        raw = self._raw(value_of(x))
        return raw if all(raw > r for r in self._recent) else 0.0

    def learn_one(self, x: Observation) -> None:
        v = value_of(x)
        self._recent.append(self._raw(v))
        self._values.append(v)

    def score_learn_one(self, x: Observation) -> float:
        v = value_of(x)
        raw = self._raw(v)
        score = raw if all(raw > r for r in self._recent) else 0.0
        self._recent.append(raw)
        self._values.append(v)
        return score


class OpsEnsemble(AnomalyDetector):
    """The larger of ``novelty-ensemble``'s and ``robust-spike``'s scores."""

    name = "ops-ensemble"

    def __init__(self) -> None:
        self._novelty = NoveltyEnsemble()
        self._spike = RobustSpike()

    def score_one(self, x: Observation) -> float:
        return max(self._novelty.score_one(x), self._spike.score_one(x))

    def learn_one(self, x: Observation) -> None:
        self._novelty.learn_one(x)
        self._spike.learn_one(x)

    def score_learn_one(self, x: Observation) -> float:
        return max(self._novelty.score_learn_one(x), self._spike.score_learn_one(x))


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
