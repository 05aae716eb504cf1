"""``opsbench live scale`` end to end against a moto server prepared as the README shows
(``bench.live_sandbox``), running the very commands the sandbox prints: shadow changes
nothing and makes no write call, ``--apply`` moves a group by at most ``--max-step``
(the cooldown then holds it), the kill switch and the budget stop writes, throttling is
retried by botocore, an unknown node group is one line, and ``predictive`` runs on the
history CloudWatch holds."""

from __future__ import annotations

import importlib
import json
import shlex
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aws_faults import Throttle, throttle  # noqa: F401 (a fixture)
from aws_moto import MotoServer, moto, moto_server  # noqa: F401 (fixtures)
from opsbench_testing import assert_nothing_written, assert_one_line_error, run_main

from adapters.aws.clients import AwsClients
from adapters.live import aws as live_aws
from bench.live_sandbox import Sandbox, prepare

pytestmark = pytest.mark.aws

NOW = datetime(2024, 7, 3, 12, 30, 40)  # a Wednesday around noon: the trace is busy
ON_DEMAND_USD_PER_HOUR = 0.308  # c5a.2xlarge in us-east-1, the shipped catalogue
WRITES = {"UpdateNodegroupConfig", "SetDesiredCapacity"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation the CLI's clients send (an ``before-call`` hook on each)."""
    sent: list[str] = []
    original = AwsClients._new_client

    def recording(self: AwsClients, service: str) -> Any:
        client = original(self, service)
        client.meta.events.register(
            "before-call", lambda model, **_: sent.append(model.name), unique_id="opsbench-test"
        )
        return client

    monkeypatch.setattr(AwsClients, "_new_client", recording)
    return sent


def sandbox_at(moto: MotoServer, tmp_path: Path, history_days: float) -> Sandbox:  # noqa: F811
    return prepare(moto.url, out_dir=tmp_path / "sandbox", now=NOW, history_days=history_days)


@pytest.fixture
def sandbox(
    moto: MotoServer,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Sandbox]:
    """A fresh sandbox (a few hours of history) and the CLI's clock at NOW (its metrics
    are 40 s old then)."""
    live_cli = importlib.import_module("bench.cli.live")  # the module, not the group
    monkeypatch.setattr(live_cli, "utc_now", lambda: NOW)
    monkeypatch.setattr(live_aws, "utc_now", lambda: NOW)
    yield sandbox_at(moto, tmp_path, history_days=0.1)


def printed(sandbox: Sandbox, which: int) -> list[str]:
    """The arguments of the sandbox's printed command ``which`` (0: managed groups in
    shadow, 1: the same with --apply, 2: the self-managed group), without ``opsbench``."""
    words = shlex.split(sandbox.commands()[which])
    assert words[0] == "opsbench"
    return words[1:]


def desired(moto: MotoServer, sandbox: Sandbox) -> dict[str, int]:  # noqa: F811
    """Desired size of every group, read back from moto."""
    eks, autoscaling = moto.client("eks"), moto.client("autoscaling")
    sizes = {
        name: int(
            eks.describe_nodegroup(clusterName=sandbox.cluster, nodegroupName=name)["nodegroup"][
                "scalingConfig"
            ]["desiredSize"]
        )
        for name in sandbox.nodegroups
    }
    (asg,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[sandbox.self_managed_group]
    )["AutoScalingGroups"]
    sizes[sandbox.self_managed_group] = int(asg["DesiredCapacity"])
    return sizes


def records_of(stdout: str) -> dict[str, dict[str, Any]]:
    return {r["nodegroup"]: r for r in (json.loads(line) for line in stdout.splitlines())}


def test_shadow_prints_one_decision_per_group_and_changes_nothing(
    sandbox: Sandbox,
    moto: MotoServer,  # noqa: F811
    calls: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = desired(moto, sandbox)
    for which in (0, 2):
        code, stdout, stderr = run_main(capsys, [*printed(sandbox, which), "--json"])
        assert code == 0, stderr
        records = records_of(stdout)
        groups = sandbox.nodegroups if which == 0 else (sandbox.self_managed_group,)
        assert sorted(records) == sorted(groups)
        assert all(r["mode"] == "shadow" and r["applied"] is False for r in records.values())
    assert records_of_first_run_grew(sandbox, capsys)
    assert desired(moto, sandbox) == before
    assert not WRITES & set(calls), calls
    assert {"GetMetricData", "DescribeNodegroup", "DescribeSpotPriceHistory"} <= set(calls)


def records_of_first_run_grew(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> bool:
    """At the busy hour the reactive policy wants more spot nodes than the 4 running."""
    code, stdout, _ = run_main(capsys, [*printed(sandbox, 0), "--json"])
    spot = records_of(stdout)["web-spot"]
    return code == 0 and spot["proposed_desired"] > 4 and spot["reason"].startswith("shadow")


def test_apply_moves_within_max_step_then_the_cooldown_holds(
    sandbox: Sandbox,
    moto: MotoServer,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "decisions.jsonl"
    args = [*printed(sandbox, 1), "--max-step", "1", "--out", str(out), "--json"]
    code, stdout, stderr = run_main(capsys, args)
    assert code == 0, stderr
    spot = records_of(stdout)["web-spot"]
    assert spot["proposed_desired"] > 5 and spot["target_desired"] == 5 and spot["applied"]
    after = desired(moto, sandbox)
    assert after["web-spot"] == 5 and after["web-on-demand"] == 4
    code, stdout, stderr = run_main(capsys, args)  # at once again: within the cooldown
    assert code == 0, stderr
    again = records_of(stdout)["web-spot"]
    assert not again["applied"] and "cooldown" in again["reason"]
    assert desired(moto, sandbox) == after
    assert len(out.read_text().splitlines()) == 4  # both runs' records, appended


def test_the_kill_switch_stops_every_write(
    sandbox: Sandbox,
    moto: MotoServer,  # noqa: F811
    calls: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stop = tmp_path / "stop"
    stop.touch()
    before = desired(moto, sandbox)
    code, stdout, stderr = run_main(
        capsys, [*printed(sandbox, 1), "--kill-switch", str(stop), "--json"]
    )
    assert code == 0, stderr
    records = records_of(stdout).values()
    assert all("kill switch" in r["reason"] and not r["applied"] for r in records)
    assert desired(moto, sandbox) == before and not WRITES & set(calls)


def test_the_budget_cuts_an_increase(
    sandbox: Sandbox,
    moto: MotoServer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The on-demand group alone must grow at the busy hour; a budget of five of its
    nodes (on-demand price from the shipped catalogue) lets it grow by one, not two."""
    args = printed(sandbox, 1)
    args[args.index("--nodegroup") + 1] = "web-on-demand"
    budget = 5 * ON_DEMAND_USD_PER_HOUR + 0.01
    code, stdout, stderr = run_main(capsys, [*args, "--budget-usd-per-hour", f"{budget}", "--json"])
    assert code == 0, stderr
    record = records_of(stdout)["web-on-demand"]
    assert record["proposed_desired"] > 6 and record["target_desired"] == 5, record
    assert "exceed the budget" in record["reason"] and record["applied"]
    assert desired(moto, sandbox)["web-on-demand"] == 5


def test_throttling_is_retried_and_the_interval_completes(
    sandbox: Sandbox,
    throttle: Callable[..., Throttle],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two throttled DescribeNodegroup and two DescribeSpotPriceHistory answers (429
    ThrottlingException, 503 RequestLimitExceeded; injected before the request leaves the
    client): botocore's standard mode retries them and the decisions are those of an
    unthrottled run."""
    hooks: list[Throttle] = []
    original = AwsClients._new_client

    def throttled(self: AwsClients, service: str) -> Any:
        client = original(self, service)
        if service == "eks":
            hooks.append(throttle(client, "eks", "DescribeNodegroup", times=2))
        if service == "ec2":
            hooks.append(throttle(client, "ec2", "DescribeSpotPriceHistory", times=2,
                                  protocol="query", status=503,
                                  code="RequestLimitExceeded"))  # fmt: skip
        return client

    code, plain, stderr = run_main(capsys, [*printed(sandbox, 0), "--json"])
    assert code == 0, stderr
    monkeypatch.setattr(AwsClients, "_new_client", throttled)
    code, stdout, stderr = run_main(capsys, [*printed(sandbox, 0), "--json"])
    assert code == 0, stderr
    assert len(hooks) == 2 and all(h.left == 0 and h.sends > 2 for h in hooks)

    def timeless(text: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "time"} for r in records_of(text).values()]

    assert timeless(stdout) == timeless(plain)


def test_an_unknown_node_group_is_one_line_and_nothing_written(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = printed(sandbox, 1)
    args[args.index("--nodegroup") + 1] = "web-on-demand,web-nope"
    out = tmp_path / "decisions.jsonl"
    code, stdout, stderr = run_main(capsys, [*args, "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, "--nodegroup", "'web-nope'", "web-spot")
    assert_nothing_written(out)


def test_predictive_runs_on_the_history_cloudwatch_holds(
    moto: MotoServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``predictive`` reads two days of request rate from CloudWatch (less is one line),
    is reset on it, and decides in shadow."""
    live_cli = importlib.import_module("bench.cli.live")
    monkeypatch.setattr(live_cli, "utc_now", lambda: NOW)
    short = sandbox_at(moto, tmp_path / "short", history_days=0.5)
    args = printed(short, 0)
    args[args.index("reactive")] = "predictive"
    models = ["--registry", str(tmp_path / "models")]
    code, stdout, stderr = run_main(capsys, [*args, *models])
    assert_one_line_error(code, stdout, stderr, "0.50 days", "predictive")
    moto.reset()
    full = sandbox_at(moto, tmp_path / "full", history_days=2.05)
    args = printed(full, 0)
    args[args.index("reactive")] = "predictive"
    code, stdout, stderr = run_main(capsys, [*args, *models, "--json"])
    assert code == 0, stderr
    records = records_of(stdout)
    assert sorted(records) == sorted(full.nodegroups)
    assert all(r["policy"] == "predictive" and not r["applied"] for r in records.values())
    assert any(r["policy_records"] for r in records.values())  # the forecast's own records
