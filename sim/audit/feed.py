"""Audit events in the replay: the scenario's ``audit:`` section brought to life.

:func:`prepare_audit` validates the section against the technique catalogue before a
replay starts (one :class:`~sim.errors.InputError` naming the field). :class:`AuditFeed`
runs inside a :class:`~sim.engine.Replay`:

- at construction it draws the account's benign activity (principals and habits from
  :mod:`sim.audit.principals`) and the configured attack campaigns over the whole window, from the
  ``audit`` component generator;
- while the replay runs it turns the cluster's own events into the API calls that made
  them (``audit-cluster`` generator): a launch is ``ec2:RunInstances`` by the Auto Scaling
  service-linked role (a failed spot launch carries ``Server.InsufficientInstanceCapacity``),
  a scale-in is ``autoscaling:TerminateInstanceInAutoScalingGroup`` by the cluster
  autoscaler's role then ``ec2:TerminateInstances`` by the service-linked role, a spot
  interruption notice is EC2's ``BidEvictedEvent`` service event;
- benign principals declared in ``audit.arrivals`` appear at their hour
  (:mod:`sim.audit.arrivals`);
- every simulated minute it writes the records of that minute to the ``audit`` stream in
  event-time order, hands them to the :class:`~sim.audit.watch.AuditWatcher` (if any) and
  books its alerts as ``security_alert`` events.

Ground-truth labels stay beside the records (:attr:`AuditFeed.labels`, written by
:meth:`AuditFeed.write_labels` as ``audit_labels.csv``); no record carries its label.
Times are seconds from the replay start; ``eventTime`` is whole seconds (UTC).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import heapq
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sim.audit.generator import AuditGenerator, AuditLabel
from sim.audit.arrivals import arrival_records
from sim.audit.principals import Principal, access_key_id, build_principals
from sim.audit.techniques import Technique, load_techniques
from sim.audit.watch import (
    SECURITY_ALERT_EVENT,
    AuditWatcher,
    BookedAlert,
    CampaignStart,
    LabelRow,
    security_summary,
)
from sim.control import PoolSpec
from sim.errors import InputError
from sim.scenario import AttackCampaign, Audit, Scenario
from scenarios import data_path
from sim.seeding import component_rng
from sim.telemetry import TelemetryWriter

DEFAULT_TECHNIQUES = data_path("security", "attack_techniques.csv")
ASG_HOST = "autoscaling.amazonaws.com"
EC2_HOST = "ec2.amazonaws.com"


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """A validated campaign with its techniques resolved from the catalogue."""

    spec: AttackCampaign
    techniques: tuple[Technique, ...]


@dataclass(frozen=True, slots=True)
class AuditPlan:
    """The scenario's ``audit:`` section, validated against the technique catalogue."""

    config: Audit
    campaigns: tuple[CampaignPlan, ...]


def prepare_audit(scenario: Scenario, *, source: Path) -> AuditPlan | None:
    """Validate ``scenario.audit`` (None if the scenario has none); every technique id must
    be a ``stratus_id`` of the catalogue."""
    cfg = scenario.audit
    if cfg is None:
        return None
    if cfg.techniques_csv is None:
        path = DEFAULT_TECHNIQUES
    else:
        path = Path(cfg.techniques_csv)
        path = path if path.is_absolute() else source.parent / path
        if not path.is_file():
            raise InputError(
                source,
                "audit.techniques_csv",
                f"file not found: {path}",
                "an existing CSV (relative paths are resolved against the scenario's folder)",
            )
    catalogue = load_techniques(path)
    plans: list[CampaignPlan] = []
    for i, campaign in enumerate(cfg.campaigns):
        found: list[Technique] = []
        for j, tid in enumerate(campaign.techniques):
            if tid not in catalogue:
                close = difflib.get_close_matches(tid, list(catalogue), n=2, cutoff=0.5)
                hint = (
                    f"did you mean {' or '.join(close)}?"
                    if close
                    else f"e.g. {next(iter(catalogue))}"
                )
                raise InputError(
                    source,
                    f"audit.campaigns[{i}].techniques[{j}]",
                    f"unknown technique {tid!r}",
                    f"a stratus_id of {path.name} ({len(catalogue)} techniques); {hint}",
                )
            found.append(catalogue[tid])
        plans.append(CampaignPlan(campaign, tuple(found)))
    return AuditPlan(cfg, tuple(plans))


def principal_arn(identity: Mapping[str, Any]) -> str:
    """Who made a call: its ARN, else the service that invoked it, else its user name."""
    return str(identity.get("arn") or identity.get("invokedBy") or identity.get("userName") or "")


def _habits(p: Principal, activity: float, cluster_calls: bool) -> Principal:
    """``p`` with its sessions per day scaled by ``activity``; with ``cluster_calls`` the
    autoscaler keeps only its polling (its writes come from the replayed cluster)."""
    p = p.busier(activity)
    if p.kind != "autoscaler" or not cluster_calls:
        return p
    keep = [i for i, (_, name) in enumerate(p.apis) if name.startswith("Describe")]
    total = sum(p.weights[i] for i in keep)
    return dataclasses.replace(
        p,
        apis=tuple(p.apis[i] for i in keep),
        weights=tuple(p.weights[i] / total for i in keep),
    )


class AuditFeed:
    """The audit events of one replay (see the module docstring).

    Parameters
    ----------
    plan
        The validated ``audit:`` section.
    seed
        The run's root seed (split into the ``audit`` and ``audit-cluster`` components).
    start
        Wall-clock time of simulated second 0.
    duration_s
        The replay's length (records at or after it are not emitted, only counted).
    region
        The cluster's region (``awsRegion`` of regional calls).
    telemetry
        Receives ``audit`` rows and ``security_alert`` events.
    watcher
        Scores the records minute by minute (optional).
    """

    def __init__(
        self,
        plan: AuditPlan,
        *,
        seed: int,
        start: datetime,
        duration_s: float,
        region: str,
        telemetry: TelemetryWriter,
        watcher: AuditWatcher | None = None,
    ) -> None:
        cfg = plan.config
        self.plan = plan
        self.start = start
        self.epoch_s = int((start - datetime(1970, 1, 1)).total_seconds())
        self.duration_s = duration_s
        self.region = region
        self.telemetry = telemetry
        self.watcher = watcher
        self.labels: list[LabelRow] = []
        self.emitted: list[tuple[float, dict[str, Any]]] = []
        """Every record emitted so far with its event time (s), in emission order."""
        self.alerts: list[BookedAlert] = []
        rng = component_rng(seed, "audit")
        gen = AuditGenerator(account_id=cfg.account_id, region=region, start=start, rng=rng)
        counts = cfg.population.model_dump()
        principals = [
            _habits(p, cfg.activity, cfg.cluster_calls)
            for p in build_principals(counts, account_id=cfg.account_id, rng=rng)
        ]
        gen.benign(principals, duration_s)
        for c in plan.campaigns:
            gen.campaign(
                campaign_id=c.spec.id,
                start_s=c.spec.start_h * 3600.0,
                entry=c.spec.entry,
                techniques=c.techniques,
                principals=principals,
                pace_s=c.spec.pace_s,
                insider_network=c.spec.insider_network,
                reuse_user_agent=c.spec.reuse_user_agent,
            )
        records, labels = gen.take()
        if cfg.arrivals:
            records, labels = self._with_arrivals(records, labels, seed, start, duration_s)
        drawn = [
            (self._seconds(rec["eventTime"]), i, rec, lab)
            for i, (rec, lab) in enumerate(zip(records, labels, strict=True))
        ]
        self._drawn = [d for d in drawn if d[0] < duration_s]
        self._next = 0
        self.after_end = len(drawn) - len(self._drawn)
        # The cluster's own calls, generated as its events happen.
        self._rng = component_rng(seed, "audit-cluster")
        self._pending: list[tuple[float, int, dict[str, Any], AuditLabel]] = []
        self._seq = 0
        self._instances: dict[str, str] = {}
        scaler = next((p for p in principals if p.kind == "autoscaler"), None)
        if scaler is not None:
            self._scaler = (dict(scaler.identity), scaler.networks[0], scaler.user_agents[0])
        else:
            self._scaler = (
                {
                    "type": "AssumedRole",
                    "arn": f"arn:aws:sts::{cfg.account_id}:assumed-role/"
                    "eks-cluster-autoscaler/session",
                    "userName": "eks-cluster-autoscaler",
                    "accountId": cfg.account_id,
                    "accessKeyId": access_key_id("ASIA", self._rng),
                },
                "10.0.100.12",
                "aws-sdk-go/1.44.300 (go1.20.4; linux; amd64) cluster-autoscaler/v1.27.3",
            )
        self._asg = {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{cfg.account_id}:assumed-role/AWSServiceRoleForAutoScaling/"
            "AutoScaling",
            "userName": "AWSServiceRoleForAutoScaling",
            "accountId": cfg.account_id,
            "accessKeyId": access_key_id("ASIA", self._rng),
            "invokedBy": ASG_HOST,
        }

    def _with_arrivals(
        self,
        records: list[dict[str, Any]],
        labels: list[AuditLabel],
        seed: int,
        start: datetime,
        duration_s: float,
    ) -> tuple[list[dict[str, Any]], list[AuditLabel]]:
        """``records`` merged (by ``eventTime``; ties: the account's records first) with
        the sessions of the configured arrivals (:mod:`sim.audit.arrivals`: each from its
        own component, so that declaring one changes no other record)."""
        cfg = self.plan.config
        streams = [list(zip(records, labels, strict=True))]
        for arrival in cfg.arrivals:
            drawn = arrival_records(
                arrival,
                seed=seed,
                account_id=cfg.account_id,
                region=self.region,
                start=start,
                duration_s=duration_s,
            )
            streams.append(list(zip(*drawn, strict=True)))
        merged = list(heapq.merge(*streams, key=lambda item: item[0]["eventTime"]))
        return [rec for rec, _ in merged], [lab for _, lab in merged]

    def _seconds(self, event_time: str) -> float:
        when = datetime.strptime(event_time, "%Y-%m-%dT%H:%M:%SZ")
        return (when - self.start).total_seconds()

    # ------------------------------------------------------------ cluster calls
    def on_cluster_event(
        self, now: float, spec: PoolSpec, node_id: str, az: str, event: str, reason: str
    ) -> None:
        """The API calls behind one cluster event (a :class:`~sim.cluster.Cluster` listener)."""
        if not self.plan.config.cluster_calls:
            return
        asg = f"eks-{spec.name}-asg"
        if event == "launch_requested" and reason != "initial fleet":
            params: dict[str, Any] = {
                "instanceType": spec.instance_type,
                "instancesSet": {
                    "items": [{"imageId": "ami-0eks0node0image", "minCount": 1, "maxCount": 1}]
                },
                "availabilityZone": az,
            }
            if spec.capacity_type == "spot":
                params["instanceMarketOptions"] = {"marketType": "spot"}
            launched = {"instancesSet": {"items": [{"instanceId": self._id(node_id)}]}}
            self._asg_call(now, "RunInstances", params, response=launched)
        elif event == "launch_failed" and reason.startswith("InsufficientInstanceCapacity"):
            params = {
                "instanceType": spec.instance_type,
                "instanceMarketOptions": {"marketType": spec.capacity_type},
            }
            self._asg_call(now, "RunInstances", params, error="Server.InsufficientInstanceCapacity")
        elif event == "drain" and reason.startswith("scale-in"):
            ident, ip, ua = self._scaler
            params = {"instanceId": self._id(node_id), "shouldDecrementDesiredCapacity": True}
            self._call(
                now,
                ident,
                ip,
                ua,
                "autoscaling",
                "TerminateInstanceInAutoScalingGroup",
                params,
                asg=asg,
            )
        elif event == "terminated" and reason == "scale-in":
            params = {"instancesSet": {"items": [{"instanceId": self._id(node_id)}]}}
            self._asg_call(now, "TerminateInstances", params)
        elif event == "interruption_notice":
            ident = {"accountId": self.plan.config.account_id, "invokedBy": EC2_HOST}
            params = {"instanceId": self._id(node_id)}
            self._call(
                now, ident, EC2_HOST, EC2_HOST, "ec2", "BidEvictedEvent", params, service_event=True
            )

    def _id(self, node_id: str) -> str:
        found = self._instances.get(node_id)
        if found is None:
            found = "i-" + self._rng.bytes(9).hex()[:17]
            self._instances[node_id] = found
        return found

    def _asg_call(
        self,
        now: float,
        name: str,
        params: dict[str, Any],
        *,
        response: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """An EC2 call by the Auto Scaling service-linked role."""
        self._call(
            now, self._asg, ASG_HOST, ASG_HOST, "ec2", name, params, response=response, error=error
        )

    def _call(
        self,
        now: float,
        identity: Mapping[str, str],
        ip: str,
        ua: str,
        service: str,
        name: str,
        params: dict[str, Any],
        *,
        response: dict[str, Any] | None = None,
        error: str | None = None,
        asg: str | None = None,
        service_event: bool = False,
    ) -> None:
        event_id = str(uuid.UUID(bytes=self._rng.bytes(16), version=4))
        if asg is not None:
            params = {"autoScalingGroupName": asg, **params}
        when = self.start + timedelta(seconds=float(now))
        rec: dict[str, Any] = {
            "eventVersion": "1.08",
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": name,
            "awsRegion": self.region,
            "sourceIPAddress": ip,
            "userAgent": ua,
            "userIdentity": dict(identity),
            "requestParameters": None if service_event else params,
            "responseElements": response,
            "eventID": event_id,
            "eventType": "AwsServiceEvent" if service_event else "AwsApiCall",
            "readOnly": False,
            "recipientAccountId": self.plan.config.account_id,
        }
        if service_event:
            rec["serviceEventDetails"] = params
        if error:
            rec["errorCode"] = error
            rec["errorMessage"] = f"{error} when calling {name}"
        kind = "service" if service_event or identity is self._asg else "autoscaler"
        self._seq += 1
        label = AuditLabel(event_id, "normal", "", "", kind)
        self._pending.append((self._seconds(rec["eventTime"]), self._seq, rec, label))

    # ------------------------------------------------------------ emission
    def flush(self, now: float) -> None:
        """Emit every record with ``eventTime`` before ``now`` (event-time order), let the
        watcher score them, book its alerts at ``now``."""
        stop = self._next
        drawn = self._drawn
        while stop < len(drawn) and drawn[stop][0] < now:
            stop += 1
        keep = [p for p in self._pending if p[0] >= now]
        ready = [p for p in self._pending if p[0] < now]
        self._pending = keep
        batch = list(heapq.merge(drawn[self._next : stop], ready, key=lambda item: item[0]))
        self._next = stop
        if not batch:
            return
        self.emitted.extend((t, rec) for t, _, rec, _ in batch)
        rows = self.telemetry.buffer("audit")
        records: list[dict[str, Any]] = []
        for t, _, rec, lab in batch:
            ident = rec["userIdentity"]
            rows.append(
                (
                    self.epoch_s + int(t),
                    rec["eventID"],
                    rec["eventSource"],
                    rec["eventName"],
                    rec["awsRegion"],
                    rec["sourceIPAddress"],
                    rec["userAgent"],
                    principal_arn(ident),
                    rec.get("errorCode"),
                    bool(rec["readOnly"]),
                    json.dumps(rec, sort_keys=True, separators=(",", ":")),
                )
            )
            self.labels.append(
                LabelRow(lab.eventID, t, lab.label, lab.technique, lab.campaign, lab.principal_kind)
            )
            records.append(rec)
        self.telemetry.maybe_flush("audit")
        if self.watcher is not None:
            self._book(now, records, {rec["eventID"]: t for t, _, rec, _ in batch})

    def _book(self, now: float, records: Sequence[dict[str, Any]], times: dict[str, float]) -> None:
        assert self.watcher is not None
        by_id = {rec["eventID"]: rec for rec in records}
        for alert in self.watcher.observe(records):
            rec = by_id[alert.event_id]
            who = principal_arn(rec["userIdentity"])
            reason = (
                f"{rec['eventName']} risk={alert.risk:.4f} {alert.category} "
                f"id={alert.event_id} principal={who}"
            )
            self.telemetry.append(
                "events",
                (
                    self.epoch_s + int(now),
                    float(now),
                    "",
                    "",
                    "",
                    "",
                    "",
                    SECURITY_ALERT_EVENT,
                    reason,
                ),
            )
            self.alerts.append(
                BookedAlert(
                    float(now),
                    times[alert.event_id],
                    alert.event_id,
                    rec["eventName"],
                    who,
                    alert.risk,
                    alert.category,
                )
            )

    # ------------------------------------------------------------ results
    def summary(self) -> dict[str, Any]:
        """Counts, and with a watcher detection delay and false alerts (see sim.audit.watch)."""
        campaigns = [
            CampaignStart(c.spec.id, c.spec.start_h * 3600.0, c.spec.entry)
            for c in self.plan.campaigns
        ]
        return security_summary(
            self.labels,
            self.alerts if self.watcher is not None else None,
            campaigns,
            self.duration_s,
            after_end=self.after_end + len(self._pending),
        )

    def write_labels(self, path: Path) -> None:
        """``eventID,label,technique,campaign,principal_kind`` per emitted record, in the
        order of the ``audit`` stream."""
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["eventID", "label", "technique", "campaign", "principal_kind"])
            for row in self.labels:
                w.writerow(
                    [row.event_id, row.label, row.technique, row.campaign, row.principal_kind]
                )
