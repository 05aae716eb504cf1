"""``opsbench live scale|security`` with the boto3 backends replaced by in-memory ones:
bad input is one line, exit 2 and nothing written; shadow and apply end to end; the
security loop's alerts are the analyser's own."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.live import aws
from adapters.live.aws import ScalingBackends
from agents.security.analyser import SecurityAnalyser
from bench.security_data import TrainingSpec, simulate_accounts
from live.fakes import (
    FakeAuditLog,
    FakeMarket,
    FakeMetrics,
    FakeNodeGroups,
    NoWriteNodeGroups,
    group,
    metrics,
)
from opsbench_testing import assert_nothing_written, assert_one_line_error, run_main

METRICS = Path(__file__).parent / "data" / "metrics_ab.yaml"
SCALE = ["live", "scale", "--cluster", "prod", "--metrics", str(METRICS), "--once"]


@pytest.fixture()
def backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScalingBackends]:
    """The node groups a, b of cluster prod (shadow-safe: any write fails the test)."""
    groups = NoWriteNodeGroups({"a": group("a", 3, 1, 10), "b": group("b", 2, 0, 10, "spot")})
    source = FakeMetrics({"a": metrics(2000, 0.95, 17), "b": metrics(2000, 0.95, 17)})
    made = ScalingBackends(source, groups, FakeMarket())
    monkeypatch.setattr(aws, "scaling_backends", lambda **_: made)
    yield made


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--policy", "reactive", "--nodegroup", "a,zzz"], ["--nodegroup", "'zzz'", "a, b"]),
        (["--policy", "reactive", "--nodegroup", "a,,b"], ["--nodegroup"]),
        (["--policy", "reactive", "--nodegroup", "a,a"], ["--nodegroup"]),
        (["--policy", "no-such", "--nodegroup", "a"], ["--policy", "unknown policy 'no-such'"]),
        (["--policy", "oracle", "--nodegroup", "a"], ["--policy", "foresees"]),
        (["--policy", "predictive", "--nodegroup", "a"], ["--policy", "freshest minute"]),
        (["--policy", "reactive", "--nodegroup", "a", "--max-step", "0"], ["--max-step"]),
        (["--policy", "reactive", "--nodegroup", "a", "--cooldown", "-1"], ["--cooldown"]),
        (
            ["--policy", "reactive", "--nodegroup", "a", "--budget-usd-per-hour", "0"],
            ["--budget-usd-per-hour"],
        ),
        (["--policy", "reactive", "--nodegroup", "a", "--interval", "0"], ["--interval"]),
    ],
)
def test_bad_input_is_one_line_and_nothing_written(
    args: list[str],
    needles: list[str],
    backends: ScalingBackends,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "decisions.jsonl"
    code, stdout, stderr = run_main(capsys, [*SCALE, *args, "--apply", "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, *needles)
    assert_nothing_written(out)


def test_out_must_be_a_file_in_an_existing_folder(
    backends: ScalingBackends, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for out, needle in ((tmp_path, "is a directory"), (tmp_path / "no" / "x.jsonl", "folder")):
        code, stdout, stderr = run_main(
            capsys, [*SCALE, "--policy", "reactive", "--nodegroup", "a", "--out", str(out)]
        )
        assert_one_line_error(code, stdout, stderr, "--out", needle)


def test_shadow_once_prints_and_appends_one_record_per_group(
    backends: ScalingBackends, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "decisions.jsonl"
    args = [*SCALE, "--policy", "reactive", "--nodegroup", "a,b", "--out", str(out), "--json"]
    for _ in range(2):
        code, stdout, stderr = run_main(capsys, args)
        assert (code, stderr) == (0, "")
        printed = [json.loads(line) for line in stdout.splitlines()]
        assert [r["nodegroup"] for r in printed] == ["a", "b"]
        assert {r["mode"] for r in printed} == {"shadow"} and not any(r["applied"] for r in printed)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 4 and written[2:] == printed


def test_apply_once_moves_by_at_most_max_step_and_the_kill_switch_stops_it(
    backends: ScalingBackends,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    groups = FakeNodeGroups(dict(backends.groups.groups))  # type: ignore[attr-defined]
    made = ScalingBackends(backends.metrics, groups, backends.market)
    monkeypatch.setattr(aws, "scaling_backends", lambda **_: made)
    stop = tmp_path / "stop"
    stop.touch()
    args = [*SCALE, "--policy", "reactive", "--nodegroup", "a,b", "--apply", "--max-step", "1"]
    args += ["--kill-switch", str(stop), "--json"]
    code, stdout, _ = run_main(capsys, args)
    assert code == 0 and groups.writes == []
    assert all("kill switch" in json.loads(line)["reason"] for line in stdout.splitlines())
    stop.unlink()
    code, stdout, _ = run_main(capsys, args)
    assert code == 0 and groups.writes  # the busy fleet grows, one node per group at most
    assert all(abs(n - {"a": 3, "b": 2}[g]) <= 1 for g, n in groups.writes)


def test_the_table_on_a_terminal_names_no_credentials(
    backends: ScalingBackends,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    code, stdout, stderr = run_main(capsys, [*SCALE, "--policy", "reactive", "--nodegroup", "a"])
    assert code == 0 and "a" in stdout
    assert secret not in stdout + stderr and "AKIAIOSFODNN7EXAMPLE" not in stdout + stderr


# --------------------------------------------------------------------------- security


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "--trail-bucket/--lookup"),
        (["--lookup", "--trail-bucket", "b"], "--trail-bucket/--lookup"),
        (["--lookup", "--prefix", "p/"], "--prefix"),
    ],
)
def test_security_needs_exactly_one_source(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "alerts.jsonl"
    code, stdout, stderr = run_main(capsys, ["live", "security", *args, "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, needle)
    assert_nothing_written(out)


def test_security_once_writes_the_analysers_alerts(
    small_analyser: SecurityAnalyser,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live_cli = importlib.import_module("bench.cli.live")  # the module, not the group

    records, _ = simulate_accounts(
        TrainingSpec(seed=5, accounts=1, days=0.5, campaigns_per_account=3)
    )
    records = sorted(records, key=lambda r: (r["eventTime"], r["eventID"]))
    broken = {"eventID": "broken-1", "eventTime": records[5]["eventTime"]}  # no eventName
    log = FakeAuditLog([*records[:5], broken, *records[5:]])
    given: dict[str, Any] = {}

    def audit_log(**kwargs: Any) -> FakeAuditLog:
        given.update(kwargs)
        return log

    monkeypatch.setattr(aws, "audit_log", audit_log)
    monkeypatch.setattr(live_cli, "security_model", lambda _models: small_analyser)
    out = tmp_path / "alerts.jsonl"
    args = ["live", "security", "--trail-bucket", "trail", "--prefix", "AWSLogs/", "--once"]
    code, stdout, stderr = run_main(capsys, [*args, "--out", str(out)])
    assert code == 0, stderr
    assert given["trail_bucket"] == "trail" and given["prefix"] == "AWSLogs/"
    assert "broken-1" in stderr and "eventName" in stderr  # reported, not dropped
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["kind"] == "malformed" and lines[0]["eventID"] == "broken-1"
    alerts = [line for line in lines if line["kind"] == "alert"]
    frame, _ = small_analyser.analyse(records)  # the batch analysis: same decisions
    expected = set(frame.loc[frame["is_alert"], "eventID"])
    assert expected and {a["eventID"] for a in alerts} == expected
    for alert in alerts:
        assert alert["analysis"]["risk_score"] >= small_analyser.threshold_
        assert alert["analysis"]["eventID"] == alert["eventID"]
    assert log.reads == [None] and f"{len(alerts):,} alerts" in stdout


def test_without_the_aws_adapters_live_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "adapters.aws", None)  # import fails as without boto3
    code, stdout, stderr = run_main(capsys, [*SCALE, "--policy", "reactive", "--nodegroup", "a"])
    assert_one_line_error(code, stdout, stderr, "needs boto3")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("pools: {a: [1, 2]}\n", ["bad.yaml", "pools.a"]),
        ("pools:\n  a: {request_rate_rps: {namespace: N}}\n", ["bad.yaml", "metric_name"]),
        ("pools: [a\n", ["bad.yaml", "not YAML"]),
        ("pools: {}\n", ["bad.yaml", "pools"]),
        (None, ["bad.yaml", "pools.b", "missing"]),  # the file without group b
    ],
)
def test_a_bad_metrics_file_is_one_line_naming_it(
    text: str | None,
    needles: list[str],
    backends: ScalingBackends,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yaml"
    if text is None:
        doc = yaml.safe_load(METRICS.read_text())
        del doc["pools"]["b"]
        text = yaml.safe_dump(doc)
    bad.write_text(text)
    out = tmp_path / "decisions.jsonl"
    args = [a if a != str(METRICS) else str(bad) for a in SCALE]
    code, stdout, stderr = run_main(
        capsys, [*args, "--policy", "reactive", "--nodegroup", "a,b", "--out", str(out)]
    )
    assert_one_line_error(code, stdout, stderr, *needles)
    assert_nothing_written(out)


class UnreachableNodeGroups(FakeNodeGroups):
    """Node groups whose describe fails as botocore does once its retries are spent."""

    fail = False

    def describe(self, name: str) -> Any:
        if self.fail:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "DescribeNodegroup",
            )
        return super().describe(name)


def test_an_aws_failure_in_an_interval_holds_and_says_why(
    backends: ScalingBackends,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Retries spent on a read: every group holds with the AWS error in its record, nothing
    is written, and ``--once`` exits 2 with one line (a long-running loop goes on)."""
    groups = UnreachableNodeGroups(dict(backends.groups.groups))  # type: ignore[attr-defined]
    made = ScalingBackends(backends.metrics, groups, backends.market)
    monkeypatch.setattr(aws, "scaling_backends", lambda **_: made)
    import adapters.live.loop as loop

    original = loop.LiveScaler

    def failing_after_setup(*args: Any, **kwargs: Any) -> Any:
        scaler = original(*args, **kwargs)
        groups.fail = True
        return scaler

    monkeypatch.setattr(loop, "LiveScaler", failing_after_setup)
    out = tmp_path / "decisions.jsonl"
    args = [*SCALE, "--policy", "reactive", "--nodegroup", "a,b", "--apply", "--json"]
    code, stdout, stderr = run_main(capsys, [*args, "--out", str(out)])
    assert code == 2 and groups.writes == []
    assert stderr.count("\n") == 1 and "ThrottlingException: Rate exceeded" in stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [json.loads(line) for line in stdout.splitlines()] == records
    assert [r["nodegroup"] for r in records] == ["a", "b"]
    assert all(r["reason"] == "hold: AWS call failed: DescribeNodegroup: ThrottlingException: "
               "Rate exceeded" and not r["applied"] for r in records)  # fmt: skip


def test_an_aws_failure_before_the_loop_is_one_line(
    backends: ScalingBackends,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    groups = UnreachableNodeGroups(dict(backends.groups.groups))  # type: ignore[attr-defined]
    groups.fail = True
    monkeypatch.setattr(
        aws, "scaling_backends", lambda **_: ScalingBackends(backends.metrics, groups, FakeMarket())
    )
    out = tmp_path / "decisions.jsonl"
    args = [*SCALE, "--policy", "reactive", "--nodegroup", "a", "--out", str(out)]
    code, stdout, stderr = run_main(capsys, args)
    assert_one_line_error(code, stdout, stderr, "reading cluster 'prod'", "ThrottlingException")
    assert_nothing_written(out)


def test_predictive_with_less_than_two_days_of_history_is_one_line(
    backends: ScalingBackends,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A metrics source with history that holds half a day (the minutes before its first
    datapoint are not load): predictive refuses to start, naming the metrics file."""
    import numpy as np

    from adapters.protocols import LoadHistory

    class HalfADay(FakeMetrics):
        def history(self, pools: Any, start: Any, end: Any) -> LoadHistory:
            minutes = int((end - start).total_seconds() // 60)
            gap = np.ones(minutes, dtype=bool)
            gap[-720:] = False  # data only in the last 12 hours
            return LoadHistory(np.where(gap, 0.0, 100.0), gap, start)

    made = ScalingBackends(HalfADay(dict(backends.metrics.metrics)), backends.groups,  # type: ignore[attr-defined]
                           backends.market)  # fmt: skip
    monkeypatch.setattr(aws, "scaling_backends", lambda **_: made)
    out = tmp_path / "decisions.jsonl"
    args = [*SCALE, "--policy", "predictive", "--nodegroup", "a", "--out", str(out)]
    code, stdout, stderr = run_main(capsys, args)
    assert_one_line_error(code, stdout, stderr, "metrics_ab.yaml", "0.50 days", "predictive")
    assert_nothing_written(out)
