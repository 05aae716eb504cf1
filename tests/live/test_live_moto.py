"""``opsbench live scale`` end to end against one moto server prepared as the README shows
(``bench.live_sandbox``), through the very commands the sandbox prints, for the runs that
write nothing: shadow makes no write call and changes nothing, the kill switch stops
``--apply``, throttling is retried by botocore, an unknown node group is one line, and
``predictive`` runs on the history CloudWatch holds. (The runs that write:
test_live_moto_apply.py, each on a fresh sandbox.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_faults import Throttle, throttle  # noqa: F401 (a fixture)
from aws_moto import MotoServer, moto_server, set_test_environment  # noqa: F401 (fixtures)
from live.moto_fleet import WRITES, calls, clock_at_now, desired, printed, records_of, sandbox_at  # noqa: F401
from opsbench_testing import assert_nothing_written, assert_one_line_error, run_main

from adapters.aws.clients import AwsClients
from bench.live_sandbox import Sandbox

pytestmark = pytest.mark.aws


@pytest.fixture(scope="module")
def shared(
    moto_server: MotoServer,  # noqa: F811 (the fixture imported above)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Sandbox]:
    """One sandbox for the module (two days of history: predictive's minimum); no test
    here resets the server or writes to it."""
    with pytest.MonkeyPatch.context() as env:
        set_test_environment(env)
        moto_server.reset()
        yield sandbox_at(moto_server, tmp_path_factory.mktemp("shared"), history_days=2.05)


@pytest.fixture
def read_only(
    shared: Sandbox,
    clock_at_now: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Sandbox:
    set_test_environment(monkeypatch)
    return shared


def test_shadow_prints_one_decision_per_group_and_changes_nothing(
    read_only: Sandbox,
    moto_server: MotoServer,  # noqa: F811
    calls: list[str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = read_only
    before = desired(moto_server, sandbox)
    for which in (0, 2):
        code, stdout, stderr = run_main(capsys, [*printed(sandbox, which), "--json"])
        assert code == 0, stderr
        records = records_of(stdout)
        groups = sandbox.nodegroups if which == 0 else (sandbox.self_managed_group,)
        assert sorted(records) == sorted(groups)
        assert all(r["mode"] == "shadow" and r["applied"] is False for r in records.values())
    assert records_of_first_run_grew(sandbox, capsys)
    assert desired(moto_server, sandbox) == before
    assert not WRITES & set(calls), calls
    assert {"GetMetricData", "DescribeNodegroup", "DescribeSpotPriceHistory"} <= set(calls)


def records_of_first_run_grew(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> bool:
    """At the busy hour the reactive policy wants more spot nodes than the 4 running."""
    code, stdout, _ = run_main(capsys, [*printed(sandbox, 0), "--json"])
    spot = records_of(stdout)["web-spot"]
    return code == 0 and spot["proposed_desired"] > 4 and spot["reason"].startswith("shadow")


def test_the_kill_switch_stops_every_write(
    read_only: Sandbox,
    moto_server: MotoServer,  # noqa: F811
    calls: list[str],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = read_only
    stop = tmp_path / "stop"
    stop.touch()
    before = desired(moto_server, sandbox)
    code, stdout, stderr = run_main(
        capsys, [*printed(sandbox, 1), "--kill-switch", str(stop), "--json"]
    )
    assert code == 0, stderr
    records = records_of(stdout).values()
    assert all("kill switch" in r["reason"] and not r["applied"] for r in records)
    assert desired(moto_server, sandbox) == before and not WRITES & set(calls)


def test_throttling_is_retried_and_the_interval_completes(
    read_only: Sandbox,
    throttle: Callable[..., Throttle],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two throttled DescribeNodegroup and two DescribeSpotPriceHistory answers (429
    ThrottlingException, 503 RequestLimitExceeded; injected before the request leaves the
    client): botocore's standard mode retries them and the decisions are those of an
    unthrottled run."""
    sandbox = read_only
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
    read_only: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = printed(read_only, 1)
    args[args.index("--nodegroup") + 1] = "web-on-demand,web-nope"
    out = tmp_path / "decisions.jsonl"
    code, stdout, stderr = run_main(capsys, [*args, "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, "--nodegroup", "'web-nope'", "web-spot")
    assert_nothing_written(out)


def test_predictive_runs_on_the_history_cloudwatch_holds(
    read_only: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``predictive`` reads two days of request rate from CloudWatch, is reset on it, and
    decides in shadow (less history is one line: tests/live/test_cli.py)."""
    args = printed(read_only, 0)
    args[args.index("reactive")] = "predictive"
    models = ["--registry", str(tmp_path / "models")]
    code, stdout, stderr = run_main(capsys, [*args, *models, "--json"])
    assert code == 0, stderr
    records = records_of(stdout)
    assert sorted(records) == sorted(read_only.nodegroups)
    assert all(r["policy"] == "predictive" and not r["applied"] for r in records.values())
    assert any(r["policy_records"] for r in records.values())  # the forecast's own records
