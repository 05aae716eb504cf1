"""Audit events in the replay: determinism, labels kept beside the records, the cluster's
own API calls, the audit-watcher seam, the security summary and bad ``audit:`` input."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import runner
from opsbench_testing import run_main, shipped_doc
from sim.audit.watch import (
    SECURITY_ALERT_EVENT,
    AuditAlert,
    BookedAlert,
    CampaignStart,
    LabelRow,
    security_summary,
)
from sim.engine import Replay
from sim.telemetry import MemorySink

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
DAYS = 0.5


def short_doc(**audit: Any) -> dict[str, Any]:
    """credential-theft shortened to half a day, both campaigns inside it."""
    doc = shipped_doc("credential-theft")
    doc["duration_days"] = DAYS
    doc["audit"]["campaigns"][0]["start_h"] = 2.0
    doc["audit"]["campaigns"][1]["start_h"] = 7.0
    doc["audit"].update(audit)
    return doc


def write(tmp_path: Path, doc: dict[str, Any], name: str = "audit.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def replay(
    path: Path, *, seed: int | None = None, watcher: Any = None
) -> tuple[Replay, MemorySink]:
    prepared = runner.prepare_run(str(path), seed=seed)
    sink = MemorySink()
    rp = Replay(prepared.world, prepared.policy, sink, audit_watcher=watcher)
    rp.run()
    return rp, sink


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("audit"), short_doc())


@pytest.fixture(scope="module")
def first(scenario_file: Path) -> tuple[Replay, MemorySink]:
    return replay(scenario_file)


def test_audit_stream_is_deterministic_and_seeded(
    scenario_file: Path, first: tuple[Replay, MemorySink]
) -> None:
    rp1, sink1 = first
    rp2, sink2 = replay(scenario_file)
    audit1 = sink1.table("audit")
    assert audit1.num_rows > 500
    assert rp1.telemetry.sha256() == rp2.telemetry.sha256()
    assert audit1.equals(sink2.table("audit"))
    assert rp1.audit is not None and rp2.audit is not None
    assert rp1.audit.labels == rp2.audit.labels
    _, sink3 = replay(scenario_file, seed=43)
    assert not audit1.column("eventID").equals(sink3.table("audit").column("eventID"))


def test_audit_does_not_disturb_the_cluster(
    tmp_path: Path, first: tuple[Replay, MemorySink]
) -> None:
    """The audit generators are their own seeded components: with or without ``audit:``
    the cluster's metrics, capacity, events and billing are the same rows."""
    doc = short_doc()
    del doc["audit"]
    _, plain = replay(write(tmp_path, doc, "plain.yaml"))
    _, with_audit = first
    for stream in ("metrics", "capacity", "events", "billing"):
        assert plain.table(stream).to_pandas().equals(with_audit.table(stream).to_pandas()), stream
    assert plain.table("audit").num_rows == 0


def test_labels_are_beside_the_records_never_inside(first: tuple[Replay, MemorySink]) -> None:
    rp, sink = first
    assert rp.audit is not None
    audit = sink.table("audit").to_pylist()
    labels = rp.audit.labels
    assert [r["eventID"] for r in audit] == [lab.event_id for lab in labels]
    kinds = {lab.label for lab in labels}
    assert kinds == {"normal", "suspicious", "malicious"}
    secrets = {"normal", "suspicious", "malicious", "stolen-dev-keys", "instance-role-miner"}
    secrets |= {lab.technique for lab in labels if lab.technique}
    for row in audit:
        record = json.loads(row["record_json"])
        assert record["eventID"] == row["eventID"]
        assert not {"label", "technique", "campaign", "principal_kind"} & set(record)
        text = row["record_json"]
        assert not any(s in text for s in secrets), text
    times = [r["eventTime"] for r in audit]
    assert times == sorted(times)


def test_cluster_calls_follow_the_cluster_events(first: tuple[Replay, MemorySink]) -> None:
    _, sink = first
    events = sink.table("events").to_pandas()
    audit = sink.table("audit").to_pandas()
    asg = audit[audit.principal_arn.str.contains("AWSServiceRoleForAutoScaling")]
    launches = events[(events.event == "launch_requested") & (events.reason != "initial fleet")]
    run = asg[(asg.eventName == "RunInstances") & asg.errorCode.isna()]
    assert len(launches) > 0 and len(run) == len(launches)
    scale_in = events[(events.event == "terminated") & (events.reason == "scale-in")]
    assert (asg.eventName == "TerminateInstances").sum() == len(scale_in)
    drains = events[(events.event == "drain") & events.reason.str.startswith("scale-in")]
    assert (audit.eventName == "TerminateInstanceInAutoScalingGroup").sum() == len(drains)
    notices = events[events.event == "interruption_notice"]
    assert (audit.eventName == "BidEvictedEvent").sum() == len(notices)


class EveryTenth:
    """Alerts on every 10th record; remembers what it saw, in order."""

    def __init__(self) -> None:
        self.seen: list[Mapping[str, Any]] = []

    def observe(self, records: Sequence[Mapping[str, Any]]) -> Sequence[AuditAlert]:
        out = []
        for rec in records:
            self.seen.append(rec)
            if len(self.seen) % 10 == 0:
                out.append(AuditAlert(str(rec["eventID"]), 0.9, "test", "every tenth"))
        return out


def test_watcher_sees_each_record_once_in_order_and_alerts_become_events(
    scenario_file: Path,
) -> None:
    watcher = EveryTenth()
    rp, sink = replay(scenario_file, watcher=watcher)
    audit = sink.table("audit")
    assert [r["eventID"] for r in watcher.seen] == audit.column("eventID").to_pylist()
    events = sink.table("events").to_pandas()
    booked = events[events.event == SECURITY_ALERT_EVENT]
    assert len(booked) == len(rp.audit.alerts) == audit.num_rows // 10  # type: ignore[union-attr]
    for alert in rp.audit.alerts:  # type: ignore[union-attr]
        # raised at the end of the record's minute: never before the record existed
        assert 0 < alert.sim_time_s - alert.event_time_s <= 60.0
        assert alert.sim_time_s % 60.0 == 0.0
    assert booked.reason.str.contains(" id=").all()
    s = rp.audit.summary()  # type: ignore[union-attr]
    assert s["watched"] and s["alerts"] == len(booked)
    assert {c["campaign"] for c in s["campaigns"]} == {"stolen-dev-keys", "instance-role-miner"}


def test_security_summary_delays_and_false_alerts() -> None:
    labels = [
        LabelRow("n1", 100.0, "normal", "", "", "admin"),
        LabelRow("a1", 4000.0, "suspicious", "t.one", "c1", "attacker"),
        LabelRow("a2", 4100.0, "malicious", "t.one", "c1", "attacker"),
        LabelRow("a3", 4700.0, "malicious", "t.two", "c1", "attacker"),
        LabelRow("n2", 90_000.0, "normal", "", "", "developer"),
        LabelRow("b1", 9000.0, "malicious", "t.three", "c2", "attacker"),
    ]
    alerts = [
        BookedAlert(120.0, 100.0, "n1", "X", "p1", 0.9, "c"),  # false, day 0
        BookedAlert(4140.0, 4100.0, "a2", "Y", "p2", 0.9, "c"),  # c1: 140 s after its first
        BookedAlert(4740.0, 4700.0, "a3", "Z", "p2", 0.9, "c"),
        BookedAlert(90_060.0, 90_000.0, "n2", "X", "p3", 0.9, "c"),  # false, day 1
    ]
    starts = [CampaignStart("c1", 3600.0, "e"), CampaignStart("c2", 8000.0, "e")]
    got = security_summary(labels, alerts, starts, 2 * 86_400.0)
    c1, c2 = got["campaigns"]
    assert c1["delay_min"] == round(140 / 60, 2) and c1["first_event_h"] == round(4000 / 3600, 4)
    assert [st["delay_min"] for st in c1["stages"]] == [round(140 / 60, 2), round(40 / 60, 2)]
    assert c2["delay_min"] is None and c2["stages"][0]["alerts"] == 0
    assert got["campaigns_detected"] == 1 and got["detection_delay_min"] == c1["delay_min"]
    assert got["false_alerts"] == 2 and got["false_alerts_per_day"] == 1.0
    assert got["false_alerts_by_day"] == [1, 1]
    assert got["malicious_recall"] == round(2 / 3, 4)
    unwatched = security_summary(labels, None, starts, 86_400.0)
    assert "alerts" not in unwatched and "delay_min" not in unwatched["campaigns"][0]


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (
            lambda d: d["audit"]["campaigns"][0]["techniques"].__setitem__(
                1, "aws.credential-access.ssm-retrieve-securestring-parameter"
            ),
            [
                "audit.campaigns[0].techniques[1]",
                "unknown technique",
                "did you mean aws.credential-access.ssm-retrieve-securestring-parameters",
            ],
        ),
        (
            lambda d: d["audit"]["campaigns"][1].__setitem__("pase_s", 3),
            ["audit.campaigns[1].pase_s", "pace_s"],
        ),
        (
            lambda d: d["audit"]["campaigns"][1].__setitem__("start_h", 30),
            ["audit.campaigns[1].start_h", "not before the end"],
        ),
        (
            lambda d: d["audit"]["population"].__setitem__("developer", 16),
            ["audit.population.developer", "15"],
        ),
        (
            lambda d: d["audit"]["campaigns"][0].__setitem__("entry", "phishing"),
            ["audit.campaigns[0].entry", "stolen-access-key"],
        ),
        (
            lambda d: d["audit"].__setitem__("techniques_csv", "nope.csv"),
            ["audit.techniques_csv", "file not found"],
        ),
    ],
)
def test_bad_audit_section_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, needles: list[str]
) -> None:
    doc = short_doc()
    change(doc)
    path = write(tmp_path, doc, "mine.yaml")
    out = tmp_path / "out"
    code, stdout, err = run_main(capsys, ["replay", str(path), "--out", str(out)])
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "mine.yaml" in err, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()
