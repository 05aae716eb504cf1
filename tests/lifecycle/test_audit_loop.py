"""The security analyser's lifecycle loop: the arrival in the world, the point-in-time
training set and its quarantine, and the scenario's lifecycle.security input."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.lifecycle.audit_loop import Seen, training_set
from opsbench_testing import assert_one_line_error, run_main
from sim.audit.arrivals import ARRIVAL_KIND, arrival_records
from sim.scenario import PrincipalArrival

START = datetime(1995, 7, 17)


def _seen(n: int) -> list[Seen]:
    """``n`` records a minute apart; every 7th from an attacker session that the champion
    alerted on and that fires a Sigma rule, every 5th a benign alert without one."""
    out = []
    for i in range(n):
        attacker = i % 7 == 3
        session = ("203.0.113.9", "python-requests/2.28") if attacker else ("10.0.0.1", "ua")
        rec = {"eventID": f"e{i}", "sourceIPAddress": session[0], "userAgent": session[1]}
        out.append(Seen(60.0 * i, rec, session, attacker or i % 5 == 0, attacker and i % 2 == 1))
    return out


@settings(max_examples=60, deadline=None)
@given(end_min=st.integers(0, 400), window_min=st.integers(1, 500))
def test_no_training_record_from_after_the_trigger(end_min: int, window_min: int) -> None:
    seen = _seen(300)
    data = training_set(seen, end_s=end_min * 60.0, window_s=window_min * 60.0,
                        holdout_fraction=0.2)  # fmt: skip
    times = {s.record["eventID"]: s.t_s for s in seen}
    used = [times[r["eventID"]] for r in [*data.train, *data.holdout]]
    assert all(data.start_s <= t < end_min * 60.0 for t in used)
    assert all(a <= b for a, b in itertools.pairwise(used))  # the holdout is the latest


def test_the_campaign_sessions_are_not_in_the_retraining_set() -> None:
    seen = _seen(300)
    data = training_set(seen, end_s=300 * 60.0, window_s=1e9, holdout_fraction=0.2)
    kept = [*data.train, *data.holdout]
    assert kept and all(r["sourceIPAddress"] != "203.0.113.9" for r in kept)
    assert {q.record["sourceIPAddress"] for q in data.quarantined} == {"203.0.113.9"}
    # benign alerts without a Sigma hit stay in: that is how new habits are learnt
    assert any(s.alert and not s.sigma and s.record in kept for s in seen)


def test_an_arrival_appears_at_its_hour_labelled_benign() -> None:
    arrival = PrincipalArrival(id="data-pipeline", at_h=30.5)
    records, labels = arrival_records(
        arrival, seed=1, account_id="123456789012", region="us-east-1", start=START,
        duration_s=3 * 86400.0,
    )  # fmt: skip
    assert records and len(records) == len(labels)
    first = datetime.strptime(records[0]["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert (first - START).total_seconds() >= 30.5 * 3600
    assert {lab.label for lab in labels} == {"normal"}
    assert {lab.principal_kind for lab in labels} == {ARRIVAL_KIND}
    assert {r["userIdentity"]["userName"] for r in records} == {"data-pipeline"}
    again, _ = arrival_records(
        arrival, seed=1, account_id="123456789012", region="us-east-1", start=START,
        duration_s=3 * 86400.0,
    )  # fmt: skip
    assert again == records


def test_an_arrival_changes_no_other_record(repo: Path) -> None:
    from bench.runner import prepare_run
    from sim.audit.feed import AuditFeed

    world = prepare_run("new-service-account").world
    assert world.audit is not None

    class Sink:
        def buffer(self, name: str) -> list[object]:
            return []

    def drawn(plan: object) -> list[dict[str, object]]:
        feed = AuditFeed(
            plan,  # type: ignore[arg-type]
            seed=world.seed,
            start=START,
            duration_s=world.duration_s,
            region="us-east-1",
            telemetry=Sink(),  # type: ignore[arg-type]
        )
        return [rec for _, _, rec, _ in feed._drawn]

    import dataclasses

    without = dataclasses.replace(
        world.audit, config=world.audit.config.model_copy(update={"arrivals": []})
    )
    base, with_arrival = drawn(without), drawn(world.audit)
    ids = {r["eventID"] for r in with_arrival}
    assert all(r["eventID"] in ids for r in base)
    assert len(with_arrival) > len(base)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("alert_rate_factor: 0.5", "alert_rate_factor"),
        ("shadow_h: -1", "shadow_h"),
        ("bogus: 1", "bogus"),
    ],
)
def test_bad_lifecycle_security_is_one_line(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, field: str
) -> None:
    doc = (repo / "scenarios" / "new-service-account.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    if text.startswith("shadow_h"):
        bad.write_text(doc.replace("shadow_h: 6", text))
    else:
        bad.write_text(doc.replace("    shadow_h: 6\n", f"    shadow_h: 6\n    {text}\n"))
    code, out, err = run_main(capsys, ["scenarios", "show", str(bad)])
    assert_one_line_error(code, out, err, field)
