"""The security analyser as the replay's audit watcher (closed loop).

Implements :class:`sim.audit.watch.AuditWatcher`: each record is scored by the analyser's
streaming scorer, whose per-principal behaviour state holds only the records scored
before it (event-time order, as the replay delivers them), so no score looks ahead. An
alert is the analyser's own decision (``risk_score >= threshold_``, fixed when the model
was fitted, never per run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.security.analyser import SecurityAnalyser
from sim.audit.watch import AuditAlert


class AnalyserAuditWatcher:
    """Scores audit records one at a time with a fitted :class:`SecurityAnalyser`."""

    def __init__(self, model: SecurityAnalyser) -> None:
        self.scorer = model.stream()
        self.scored = 0

    def observe(self, records: Sequence[Mapping[str, Any]]) -> Sequence[AuditAlert]:
        alerts: list[AuditAlert] = []
        for record in records:
            out = self.scorer.score_one(record)
            self.scored += 1
            if out["is_alert"]:
                alerts.append(
                    AuditAlert(
                        str(out["eventID"]),
                        float(out["risk_score"]),
                        str(out["threat_category"]),
                        str(out["reasons"]),
                    )
                )
        return alerts
