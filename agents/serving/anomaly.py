"""A streaming metric anomaly detector as an endpoint: one point in, its score out.

A request is one point of one series: ``{series, timestamp (ISO 8601; without a zone,
UTC), value}``. As the replay's watcher does (:class:`agents.anomaly.base.DetectorBank`),
the endpoint keeps one detector per series, created on the series' first point, and
each point is scored then learnt (prequential): **an endpoint instance owns its
series**. Route every point of a series to the same instance, in time order; a
restarted instance starts every series afresh. The number of series is bounded
(``max_series``, default 10,000): a request that would start one more is refused whole
(HTTP 400 naming the limit) and changes nothing. The answer is ``{series, timestamp,
score (0..1), is_anomaly (score >= threshold), model_version}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, Field, NaiveDatetime

from agents.anomaly.base import AnomalyDetector
from agents.serving.protocol import PredictionError, RequestModel

MAX_SERIES = 10_000


class AnomalyRequest(RequestModel):
    """One point of one metric series."""

    series: str = Field(min_length=1, max_length=256, description="the series' name")
    timestamp: AwareDatetime | NaiveDatetime = Field(description="ISO 8601; no zone: UTC")
    value: float = Field(description="the metric's value, in its own unit")


def detector_version(detector: str, params: dict[str, Any], threshold: float) -> str:
    """First 12 hex of the sha256 of the canonical ``{detector, params, threshold}``."""
    text = json.dumps(
        {"detector": detector, "params": params, "threshold": threshold}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class AnomalyPredictor:
    """Per-series streaming scores (see the module).

    Parameters
    ----------
    factory
        Builds a fresh detector for a new series.
    threshold
        Score in (0, 1] at or above which a point is an anomaly.
    model_version
        Returned with every answer.
    max_series
        Series this instance keeps at most.
    """

    agent = "anomaly"
    request_model = AnomalyRequest
    csv_columns = ("series", "timestamp", "value")

    def __init__(
        self,
        factory: Callable[[], AnomalyDetector],
        *,
        threshold: float,
        model_version: str,
        max_series: int = MAX_SERIES,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold (={threshold}) must be in (0, 1]")
        self.factory = factory
        self.threshold = threshold
        self.model_version = model_version
        self.max_series = max_series
        self.detectors: dict[str, AnomalyDetector] = {}

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        new = {r.series for r in records} - self.detectors.keys()
        if len(self.detectors) + len(new) > self.max_series:
            raise PredictionError(
                f"series: this endpoint already keeps {len(self.detectors):,} series and the "
                f"request starts {len(new):,} more; at most {self.max_series:,} series per "
                "endpoint instance"
            )
        out = []
        for r in records:
            stamp = r.timestamp if r.timestamp.tzinfo else r.timestamp.replace(tzinfo=UTC)
            detector = self.detectors.get(r.series)
            if detector is None:
                detector = self.detectors[r.series] = self.factory()
            score = detector.score_learn_one({"value": r.value, "timestamp": stamp.timestamp()})
            out.append(
                {
                    "series": r.series,
                    "timestamp": stamp.isoformat(),
                    "score": score,
                    "is_anomaly": score >= self.threshold,
                    "model_version": self.model_version,
                }
            )
        return out

    def example_request(self) -> dict[str, Any]:
        """A CPU utilisation point of one pool."""
        when = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
        return {"series": "on-demand/cpu_utilization", "timestamp": when.isoformat(), "value": 0.42}
