"""``opsbench live security --lookup --once`` end to end through the CLI: the boto3 reader
on a cloudtrail client whose answers the Stubber checks against the service model (moto
has no lookup_events), the analyser's alerts, a malformed event reported, and the cursor
file that makes the next run resume where this one stopped."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from cloudtrail_stub import lookup_event, record_time, stub_lookup_pages
from opsbench_testing import assert_nothing_written, assert_one_line_error, run_main

from adapters.aws.clients import AwsClients
from adapters.live import aws
from agents.security.analyser import SecurityAnalyser
from bench.security_data import TrainingSpec, simulate_accounts

NOW = datetime(2024, 1, 2, 12, 30, 0)
LAG = timedelta(minutes=15)  # the default lag of a lookup read
SINCE = "2024-01-02T09:00:00Z"
RECORDS_UNTIL = NOW - LAG


@pytest.fixture
def cloudtrail(
    monkeypatch: pytest.MonkeyPatch,
    small_analyser: SecurityAnalyser,
) -> Iterator[Stubber]:
    """The CLI's client factory hands out one cloudtrail client with a Stubber active;
    the clock is NOW and the model the small analyser."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    clients = AwsClients("us-east-1", max_attempts=1)
    given: list[tuple[str | None, str | None]] = []

    def factory(region: str | None, endpoint_url: str | None) -> AwsClients:
        given.append((region, endpoint_url))
        return clients

    live_cli = importlib.import_module("bench.cli.live")
    monkeypatch.setattr(aws, "_clients", factory)
    monkeypatch.setattr(live_cli, "utc_now", lambda: NOW)
    monkeypatch.setattr(live_cli, "security_model", lambda _models: small_analyser)
    with Stubber(clients.client("cloudtrail")) as stub:
        yield stub
        stub.assert_no_pending_responses()
    assert all(g == ("us-east-1", None) for g in given)


def records() -> list[dict[str, Any]]:
    """Synthetic CloudTrail records of one account, 09:00 up to the first read's end."""
    found, _ = simulate_accounts(
        TrainingSpec(seed=5, accounts=1, days=0.5, campaigns_per_account=3)
    )
    start = datetime.fromisoformat(SINCE)
    return sorted(
        (r for r in found if start <= record_time(r) < RECORDS_UNTIL.replace(tzinfo=UTC)),
        key=lambda r: (r["eventTime"], r["eventID"]),
    )


def lookup(*args: str) -> list[str]:
    return ["live", "security", "--lookup", "--region", "us-east-1", "--once", *args]


def test_lookup_once_scores_reports_and_resumes_from_the_cursor_file(
    cloudtrail: Stubber,
    small_analyser: SecurityAnalyser,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = records()
    broken = {**lookup_event(first[3]), "EventId": "0b7c3a1e-4d2f-4e8a-9c6b-5a4d3e2f1a0b",
              "CloudTrailEvent": '{"eventVersion": "1.08", "eventTi'}  # fmt: skip
    events = [lookup_event(r) for r in reversed(first)]
    events.insert(len(events) // 2, broken)
    expected = {
        "StartTime": datetime.fromisoformat(SINCE),
        "EndTime": RECORDS_UNTIL.replace(tzinfo=UTC),
    }
    stub_lookup_pages(cloudtrail, events, expected)
    out, cursor = tmp_path / "alerts.jsonl", tmp_path / "cursor.json"
    args = lookup("--since", SINCE, "--cursor", str(cursor), "--out", str(out))
    code, stdout, stderr = run_main(capsys, args)
    assert code == 0, stderr
    stdout = " ".join(stdout.split())  # as the console wrapped it
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {
        "kind": "malformed",
        "where": f"lookup_events EventId={broken['EventId']}",
        "error": "CloudTrailEvent is not valid JSON",
    }
    assert broken["EventId"] in stderr and "not valid JSON" in stderr  # reported, not fatal
    frame, _ = small_analyser.analyse(first)  # the batch analysis: the same decisions
    alerts = {line["eventID"] for line in lines if line["kind"] == "alert"}
    assert alerts and alerts == set(frame.loc[frame["is_alert"], "eventID"])
    assert f"{len(first):,} records (lookup-events {len(first):,})" in stdout
    assert f"{len(first):,} scored, {len(alerts):,} alerts, 1 malformed" in stdout
    saved = json.loads(cursor.read_text())
    assert (saved["kind"], saved["source"]) == (
        "opsbench live security cursor",
        "lookup_events us-east-1",
    )
    assert json.loads(saved["cursor"])["after"] == first[-1]["eventTime"]

    # 20 minutes later, from cron: the read starts at the cursor's second (StartTime is
    # inclusive), skips what it scored there, and scores only the new events
    last = record_time(first[-1])
    again = [r for r in first if record_time(r) == last]
    new = [
        {**first[i], "eventID": f"5e0f{i:04d}-8a7b-4c6d-9e8f-7a6b5c4d3e2f",
         "eventTime": (last + timedelta(minutes=2 + i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for i in range(5)
    ]  # fmt: skip
    later = NOW + timedelta(minutes=20)
    importlib.import_module("bench.cli.live").utc_now = lambda: later  # monkeypatched: undone
    expected = {"StartTime": last, "EndTime": (later - LAG).replace(tzinfo=UTC)}
    stub_lookup_pages(cloudtrail, [lookup_event(r) for r in reversed([*again, *new])], expected)
    code, stdout, stderr = run_main(capsys, lookup("--cursor", str(cursor), "--out", str(out)))
    assert code == 0, stderr
    stdout = " ".join(stdout.split())
    assert "5 records (lookup-events 5), 5 scored" in stdout and "warning" not in stderr
    rescored = [json.loads(line) for line in out.read_text().splitlines()][len(lines) :]
    assert {line["eventID"] for line in rescored} <= {r["eventID"] for r in new}
    assert json.loads(json.loads(cursor.read_text())["cursor"])["after"] == new[-1]["eventTime"]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("not json", "(file)"),
        ('{"kind": "something else", "version": 1}', "kind"),
        (
            '{"kind": "opsbench live security cursor", "version": 1, '
            '"source": "s3://other/", "cursor": "{}"}',
            "source",
        ),
    ],
)
def test_a_cursor_file_this_command_did_not_write_is_one_line(
    cloudtrail: Stubber, content: str, field: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    cursor, out = tmp_path / "cursor.json", tmp_path / "alerts.jsonl"
    cursor.write_text(content)
    code, stdout, stderr = run_main(capsys, lookup("--cursor", str(cursor), "--out", str(out)))
    assert_one_line_error(code, stdout, stderr, f"{cursor}: {field}")
    assert_nothing_written(out)
    assert cursor.read_text() == content


def test_a_foreign_reader_cursor_names_the_cursor_file(
    cloudtrail: Stubber, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cursor = tmp_path / "cursor.json"
    doc = {"kind": "opsbench live security cursor", "version": 1,
           "source": "lookup_events us-east-1", "cursor": "key.json.gz"}  # fmt: skip
    cursor.write_text(json.dumps(doc))
    code, stdout, stderr = run_main(capsys, lookup("--cursor", str(cursor)))
    assert_one_line_error(code, stdout, stderr, f"{cursor}: cursor")


@pytest.mark.parametrize("since", ["yesterday", "2030-01-01T00:00:00Z", "5x"])
def test_a_bad_since_is_one_line(
    cloudtrail: Stubber, since: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "alerts.jsonl"
    code, stdout, stderr = run_main(capsys, lookup("--since", since, "--out", str(out)))
    assert_one_line_error(code, stdout, stderr, "--since")
    assert_nothing_written(out)


def test_a_failed_lookup_holds_the_cursor_and_is_one_line(
    cloudtrail: Stubber, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Throttled beyond botocore's retries: a warning and, with ``--once``, one error line
    (exit 2); no alert, no cursor written, so the next run reads the same events."""
    cloudtrail.add_client_error("lookup_events", "ThrottlingException", "Rate exceeded", 400)
    cursor, out = tmp_path / "cursor.json", tmp_path / "alerts.jsonl"
    code, _stdout, stderr = run_main(
        capsys, lookup("--cursor", str(cursor), "--out", str(out), "--json")
    )
    lines = stderr.splitlines()
    assert code == 2 and lines[-1].startswith("opsbench: error: live security:")
    assert all("LookupEvents: ThrottlingException: Rate exceeded" in line for line in lines)
    assert not cursor.exists() and (not out.exists() or out.read_text() == "")
