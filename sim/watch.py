"""The seam between the replay and a metric watcher (streaming anomaly detection).

Every simulated minute whose metrics reach monitoring (not in a telemetry gap), the replay
hands a :class:`MetricWatcher` that minute's metrics per pool and books every
:class:`MetricAlert` it returns as an ``anomaly_alert`` event in the ``events`` stream
(``node_id`` empty, ``reason`` ``"<metric> score=<score>"``). The simulator knows nothing of
how alerts are raised: ``bench`` plugs a detector from ``agents`` in.

:func:`detection_summary` scores the alerts against the injected faults (AZ outages and
spot storms, whose onsets the scenario fixes): the detection delay of each fault (first
alert at or after its onset, before its end plus ``RECOVERY_S``, in simulated minutes) and
the false alerts per simulated day (minutes with at least one alert outside every fault's
``[onset, end + RECOVERY_S]``: one page per minute, however many series fired).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from sim.control import PoolMetrics

ALERT_EVENT = "anomaly_alert"
RECOVERY_S = 3600.0  # after a fault ends, alerts still belong to it for this long (seconds)


class MetricAlert(NamedTuple):
    """One alert: which pool's which metric, and the detector's score in [0, 1]."""

    pool: str
    metric: str
    score: float


class MetricWatcher(Protocol):
    """Watches per-pool metrics once per minute and returns the alerts to raise."""

    def observe(
        self, timestamp_s: float, metrics: Mapping[str, PoolMetrics]
    ) -> Sequence[MetricAlert]:
        """Learn one minute of metrics (``timestamp_s``: epoch seconds) and return alerts."""


class BookedAlert(NamedTuple):
    """An alert as the replay booked it (``sim_time_s``: seconds since the replay start)."""

    sim_time_s: float
    pool: str
    metric: str
    score: float


class FaultWindow(NamedTuple):
    """An injected fault: kind, onset and end in simulated seconds."""

    kind: str
    onset_s: float
    end_s: float


SLO_CONTEXT_MIN = 5
"""Minutes around an SLO-violation minute within which a false alert is explained by it."""


def detection_summary(
    alerts: Sequence[BookedAlert],
    faults: Sequence[FaultWindow],
    duration_s: float,
    slo_violation_minutes: Sequence[int] = (),
) -> dict[str, Any]:
    """Detection delay per fault (simulated minutes; None if missed) and false alerts per day.

    A false alert (one outside every fault's window) within ``SLO_CONTEXT_MIN`` minutes of
    a minute that missed the SLO is also counted in ``false_alerts_during_slo_violations``:
    no fault was injected then, but the service really was degraded (e.g. a policy slow to
    follow a ramp)."""
    per_fault: list[dict[str, Any]] = []
    for f in faults:
        hits = [a for a in alerts if f.onset_s <= a.sim_time_s <= f.end_s + RECOVERY_S]
        first = min(hits, key=lambda a: a.sim_time_s) if hits else None
        per_fault.append(
            {
                "fault": f.kind,
                "onset_h": round(f.onset_s / 3600.0, 4),
                "delay_min": round((first.sim_time_s - f.onset_s) / 60.0, 2) if first else None,
                "first_alert": f"{first.pool}/{first.metric}" if first else None,
            }
        )
    false_minutes = {
        int(a.sim_time_s // 60)
        for a in alerts
        if not any(f.onset_s <= a.sim_time_s <= f.end_s + RECOVERY_S for f in faults)
    }
    degraded: set[int] = set()
    for minute in slo_violation_minutes:
        degraded.update(range(minute - SLO_CONTEXT_MIN, minute + SLO_CONTEXT_MIN + 1))
    during_slo = len(false_minutes & degraded)
    delays = [p["delay_min"] for p in per_fault if p["delay_min"] is not None]
    days = duration_s / 86400.0
    return {
        "alerts": len(alerts),
        "faults": len(faults),
        "faults_detected": len(delays),
        "detection_delay_min": max(delays) if delays else None,
        "false_alerts": len(false_minutes),
        "false_alerts_per_day": round(len(false_minutes) / days, 3) if days > 0 else 0.0,
        "false_alerts_during_slo_violations": during_slo,
        "false_alerts_outside_slo_violations_per_day": round(
            (len(false_minutes) - during_slo) / days, 3
        )
        if days > 0
        else 0.0,
        "per_fault": per_fault,
    }
