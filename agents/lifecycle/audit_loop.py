"""The security analyser under the lifecycle loop, inside a replay.

:class:`ManagedAuditWatcher` is a :class:`sim.audit.watch.AuditWatcher`: it scores every
minute's audit records with the champion analyser (only the champion's alerts are
returned, so only they become ``security_alert`` events) and runs the lifecycle beside it:

1. **Monitor**: the champion's alerts per hour over the last ``alert_window_h`` against its
   *reference rate*, its alerts per hour over the replay's first ``reference_h`` hours
   (floored at ``min_reference_per_h``); the risk scores of the window against the
   reference's (PSI over ten fixed bins of [0, 1]) are reported beside it.
2. **Trigger**: once the reference is known, a window rate above ``alert_rate_factor``
   times the reference is a detection (booked once per episode) and triggers a retrain at
   once, unless a rollout is on or the last retrain was less than ``cooldown_h`` ago.
3. **Retrain** point-in-time: the records observed with ``eventTime`` before the trigger,
   the last ``retrain_window_days`` of them, labelled ``normal`` -- except the
   **quarantine**: every session (source address and user agent) holding a record the
   champion alerted on *and* that fires a Sigma rule (:mod:`agents.security.sigma`) is
   left out whole, so a running attack campaign, which the champion flags on calls the
   Sigma rules also know, is never learnt as normal. A quarantined session whose
   champion alerts fire at least :data:`INCIDENT_RULES` *distinct* Sigma rules is an
   **incident** (several independent detections in one session, as a SIEM's correlation
   rule would have it); its records that both flagged are learnt as ``malicious``. The
   other quarantined sessions (one rule: a single odd call) are left out, neither normal
   nor malicious. More attack examples come from labelled simulated accounts
   (``threat_accounts``, fixed seed), as in the champion's training.
   The latest ``holdout_fraction`` of the window is held back; the candidate (the
   champion's hyper-parameters) is fitted on the rest.
4. **Validate** on the held-back slice, both models scoring the window (the kept records
   and the quarantined ones, in event-time order) from an empty behaviour state. **Gate**:
   the candidate raises no more alerts on the held-back slice than the champion, and it
   alerts on at least one record of every incident session. What must be kept is the
   detection of *campaigns*, and a campaign is detected when any one of its records
   alerts: a candidate that alerts on the third call of an intrusion instead of the first
   and the fifth loses nothing a triage would act on, while one that stays silent on a
   whole session loses the campaign. The gate is therefore stated per session
   (``incident_session_recall``); the record-level recall on the incidents' flagged
   records (``incident_recall``) and the quarantined sessions' count and recall
   (``quarantined_sessions``, ``quarantine_session_recall``) are reported beside it. A
   candidate that passes is registered as the model's ``challenger`` (lineage: parent,
   trigger, data range).
5. **Shadow** for ``shadow_h``: both score every minute (the challenger first catches up on
   every record observed, so its behaviour state is the champion's); only the champion's
   alerts are booked, both are counted per session. An *incident* of the shadow is a
   session in which the champion's alerts fire at least :data:`INCIDENT_RULES` distinct
   Sigma rules; a model's *noise* is its alerts outside incidents (an attack running
   during the shadow is what alerts are for, not a rate to hold against a challenger
   that keeps it). **Rule**: promote iff the challenger's noise per hour is below the
   champion's and at most ``alert_rate_factor`` times the reference, and the challenger
   alerted on at least one record of every incident (the same session-level rule as the
   gate; the record-level counts ``sigma_alerted`` and ``sigma_missed`` and both total
   rates are reported beside it); otherwise roll back (the champion stays).

Known limits: a session is quarantined only once one of its alerts fires a Sigma rule, so
a campaign caught in the retrain window before its first Sigma hit is learnt as
``normal``; an attack session that has fired only one distinct rule is not yet an
incident, so the gate does not ask a candidate to keep it (it is still quarantined, never
learnt as normal). The incident rule was chosen after reading, with the simulator's labels,
why the earlier gate (every quarantined session kept) refused every candidate on
``new-service-account``: the benign quarantined sessions there fired one rule each
(GetCallerIdentity, a failed console login, a bucket deletion), the campaign six; so that
scenario's figures are not an unseen-data measurement of this rule.

Every detection, retrain, stage, promotion and rollback is booked in the replay's
:class:`~sim.lifecycle_events.LifecycleLog` (deterministic detail only; wall times and
registry versions beside it) and summarised by :meth:`ManagedAuditWatcher.report`.
Times: ``t_min`` simulated minutes since the replay start, ``time`` ISO 8601.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from agents.security.analyser import SecurityAnalyser, StreamScorer
from agents.security.sigma import SigmaBaseline
from sim.audit.watch import AuditAlert
from sim.lifecycle_events import LifecycleLog
from sim.lifecycle_security import SecurityLifecycle

RISK_BINS = np.linspace(0.0, 1.0, 11)
"""The fixed bins of the risk-score PSI."""
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class AuditRegistrar(Protocol):
    """Registers candidates and moves aliases for the loop (the composition root's)."""

    def register(
        self, model: SecurityAnalyser, *, parent: str, trigger: str, data_start: str,
        data_end: str, metrics: Mapping[str, float],
    ) -> tuple[str, str]:  # fmt: skip
        """Register ``model`` as the challenger; returns (``NAME/VERSION``, artefact digest)."""

    def promote(self, ref: str) -> None:
        """Make ``ref`` the champion."""

    def roll_back(self, ref: str) -> None:
        """Withdraw the challenger ``ref`` (the champion is untouched)."""


INCIDENT_RULES = 2
"""Distinct Sigma rules among the champion's alerts in one session that make it an
incident (see the module)."""


@dataclass(frozen=True, slots=True)
class Seen:
    """One observed record: its event time (s since the replay start), session key,
    whether the champion alerted on it and the Sigma rule it fires ("" if none)."""

    t_s: float
    record: Mapping[str, Any]
    session: tuple[str, str]
    alert: bool
    rule: str

    @property
    def sigma(self) -> bool:
        """Whether the record fires a Sigma rule."""
        return bool(self.rule)


def incidents(seen: Sequence[Seen]) -> set[tuple[str, str]]:
    """Sessions in which the champion's alerts fire at least :data:`INCIDENT_RULES`
    distinct Sigma rules."""
    rules: dict[tuple[str, str], set[str]] = {}
    for s in seen:
        if s.alert and s.rule:
            rules.setdefault(s.session, set()).add(s.rule)
    return incident_sessions(rules)


def incident_sessions(rules: Mapping[tuple[str, str], set[str]]) -> set[tuple[str, str]]:
    """The sessions among ``rules`` (session -> the Sigma rules its champion alerts
    fired) with at least :data:`INCIDENT_RULES` of them."""
    return {k for k, v in rules.items() if len(v) >= INCIDENT_RULES}


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """What a retrain fits on (``train``) and validates on (``holdout``), and what it
    left out (``quarantined``; the sessions among them that are ``incidents``), all
    records from before ``end_s``."""

    train: list[Mapping[str, Any]]
    holdout: list[Mapping[str, Any]]
    quarantined: list[Seen]
    incidents: set[tuple[str, str]]
    start_s: float
    end_s: float


def training_set(
    seen: Sequence[Seen], *, end_s: float, window_s: float, holdout_fraction: float
) -> TrainingSet:
    """The point-in-time training set of a retrain at ``end_s`` (see the module): records
    with event time in ``[end_s - window_s, end_s)``, quarantined sessions left out, the
    latest ``holdout_fraction`` held back."""
    start_s = max(0.0, end_s - window_s)
    window = [s for s in seen if start_s <= s.t_s < end_s]
    bad = {s.session for s in window if s.alert and s.sigma}
    kept = [s for s in window if s.session not in bad]
    cut = len(kept) - max(1, round(holdout_fraction * len(kept))) if kept else 0
    return TrainingSet(
        train=[s.record for s in kept[:cut]],
        holdout=[s.record for s in kept[cut:]],
        quarantined=[s for s in window if s.session in bad],
        incidents=incidents(window),
        start_s=start_s,
        end_s=end_s,
    )


def risk_psi(reference: Sequence[float], window: Sequence[float]) -> float:
    """PSI of ``window``'s risk scores against ``reference``'s (:data:`RISK_BINS`)."""
    if not reference or not window:
        return math.nan
    ref = np.histogram(np.clip(reference, 0, 1), RISK_BINS)[0] / len(reference)
    cur = np.histogram(np.clip(window, 0, 1), RISK_BINS)[0] / len(window)
    ref, cur = np.maximum(ref, 1e-4), np.maximum(cur, 1e-4)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


@dataclass(slots=True)
class _Shadow:
    ref: str
    sha256: str
    model: SecurityAnalyser
    scorer: StreamScorer
    trigger: str
    from_s: float
    stages: list[dict[str, Any]] = field(default_factory=list)
    champion_alerts: dict[tuple[str, str], int] = field(default_factory=dict)  # per session
    challenger_alerts: dict[tuple[str, str], int] = field(default_factory=dict)
    sigma_alerted: int = 0
    sigma_missed: int = 0
    sigma_rules: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    challenger_sessions: set[tuple[str, str]] = field(default_factory=set)


class ManagedAuditWatcher:
    """The champion analyser as the replay's audit watcher, under the lifecycle loop
    (see the module).

    Parameters
    ----------
    champion, champion_ref, champion_sha256
        The analyser the replay starts with and its registered version and digest.
    settings
        The scenario's ``lifecycle.security``.
    start
        Wall-clock time of simulated second 0.
    threats
        Labelled attack examples (records, labels) from simulated accounts.
    sigma
        The Sigma rules of the quarantine and the promotion rule.
    registrar, log, model_name
        Where challengers are registered, where the loop books, the registered name.
    """

    def __init__(
        self,
        champion: SecurityAnalyser,
        *,
        champion_ref: str,
        champion_sha256: str,
        settings: SecurityLifecycle,
        start: datetime,
        threats: tuple[Sequence[Mapping[str, Any]], Sequence[str]],
        sigma: SigmaBaseline,
        registrar: AuditRegistrar,
        log: LifecycleLog,
        model_name: str,
    ) -> None:
        self.champion = champion
        self.scorer = champion.stream()
        self.champion_ref, self.champion_sha256 = champion_ref, champion_sha256
        self.settings = settings
        self.start = start
        self.threats = threats
        self.sigma = sigma
        self.registrar = registrar
        self.log = log
        self.model_name = model_name
        self.seen: list[Seen] = []
        self.alert_times: deque[tuple[float, float]] = deque()  # (t_s, risk) in the window
        self.window_risk: deque[tuple[float, float]] = deque()
        self.reference_risk: list[float] = []
        self.reference_alerts = 0
        self.reference_per_h: float | None = None
        self.detecting = False
        self.last_retrain_s: float | None = None
        self.shadow: _Shadow | None = None
        self.detections: list[dict[str, Any]] = []
        self.retrains: list[dict[str, Any]] = []
        self.rollouts: list[dict[str, Any]] = []
        self.promotions = 0
        self.rollbacks = 0

    # ------------------------------------------------------------------ watcher
    def observe(self, records: Sequence[Mapping[str, Any]]) -> Sequence[AuditAlert]:
        outs = self.scorer.score_many(records)
        alerts: list[AuditAlert] = []
        now_s = 0.0
        for rec, out in zip(records, outs, strict=True):
            t_s = self._seconds(str(rec["eventTime"]))
            now_s = max(now_s, t_s)
            level, rule = self.sigma.level_of(str(rec.get("eventName") or ""),
                                              str(rec.get("eventSource") or ""))  # fmt: skip
            alert = bool(out["is_alert"])
            risk = float(out["risk_score"])
            self.seen.append(Seen(t_s, rec, _session(rec), alert, rule if level > 0 else ""))
            self.window_risk.append((t_s, risk))
            if t_s < self.settings.reference_h * 3600.0:
                self.reference_risk.append(risk)
                self.reference_alerts += alert
            if alert:
                self.alert_times.append((t_s, risk))
                alerts.append(
                    AuditAlert(str(out["eventID"]), risk, str(out["threat_category"]),
                               str(out["reasons"]))
                )  # fmt: skip
        if self.shadow is not None:
            self._shadow_score(records, outs)
        # the end of the minute the records fall in: what the replay's clock shows
        now_s = (math.floor(now_s / 60.0) + 1) * 60.0
        self._monitor(now_s)
        if self.shadow is not None and now_s - self.shadow.from_s >= self.settings.shadow_h * 3600:
            self._decide(now_s)
        return alerts

    # ------------------------------------------------------------------ monitor
    def _monitor(self, now_s: float) -> None:
        s = self.settings
        horizon = now_s - s.alert_window_h * 3600.0
        while self.alert_times and self.alert_times[0][0] < horizon:
            self.alert_times.popleft()
        while self.window_risk and self.window_risk[0][0] < horizon:
            self.window_risk.popleft()
        if now_s < s.reference_h * 3600.0:
            return
        if self.reference_per_h is None:
            self.reference_per_h = max(s.min_reference_per_h, self.reference_alerts / s.reference_h)
        rate = len(self.alert_times) / s.alert_window_h
        ratio = rate / self.reference_per_h
        if ratio <= s.alert_rate_factor:
            self.detecting = False
            return
        if not self.detecting:
            self.detecting = True
            detection = {
                "t_min": int(now_s // 60),
                "time": self._iso(now_s),
                "feature": "alert_rate",
                "statistic": "rate_ratio",
                "value": round(ratio, 6),
                "alerts_per_h": round(rate, 6),
                "reference_per_h": round(self.reference_per_h, 6),
                "risk_psi": round(
                    risk_psi(self.reference_risk, [r for _, r in self.window_risk]), 6
                ),
            }
            self.detections.append(detection)
            self.log.book(self.model_name, "drift", detection)
        cooling = (
            self.last_retrain_s is not None and now_s - self.last_retrain_s < s.cooldown_h * 3600.0
        )
        if self.shadow is None and not cooling and s.retrain:
            self._retrain(now_s, f"alert rate {ratio:.1f}x the reference")

    # ------------------------------------------------------------------ retrain
    def _retrain(self, now_s: float, trigger: str) -> None:
        s = self.settings
        started = time.perf_counter()
        self.last_retrain_s = now_s
        data = training_set(
            self.seen, end_s=now_s, window_s=s.retrain_window_days * 86400.0,
            holdout_fraction=s.holdout_fraction,
        )  # fmt: skip
        threat_records, threat_labels = self.threats
        with threadpool_limits(1):  # one thread: faster on a shared machine, same trees
            confirmed = [
                q.record
                for q in data.quarantined
                if q.alert and q.sigma and q.session in data.incidents
            ]
            candidate = SecurityAnalyser(**self.champion.get_params()).fit(
                [*data.train, *confirmed, *threat_records],
                ["normal"] * len(data.train) + ["malicious"] * len(confirmed) + list(threat_labels),
            )
            metrics = self._validate(candidate, data)
        accepted = (
            metrics["holdout_alerts_candidate"] <= metrics["holdout_alerts_champion"]
            and metrics["incident_session_recall"] >= 1.0
        )
        reason = (
            f"held-back alerts {metrics['holdout_alerts_candidate']:g} vs champion "
            f"{metrics['holdout_alerts_champion']:g}, incident sessions alerted "
            f"{metrics['incident_session_recall']:.3f} of {metrics['incident_sessions']:g} "
            f"(records {metrics['incident_recall']:.3f})"
        )
        record: dict[str, Any] = {
            "t_min": int(now_s // 60),
            "time": self._iso(now_s),
            "trigger": trigger,
            "data_start": self._iso(data.start_s),
            "data_end": self._iso(data.end_s),
            "train_records": len(data.train),
            "holdout_records": len(data.holdout),
            "quarantined_records": len(data.quarantined),
            "accepted": accepted,
            "reason": reason,
            "metrics": {k: round(float(v), 6) for k, v in metrics.items()},
        }
        ref, sha = None, None
        if accepted:
            ref, sha = self.registrar.register(
                candidate, parent=self.champion_ref, trigger=trigger,
                data_start=record["data_start"], data_end=record["data_end"], metrics=metrics,
            )  # fmt: skip
            record["artefact_sha256"] = sha
        wall = {"wall_s": round(time.perf_counter() - started, 3), "version": ref}
        self.retrains.append({**record, **wall})
        self.log.book(self.model_name, "retrain", record, wall=wall)
        if ref is None or sha is None:
            return
        scorer = candidate.stream()
        scorer.score_many([x.record for x in self.seen])  # catch up: the champion's state
        self.shadow = _Shadow(ref, sha, candidate, scorer, trigger, now_s)
        rollout = {"challenger": ref, "trigger": trigger, "stages": self.shadow.stages}
        self.rollouts.append(rollout)
        self._stage("shadow", now_s)

    def _validate(self, candidate: SecurityAnalyser, data: TrainingSet) -> dict[str, float]:
        """Alerts of both models on the held-back slice (the window, quarantined records
        included, scored from an empty behaviour state); the share of incident sessions
        on one of whose records the candidate alerts (the gate), its recall on the
        incidents' records the champion alerted on that fire a Sigma rule, and the share
        of all quarantined sessions it alerts on (reported)."""
        window = [*data.train, *data.holdout, *(q.record for q in data.quarantined)]
        held = {str(r["eventID"]) for r in data.holdout}
        wanted = {
            str(q.record["eventID"])
            for q in data.quarantined
            if q.alert and q.sigma and q.session in data.incidents
        }
        session_of = {str(q.record["eventID"]): q.session for q in data.quarantined}
        out: dict[str, float] = {}
        for who, model in (("champion", self.champion), ("candidate", candidate)):
            frame, _ = model.analyse(window)
            ids = frame["eventID"].astype(str)
            alert = frame["is_alert"].to_numpy(bool)
            out[f"holdout_alerts_{who}"] = float(alert[ids.isin(held).to_numpy()].sum())
            if who == "candidate":
                hits = alert[ids.isin(wanted).to_numpy()].sum()
                out["incident_recall"] = float(hits / len(wanted)) if wanted else 1.0
                sessions = set(session_of.values())
                alerted = {session_of[i] for i in ids[alert] if i in session_of}
                out["quarantined_sessions"] = float(len(sessions))
                out["quarantine_session_recall"] = (
                    len(alerted & sessions) / len(sessions) if sessions else 1.0
                )
                found = data.incidents & sessions
                out["incident_sessions"] = float(len(found))
                out["incident_session_recall"] = len(alerted & found) / len(found) if found else 1.0
        out["threshold"] = float(candidate.threshold_)
        return out

    # ------------------------------------------------------------------ rollout
    def _shadow_score(
        self, records: Sequence[Mapping[str, Any]], champion: Sequence[Mapping[str, Any]]
    ) -> None:
        shadow = self.shadow
        assert shadow is not None
        for rec, mine, theirs in zip(records, champion, shadow.scorer.score_many(records),
                                     strict=True):  # fmt: skip
            session = _session(rec)
            if mine["is_alert"]:
                shadow.champion_alerts[session] = shadow.champion_alerts.get(session, 0) + 1
            if theirs["is_alert"]:
                shadow.challenger_alerts[session] = shadow.challenger_alerts.get(session, 0) + 1
                shadow.challenger_sessions.add(session)
            level, rule = self.sigma.level_of(str(rec.get("eventName") or ""),
                                              str(rec.get("eventSource") or ""))  # fmt: skip
            if mine["is_alert"] and level > 0:
                shadow.sigma_alerted += 1
                shadow.sigma_missed += not theirs["is_alert"]
                shadow.sigma_rules.setdefault(_session(rec), set()).add(rule)

    def _decide(self, now_s: float) -> None:
        shadow = self.shadow
        assert shadow is not None and self.reference_per_h is not None
        hours = (now_s - shadow.from_s) / 3600.0
        limit = self.settings.alert_rate_factor * self.reference_per_h
        incident = incident_sessions(shadow.sigma_rules)
        missed = incident - shadow.challenger_sessions

        def noise_per_h(alerts: dict[tuple[str, str], int]) -> float:
            return sum(n for k, n in alerts.items() if k not in incident) / hours

        mine, theirs = noise_per_h(shadow.champion_alerts), noise_per_h(shadow.challenger_alerts)
        detail = {
            "champion_alerts_per_h": round(sum(shadow.champion_alerts.values()) / hours, 6),
            "challenger_alerts_per_h": round(sum(shadow.challenger_alerts.values()) / hours, 6),
            "champion_noise_per_h": round(mine, 6),
            "challenger_noise_per_h": round(theirs, 6),
            "limit_per_h": round(limit, 6),
            "sigma_alerted": shadow.sigma_alerted,
            "sigma_missed": shadow.sigma_missed,
            "sigma_sessions": len(shadow.sigma_rules),
            "incident_sessions": len(incident),
            "incident_sessions_missed": len(missed),
        }
        if theirs < mine and theirs <= limit and not missed:
            self.registrar.promote(shadow.ref)
            self.promotions += 1
            self._stage("promoted", now_s, **detail)
            self.log.book(
                self.model_name, "promotion",
                {"t_min": int(now_s // 60), "champion_sha256": shadow.sha256,
                 "previous_sha256": self.champion_sha256},
                wall={"champion": shadow.ref, "previous": self.champion_ref},
            )  # fmt: skip
            self.champion, self.scorer = shadow.model, shadow.scorer
            self.champion_ref, self.champion_sha256 = shadow.ref, shadow.sha256
        else:
            self.registrar.roll_back(shadow.ref)
            self.rollbacks += 1
            self._stage("rolled back", now_s, **detail)
            self.log.book(
                self.model_name, "rollback",
                {"t_min": int(now_s // 60), "challenger_sha256": shadow.sha256,
                 "champion_sha256": self.champion_sha256, **detail},
                wall={"challenger": shadow.ref, "champion": self.champion_ref},
            )  # fmt: skip
        self.shadow = None
        self.last_retrain_s = now_s

    def _stage(self, stage: str, now_s: float, **detail: Any) -> None:
        shadow = self.shadow
        assert shadow is not None
        entry = {"stage": stage, "t_min": int(now_s // 60), "time": self._iso(now_s), **detail}
        shadow.stages.append(entry)
        self.log.book(
            self.model_name, "stage", {**entry, "challenger_sha256": shadow.sha256},
            wall={"challenger": shadow.ref},
        )  # fmt: skip

    # ------------------------------------------------------------------ report
    def report(self) -> dict[str, Any]:
        """This model's block of the summary's ``lifecycle`` (issue 14's schema)."""
        return {
            "name": self.model_name,
            "champion": self.champion_ref,
            "reference_alerts_per_h": self.reference_per_h,
            "drift_detections": list(self.detections),
            "retrains": list(self.retrains),
            "rollouts": [dict(r) for r in self.rollouts],
            "promotions": self.promotions,
            "rollbacks": self.rollbacks,
            "max_challenger_share": 0.0,  # shadow only: the challenger never decides
        }

    # ------------------------------------------------------------------ time
    def _seconds(self, event_time: str) -> float:
        return (datetime.strptime(event_time, _TIME_FORMAT) - self.start).total_seconds()

    def _iso(self, t_s: float) -> str:
        return (self.start + timedelta(seconds=float(t_s))).isoformat()


def _session(record: Mapping[str, Any]) -> tuple[str, str]:
    """A record's session key: its source address and user agent (an attacker keeps both
    across the role sessions it assumes)."""
    return (str(record.get("sourceIPAddress") or ""), str(record.get("userAgent") or ""))
