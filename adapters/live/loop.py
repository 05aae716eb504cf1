"""The live control loop: every interval, the replay's policy decides and the guardrails
say what is written.

One :meth:`LiveScaler.step`:

1. describe every node group (:class:`~adapters.protocols.NodeGroups`), read the freshest
   minute of metrics (:class:`~adapters.protocols.MetricsSource`) and the offerings of
   the groups' instance types and zones (:class:`~adapters.protocols.SpotMarket`);
2. build the :class:`~sim.control.Observation` a replay builds, with the replay's own
   builder (:class:`adapters.observation.ObservationBuilder`, counting interruptions and
   launch failures from the first look), and ask the policy (the object a replay builds,
   reset once with the live context) for its decision; metrics older than the
   guardrails' ``max_metrics_age_s`` reach the policy as a telemetry gap (None);
3. per group, the guardrails (:func:`~adapters.live.guardrails.guard`) turn the proposal
   into a size to write or none; missing or stale metrics hold every group;
4. shadow (the default): nothing is written, the record says what would be; ``apply``:
   the size is written through :meth:`NodeGroups.set_desired`;
5. one decision record per group is returned (a JSON-able dict: see :func:`record`).

Retrying throttled or failed calls is the clients' job (botocore's retry modes), not
this loop's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters.live.guardrails import GroupProposal, Guardrails, Verdict, guard
from adapters.live.guardrails import node_price_usd_per_hour
from adapters.observation import ObservationBuilder
from adapters.protocols import (
    DesiredSizeOutOfBounds,
    MetricsReading,
    MetricsSource,
    NodeGroupInfo,
    NodeGroups,
    Offering,
    SpotMarket,
    WriteRefused,
)
from sim.control import ControlContext, Decision, Policy

RECORD_FIELDS = (
    "time",
    "cluster",
    "nodegroup",
    "policy",
    "mode",
    "current_desired",
    "proposed_desired",
    "target_desired",
    "applied",
    "reason",
    "min_size",
    "max_size",
    "metrics_age_s",
    "policy_reasons",
    "policy_records",
)
"""The keys of every decision record, in order."""


def hold_reason(reading: MetricsReading, max_age_s: float) -> str | None:
    """Why the loop must hold on ``reading`` (None: the metrics are usable)."""
    if reading.metrics is None:
        return "hold: metrics missing (a gap in telemetry, or a node group without data)"
    if not reading.age_s <= max_age_s:
        return f"hold: metrics stale ({reading.age_s:.0f} s old > {max_age_s:g} s)"
    return None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class StepSnapshot:
    """The node groups and offerings as read once in a step: the observation builder and
    the guardrails ask the same questions, and the cloud is asked once per step
    (``describe`` per group, ``offerings`` per distinct (types, zones)).

    It is a read-only :class:`~adapters.protocols.NodeGroups` (``set_desired`` refuses)
    and a :class:`~adapters.protocols.SpotMarket` without history or notices."""

    def __init__(self, groups: NodeGroups, market: SpotMarket, names: Sequence[str]) -> None:
        self._groups, self._market, self._names = groups, market, tuple(names)
        self.infos: dict[str, NodeGroupInfo] = {}
        self._offers: dict[tuple[tuple[str, ...], tuple[str, ...]], Sequence[Offering]] = {}

    def refresh(self) -> None:
        """Describe every group now; forget the offerings read before."""
        self.infos = {name: self._groups.describe(name) for name in self._names}
        self._offers = {}

    def list(self) -> Sequence[str]:
        return self._names

    def describe(self, name: str) -> NodeGroupInfo:
        return self.infos[name]

    def set_desired(self, name: str, desired: int, by_az: Mapping[str, int] | None = None) -> None:
        raise TypeError("a step snapshot is read-only: write through the node groups")

    def offerings(self, instance_types: Sequence[str], azs: Sequence[str]) -> Sequence[Offering]:
        key = (tuple(instance_types), tuple(azs))
        offers = self._offers.get(key)
        if offers is None:
            offers = self._offers[key] = tuple(self._market.offerings(*key))
        return offers

    def all_offerings(self) -> list[Offering]:
        """Every offering read in this step."""
        return [o for offers in self._offers.values() for o in offers]


class LiveScaler:
    """Runs ``policy`` on node groups ``names`` (reset with ``context`` at construction).

    Parameters
    ----------
    apply
        False (shadow): :meth:`NodeGroups.set_desired` is never called.
    last_writes
        When each group was last written (e.g. read back from an earlier run's records),
        for the cooldown.
    kill_switch_present
        Whether the kill switch is on now (default: its file exists).
    """

    def __init__(
        self,
        policy: Policy,
        context: ControlContext,
        *,
        metrics: MetricsSource,
        groups: NodeGroups,
        market: SpotMarket,
        names: Sequence[str],
        rails: Guardrails,
        apply: bool = False,
        cluster: str = "",
        last_writes: Mapping[str, datetime] | None = None,
        kill_switch_present: Callable[[], bool] | None = None,
    ) -> None:
        self.policy, self.context = policy, context
        self.metrics, self.groups, self.market = metrics, groups, market
        self.names = tuple(names)
        self.rails, self.apply, self.cluster = rails, apply, cluster
        self.last_writes: dict[str, datetime] = dict(last_writes or {})
        self.kill_switch_present = kill_switch_present or rails.kill_switch.exists
        self.snapshot = StepSnapshot(groups, market, self.names)
        self.builder = ObservationBuilder(
            metrics, self.snapshot, self.snapshot, names=self.names, count_from_first_look=True
        )
        policy.reset(context)

    def step(self, now: datetime) -> list[dict[str, Any]]:
        """One interval at ``now``: decide, guard, write (with ``apply``); the records."""
        self.snapshot.refresh()
        observation = self.builder.observe(now, (now - self.context.start).total_seconds())
        reading = MetricsReading(observation.metrics, observation.metrics_age_s)
        held = hold_reason(reading, self.rails.max_metrics_age_s)
        if held is not None and observation.metrics is not None:
            observation = observation._replace(metrics=None)  # stale: a gap, as in a replay
        decision = self.policy.decide(observation)
        offerings = self.snapshot.all_offerings()
        proposals = [
            GroupProposal(
                info,
                int(decision.desired_nodes.get(name, info.desired_size)),
                node_price_usd_per_hour(info, offerings),
                self.last_writes.get(name),
            )
            for name, info in self.snapshot.infos.items()
        ]
        if held is not None:
            verdicts = [Verdict(p.info.name, None, held) for p in proposals]
        else:
            verdicts = guard(
                proposals, self.rails, now=now, kill_switch_present=self.kill_switch_present()
            )
        out = []
        for proposal, verdict in zip(proposals, verdicts, strict=True):
            applied, reason = self._write(proposal, verdict, decision, now)
            out.append(record(self, now, proposal, verdict, decision, applied, reason, reading))
        return out

    def hold_all(self, now: datetime, reason: str) -> list[dict[str, Any]]:
        """One record per group for an interval that could not look at the cloud (the
        policy is not asked; nothing is written)."""
        mode = "apply" if self.apply else "shadow"
        return [
            {
                "time": now.isoformat(),
                "cluster": self.cluster,
                "nodegroup": name,
                "policy": self.policy.name,
                "mode": mode,
                "current_desired": None,
                "proposed_desired": None,
                "target_desired": None,
                "applied": False,
                "reason": reason,
                "min_size": None,
                "max_size": None,
                "metrics_age_s": None,
                "policy_reasons": [],
                "policy_records": [],
            }
            for name in self.names
        ]

    def _write(
        self, proposal: GroupProposal, verdict: Verdict, decision: Decision, now: datetime
    ) -> tuple[bool, str]:
        """Write ``verdict`` (with ``apply``); whether it was written, and the reason."""
        if verdict.write is None:
            return False, verdict.reason
        name = verdict.nodegroup
        self.last_writes[name] = now  # shadow keeps the cooldown a write would start
        if not self.apply:
            return False, f"shadow: would write {verdict.write} ({verdict.reason})"
        by_az = decision.desired_by_az.get(name)
        if by_az is not None and sum(by_az.values()) != verdict.write:
            by_az = None  # the guardrails changed the size: the group places it
        try:
            self.groups.set_desired(name, verdict.write, by_az)
        except DesiredSizeOutOfBounds as exc:  # the bounds moved since describe
            del self.last_writes[name]
            return False, f"refused by the node group: {exc}"
        except WriteRefused as exc:  # e.g. an update still in progress, access denied
            del self.last_writes[name]
            return False, f"write refused: {exc.reason}"
        return True, f"written: {verdict.reason}"


def record(
    scaler: LiveScaler,
    now: datetime,
    proposal: GroupProposal,
    verdict: Verdict,
    decision: Decision,
    applied: bool,
    reason: str,
    reading: MetricsReading,
) -> dict[str, Any]:
    """One group's decision record (keys :data:`RECORD_FIELDS`); ``policy_records`` are the
    policy's own records of the group (:attr:`Decision.records` with its ``pool``)."""
    info: NodeGroupInfo = proposal.info
    name = info.name
    return {
        "time": now.isoformat(),
        "cluster": scaler.cluster,
        "nodegroup": name,
        "policy": scaler.policy.name,
        "mode": "apply" if scaler.apply else "shadow",
        "current_desired": info.desired_size,
        "proposed_desired": proposal.proposed,
        "target_desired": verdict.write,
        "applied": applied,
        "reason": reason,
        "min_size": info.min_size,
        "max_size": info.max_size,
        "metrics_age_s": _finite(reading.age_s),
        "policy_reasons": list(decision.reasons),
        "policy_records": [dict(r) for r in decision.records if r.get("pool") == name],
    }


def last_writes_from(records: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    """When each group was last written according to earlier decision records (so a loop
    restarted with ``--once`` from cron keeps the cooldown)."""
    out: dict[str, datetime] = {}
    for rec in records:
        if rec.get("applied") is True and isinstance(rec.get("nodegroup"), str):
            try:
                when = datetime.fromisoformat(str(rec.get("time")))
            except ValueError:
                continue
            name = str(rec["nodegroup"])
            if name not in out or when > out[name]:
                out[name] = when
    return out


def run_every(
    step: Callable[[datetime], None],
    *,
    interval_s: float,
    once: bool,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Call ``step(clock())`` every ``interval_s`` seconds (once with ``once``) until
    ``stop()``; returns the number of steps."""
    steps = 0
    while True:
        started = time.monotonic()
        step(clock())
        steps += 1
        if once or stop():
            return steps
        sleep(max(0.0, interval_s - (time.monotonic() - started)))
