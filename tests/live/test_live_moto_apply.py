"""``opsbench live scale --apply`` end to end against a moto server prepared as the README
shows (``bench.live_sandbox``), a fresh sandbox per test: ``--apply`` moves a group by at
most ``--max-step`` and the cooldown then holds it; the budget cuts an increase."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_moto import MotoServer, moto, moto_server  # noqa: F401 (fixtures)
from live.moto_fleet import (
    ON_DEMAND_USD_PER_HOUR,
    clock_at_now,  # noqa: F401 (a fixture)
    desired,
    printed,
    records_of,
    sandbox_at,
)
from opsbench_testing import run_main

from bench.live_sandbox import Sandbox

pytestmark = pytest.mark.aws


@pytest.fixture
def sandbox(
    moto: MotoServer,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    clock_at_now: None,  # noqa: F811
) -> Sandbox:
    """A fresh sandbox (a few hours of history) for a test that writes."""
    return sandbox_at(moto, tmp_path / "sandbox", history_days=0.1)


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
