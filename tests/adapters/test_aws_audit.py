"""CloudTrail readers: S3TrailFiles over a moto bucket holding the shipped recording as
gzipped trail files, CloudTrailLookup through the Stubber (moto has no lookup_events)."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber
from cloudtrail_stub import lookup_event

from adapters.aws.audit import CloudTrailLookup, S3TrailFiles
from adapters.protocols import AuditLog
from scenarios import data_path
from sim.errors import InputError

pytestmark = pytest.mark.aws

BUCKET = "opsbench-trail"
TRAIL_ACCOUNT = "123837392027"  # the recording's account
PREFIX = f"AWSLogs/{TRAIL_ACCOUNT}/CloudTrail/"
FAR = datetime(2030, 1, 1)
NEXT_TOKEN = (  # as CloudTrail pages
    "kbOt5LlZe++mErCebpy2TgaMgmDvF1kYGFcH64JSjIbZFjsuvrSqg66b5YGssKutDYIyII4lrP4I"
    "DbeQdiObkp9YAlju3oXd12juy3CIZW8="
)


def recording() -> list[dict]:
    path = data_path("security", "cloudtrail", "invictus_stratus_events.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _time(record: dict) -> datetime:
    return datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")


def trail_key(region: str, window_end: datetime, serial: int) -> str:
    """Where CloudTrail delivers a file (named by region and delivery time)."""
    stamp = window_end.strftime("%Y%m%dT%H%MZ")
    name = f"{TRAIL_ACCOUNT}_CloudTrail_{region}_{stamp}_{serial:04d}abcdEFGH.json.gz"
    return f"{PREFIX}{region}/{window_end:%Y/%m/%d}/{name}"


@pytest.fixture
def trail_bucket(boto_client) -> list[dict]:
    """The recording in 5-minute gzipped trail files (records unordered inside a file,
    as CloudTrail writes them), plus a digest file; returns the records."""
    records = recording()
    windows: dict[datetime, list[dict]] = defaultdict(list)
    for record in records:
        moment = _time(record)
        windows[moment.replace(minute=moment.minute - moment.minute % 5, second=0)].append(record)
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for serial, (start, batch) in enumerate(sorted(windows.items())):
        end = start + timedelta(minutes=5)  # delivered after its window
        body = gzip.compress(json.dumps({"Records": batch[::-1]}).encode())
        s3.put_object(Bucket=BUCKET, Key=trail_key("us-east-1", end, serial), Body=body)
    digest = f"AWSLogs/{TRAIL_ACCOUNT}/CloudTrail-Digest/us-east-1/2023/07/10/d.json.gz"
    s3.put_object(Bucket=BUCKET, Key=digest, Body=gzip.compress(b'{"digestS3Bucket": "x"}'))
    return records


def test_every_trail_file_is_read_in_event_time_order(aws, trail_bucket) -> None:
    trail = S3TrailFiles(aws, BUCKET, f"AWSLogs/{TRAIL_ACCOUNT}/")
    assert isinstance(trail, AuditLog)
    batch = trail.read(None, FAR)
    assert len(batch.records) == len(trail_bucket) == 2900
    assert sorted(r["eventID"] for r in batch.records) == sorted(r["eventID"] for r in trail_bucket)
    times = [_time(r) for r in batch.records]
    assert times == sorted(times)
    assert batch.kinds == {"trail-file": 2900} and list(batch.malformed) == []
    last = json.loads(batch.cursor)["after"][f"{PREFIX}us-east-1/"]
    assert last.endswith(".json.gz") and "/CloudTrail/us-east-1/2023/07/10/" in last
    again = trail.read(batch.cursor, FAR)
    assert (list(again.records), again.cursor, dict(again.kinds)) == ([], batch.cursor, {})


def test_a_file_reaching_until_waits_for_a_later_read(aws, trail_bucket) -> None:
    trail = S3TrailFiles(aws, BUCKET, PREFIX)
    until = datetime(2023, 7, 10, 12, 2, 30)
    first = trail.read(None, until)
    assert first.records and all(_time(r) < until for r in first.records)
    assert max(_time(r) for r in first.records) < datetime(2023, 7, 10, 12, 0)  # 12:00-12:05 waits
    rest = trail.read(first.cursor, FAR)
    ids = [r["eventID"] for r in [*first.records, *rest.records]]
    assert len(ids) == len(set(ids)) == 2900


def test_new_files_after_the_cursor_are_read(aws, trail_bucket, boto_client) -> None:
    trail = S3TrailFiles(aws, BUCKET, PREFIX)
    cursor = trail.read(None, FAR).cursor
    late = {**trail_bucket[0], "eventID": "0c3a4f6e-7b61-4d1c-9f8e-2b9a1d3c5e70",
            "eventTime": "2023-07-10T12:41:02Z"}  # fmt: skip
    key = trail_key("us-east-1", datetime(2023, 7, 10, 12, 45), 99)
    boto_client("s3").put_object(
        Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps({"Records": [late]}).encode())
    )
    batch = trail.read(cursor, FAR)
    assert [r["eventID"] for r in batch.records] == [late["eventID"]]
    assert json.loads(batch.cursor)["after"] == {f"{PREFIX}us-east-1/": key}


def put(boto_client, key: str, body: bytes) -> None:
    boto_client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)


def test_a_late_file_of_another_region_is_read_after_newer_ones(aws, trail_bucket, boto_client):
    # one cursor per region folder: a file delivered into eu-west-1 (sorting before
    # us-east-1) after us-east-1's newest was read is read, not passed over
    trail = S3TrailFiles(aws, BUCKET, PREFIX)
    cursor = trail.read(None, FAR).cursor
    late = {**trail_bucket[0], "eventID": "3e1f0c2b-6d5a-4b7c-8e9f-0a1b2c3d4e5f",
            "awsRegion": "eu-west-1", "eventTime": "2023-07-10T12:03:00Z"}  # fmt: skip
    key = trail_key("eu-west-1", datetime(2023, 7, 10, 12, 10), 1)
    put(boto_client, key, gzip.compress(json.dumps({"Records": [late]}).encode()))
    batch = trail.read(cursor, FAR)
    assert [r["eventID"] for r in batch.records] == [late["eventID"]]
    after = json.loads(batch.cursor)["after"]
    assert after[f"{PREFIX}eu-west-1/"] == key and f"{PREFIX}us-east-1/" in after


def eventbridge(record: dict) -> dict:
    """The EventBridge event CloudTrail sends for ``record``."""
    return {
        "version": "0", "id": f"eb-{record['eventID']}",
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
        "account": TRAIL_ACCOUNT, "time": record["eventTime"], "region": "us-east-1",
        "resources": [], "detail": record,
    }  # fmt: skip


def exported(record: dict) -> dict:
    """``record`` as a log pipeline writes it: the time under @timestamp."""
    out = {k: v for k, v in record.items() if k != "eventTime"}
    return {**out, "@timestamp": record["eventTime"].replace("Z", ".000Z")}


def test_every_form_a_bucket_holds_is_read_and_counted(aws, boto_client) -> None:
    records = sorted(recording()[:30], key=_time)
    boto_client("s3").create_bucket(Bucket=BUCKET)
    # a trail file; a Firehose object of EventBridge events (JSON lines, gzipped, no
    # suffix); a log pipeline's @timestamp export (plain JSON lines, .json)
    put(boto_client, trail_key("us-east-1", datetime(2023, 7, 10, 12, 0), 1),
        gzip.compress(json.dumps({"Records": records[:10]}).encode()))  # fmt: skip
    lines = "\n".join(json.dumps(eventbridge(r)) for r in records[10:20]).encode()
    firehose = "firehose/2023/07/10/12/trail-stream-1-2023-07-10-12-01-00-5b1c2d3e-4f5a"
    put(boto_client, firehose, gzip.compress(lines))
    export = "export/2023/07/10/part-0001.json"
    put(boto_client, export, "\n".join(json.dumps(exported(r)) for r in records[20:]).encode())
    batch = S3TrailFiles(aws, BUCKET).read(None, FAR)
    assert [r["eventID"] for r in batch.records] == [r["eventID"] for r in records]
    assert batch.kinds == {"trail-file": 10, "eventbridge": 10, "log-export": 10}
    assert [r["eventTime"] for r in batch.records] == [r["eventTime"] for r in records]
    assert list(batch.malformed) == []
    assert set(json.loads(batch.cursor)["after"]) == {
        f"{PREFIX}us-east-1/", "firehose/", "export/"}  # fmt: skip


def test_corrupt_objects_and_bad_items_are_reported_and_passed(aws, boto_client) -> None:
    good = recording()[:3]
    no_time = {k: v for k, v in good[1].items() if k != "eventTime"}
    bad_time = {**good[2], "eventTime": "yesterday"}
    boto_client("s3").create_bucket(Bucket=BUCKET)
    keys = [trail_key("us-east-1", datetime(2023, 7, 10, 12, 0), n) for n in range(5)]
    bodies = [
        b"\x1f\x8b\x08\x00 not a gzip stream",  # gzip magic, broken stream
        bytes(range(128, 256)),  # not UTF-8
        gzip.compress(b'{"records": []}'),
        gzip.compress(json.dumps({"Records": [good[0], no_time, bad_time]}).encode()),
        b"",  # empty: no records, nothing to report
    ]
    for key, body in zip(keys, bodies, strict=True):
        put(boto_client, key, body)
    trail = S3TrailFiles(aws, BUCKET, PREFIX)
    batch = trail.read(None, FAR)
    assert [r["eventID"] for r in batch.records] == [good[0]["eventID"]]
    where = dict(batch.malformed)
    s3 = f"s3://{BUCKET}/"
    assert where[s3 + keys[0]].startswith("not a readable gzip file")
    assert where[s3 + keys[1]] == "not UTF-8 text (byte 0)"
    assert "eventName" in where[f"{s3}{keys[2]} line 1"]
    assert "eventTime" in where[f"{s3}{keys[3]} Records[1]"]
    assert where[f"{s3}{keys[3]} Records[2]"] == "'yesterday' is not an ISO 8601 time"
    assert len(batch.malformed) == 5
    assert json.loads(batch.cursor)["after"] == {f"{PREFIX}us-east-1/": keys[4]}
    again = trail.read(batch.cursor, FAR)  # passed: not read (nor reported) again
    assert (list(again.records), list(again.malformed)) == ([], [])


def test_since_fetches_only_files_delivered_from_it(aws, trail_bucket, boto_client) -> None:
    since = datetime(2023, 7, 10, 12, 20)
    fetched: list[str] = []
    s3 = aws.client("s3")
    s3.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: fetched.append(params["url_path"])
    )
    batch = S3TrailFiles(aws, BUCKET, PREFIX, since=since).read(None, FAR)
    stamps = sorted(key.split("_")[3] for key in fetched)
    assert stamps and stamps[0] == "20230710T1220Z"  # 5-minute files: 12:15's not fetched
    assert sorted(r["eventID"] for r in batch.records) == sorted(
        r["eventID"] for r in trail_bucket if _time(r) >= since
    )
    assert json.loads(batch.cursor)["since"] == "2023-07-10T12:20:00Z"


@pytest.mark.parametrize(
    "cursor",
    [
        "AWSLogs/x.json.gz",
        json.dumps({"after": {}, "bucket": "other", "prefix": PREFIX, "since": None}),
        json.dumps({"after": None, "seen": []}),  # a lookup cursor
    ],
)
def test_a_foreign_trail_cursor_is_an_input_error(aws, cursor) -> None:
    with pytest.raises(InputError, match="cursor") as caught:
        S3TrailFiles(aws, BUCKET, PREFIX).read(cursor, FAR)
    assert caught.value.source == f"s3://{BUCKET}/{PREFIX}"


# --------------------------------------------------------------------------- lookup_events


def test_lookup_events_pages_and_cursor_through_the_stubber(aws) -> None:
    # moto answers lookup_events with 500: CloudTrail's answer (newest first, pages) is
    # stubbed from the recording and checked against the service model
    records = sorted(recording()[:40], key=_time)
    until = datetime(2023, 7, 10, 12, 30)
    newest_first = [lookup_event(r) for r in reversed(records)]
    lookup = CloudTrailLookup(aws, lookup_attribute=("ReadOnly", "false"))
    expected = {"EndTime": until.replace(tzinfo=UTC), "LookupAttributes": [
        {"AttributeKey": "ReadOnly", "AttributeValue": "false"}]}  # fmt: skip
    with Stubber(aws.client("cloudtrail")) as stub:
        stub.add_response(
            "lookup_events",
            {"Events": newest_first[:25], "NextToken": NEXT_TOKEN},
            expected,
        )  # fmt: skip
        stub.add_response(
            "lookup_events",
            {"Events": newest_first[25:]},
            {**expected, "NextToken": NEXT_TOKEN},
        )  # fmt: skip
        batch = lookup.read(None, until)
        stub.assert_no_pending_responses()
    assert [r["eventID"] for r in batch.records] == [
        r["eventID"] for r in sorted(records, key=lambda r: (_time(r), r["eventID"]))
    ]
    assert batch.kinds == {"lookup-events": 40}
    last = _time(records[-1])
    cursor = json.loads(batch.cursor)
    assert cursor["after"] == records[-1]["eventTime"]
    assert set(cursor["seen"]) == {r["eventID"] for r in records if _time(r) == last}

    # the next read asks from the last second on (StartTime is inclusive) and skips what
    # it read there; a new event of that second and a later one are read
    same_second = {**records[-1], "eventID": "5a7c1e2d-0b9f-4c3e-8d6a-1f2e3d4c5b6a"}
    later = {**records[-1], "eventID": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
             "eventTime": "2023-07-10T12:20:00Z"}  # fmt: skip
    again = [later, same_second, *[r for r in records if _time(r) == last]]
    with Stubber(aws.client("cloudtrail")) as stub:
        stub.add_response(
            "lookup_events",
            {"Events": [lookup_event(r) for r in again]},
            {**expected, "StartTime": last.replace(tzinfo=UTC)},
        )
        second = lookup.read(batch.cursor, until)
    assert [r["eventID"] for r in second.records] == [same_second["eventID"], later["eventID"]]
    assert json.loads(second.cursor) == {
        "after": "2023-07-10T12:20:00Z",
        "seen": [later["eventID"]],
    }


def test_a_lookup_event_that_is_not_json_is_reported_and_passed(aws) -> None:
    good, bad = recording()[:2]
    broken = {**lookup_event(bad), "CloudTrailEvent": "{truncated"}
    with Stubber(aws.client("cloudtrail")) as stub:
        stub.add_response("lookup_events", {"Events": [lookup_event(good), broken]})
        batch = CloudTrailLookup(aws).read(None, datetime(2023, 7, 11))
    assert [r["eventID"] for r in batch.records] == [good["eventID"]]
    assert list(batch.malformed) == [
        (f"lookup_events EventId={bad['eventID']}", "CloudTrailEvent is not valid JSON")
    ]
    seen = json.loads(batch.cursor)
    assert seen["after"] == max(good["eventTime"], bad["eventTime"])  # passed, not read again


def test_a_foreign_cursor_is_an_input_error(aws) -> None:
    with pytest.raises(InputError, match="cursor"):
        CloudTrailLookup(aws).read("AWSLogs/x.json.gz", datetime(2023, 7, 11))
