"""The security analyser's lifecycle loop: the arrival in the world, the point-in-time
training set and its quarantine, and the scenario's lifecycle.security input."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.lifecycle.audit_loop import Seen, incidents, training_set
from opsbench_testing import assert_one_line_error, run_main
from sim.audit.arrivals import ARRIVAL_KIND, arrival_records
from sim.scenario import PrincipalArrival

START = datetime(1995, 7, 17)


def _seen(n: int) -> list[Seen]:
    """``n`` records a minute apart; every 7th from an attacker session that the champion
    alerted on, half of them firing one of two Sigma rules; every 5th a benign alert
    without one."""
    out = []
    for i in range(n):
        attacker = i % 7 == 3
        session = ("203.0.113.9", "python-requests/2.28") if attacker else ("10.0.0.1", "ua")
        rec = {"eventID": f"e{i}", "sourceIPAddress": session[0], "userAgent": session[1]}
        rule = f"rule_{i % 4}.yml" if attacker and i % 2 == 1 else ""
        out.append(Seen(60.0 * i, rec, session, attacker or i % 5 == 0, rule))
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
    assert data.incidents == {("203.0.113.9", "python-requests/2.28")}


def test_a_session_is_an_incident_from_its_second_distinct_sigma_rule() -> None:
    admin, attacker = ("198.51.100.7", "console"), ("203.0.113.9", "S3 Browser 9.5")

    def seen(t: int, session: tuple[str, str], alert: bool, rule: str) -> Seen:
        return Seen(60.0 * t, {"eventID": f"e{t}"}, session, alert, rule)

    one = [seen(i, admin, True, "aws_sts_getcalleridentity_trufflehog.yml") for i in range(5)]
    quiet = [seen(10, attacker, False, "aws_enum_buckets.yml"), seen(11, attacker, True, "")]
    first = [seen(12, attacker, True, "aws_enum_buckets.yml")]
    second = [seen(13, attacker, True, "aws_cloudtrail_disable_logging.yml")]
    assert incidents(one + quiet + first) == set()  # one rule, however often it fires
    assert incidents(one + quiet + first + second) == {attacker}
    # a rule the champion did not alert on is no evidence
    assert (
        incidents([*first, seen(14, attacker, False, "aws_cloudtrail_disable_logging.yml")])
        == set()
    )
    data = training_set(one + quiet + first, end_s=3600.0, window_s=3600.0, holdout_fraction=0.2)
    assert {q.session for q in data.quarantined} == {admin, attacker}  # both left out
    assert data.incidents == set()


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
