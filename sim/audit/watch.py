"""The seam between the replay's audit events and a security watcher (closed loop).

Every simulated minute the replay hands an :class:`AuditWatcher` the CloudTrail records
whose ``eventTime`` fell in that minute, in event-time order (whole seconds: the records
of one second come in one call, in the order they were drawn); the watcher scores each
from what it has seen so far and returns one :class:`AuditAlert` per record it alerts
on. The replay books each alert as a ``security_alert`` event in the ``events`` stream at
the end of that minute (``node_id``/``pool`` empty, ``reason``
``"<eventName> risk=<r> <category> id=<eventID> principal=<arn>"``). The simulator knows
nothing of how records are scored: ``bench`` plugs in an analyser from ``agents``.

:func:`security_summary` scores the booked alerts against the ground-truth labels the
generator keeps *beside* the records (never inside them, never shown to the watcher):

- per campaign, the **detection delay**: from the campaign's first record (its first
  call: the configured ``start_h`` plus the attacker's own pace; a stolen key makes no
  record before it is used) to the first alert on one of that campaign's records
  (simulated minutes; ``None`` if none), and the same per technique stage (from the
  stage's first record). Alerts are raised at the end of the minute a record falls in,
  so a delay is at least the rest of that minute;
- **false alerts**: alerts on records labelled ``normal``, per simulated day (and per
  day of the replay: a cold-start analyser knows no principal's habits on day one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

SECURITY_ALERT_EVENT = "security_alert"


class AuditAlert(NamedTuple):
    """One alert on one audit record (``risk`` in [0, 1])."""

    event_id: str
    risk: float
    category: str
    reasons: str


class AuditWatcher(Protocol):
    """Scores audit records as they arrive and returns the alerts to raise."""

    def observe(self, records: Sequence[Mapping[str, Any]]) -> Sequence[AuditAlert]:
        """Learn ``records`` (event-time order, every record of each second they cover,
        all after every earlier call's) and return the alerts; a record's score may use
        only earlier records, and must not depend on the order of one second's records."""


class BookedAlert(NamedTuple):
    """An alert as the replay booked it (times: seconds since the replay start)."""

    sim_time_s: float  # when the alert was raised (end of the record's minute)
    event_time_s: float  # the alerted record's eventTime
    event_id: str
    event_name: str
    principal: str
    risk: float
    category: str


class LabelRow(NamedTuple):
    """Ground truth of one emitted record, kept beside it."""

    event_id: str
    event_time_s: float
    label: str  # normal | suspicious | malicious
    technique: str
    campaign: str
    principal_kind: str


class CampaignStart(NamedTuple):
    """A configured campaign: id, start (simulated seconds) and entry."""

    campaign: str
    start_s: float
    entry: str


def _delay_min(first_alert_s: float | None, start_s: float) -> float | None:
    if first_alert_s is None:
        return None
    return round((first_alert_s - start_s) / 60.0, 2)


def security_summary(
    labels: Sequence[LabelRow],
    alerts: Sequence[BookedAlert] | None,
    campaigns: Sequence[CampaignStart],
    duration_s: float,
    *,
    after_end: int = 0,
) -> dict[str, Any]:
    """Event counts; with ``alerts`` (a watcher ran): detection delay per campaign and
    technique stage (simulated minutes), recall on malicious records, false alerts/day."""
    counts = {"normal": 0, "suspicious": 0, "malicious": 0}
    for row in labels:
        counts[row.label] = counts.get(row.label, 0) + 1
    out: dict[str, Any] = {
        "audit_events": len(labels),
        "normal_events": counts["normal"],
        "suspicious_events": counts["suspicious"],
        "malicious_events": counts["malicious"],
        "events_after_end": after_end,
        "watched": alerts is not None,
    }
    by_id = {row.event_id: row for row in labels}
    booked = list(alerts or [])
    per_campaign: list[dict[str, Any]] = []
    for c in campaigns:
        rows = [r for r in labels if r.campaign == c.campaign]
        hits = [a for a in booked if by_id[a.event_id].campaign == c.campaign]
        first = min(hits, key=lambda a: (a.sim_time_s, a.event_time_s)) if hits else None
        begin = rows[0].event_time_s if rows else None
        stages: list[dict[str, Any]] = []
        for tech in dict.fromkeys(r.technique for r in rows):
            stage = [r for r in rows if r.technique == tech]
            stage_hits = [a for a in hits if by_id[a.event_id].technique == tech]
            stage_first = min((a.sim_time_s for a in stage_hits), default=None)
            start = stage[0].event_time_s
            stages.append(
                {
                    "technique": tech,
                    "start_h": round(start / 3600.0, 4),
                    "events": len(stage),
                    "alerts": len(stage_hits),
                    "delay_min": _delay_min(stage_first, start) if alerts is not None else None,
                }
            )
        entry: dict[str, Any] = {
            "campaign": c.campaign,
            "entry": c.entry,
            "start_h": round(c.start_s / 3600.0, 4),
            "first_event_h": round(begin / 3600.0, 4) if begin is not None else None,
            "events": len(rows),
            "malicious_events": sum(r.label == "malicious" for r in rows),
            "stages": stages,
        }
        if alerts is not None:
            entry["alerts"] = len(hits)
            entry["delay_min"] = (
                _delay_min(first.sim_time_s if first else None, begin)
                if begin is not None
                else None
            )
            entry["first_alert"] = (
                f"{first.event_name} ({by_id[first.event_id].technique})" if first else None
            )
        per_campaign.append(entry)
    out["campaigns"] = per_campaign
    if alerts is None:
        return out
    false = [a for a in booked if by_id[a.event_id].label == "normal"]
    caught = {a.event_id for a in booked if by_id[a.event_id].label == "malicious"}
    delays = [c["delay_min"] for c in per_campaign if c["delay_min"] is not None]
    days = duration_s / 86400.0
    out.update(
        {
            "alerts": len(booked),
            "campaigns_detected": len(delays),
            "detection_delay_min": max(delays) if delays else None,
            "malicious_recall": round(len(caught) / counts["malicious"], 4)
            if counts["malicious"]
            else None,
            "false_alerts": len(false),
            "false_alerts_per_day": round(len(false) / days, 3) if days > 0 else 0.0,
            "false_alert_principals": len({a.principal for a in false}),
            "false_alerts_by_day": [
                sum(1 for a in false if int(a.sim_time_s // 86400.0) == d)
                for d in range(max(1, math.ceil(days)))
            ],
        }
    )
    return out
