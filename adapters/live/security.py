"""``opsbench live security``: new CloudTrail records scored as they appear.

Every interval :meth:`LiveAuditScorer.step` reads the records an
:class:`~adapters.protocols.AuditLog` holds after its cursor, up to the current whole
second (so each read holds every record of the seconds it covers, as the analyser's
streaming scorer requires), and scores them with the shipped security analyser's
streaming scorer (:meth:`agents.security.analyser.SecurityAnalyser.stream`: the scorer
the replay's audit watcher uses, whose behaviour state grows with the records scored
before, in event-time order). An alert is the analyser's own decision
(``risk_score >= threshold_``); each becomes one JSON-able line holding the event's
identity and the analyser's full assessment. A record the analyser cannot read (no
``eventTime`` or ``eventName``) is reported as malformed, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.protocols import AuditLog
from agents.security.analyser import SecurityAnalyser
from agents.security.events import parse_event


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """What one read gave: the alerts and malformed records as JSON-able lines, the counts,
    and the cursor to read from next."""

    alerts: list[dict[str, Any]]
    malformed: list[dict[str, Any]]
    read: int
    scored: int
    kinds: Mapping[str, int]
    cursor: str


def _identity(record: Mapping[str, Any]) -> dict[str, Any]:
    who = record.get("userIdentity")
    return {
        "eventID": record.get("eventID"),
        "eventTime": record.get("eventTime"),
        "eventSource": record.get("eventSource"),
        "eventName": record.get("eventName"),
        "awsRegion": record.get("awsRegion"),
        "principal_arn": who.get("arn") if isinstance(who, Mapping) else None,
    }


@dataclass
class LiveAuditScorer:
    """Reads ``log`` from ``cursor`` on and scores what it finds with ``model``."""

    model: SecurityAnalyser
    log: AuditLog
    cursor: str | None = None
    totals: dict[str, int] = field(default_factory=lambda: {"read": 0, "scored": 0, "alerts": 0})

    def __post_init__(self) -> None:
        self.scorer = self.model.stream()

    def step(self, now: datetime) -> ScoredBatch:
        """Read and score the records before ``now``'s whole second."""
        batch = self.log.read(self.cursor, now.replace(microsecond=0))
        good: list[Mapping[str, Any]] = []
        malformed: list[dict[str, Any]] = []
        for record in batch.records:
            try:
                parse_event(record)
            except ValueError as exc:
                malformed.append({"kind": "malformed", "error": str(exc), **_identity(record)})
            else:
                good.append(record)
        alerts = []
        for record, assessed in zip(good, self.scorer.score_many(good), strict=True):
            if assessed["is_alert"]:
                alerts.append(
                    {
                        "kind": "alert",
                        "scored_at": now.isoformat(),
                        **_identity(record),
                        "analysis": assessed,
                    }
                )
        self.cursor = batch.cursor
        self.totals["read"] += len(batch.records)
        self.totals["scored"] += len(good)
        self.totals["alerts"] += len(alerts)
        return ScoredBatch(
            alerts, malformed, len(batch.records), len(good), dict(batch.kinds), batch.cursor
        )
