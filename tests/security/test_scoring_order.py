"""Events of the same second get the same scores whatever their order in the input.

CloudTrail's ``eventTime`` has whole seconds: the shipped recording has 2,900 events in
595 distinct seconds. Each test shuffles the events within every second (the seconds
stay in order) and scores the shuffled file in batch, streaming and as the replay's
audit watcher sees it (minute by minute): every event must get what it got before.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from agents.security.analyser import SecurityAnalyser
from agents.security.events import parse_event, scoring_order
from agents.security.watch import AnalyserAuditWatcher
from scenarios import data_path

Records = list[dict[str, Any]]
RECORDING = data_path("security", "cloudtrail", "invictus_stratus_events.jsonl")


@pytest.fixture(scope="module")
def recording() -> Records:
    return [json.loads(line) for line in RECORDING.read_text().splitlines() if line.strip()]


def _shuffled_within_seconds(records: Records, seed: int) -> Records:
    """``records`` with the events of each second in a random order."""
    rng = random.Random(seed)
    seconds: dict[str, Records] = {}
    for rec in records:
        seconds.setdefault(rec["eventTime"], []).append(rec)
    out: Records = []
    for events in seconds.values():
        events = list(events)
        rng.shuffle(events)
        out.extend(events)
    assert out != records
    return out


def _minutes(records: Records) -> Iterator[Records]:
    """The records of each minute, as the replay hands them to its watcher."""
    batch: Records = []
    for rec in records:
        if batch and rec["eventTime"][:16] != batch[0]["eventTime"][:16]:
            yield batch
            batch = []
        batch.append(rec)
    if batch:
        yield batch


def _same_for_every_order(recording: Records, score: Callable[[Records], dict[str, Any]]) -> None:
    want = score(recording)
    assert len(want) > 0
    for seed in (1, 2):
        assert score(_shuffled_within_seconds(recording, seed)) == want


def test_batch_scores_do_not_depend_on_the_order_within_a_second(
    small_model: SecurityAnalyser, recording: Records
) -> None:
    def batch(records: Records) -> dict[str, Any]:
        frame, bad = small_model.analyse(records)
        assert bad == [] and frame["position"].tolist() == list(range(len(records)))
        rows = frame.drop(columns="position").to_dict("records")
        return {row["eventID"]: row for row in rows}

    _same_for_every_order(recording, batch)


def test_streaming_scores_do_not_depend_on_the_order_within_a_second(
    small_model: SecurityAnalyser, recording: Records
) -> None:
    def streamed(records: Records) -> dict[str, Any]:
        scorer = small_model.stream()
        out: dict[str, Any] = {}
        for minute in _minutes(records):
            for rec, result in zip(minute, scorer.score_many(minute), strict=True):
                out[rec["eventID"]] = result
        return out

    _same_for_every_order(recording, streamed)
    # and streaming gives what the batch gives
    frame, _ = small_model.analyse(recording)
    got = streamed(recording)
    assert [round(got[i]["risk_score"], 6) for i in frame["eventID"]] == frame[
        "risk_score"
    ].tolist()


def test_replay_watcher_alerts_do_not_depend_on_the_order_within_a_second(
    small_model: SecurityAnalyser, recording: Records
) -> None:
    # the small model alerts on none of the recording: a copy alerts on its riskiest tenth
    model = copy.copy(small_model)
    model.threshold_ = float(np.quantile(small_model.risk_score(recording), 0.9))

    def alerts(records: Records) -> dict[str, Any]:
        watcher = AnalyserAuditWatcher(model)
        return {a.event_id: a for minute in _minutes(records) for a in watcher.observe(minute)}

    _same_for_every_order(recording, alerts)


def test_records_sharing_time_and_event_id_are_ordered_by_content() -> None:
    second = "2024-01-01T00:00:00Z"
    records: Records = [
        {"eventTime": second, "eventName": "ListUsers"},  # no eventID
        {"eventTime": second, "eventName": "GetUser"},
        {"eventTime": second, "eventName": "GetUser", "errorCode": "AccessDenied"},
        {"eventTime": second, "eventName": "DeleteUser", "eventID": "a"},
        {"eventTime": "2024-01-01T00:00:01Z", "eventName": "ListUsers"},
    ]
    want: Records | None = None
    for perm in itertools.permutations(records):
        given = list(perm)
        order = scoring_order([parse_event(r) for r in given], given)
        got = [given[i] for i in order.tolist()]
        assert want is None or got == want
        want = got
    assert want is not None and want[-1]["eventTime"] == "2024-01-01T00:00:01Z"
