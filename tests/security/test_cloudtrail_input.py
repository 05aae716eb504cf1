"""CloudTrail as it really arrives: every accepted form gives back the plain record (real
records from the shipped recording), and ``opsbench security score`` scores the forms as it
scores the plain records."""

from __future__ import annotations

import copy
import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opsbench_testing import assert_nothing_written, assert_one_line_error, run_main

from agents.security.cloudtrail_input import (
    FORMS,
    NotCloudTrail,
    cloudtrail_time,
    normalise_item,
    normalise_items,
    read_cloudtrail_bytes,
)
from scenarios import data_path

Record = dict[str, Any]
RECORDING = data_path("security", "cloudtrail", "invictus_stratus_events.jsonl")
LAKE_STRUCTS = ("userIdentity", "resources", "tlsDetails")


@pytest.fixture(scope="module")
def recording() -> list[Record]:
    """The first 400 records of the shipped recording (IAM users, assumed roles with
    session context, AWS services, errors, resources)."""
    with RECORDING.open(encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(400), fh, strict=False)]


@pytest.fixture(scope="module")
def varied(recording: list[Record]) -> list[Record]:
    """A few records covering every shape of userIdentity and the optional fields."""
    picks: dict[str, Record] = {}
    for r in recording:
        kind = str(r["userIdentity"].get("type"))
        extras = "+".join(k for k in ("resources", "errorCode", "tlsDetails") if k in r)
        picks.setdefault(f"{kind}/{extras}", r)
    assert len(picks) >= 5
    return list(picks.values())


# ------------------------------------------------------------------ the forms, built


def _stamped(r: Record, stamp: str | None = None) -> Record:
    """``r`` as a log pipeline writes it: ``@timestamp`` instead of ``eventTime``."""
    out = {k: v for k, v in r.items() if k != "eventTime"}
    out["@timestamp"] = stamp or r["eventTime"].replace("Z", ".000Z")
    return out


def _without_stamp(r: Record) -> Record:
    return {k: v for k, v in r.items() if k != "@timestamp"}


def _envelope(r: Record) -> Record:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + r["eventSource"].split(".")[0],
        "account": r["recipientAccountId"],
        "time": r["eventTime"],
        "region": r["awsRegion"],
        "resources": [],
        "detail": r,
    }


def _lookup_event(r: Record) -> Record:
    return {
        "EventId": r["eventID"],
        "EventName": r["eventName"],
        "ReadOnly": str(r["readOnly"]).lower(),
        "EventTime": r["eventTime"].replace("Z", "+00:00"),
        "EventSource": r["eventSource"],
        "Username": r["userIdentity"].get("userName", ""),
        "Resources": [],
        "CloudTrailEvent": json.dumps(r),
    }


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _lake_columns(r: Record) -> Record:
    """``r`` as a Lake row of the store's columns: lower-case names (also inside the
    struct columns), ``eventtime`` as Lake writes timestamps, maps as JSON strings."""
    out: Record = {}
    for key, value in r.items():
        if key == "eventTime":
            value = value.replace("T", " ").replace("Z", ".000")
        elif key in LAKE_STRUCTS:
            value = _lower_keys(value)
        elif isinstance(value, dict) or value is None:
            value = json.dumps(value)
        out[key.lower()] = value
    return out


ONE_ITEM_FORMS: dict[str, tuple[str, Callable[[Record], Any]]] = {
    "plain record": ("record", lambda r: r),
    "@timestamp instead of eventTime": ("log-export", _stamped),
    "@timestamp with an offset": (
        "log-export",
        lambda r: _stamped(r, r["eventTime"].replace("Z", "+00:00")),
    ),
    "EventBridge envelope": ("eventbridge", _envelope),
    "LookupEvents event": ("lookup-events", _lookup_event),
    "Lake row, eventjson (API cells)": ("lake", lambda r: [{"eventjson": json.dumps(r)}]),
    "Lake row, eventjson (object)": ("lake", lambda r: {"eventjson": json.dumps(r)}),
    "Lake row, eventJson as selected": ("lake", lambda r: [{"eventJson": json.dumps(r)}]),
    "Lake row, the store's columns": ("lake", _lake_columns),
    "Lake row, columns as API cells": (
        "lake",
        lambda r: [{k: v} for k, v in _lake_columns(r).items()],
    ),
    "OpenSearch hit (_source, @timestamp)": (
        "log-export",
        lambda r: {"_index": "cloudtrail-2023.07.10", "_id": "x", "_source": _stamped(r)},
    ),
    "Logs Insights row (@message)": (
        "log-export",
        lambda r: {"@timestamp": r["eventTime"].replace("T", " "), "@message": json.dumps(r)},
    ),
    "Logs Insights API row": (
        "log-export",
        lambda r: [
            {"field": "@timestamp", "value": "2023-07-10 11:42:18.000"},
            {"field": "@message", "value": json.dumps(r)},
        ],
    ),
    "CloudWatch Logs event (message)": (
        "log-export",
        lambda r: {"timestamp": 1688989338000, "message": json.dumps(r), "eventId": "1"},
    ),
    "wrapper's @timestamp, record without time": (
        "log-export",
        lambda r: {"@timestamp": r["eventTime"], "message": json.dumps(_without_time(r))},
    ),
    "Splunk export row (_raw)": ("log-export", lambda r: {"result": {"_raw": json.dumps(r)}}),
    "ECS event.original": (
        "log-export",
        lambda r: {"@timestamp": r["eventTime"], "event": {"original": json.dumps(r)}},
    ),
    "detail without envelope": ("log-export", lambda r: {"detail": r}),
    "EventBridge event in CloudWatch Logs": (
        "log-export",
        lambda r: {"message": json.dumps(_envelope(r))},
    ),
}


def _without_time(r: Record) -> Record:
    return {k: v for k, v in r.items() if k != "eventTime"}


@pytest.mark.parametrize("name", list(ONE_ITEM_FORMS))
def test_every_form_gives_back_the_plain_record(varied: list[Record], name: str) -> None:
    form, build = ONE_ITEM_FORMS[name]
    for r in varied:
        item = build(copy.deepcopy(r))
        record, got = normalise_item(item)
        assert got == form
        assert _without_stamp(record) == r


def test_a_plain_record_is_not_copied(recording: list[Record]) -> None:
    record, form = normalise_item(recording[0])
    assert record is recording[0] and form == "record"


def test_timestamp_keeps_every_other_field(recording: list[Record]) -> None:
    r = recording[0]
    record, _ = normalise_item(_stamped(r, "2023-07-10T13:42:18.750+02:00"))
    assert record["eventTime"] == "2023-07-10T11:42:18Z"
    assert record["@timestamp"] == "2023-07-10T13:42:18.750+02:00"
    assert _without_stamp(record) == r


CONTAINERS: dict[str, tuple[str, Callable[[list[Record]], Any]]] = {
    "trail file": ("trail-file", lambda rs: {"Records": rs}),
    "LookupEvents page": (
        "lookup-events",
        lambda rs: {"Events": [_lookup_event(r) for r in rs], "NextToken": "tok"},
    ),
    "Lake GetQueryResults page": (
        "lake",
        lambda rs: {
            "QueryStatus": "FINISHED",
            "QueryResultRows": [[{"eventjson": json.dumps(r)}] for r in rs],
        },
    ),
    "OpenSearch search response": (
        "log-export",
        lambda rs: {
            "took": 3,
            "hits": {
                "total": {"value": len(rs)},
                "hits": [
                    {"_index": "ct", "_id": str(i), "_source": _stamped(r)}
                    for i, r in enumerate(rs)
                ],
            },
        },
    ),
    "filter-log-events response": (
        "log-export",
        lambda rs: {"events": [{"timestamp": 0, "message": json.dumps(r)} for r in rs]},
    ),
    "subscription payload": (
        "log-export",
        lambda rs: {
            "messageType": "DATA_MESSAGE",
            "logEvents": [{"id": "1", "timestamp": 0, "message": json.dumps(r)} for r in rs],
        },
    ),
    "Logs Insights GetQueryResults": (
        "log-export",
        lambda rs: {
            "status": "Complete",
            "results": [[{"field": "@message", "value": json.dumps(r)}] for r in rs],
        },
    ),
}


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_containers_give_their_records_in_order(recording: list[Record], name: str) -> None:
    form, build = CONTAINERS[name]
    records = recording[:30]
    got = normalise_items([build(copy.deepcopy(records))])
    assert [_without_stamp(r) for r in got.records] == records
    assert got.kinds == {**dict.fromkeys(FORMS, 0), form: 30}
    assert got.malformed == []
    assert got.origins[3].startswith("item 0 ") and got.origins[3].endswith("[3]")


def test_a_json_array_of_mixed_items_keeps_each_form(recording: list[Record]) -> None:
    a, b, c = recording[:3]
    got = normalise_items([[a, _envelope(b), {"Records": [c]}, 7]], label="page")
    assert got.records == [a, b, c]
    assert got.kinds["record"] == 1 and got.kinds["eventbridge"] == 1
    assert got.kinds["trail-file"] == 1
    assert got.malformed == [("page 0 [3]", "not a JSON object (int)")]


MALFORMED: dict[str, tuple[Any, str]] = {
    "not an object": ("ListUsers", "not a JSON object (str)"),
    "no eventName": ({"eventTime": "2023-07-10T11:42:18Z"}, "eventName is missing"),
    "no time at all": ({"eventName": "ListUsers"}, "eventTime is missing"),
    "@timestamp not ISO": (
        {"eventName": "ListUsers", "@timestamp": "yesterday"},
        "'yesterday' is not an ISO 8601 time",
    ),
    "@timestamp a number": (
        {"eventName": "ListUsers", "@timestamp": 1688989338000},
        "not an ISO 8601 string (int)",
    ),
    "EventBridge, not via CloudTrail": (
        {"detail-type": "EC2 Instance State-change Notification", "detail": {}},
        "not one 'via CloudTrail'",
    ),
    "CloudTrailEvent not JSON": ({"CloudTrailEvent": "{oops"}, "CloudTrailEvent is not valid"),
    "Lake text rendering": (
        {
            "eventtime": "2023-07-10 11:42:18.000",
            "eventname": "ListUsers",
            "useridentity": "{type=IAMUser, arn=arn:aws:iam::1:user/a}",
        },
        "select eventjson",
    ),
    "Lake column twice": (
        [{"eventjson": "{}"}, {"eventjson": "{}"}],
        "column eventjson given twice",
    ),
    "an array of numbers": ([1, 2], "not a Lake or Logs Insights row"),
    "a plain-text log line": ({"message": "user logged in"}, "eventName is missing"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_items_get_a_reason(name: str) -> None:
    item, reason = MALFORMED[name]
    with pytest.raises(NotCloudTrail) as info:
        normalise_item(item)
    assert reason in str(info.value)
    got = normalise_items([item])
    assert got.records == [] and sum(got.kinds.values()) == 0
    assert len(got.malformed) == 1 and got.malformed[0][0] == "item 0"
    assert reason in got.malformed[0][1]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2023-07-10T11:42:18Z", "2023-07-10T11:42:18Z"),
        ("2023-07-10T11:42:18.999Z", "2023-07-10T11:42:18Z"),
        ("2023-07-10 11:42:18.000", "2023-07-10T11:42:18Z"),
        ("2023-07-10T13:42:18+02:00", "2023-07-10T11:42:18Z"),
        ("2023-07-09T23:42:18-12:00", "2023-07-10T11:42:18Z"),
    ],
)
def test_cloudtrail_time(text: str, want: str) -> None:
    assert cloudtrail_time(text) == want


def test_gzipped_trail_file_bytes(recording: list[Record]) -> None:
    records = recording[:50]
    data = gzip.compress(json.dumps({"Records": records}).encode())
    got = read_cloudtrail_bytes(data)
    assert got.records == records and got.kinds["trail-file"] == 50
    assert got.origins[:2] == ["Records[0]", "Records[1]"]
    with pytest.raises(NotCloudTrail, match="gzip"):
        read_cloudtrail_bytes(data[:40])


def test_json_lines_bytes_name_the_line(recording: list[Record]) -> None:
    lines = [json.dumps(recording[0]), "", json.dumps({"Records": recording[1:3]}), "{bad"]
    got = read_cloudtrail_bytes("\n".join(lines).encode())
    assert got.records == recording[:3]
    assert got.origins == ["line 1", "line 3 Records[0]", "line 3 Records[1]"]
    assert got.malformed == [
        ("line 4", "invalid JSON (Expecting property name enclosed in double quotes)")
    ]


# ------------------------------------------------------------------ opsbench security score


def _jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def _score(capsys: pytest.CaptureFixture[str], events: Path, out: Path) -> dict[str, Any]:
    code, stdout, stderr = run_main(
        capsys, ["security", "score", "--events", str(events), "--out", str(out), "--json"]
    )
    assert code == 0, stderr
    result: dict[str, Any] = json.loads(stdout)
    return result


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("form", "build"),
    [("log-export", _stamped), ("eventbridge", _envelope)],
    ids=["@timestamp export", "EventBridge envelopes"],
)
def test_score_reads_exports_as_the_plain_records(
    capsys: pytest.CaptureFixture[str],
    small_shipped: Path,
    recording: list[Record],
    tmp_path: Path,
    form: str,
    build: Callable[[Record], Any],
) -> None:
    plain = _score(capsys, _jsonl(tmp_path / "plain.jsonl", recording), tmp_path / "plain.csv")
    items = [build(copy.deepcopy(r)) for r in recording]
    got = _score(capsys, _jsonl(tmp_path / "export.jsonl", items), tmp_path / "export.csv")
    assert got["scored"] == plain["scored"] == len(recording) and got["malformed"] == 0
    assert got["input_forms"] == {**dict.fromkeys(FORMS, 0), form: len(recording)}
    assert plain["input_forms"]["record"] == len(recording)
    assert got["alerts"] == plain["alerts"]
    assert (tmp_path / "export.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()


def test_score_a_mixed_file(
    capsys: pytest.CaptureFixture[str],
    small_shipped: Path,
    recording: list[Record],
    tmp_path: Path,
) -> None:
    rs = recording[:120]
    items: list[Any] = [rs[0], _stamped(rs[1]), _envelope(rs[2]), _lookup_event(rs[3])]
    items += [[{"eventjson": json.dumps(rs[4])}], _lake_columns(rs[5])]
    items += [{"Records": rs[6:60]}, {"Events": [_lookup_event(r) for r in rs[60:80]]}]
    items += [{"detail-type": "EC2 Spot Instance Interruption Warning", "detail": {}}]
    items += [{"_source": _stamped(r)} for r in rs[80:]]
    events = _jsonl(tmp_path / "mixed.jsonl", items)
    code, stdout, stderr = run_main(
        capsys, ["security", "score", "--events", str(events), "--out", str(tmp_path / "m.csv")]
    )
    assert code == 0, stderr
    assert "120 events scored" in stdout and "1 malformed" in stdout
    assert (
        "read as: 1 record, 54 trail-file, 21 lookup-events, 1 eventbridge, 2 lake, "
        "41 log-export" in " ".join(stdout.split())  # rich wraps long lines
    )
    assert "line 9: an EventBridge event of detail-type" in stderr
    plain = _score(capsys, _jsonl(tmp_path / "plain.jsonl", rs), tmp_path / "p.csv")
    assert _rows(tmp_path / "m.csv") == _rows(tmp_path / "p.csv")
    assert plain["malformed"] == 0


def test_score_a_gzipped_trail_file(
    capsys: pytest.CaptureFixture[str],
    small_shipped: Path,
    recording: list[Record],
    tmp_path: Path,
) -> None:
    trail = tmp_path / "123456789012_CloudTrail_us-east-1_20230710T1145Z_abc.json.gz"
    trail.write_bytes(gzip.compress(json.dumps({"Records": recording[:80]}).encode()))
    result = _score(capsys, trail, tmp_path / "t.csv")
    assert result["scored"] == 80 and result["input_forms"]["trail-file"] == 80
    assert [r["eventID"] for r in _rows(tmp_path / "t.csv")] == [
        r["eventID"] for r in recording[:80]
    ]


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (
            json.dumps({"detail-type": "EC2 Instance State-change Notification", "detail": {}}),
            ["line 1: an EventBridge event", "not one 'via CloudTrail'", "allowed: "],
        ),
        (
            json.dumps({"eventName": "ListUsers", "@timestamp": "soon"}),
            ["line 1: @timestamp 'soon' is not an ISO 8601 time", "@timestamp"],
        ),
        (
            json.dumps({"Records": [{"eventName": "ListUsers"}]}),
            ["Records[0]: record: eventTime is missing", "1 malformed"],
        ),
    ],
    ids=["EventBridge not via CloudTrail", "bad @timestamp", "trail file without times"],
)
def test_a_file_of_malformed_items_is_one_line_error(
    capsys: pytest.CaptureFixture[str],
    small_shipped: Path,
    tmp_path: Path,
    content: str,
    needles: list[str],
) -> None:
    events = tmp_path / "bad.json"
    events.write_text(content + "\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    code, stdout, stderr = run_main(
        capsys, ["security", "score", "--events", str(events), "--out", str(out)]
    )
    line = assert_one_line_error(code, stdout, stderr, str(events), *needles)
    assert "no readable CloudTrail record" in line and stdout == ""
    assert_nothing_written(out)


def test_a_broken_gzip_file_is_one_line_error(
    capsys: pytest.CaptureFixture[str], small_shipped: Path, tmp_path: Path
) -> None:
    events = tmp_path / "trail.json.gz"
    events.write_bytes(gzip.compress(b'{"Records": []}')[:12])
    out = tmp_path / "o.csv"
    code, stdout, stderr = run_main(
        capsys, ["security", "score", "--events", str(events), "--out", str(out)]
    )
    assert_one_line_error(code, stdout, stderr, str(events), "not a readable gzip file")
    assert_nothing_written(out)
