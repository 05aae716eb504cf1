"""A metric watcher for the replay: one streaming detector per (pool, metric).

Implements :class:`sim.watch.MetricWatcher`. Each minute, every watched metric of every pool
is scored then learnt by its own detector (prequential, per-series state); a score at or
above ``threshold`` (fixed in the scenario, never tuned on the run) is an alert. A value
that is not a finite number (e.g. p95 latency while nothing serves) is skipped: the detector
neither scores nor learns it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from agents.anomaly.base import AnomalyDetector, DetectorBank
from sim.control import PoolMetrics
from sim.scenario import Detection
from sim.watch import MetricAlert


class PoolMetricWatcher:
    """Alerts when a pool metric's anomaly score reaches ``threshold``.

    Parameters
    ----------
    factory
        Builds a fresh detector for each (pool, metric) series.
    metrics
        Names of :class:`~sim.control.PoolMetrics` fields to watch.
    threshold
        Score in (0, 1] at or above which an alert is raised.
    """

    def __init__(
        self,
        factory: Callable[[], AnomalyDetector],
        metrics: Sequence[str],
        threshold: float,
    ) -> None:
        unknown = sorted(set(metrics) - set(PoolMetrics._fields))
        if unknown:
            raise ValueError(f"unknown metrics {unknown} (allowed: {PoolMetrics._fields})")
        self.metrics = tuple(metrics)
        self.threshold = threshold
        self._bank = DetectorBank(factory)

    def observe(
        self, timestamp_s: float, metrics: Mapping[str, PoolMetrics]
    ) -> Sequence[MetricAlert]:
        alerts: list[MetricAlert] = []
        for pool, row in metrics.items():
            for name in self.metrics:
                value = float(getattr(row, name))
                if not math.isfinite(value):
                    continue
                score = self._bank.score_learn_one(
                    f"{pool}/{name}", {"value": value, "timestamp": timestamp_s}
                )
                if score >= self.threshold:
                    alerts.append(MetricAlert(pool, name, score))
        return alerts


def watcher_for(detection: Detection | None, *, source: str) -> PoolMetricWatcher | None:
    """The watcher a scenario's ``detection`` section asks for (None: no detection).

    An unknown detector raises InputError naming ``source`` and ``detection.detector``.
    """
    if detection is None:
        return None
    from agents.registry import DETECTORS

    spec = DETECTORS.spec(detection.detector, source=source, field="detection.detector")
    return PoolMetricWatcher(
        partial(DETECTORS.make, spec.id), detection.metrics, detection.threshold
    )
