"""The metric anomaly detector under the lifecycle loop, inside a replay.

:class:`ManagedMetricWatcher` is a :class:`sim.watch.MetricWatcher`: it passes every
minute's metrics to the scenario's detector and returns its alerts unchanged, and beside
it keeps the paging rate (minutes with an alert per hour, :class:`~.quality.PagingRate`)
over ``alert_window_h`` against the rate of the replay's first ``reference_h`` hours. A
window above ``alert_rate_factor`` times the reference is a detection, booked once per
episode in the replay's :class:`~sim.lifecycle_events.LifecycleLog`. The detectors learn
online every minute, so nothing is retrained or rolled out: the monitor is the operator's
signal that the detector pages far more than it did (an alert storm, a fault, or a
detector no longer suited to the metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from agents.lifecycle.quality import PagingRate
from sim.control import PoolMetrics
from sim.lifecycle import AnomalyLifecycle
from sim.lifecycle_events import LifecycleLog
from sim.watch import MetricAlert, MetricWatcher


class ManagedMetricWatcher:
    """A metric watcher with its paging-rate monitor (see the module)."""

    def __init__(
        self,
        inner: MetricWatcher,
        *,
        settings: AnomalyLifecycle,
        log: LifecycleLog,
        model_name: str,
        start: datetime,
    ) -> None:
        self.inner = inner
        self.settings = settings
        self.log = log
        self.model_name = model_name
        self.start = start
        self.start_s = (start - datetime(1970, 1, 1)).total_seconds()
        self.rate = PagingRate(
            settings.alert_window_h * 3600.0,
            settings.reference_h * 3600.0,
            settings.min_reference_per_h,
        )
        self.detecting = False
        self.detections: list[dict[str, Any]] = []
        self.phase_marks: list[tuple[int, str, str]] = [(0, "champion", model_name)]

    def observe(
        self, timestamp_s: float, metrics: Mapping[str, PoolMetrics]
    ) -> Sequence[MetricAlert]:
        alerts = self.inner.observe(timestamp_s, metrics)
        t_s = timestamp_s - self.start_s + 60.0  # the end of the minute watched
        ratio = self.rate.add(t_s, bool(alerts))
        if ratio is None or ratio <= self.settings.alert_rate_factor:
            self.detecting = False
            return alerts
        if not self.detecting:
            self.detecting = True
            minute = int(t_s // 60)
            detection = {
                "t_min": minute,
                "time": (self.start + timedelta(minutes=minute)).isoformat(),
                "feature": "paging_rate",
                "statistic": "rate_ratio",
                "value": round(ratio, 6),
                "pages_per_h": round(self.rate.rate_per_h, 6),
                "reference_per_h": round(self.rate.reference_per_h or 0.0, 6),
            }
            self.detections.append(detection)
            self.log.book(self.model_name, "drift", detection)
        return alerts

    def report(self) -> dict[str, Any]:
        """This model's block of the summary's ``lifecycle`` (nothing retrained)."""
        return {
            "name": self.model_name,
            "champion": self.model_name,
            "reference_pages_per_h": self.rate.reference_per_h,
            "drift_detections": list(self.detections),
            "retrains": [],
            "rollouts": [],
            "promotions": 0,
            "rollbacks": 0,
            "max_challenger_share": 0.0,
        }
