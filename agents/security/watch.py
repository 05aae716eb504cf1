"""The security analyser as the replay's audit watcher (closed loop).

Implements :class:`sim.audit.watch.AuditWatcher`: each minute's records are scored by the
analyser's streaming scorer in scoring order (by time, the records of one second by
``eventID``, as :meth:`SecurityAnalyser.analyse` orders them; the minute holds whole
seconds), whose per-principal behaviour state holds only the records scored before, so
no score looks ahead and none depends on the order the records were drawn in. An
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
        for out in self.scorer.score_many(records):
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
