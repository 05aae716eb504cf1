"""The audit event generator: benign sessions drawn from habits, and attack campaigns.

:class:`AuditGenerator` draws CloudTrail records for one account over a window:

- :meth:`~AuditGenerator.benign`: each principal's sessions (:mod:`sim.audit.principals`)
  day by day, with the novelty real accounts show (a new network, an upgraded client, an
  API outside the habits, console page views that fire a burst of the page's reads);
- :meth:`~AuditGenerator.campaign`: an intrusion: an entry (stolen access keys of an
  existing principal, a console login without MFA, or stolen instance credentials)
  followed by techniques of the Stratus Red Team catalogue (:mod:`sim.audit.techniques`),
  each expanded into its CloudTrail calls with realistic repetition, permission probes
  that fail, role assumptions (the calls after ``sts:AssumeRole`` come from the new role
  session), tool pre-flight checks and clean-up calls.

Ground truth (``normal`` / ``suspicious`` / ``malicious`` and the technique) is returned
*beside* the records as :class:`AuditLabel` rows keyed by ``eventID``; no record carries
its label. Times are seconds from the window's start; every random draw comes from the
generator handed in (one component stream, see :func:`sim.seeding.component_rng`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from sim.audit.parameters import request_parameters
from sim.audit.principals import HUMAN_KINDS, Principal
from sim.audit.techniques import Technique
from sim.audit.vocabulary import (
    BENIGN_ERRORS,
    CONSOLE_INTERNAL_UA,
    CONSOLE_PAGES,
    DENIED_ERRORS,
    KMS_BACKED,
    READS,
    UA_ATTACKER,
    UA_CONSOLE,
    UA_SERVICE_CONSOLE,
    WRITES,
    event_source,
    is_read,
    public_ip,
    sample_apis,
    upgraded_user_agent,
    with_version,
)

DAY_S = 86_400.0
NEW_NETWORK_SHARE = 0.05  # of a human's sessions: from a network never used before
CLIENT_UPGRADE_SHARE = 0.08  # of a human's sessions: with a newer client version
EXPLORE_SHARE = 0.03  # of a human's calls: an API outside their habits
CONSOLE_PAGE_SHARE = 0.35  # of a console session's steps: a page view (a burst of reads)


@dataclass(frozen=True, slots=True)
class AuditLabel:
    """Ground truth for one record, written beside the events (never inside)."""

    eventID: str
    label: str  # normal | suspicious | malicious
    technique: str
    campaign: str
    principal_kind: str


@dataclass(slots=True)
class _Out:
    records: list[tuple[float, dict[str, Any], AuditLabel]] = field(default_factory=list)


class AuditGenerator:
    """Draws CloudTrail records for one account over a window.

    Parameters
    ----------
    account_id
        The 12-digit account every record belongs to.
    region
        The ``awsRegion`` of regional calls.
    start
        Wall-clock time of simulated second 0 (records carry ``eventTime`` in UTC).
    rng
        The audit component's generator.
    """

    def __init__(
        self, *, account_id: str, region: str, start: datetime, rng: np.random.Generator
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.start = start
        self.rng = rng
        self.partner = str(int(rng.integers(10**11, 10**12)))
        self._out = _Out()

    # ------------------------------------------------------------- primitives
    def record(
        self,
        t_s: float,
        identity: Mapping[str, str],
        service: str,
        name: str,
        *,
        ip: str,
        ua: str,
        label: AuditLabel | None = None,
        error: str | None = None,
        hostile: bool = False,
        kind: str = "",
    ) -> None:
        """Append one record at ``t_s`` seconds (label ``normal`` unless given)."""
        rng = self.rng
        event_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        ident = {k: v for k, v in identity.items() if v}
        if service == "signin":
            params: dict[str, Any] | None = None
        else:
            params = request_parameters(
                service,
                name,
                hostile=hostile,
                account_id=self.account_id,
                partner=self.partner,
                rng=rng,
            )
        when = self.start + timedelta(seconds=float(t_s))
        rec: dict[str, Any] = {
            "eventVersion": "1.08",
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": event_source(service),
            "eventName": name,
            "awsRegion": self.region,
            "sourceIPAddress": ip,
            "userAgent": ua,
            "userIdentity": ident,
            "requestParameters": params,
            "responseElements": None,
            "eventID": event_id,
            "eventType": "AwsConsoleSignIn" if service == "signin" else "AwsApiCall",
            "readOnly": is_read(name),
            "recipientAccountId": self.account_id,
        }
        if error:
            rec["errorCode"] = error
            rec["errorMessage"] = f"{error} when calling {name}"
        if service == "signin":
            rec["additionalEventData"] = {"MFAUsed": "No" if hostile else "Yes"}
            rec["responseElements"] = {"ConsoleLogin": "Success"}
        if label is None:
            label = AuditLabel(event_id, "normal", "", "", kind)
        else:
            label = AuditLabel(event_id, label.label, label.technique, label.campaign, kind)
        self._out.records.append((float(t_s), rec, label))

    # ------------------------------------------------------------- benign
    def benign(self, principals: Sequence[Principal], duration_s: float) -> None:
        """Sessions of every principal over ``[0, duration_s)``, drawn from its habits.

        Humans also do benign things their history has not shown: a session now and
        then from a new network or with an upgraded client, a call to an API outside
        their habits, and console page views, which fire a burst of the page's read
        calls under an internal user agent."""
        rng = self.rng
        n_days = int(np.ceil(duration_s / DAY_S))
        for p in principals:
            weights = np.asarray(p.weights)
            human = p.kind in HUMAN_KINDS
            habits = p.habits
            for day in range(n_days):
                weekday = (self.start + timedelta(days=day)).weekday()
                weekend = p.weekdays_only and weekday >= 5
                rate = habits.sessions_per_day * (0.1 if weekend else 1.0)
                for _ in range(int(rng.poisson(rate))):
                    if p.hours is None or rng.random() < 0.03:
                        hour = float(rng.uniform(0, 24))
                    else:
                        hour = float(rng.uniform(*p.hours)) % 24
                    t = day * DAY_S + hour * 3600.0
                    ip = p.networks[int(rng.integers(0, len(p.networks)))]
                    ua = p.user_agents[int(rng.integers(0, len(p.user_agents)))]
                    if human and rng.random() < NEW_NETWORK_SHARE:
                        ip = public_ip(rng)  # travelling, home, a new VPN exit
                    if human and rng.random() < CLIENT_UPGRADE_SHARE:
                        ua = upgraded_user_agent(ua, rng)
                    ident = dict(p.identity)
                    if p.kind == "ci":
                        ident["arn"] = ident["arn"].replace(
                            "/session", f"/run-{rng.bytes(4).hex()}"
                        )
                    n = 1 + int(rng.geometric(1.0 / habits.calls_per_session))
                    console = ua.startswith("Mozilla")
                    if console and human:
                        self.record(t, ident, "signin", "ConsoleLogin", ip=ip, ua=ua, kind=p.kind)
                    for _ in range(n):
                        t += float(rng.exponential(habits.gap_s))
                        if t >= duration_s:
                            break
                        if console and rng.random() < CONSOLE_PAGE_SHARE:
                            t = self._console_page(t, ident, p, ip, duration_s)
                            continue
                        if human and rng.random() < EXPLORE_SHARE:
                            pool = READS if rng.random() < 0.8 else WRITES
                            svc, name = sample_apis(rng, pool, 1)[0]
                        else:
                            svc, name = p.apis[int(rng.choice(len(p.apis), p=weights))]
                        failed = rng.random() < habits.error_rate
                        error = str(rng.choice(BENIGN_ERRORS)) if failed else None
                        self.record(t, ident, svc, name, ip=ip, ua=ua, error=error, kind=p.kind)
                        if name in KMS_BACKED and p.kind != "service":
                            # KMS calls the service makes for the caller (invokedBy)
                            host = event_source(svc)
                            via = {**ident, "invokedBy": host}
                            for kms in ("Decrypt", "GenerateDataKey")[: int(rng.integers(1, 3))]:
                                self.record(t + 0.2, via, "kms", kms, ip=host, ua=host, kind=p.kind)

    def _console_page(
        self,
        t: float,
        ident: Mapping[str, str],
        p: Principal,
        ip: str,
        duration_s: float,
    ) -> float:
        """One console page view at ``t``: a burst of the page's read calls made by the
        console's back end for the user. Returns the time of the last call."""
        rng = self.rng
        used = sorted({svc for svc, _ in p.apis} & set(CONSOLE_PAGES))
        if used and rng.random() < 0.5:
            page = used[int(rng.integers(0, len(used)))]
        else:
            pages = sorted(CONSOLE_PAGES)
            page = pages[int(rng.integers(0, len(pages)))]
        calls = CONSOLE_PAGES[page]
        k = min(len(calls), 2 + int(rng.geometric(1.0 / 6.0)))
        picks = rng.choice(len(calls), size=k, replace=False)
        if rng.random() < 0.5:
            ua, src = CONSOLE_INTERNAL_UA, CONSOLE_INTERNAL_UA
        else:
            label = page.upper() if len(page) <= 3 else page.capitalize()
            template = UA_SERVICE_CONSOLE[int(rng.integers(0, len(UA_SERVICE_CONSOLE)))]
            ua, src = with_version(template.replace("{page}", label), rng), ip
        for i in sorted(int(x) for x in picks):
            if t >= duration_s:
                break
            svc, name = calls[i]
            error = str(rng.choice(BENIGN_ERRORS[:3])) if rng.random() < 0.05 else None
            self.record(t, ident, svc, name, ip=src, ua=ua, error=error, kind=p.kind)
            t += float(rng.exponential(0.4))
        return t

    # ------------------------------------------------------------- attacks
    def campaign(
        self,
        *,
        campaign_id: str,
        start_s: float,
        entry: str,
        techniques: Sequence[Technique],
        principals: Sequence[Principal],
        pace_s: float,
        insider_network: bool,
        reuse_user_agent: bool,
    ) -> None:
        """One intrusion: an entry, then each technique's calls in order."""
        rng = self.rng
        humans = [p for p in principals if p.kind in ("admin", "developer", "ci")]
        apps = [p for p in principals if p.kind == "app"]
        victim = humans[int(rng.integers(0, len(humans)))] if humans else None
        ua = with_version(UA_ATTACKER[int(rng.integers(0, len(UA_ATTACKER)))], rng)
        ip = public_ip(rng)
        t = start_s
        if entry == "instance-credentials" and apps:
            victim = apps[int(rng.integers(0, len(apps)))]
        if victim is not None and insider_network:
            ip = victim.networks[0]
        if victim is not None and reuse_user_agent:
            ua = victim.user_agents[-1]
        if entry == "console-login-without-mfa" or victim is None:
            name = f"svc-{rng.bytes(3).hex()}"
            identity = {
                "type": "IAMUser",
                "arn": f"arn:aws:iam::{self.account_id}:user/{name}",
                "userName": name,
                "accountId": self.account_id,
            }
            ua = UA_CONSOLE[int(rng.integers(0, len(UA_CONSOLE)))]
            lab = AuditLabel(
                "", "malicious", "aws.initial-access.console-login-without-mfa", campaign_id, ""
            )
            self.record(
                t,
                identity,
                "signin",
                "ConsoleLogin",
                ip=ip,
                ua=ua,
                label=lab,
                hostile=True,
                kind="attacker",
            )
        else:
            identity = dict(victim.identity)
        for tech in techniques:
            t += float(rng.exponential(pace_s * 10))
            t = self._technique(t, tech, identity, ip=ip, ua=ua, pace_s=pace_s, cid=campaign_id)

    def _technique(
        self,
        t: float,
        tech: Technique,
        identity: Mapping[str, str],
        *,
        ip: str,
        ua: str,
        pace_s: float,
        cid: str,
    ) -> float:
        rng = self.rng
        mal = AuditLabel("", "malicious", tech.stratus_id, cid, "")
        sus = AuditLabel("", "suspicious", tech.stratus_id, cid, "")
        who = dict(identity)
        if rng.random() < 0.5:  # the tool's pre-flight check
            check = (
                ("ec2", "DescribeAccountAttributes")
                if rng.random() < 0.6
                else ("sts", "GetCallerIdentity")
            )
            self.record(t, who, *check, ip=ip, ua=ua, label=sus, kind="attacker")
            t += float(rng.exponential(pace_s))
        probe_fail = rng.random() < 0.3
        done_writes: list[tuple[str, str]] = []
        for service, name in tech.calls:
            if (service, name) == ("sts", "AssumeRole"):
                role = (
                    f"{rng.choice(['ops', 'svc', 'tmp', 'admin', 'backup'])}-{rng.bytes(3).hex()}"
                )
                retries = int(rng.integers(0, 3))  # denied while the new role propagates
                for attempt in range(retries + 1):
                    denied = attempt < retries
                    self.record(
                        t,
                        who,
                        "sts",
                        "AssumeRole",
                        ip=ip,
                        ua=ua,
                        label=mal,
                        error="AccessDenied" if denied else None,
                        hostile=True,
                        kind="attacker",
                    )
                    if denied:
                        t += float(rng.exponential(pace_s))
                who = {
                    "type": "AssumedRole",
                    "accountId": self.account_id,
                    "arn": f"arn:aws:sts::{self.account_id}:assumed-role/{role}/"
                    f"sess-{rng.bytes(6).hex()}",
                    "userName": role,
                    "accessKeyId": "ASIA" + rng.bytes(8).hex().upper(),
                }
                t += float(rng.exponential(pace_s))
                continue
            read = is_read(name)
            repeats = int(rng.integers(1, 25)) if read else int(rng.integers(1, 3))
            for _ in range(repeats):
                error = None
                if probe_fail and rng.random() < 0.6:
                    error = str(rng.choice(DENIED_ERRORS))
                self.record(
                    t,
                    who,
                    service,
                    name,
                    ip=ip,
                    ua=ua,
                    label=mal,
                    error=error,
                    hostile=True,
                    kind="attacker",
                )
                t += float(rng.exponential(pace_s / (4.0 if read else 1.0)))
            if not read:
                done_writes.append((service, name))
        if "Discovery" in tech.tactics:
            for svc, name in sample_apis(rng, READS, int(rng.integers(8, 40))):
                error = str(rng.choice(DENIED_ERRORS)) if rng.random() < 0.25 else None
                self.record(
                    t, who, svc, name, ip=ip, ua=ua, label=mal, error=error, kind="attacker"
                )
                t += float(rng.exponential(pace_s / 4.0))
        if done_writes and rng.random() < 0.5:  # the tool cleans up after itself
            for service, name in done_writes:
                undo = _undo(name)
                if undo:
                    t += float(rng.exponential(pace_s))
                    self.record(t, who, service, undo, ip=ip, ua=ua, label=sus, kind="attacker")
        return t

    # ------------------------------------------------------------- output
    def take(self) -> tuple[list[dict[str, Any]], list[AuditLabel]]:
        """Every record drawn so far in event-time order (ties: draw order), and labels."""
        items = sorted(enumerate(self._out.records), key=lambda x: (x[1][0], x[0]))
        self._out = _Out()
        return [r for _, (_, r, _) in items], [lab for _, (_, _, lab) in items]


_UNDO = (
    ("Create", "Delete"),
    ("Attach", "Detach"),
    ("Stop", "Start"),
    ("Authorize", "Revoke"),
    ("Put", "Delete"),
    ("Add", "Remove"),
    ("Modify", "Modify"),
    ("Update", "Update"),
    ("Run", "Terminate"),
)


def _undo(name: str) -> str:
    for verb, inverse in _UNDO:
        if name.startswith(verb):
            return inverse + name[len(verb) :]
    return ""
