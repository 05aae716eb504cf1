"""The streaming feature pipeline of the predictive agent: minutes in, features out.

It holds the load series on the working step (the history's working series, then one
bucket per completed working step of observed minutes) and, at each forecast origin,
computes the forecaster's feature row with
:func:`agents.forecasting.features.origin_features`, the streaming twin of the
features the model was trained on (a property test holds them equal).

Observed minutes: the offered load of every pool, summed. A minute without metrics (a
telemetry gap, or a control interval longer than a minute) repeats the last known
value; a working bucket is the mean of its minutes.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from agents.forecasting.features import origin_features
from agents.forecasting.series import DAY_S, WEEK_S, WorkingSeries

MINUTE_S = 60


class LoadPipeline:
    """Per-minute offered load → working buckets → feature rows.

    Parameters
    ----------
    history
        The history as a working series (ends at or before ``start``).
    history_rps
        The history per minute (requests/s, filled), ending at ``start``: supplies the
        minutes of a bucket that straddles ``start``.
    start
        Wall-clock time of the replay's first minute.
    """

    def __init__(self, history: WorkingSeries, history_rps: np.ndarray, start: datetime) -> None:
        self.step_s = history.step_s
        self.keep = WEEK_S // self.step_s + DAY_S // self.step_s + 2
        capacity = 4 * self.keep
        self._values = np.empty(capacity, dtype=np.float64)
        tail = np.asarray(history.values[-self.keep :], dtype=np.float64)
        self._values[: tail.size] = tail
        self._size = tail.size
        self.bucket_end_s = int(history.timestamps[-1].astype("datetime64[s]").astype(np.int64))
        self.bucket_end_s += self.step_s
        start_s = int(np.datetime64(start, "s").astype(np.int64))
        carried = (start_s - self.bucket_end_s) // MINUTE_S
        self._pending: list[float] = [float(v) for v in history_rps[history_rps.size - carried :]]
        if carried <= 0:
            self._pending = []
        self.next_minute_s = start_s
        self.last_value = float(history_rps[-1]) if history_rps.size else 0.0

    @property
    def values(self) -> np.ndarray:
        """The working series held (oldest first), requests/s."""
        return self._values[: self._size]

    @property
    def origin_start_s(self) -> int:
        """Start (epoch seconds) of the latest complete bucket: the current origin."""
        return self.bucket_end_s - self.step_s

    def observe(self, minute_start_s: int, offered_rps: float | None) -> bool:
        """Add one observed minute (``None``: no data). Returns whether at least one
        working bucket completed, i.e. a new forecast origin exists."""
        completed = False
        while self.next_minute_s < minute_start_s:  # minutes never observed: carry forward
            completed |= self._add(self.last_value)
        if minute_start_s < self.next_minute_s:
            return completed  # already seen
        if offered_rps is not None:
            self.last_value = float(offered_rps)
        return self._add(self.last_value) or completed

    def _add(self, value: float) -> bool:
        self._pending.append(value)
        self.next_minute_s += MINUTE_S
        if self.next_minute_s - self.bucket_end_s < self.step_s:
            return False
        if self._size == self._values.size:  # keep the last `keep` buckets
            self._values[: self.keep] = self._values[self._size - self.keep : self._size]
            self._size = self.keep
        self._values[self._size] = sum(self._pending) / len(self._pending)
        self._size += 1
        self._pending = []
        self.bucket_end_s += self.step_s
        return True

    def features(self, horizon_min: int) -> np.ndarray:
        """The feature row of the current origin for a horizon (minutes)."""
        return origin_features(
            self.values[-self.keep :],
            self.origin_start_s,
            step_s=self.step_s,
            horizon_steps=horizon_min * MINUTE_S // self.step_s,
        )
