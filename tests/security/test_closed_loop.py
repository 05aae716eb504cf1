"""The closed loop: the replay scores audit events as they happen with the analyser and
reports detection delay and false alerts; alerts use earlier events only."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agents.security.analyser import SecurityAnalyser
from agents.security.watch import AnalyserAuditWatcher
from bench.security_data import TrainingSpec, simulate_accounts
from opsbench_testing import run_main
from sim.audit.watch import SECURITY_ALERT_EVENT


def test_credential_theft_replay_reports_detection(
    small_shipped: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_main(
        capsys, ["replay", "credential-theft", "--days", "2", "--out", str(out), "--json"]
    )
    assert code == 0, err
    summary: dict[str, Any] = json.loads(stdout)
    sec = summary["security"]
    assert sec["watched"] and sec["audit_events"] == summary["telemetry_rows"]["audit"]
    assert sec["malicious_events"] > 0 and sec["alerts"] > 0
    for key in (
        "campaigns_detected",
        "detection_delay_min",
        "false_alerts",
        "false_alerts_per_day",
        "false_alerts_by_day",
        "malicious_recall",
    ):
        assert key in sec, key
    assert sec["false_alerts_per_day"] == round(sec["false_alerts"] / 2.0, 3)
    first, second = sec["campaigns"]
    assert first["campaign"] == "stolen-dev-keys" and first["events"] > 0
    assert first["delay_min"] is not None and first["delay_min"] >= 0
    assert first["stages"][0]["technique"].startswith("aws.credential-access.")
    # the second campaign starts after a 2-day replay ends: reported, not dropped
    assert second["campaign"] == "instance-role-miner" and second["events"] == 0
    assert second["delay_min"] is None

    # labels beside the telemetry, alerts inside it
    with (out / "audit_labels.csv").open() as fh:
        labels = list(csv.DictReader(fh))
    audit = pd.read_parquet(out / "audit.parquet")
    assert [r["eventID"] for r in labels] == audit.eventID.tolist()
    assert "label" not in audit.columns
    events = pd.read_parquet(out / "events.parquet")
    alerts = events[events.event == SECURITY_ALERT_EVENT]
    assert len(alerts) == sec["alerts"]
    alerted = alerts.reason.str.extract(r" id=(\S+) ")[0]
    assert alerted.isin(audit.eventID).all()

    # the security_analytics feature view builds on the audit stream
    code, stdout, err = run_main(
        capsys, ["features", "build", str(out), "--store", str(tmp_path / "s" / "store.duckdb")]
    )
    assert code == 0, err
    row = next(line for line in stdout.splitlines() if "security_analytics" in line)
    assert int(row.split()[-2].replace(",", "")) > 0


def test_alerts_use_earlier_events_only(small_model: SecurityAnalyser) -> None:
    """A record's alert does not depend on the records after it: scoring one minute's
    batch at once, second by second, or with a different future gives the same alerts
    for the shared past."""
    records, _ = simulate_accounts(
        TrainingSpec(seed=11, accounts=1, days=0.5, campaigns_per_account=2)
    )
    other, _ = simulate_accounts(TrainingSpec(seed=12, accounts=1, days=0.5))
    k = len(records) // 2
    while records[k]["eventTime"] == records[k - 1]["eventTime"]:
        k += 1  # the past ends with a whole second
    whole = AnalyserAuditWatcher(small_model).observe(records)
    per_second = AnalyserAuditWatcher(small_model)
    seconds = itertools.groupby(records, key=lambda r: r["eventTime"])
    singles = [a for _, second in seconds for a in per_second.observe(list(second))]
    assert whole == singles and len(whole) > 0
    past = {r["eventID"] for r in records[:k]}
    future = [r for r in other if r["eventTime"] > records[k - 1]["eventTime"]]
    rewritten = AnalyserAuditWatcher(small_model).observe(records[:k] + future)
    assert [a for a in whole if a.event_id in past] == [a for a in rewritten if a.event_id in past]
