"""``opsbench live security``: new CloudTrail records scored as they appear.

Every interval :meth:`LiveAuditScorer.step` reads the records an
:class:`~adapters.protocols.AuditLog` holds after its cursor, up to ``now - lag_s`` (a
whole second, so each read holds every record of the seconds it covers, as the analyser's
streaming scorer requires; the lag covers CloudTrail's delivery delay: an event reaches
``lookup_events`` minutes after it happens, a trail file lands in S3 about 5-15 minutes
after its events), and scores them with the shipped security analyser's
streaming scorer (:meth:`agents.security.analyser.SecurityAnalyser.stream`: the scorer
the replay's audit watcher uses, whose behaviour state grows with the records scored
before, in event-time order). An alert is the analyser's own decision
(``risk_score >= threshold_``); each becomes one JSON-able line holding the event's
identity and the analyser's full assessment. Nothing is dropped silently: what the
reader could not turn into a record (``AuditBatch.malformed``: an unreadable object, an
item the normaliser refuses) and a record the analyser cannot read are reported as
``malformed`` lines, each with ``where`` it came from and the ``error``.

The reader's cursor can be kept in a file (:func:`read_cursor_file`,
:func:`write_cursor_file`) so that runs from cron resume where the last one stopped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.protocols import AuditLog
from agents.security.analyser import SecurityAnalyser
from agents.security.events import parse_event
from sim.atomic import writing_file
from sim.errors import InputError


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
    """Reads ``log`` from ``cursor`` on and scores what it finds with ``model``; each read
    stops ``lag_s`` seconds before its ``now``."""

    model: SecurityAnalyser
    log: AuditLog
    cursor: str | None = None
    lag_s: float = 0.0
    totals: dict[str, int] = field(
        default_factory=lambda: {"reads": 0, "read": 0, "scored": 0, "alerts": 0, "malformed": 0}
    )

    def __post_init__(self) -> None:
        self.scorer = self.model.stream()

    def step(self, now: datetime) -> ScoredBatch:
        """Read and score the records before ``now - lag_s`` (its whole second)."""
        until = (now - timedelta(seconds=self.lag_s)).replace(microsecond=0)
        batch = self.log.read(self.cursor, until)
        good: list[Mapping[str, Any]] = []
        malformed: list[dict[str, Any]] = [
            {"kind": "malformed", "where": where, "error": reason}
            for where, reason in batch.malformed
        ]
        for record in batch.records:
            try:
                parse_event(record)
            except ValueError as exc:
                where = f"record {record.get('eventID')}"
                malformed.append(
                    {"kind": "malformed", "where": where, "error": str(exc), **_identity(record)}
                )
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
        self.totals["reads"] += 1
        self.totals["read"] += len(batch.records)
        self.totals["scored"] += len(good)
        self.totals["alerts"] += len(alerts)
        self.totals["malformed"] += len(malformed)
        return ScoredBatch(
            alerts, malformed, len(batch.records), len(good), dict(batch.kinds), batch.cursor
        )


# --------------------------------------------------------------------------- cursor file

CURSOR_FILE_KIND = "opsbench live security cursor"
CURSOR_FILE_VERSION = 1


def read_cursor_file(path: Path, source: str) -> str | None:
    """The reader's cursor an earlier ``opsbench live security`` run wrote to ``path`` for
    ``source`` (None if ``path`` does not exist yet).

    Raises
    ------
    InputError
        If ``path`` is not such a file (a folder, not JSON, another kind or version,
        written for another source).
    """
    allowed = f"a cursor file opsbench live security wrote for {source}, or a new path"
    if path.is_dir():
        raise InputError(path, "--cursor", "is a directory", allowed)
    if not path.parent.is_dir():
        raise InputError(path, "--cursor", "its folder does not exist", allowed)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, "(file)", f"not JSON ({exc})", allowed) from None
    if not isinstance(doc, dict) or doc.get("kind") != CURSOR_FILE_KIND:
        raise InputError(path, "kind", f"is not {CURSOR_FILE_KIND!r}", allowed)
    if doc.get("version") != CURSOR_FILE_VERSION:
        raise InputError(path, "version", f"{doc.get('version')!r} is not supported", allowed)
    if doc.get("source") != source:
        raise InputError(path, "source", f"written for {doc.get('source')!r}", allowed)
    cursor = doc.get("cursor")
    if not isinstance(cursor, str):
        raise InputError(path, "cursor", "missing or not a string", allowed)
    return cursor


def write_cursor_file(path: Path, source: str, cursor: str, *, written_at: datetime) -> None:
    """Replace ``path`` with ``cursor`` for ``source`` atomically (a reader or a crash
    sees the old file or the new one, never a mix)."""
    doc = {
        "kind": CURSOR_FILE_KIND,
        "version": CURSOR_FILE_VERSION,
        "source": source,
        "written_at": written_at.isoformat(),
        "cursor": cursor,
    }
    with writing_file(path) as staging:
        staging.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
