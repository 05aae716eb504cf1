"""The streaming feature pipeline of the predictive agent: minutes in, features out.

It keeps the offered load per minute (the history, then every observed minute) and, at
any minute, builds the working series that *ends at that minute*: 5-minute means of the
minutes before it. Its feature row
(:func:`agents.forecasting.features.origin_features`, the streaming twin of the
training features: a property test holds them equal) is a forecast origin, so the
agent re-forecasts every minute rather than once per bucket, and the plan window always
starts from now. At bucket boundaries the series equals the history's working series
extended by the observed buckets (tested).

Observed minutes: the offered load of every pool, summed. A minute without metrics (a
telemetry gap, or a control interval longer than a minute) repeats the last known
value. Gaps in the history are interpolated from the history alone (so nothing from the
replay window leaks into the features).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from agents.forecasting.features import origin_features
from agents.forecasting.series import DAY_S, WEEK_S

MINUTE_S = 60


class LoadPipeline:
    """Per-minute offered load → the working series ending now → feature rows.

    Parameters
    ----------
    history_rps
        Offered load (requests/s) per minute before ``start``, oldest first.
    history_gap
        True where a history minute was a gap in the data.
    start
        Wall-clock time of the replay's first minute.
    step_s
        The working step (seconds, a multiple of 60).
    """

    def __init__(
        self,
        history_rps: np.ndarray,
        history_gap: np.ndarray,
        start: datetime,
        *,
        step_s: int = 300,
    ) -> None:
        self.step_s = step_s
        self.per_bucket = step_s // MINUTE_S
        self.keep_buckets = WEEK_S // step_s + DAY_S // step_s + 2
        self.keep = self.keep_buckets * self.per_bucket
        minutes = np.asarray(history_rps, dtype=np.float64).copy()
        gap = np.asarray(history_gap, dtype=bool)
        if gap.any() and not gap.all():
            known = np.flatnonzero(~gap)
            minutes[gap] = np.interp(np.flatnonzero(gap), known, minutes[known])
        tail = minutes[-self.keep :]
        self._minutes = np.empty(4 * self.keep, dtype=np.float64)
        self._minutes[: tail.size] = tail
        self._size = tail.size
        self.next_minute_s = int(np.datetime64(start, "s").astype(np.int64))
        self.last_value = float(tail[-1]) if tail.size else 0.0

    @property
    def origin_end_s(self) -> int:
        """End (epoch seconds) of the latest minute held: the current origin's end."""
        return self.next_minute_s

    def observe(self, minute_start_s: int, offered_rps: float | None) -> bool:
        """Add one observed minute (``None``: no data); minutes never observed before it
        repeat the last known value. Returns whether the minute was new."""
        while self.next_minute_s < minute_start_s:
            self._add(self.last_value)
        if minute_start_s < self.next_minute_s:
            return False  # already seen
        if offered_rps is not None:
            self.last_value = float(offered_rps)
        self._add(self.last_value)
        return True

    def _add(self, value: float) -> None:
        if self._size == self._minutes.size:  # keep the last `keep` minutes
            self._minutes[: self.keep] = self._minutes[self._size - self.keep : self._size]
            self._size = self.keep
        self._minutes[self._size] = value
        self._size += 1
        self.next_minute_s += MINUTE_S

    def values(self) -> np.ndarray:
        """The working series ending now: means of whole buckets of minutes, oldest first."""
        n = (min(self._size, self.keep) // self.per_bucket) * self.per_bucket
        recent = self._minutes[self._size - n : self._size]
        out: np.ndarray = recent.reshape(-1, self.per_bucket).mean(axis=1)
        return out

    def features(self, horizon_min: int) -> np.ndarray:
        """The feature row of the origin ending now, for a horizon (minutes)."""
        return origin_features(
            self.values(),
            self.origin_end_s - self.step_s,
            step_s=self.step_s,
            horizon_steps=horizon_min * MINUTE_S // self.step_s,
        )
