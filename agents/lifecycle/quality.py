"""Prediction quality once the truth arrives: rolling windows a deployed model can keep.

- :class:`ForecastQuality`: a load forecaster's rolling MASE (mean absolute error of the
  median over a fixed scale: the seasonal-naive MAE of its training data, so 1.0 means "as
  good as yesterday's value") and the coverage of its p90 (the share of outcomes at or
  below it; 0.9 if calibrated), over the last ``window`` forecasts whose truth is known.
- :class:`RateMonitor`: the share of events a detector alerted on over the last
  ``window`` intervals (anomaly detector and security analyser), against the rate it had
  when it was validated.
- :class:`PagingRate`: alert minutes per hour over a sliding window against the rate of
  the first hours watched (a detector that learns online has no validation rate).

Both keep O(window) numbers, are deterministic and know nothing of the simulator: the
replay and a live loop feed them the same way.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


def _check_window(window: int) -> None:
    if window < 1:
        raise ValueError("window must be at least 1")


@dataclass(slots=True)
class ForecastQuality:
    """Rolling MASE and p90 coverage over the last ``window`` scored forecasts."""

    window: int
    scale: float
    errors: deque[float] = field(init=False)
    covered: deque[bool] = field(init=False)

    def __post_init__(self) -> None:
        _check_window(self.window)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError("scale must be a positive finite number")
        self.errors = deque(maxlen=self.window)
        self.covered = deque(maxlen=self.window)

    def add(self, actual: float, median: float, p90: float) -> None:
        """Score one forecast against its outcome (same unit, e.g. requests/s)."""
        if not all(math.isfinite(x) for x in (actual, median, p90)):
            raise ValueError("actual, median and p90 must be finite")
        self.errors.append(abs(actual - median))
        self.covered.append(actual <= p90)

    @property
    def n(self) -> int:
        return len(self.errors)

    @property
    def full(self) -> bool:
        return self.n == self.window

    @property
    def mase(self) -> float:
        """Rolling MASE (``nan`` before the first outcome)."""
        return sum(self.errors) / (self.n * self.scale) if self.n else math.nan

    @property
    def coverage(self) -> float:
        """Rolling share of outcomes at or below the p90 (``nan`` before the first)."""
        return sum(self.covered) / self.n if self.n else math.nan


@dataclass(slots=True)
class RateMonitor:
    """The alert rate over the last ``window`` intervals, against ``baseline``."""

    window: int
    baseline: float
    alerts: deque[int] = field(init=False)
    events: deque[int] = field(init=False)

    def __post_init__(self) -> None:
        _check_window(self.window)
        if not (0.0 <= self.baseline <= 1.0):
            raise ValueError("baseline must be a share in [0, 1]")
        self.alerts = deque(maxlen=self.window)
        self.events = deque(maxlen=self.window)

    def add(self, alerts: int, events: int) -> None:
        """One interval: ``alerts`` of its ``events`` raised an alert."""
        if not 0 <= alerts <= events:
            raise ValueError("need 0 <= alerts <= events")
        self.alerts.append(alerts)
        self.events.append(events)

    @property
    def rate(self) -> float:
        """Alerts per event over the window (``nan`` with no events)."""
        total = sum(self.events)
        return sum(self.alerts) / total if total else math.nan

    def ratio(self) -> float:
        """``rate / baseline`` (``inf`` when alerting over a zero baseline, ``nan`` with no
        events yet)."""
        rate = self.rate
        if math.isnan(rate):
            return math.nan
        if self.baseline == 0:
            return math.inf if rate > 0 else 1.0
        return rate / self.baseline


@dataclass(slots=True)
class PagingRate:
    """Minutes with an alert ("pages") per hour over the last ``window_s`` seconds, against
    a reference: the pages per hour of the first ``reference_s`` seconds watched, floored
    at ``min_reference_per_h``. :meth:`add` returns the window's ratio to the reference
    once it is known (``None`` before)."""

    window_s: float
    reference_s: float
    min_reference_per_h: float
    pages: deque[float] = field(init=False)
    reference_pages: int = 0
    reference_per_h: float | None = None

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and self.reference_s > 0 and self.min_reference_per_h > 0):
            raise ValueError("window_s, reference_s and min_reference_per_h must be positive")
        self.pages = deque()

    def add(self, t_s: float, paged: bool) -> float | None:
        """One watched minute ending at ``t_s`` (seconds since the start): whether it paged."""
        if paged:
            self.pages.append(t_s)
            if t_s <= self.reference_s:
                self.reference_pages += 1
        while self.pages and self.pages[0] <= t_s - self.window_s:
            self.pages.popleft()
        if t_s < self.reference_s:
            return None
        if self.reference_per_h is None:
            rate = self.reference_pages / (self.reference_s / 3600.0)
            self.reference_per_h = max(self.min_reference_per_h, rate)
        return self.rate_per_h / self.reference_per_h

    @property
    def rate_per_h(self) -> float:
        """Pages per hour over the window."""
        return len(self.pages) / (self.window_s / 3600.0)
