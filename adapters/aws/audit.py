"""CloudTrail as an :class:`~adapters.protocols.AuditLog`: ``lookup_events`` or files in S3.

Both readers turn what they fetch into CloudTrail records through the one normaliser,
:mod:`agents.security.cloudtrail_input` (so ``AuditBatch.kinds`` names the forms as it
does), and drop nothing silently: an item the normaliser refuses, a record whose
``eventTime`` is not an ISO 8601 time, or a whole object that cannot be read is listed in
``AuditBatch.malformed`` as ``(where, reason)`` and passed (the cursor moves past it, so
one bad item cannot stop the loop forever).

- :class:`CloudTrailLookup`: ``lookup_events`` (paginated, the last 90 days of management
  events); each event goes through :func:`~agents.security.cloudtrail_input.normalise_item`
  (its ``CloudTrailEvent`` string is the record). The cursor is the last event time read
  and the ids read at that time (``StartTime`` is inclusive, so the events of that second
  are asked again and skipped). Events reach ``lookup_events`` minutes after they happen
  and the cursor never goes back: read up to ``until = now - a lag`` longer than that
  delay (``opsbench live security`` uses 15 minutes) or a late event is never read.
- :class:`S3TrailFiles`: the objects under ``s3://bucket/prefix``, each read by
  :func:`~agents.security.cloudtrail_input.read_cloudtrail_bytes`'s steps (gzip by its
  magic bytes, whatever the key's name): trail files ``{"Records": [...]}`` as CloudTrail
  delivers them, and anything else the normaliser reads, e.g. a Firehose stream of
  EventBridge events as JSON lines, or a log pipeline's ``@timestamp`` export. See the
  class for the layout, the cursor and ``since``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.aws.clients import AwsClients
from adapters.times import naive_utc
from adapters.protocols import AuditBatch
from agents.security.cloudtrail_input import (
    NotCloudTrail,
    Outcome,
    collect,
    normalise_item,
    outcomes_of_text,
    text_of_bytes,
)
from sim.errors import InputError


def event_time(record: Mapping[str, Any], *, source: str) -> datetime:
    """A record's ``eventTime`` as naive UTC; :class:`InputError` if missing or bad."""
    value = record.get("eventTime")
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            source, "eventTime", f"{value!r} is not an ISO 8601 time", "e.g. 2024-05-01T12:00:00Z"
        ) from None
    return naive_utc(moment)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bad_cursor(source: str, cursor: str, what: str) -> InputError:
    return InputError(
        source, "cursor", f"{cursor!r} is not {what}", "a cursor an earlier read of it returned"
    )


class CloudTrailLookup:
    """CloudTrail ``lookup_events`` from a cursor on.

    Parameters
    ----------
    clients
        The client factory (``cloudtrail``).
    start
        Where a read without a cursor starts (naive UTC, ``StartTime``); ``None``: as far
        back as CloudTrail keeps (90 days).
    lookup_attribute
        One ``(AttributeKey, AttributeValue)`` filter, e.g. ``("ReadOnly", "false")``.
    """

    SOURCE = "cloudtrail lookup_events"

    def __init__(
        self,
        clients: AwsClients,
        *,
        start: datetime | None = None,
        lookup_attribute: tuple[str, str] | None = None,
    ) -> None:
        self._cloudtrail = clients.client("cloudtrail")
        self.start = start
        self.lookup_attribute = lookup_attribute

    def read(self, cursor: str | None, until: datetime) -> AuditBatch:
        """Records before ``until`` not read at ``cursor``, in event-time order; an event
        whose record cannot be read is in ``malformed`` (``lookup_events EventId=...``)."""
        after, seen = self._parse_cursor(cursor)
        floor = after if after is not None else self.start
        kwargs: dict[str, Any] = {"EndTime": until.replace(tzinfo=UTC)}
        if floor is not None:
            kwargs["StartTime"] = floor.replace(tzinfo=UTC)
        if self.lookup_attribute is not None:
            key, value = self.lookup_attribute
            kwargs["LookupAttributes"] = [{"AttributeKey": key, "AttributeValue": value}]
        found: dict[str, _Looked] = {}
        unplaced: list[tuple[str, str]] = []  # malformed and without any time
        for page in self._cloudtrail.get_paginator("lookup_events").paginate(**kwargs):
            for event in page.get("Events", []):
                looked = self._look(event)
                if looked.moment is None:
                    unplaced.append((looked.where, looked.problem))
                    continue
                if looked.moment >= until:
                    continue
                if floor is not None and looked.moment < floor:
                    continue
                if looked.moment == after and looked.event_id in seen:
                    continue
                found[looked.event_id] = looked
        ordered = sorted(found.values(), key=lambda item: (item.moment or until, item.event_id))
        records = [item.record for item in ordered if item.record is not None]
        malformed = [(item.where, item.problem) for item in ordered if item.record is None]
        if ordered:
            last = ordered[-1].moment
            ids = {item.event_id for item in ordered if item.moment == last}
            after, seen = last, (ids | seen if last == after else ids)
        return AuditBatch(
            records=records,
            cursor=json.dumps(
                {"after": _iso(after) if after else None, "seen": sorted(seen)}, sort_keys=True
            ),
            kinds={"lookup-events": len(records)} if records else {},
            malformed=[*malformed, *unplaced],
        )

    def _look(self, event: Mapping[str, Any]) -> _Looked:
        """The event's record and time, or why it has none (its time then the summary's
        ``EventTime``, or None if it has none either)."""
        event_id = str(event.get("EventId") or "")
        where = f"lookup_events EventId={event_id or '?'}"
        summary = event.get("EventTime")
        try:
            record, _form = normalise_item(event)
            moment = event_time(record, source=where)
        except (NotCloudTrail, InputError) as exc:
            problem = exc.problem if isinstance(exc, InputError) else str(exc)
            known = naive_utc(summary) if isinstance(summary, datetime) else None
            return _Looked(known, event_id, None, where, problem)
        return _Looked(moment, str(record.get("eventID") or event_id), record, where, "")

    def _parse_cursor(self, cursor: str | None) -> tuple[datetime | None, set[str]]:
        if cursor is None:
            return None, set()
        try:
            data = json.loads(cursor)
            after = data["after"]
            seen = {str(i) for i in data["seen"]}
            moment = None if after is None else event_time({"eventTime": after}, source="")
        except (json.JSONDecodeError, KeyError, TypeError, InputError):
            raise _bad_cursor(self.SOURCE, cursor, "a lookup cursor") from None
        return moment, seen


@dataclass(frozen=True, slots=True)
class _Looked:
    """One event of a page: its time (None: unknown), id, record (None: malformed)."""

    moment: datetime | None
    event_id: str
    record: dict[str, Any] | None
    where: str
    problem: str


# --------------------------------------------------------------------------- trail files

# CloudTrail's file name: <account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<unique>.json.gz
_CLOUDTRAIL_STAMP = re.compile(r"_(\d{8}T\d{4}Z)_[^/]*$")
# Firehose's object name: <stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>
_FIREHOSE_STAMP = re.compile(r"-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-[^/]*$")
_YEAR_FOLDER = re.compile(r"\d{4}/")
PASSED_FOLDERS = ("CloudTrail-Digest/",)
"""Folders that hold no CloudTrail records (digest files sign the trail files)."""


def delivery_time(key: str, last_modified: datetime) -> datetime:
    """When an object was delivered (naive UTC): the time in its name (CloudTrail's
    ``_YYYYMMDDTHHmmZ_``, to the minute; Firehose's ``-YYYY-MM-DD-HH-MM-SS-``), else its
    S3 ``LastModified``."""
    stamp = _CLOUDTRAIL_STAMP.search(key)
    if stamp:
        return datetime.strptime(stamp.group(1), "%Y%m%dT%H%MZ")
    stamp = _FIREHOSE_STAMP.search(key)
    if stamp:
        return datetime.strptime(stamp.group(1), "%Y-%m-%d-%H-%M-%S")
    return naive_utc(last_modified)


@dataclass(frozen=True, slots=True)
class _Stream:
    """A folder whose objects are read in key order: ``dated`` when its objects sit in
    ``YYYY/MM/DD/`` folders below it (CloudTrail's ``.../CloudTrail/<region>/``,
    Firehose's prefix), else the objects directly in it."""

    folder: str
    dated: bool


class S3TrailFiles:
    """CloudTrail records in the objects of ``s3://bucket/prefix``, from a cursor on.

    Layout. CloudTrail delivers to ``<prefix>AWSLogs/<account>/CloudTrail/<region>/YYYY/
    MM/DD/<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<unique>.json.gz`` (one folder per
    region, per account of an organisation trail); Firehose to ``<prefix>YYYY/MM/DD/HH/``.
    Every read finds the *streams* under the prefix (a folder holding ``YYYY/`` folders,
    or objects directly) with delimiter listings, and reads each stream's new objects in
    key order, i.e. delivery order. ``CloudTrail-Digest/`` folders and folder markers
    (keys ending ``/``) hold no records and are passed over; every other object is read
    whatever its name (``.json.gz``, ``.json``, a Firehose object without a suffix).

    Cursor. The last key read in each stream (JSON, with the bucket, prefix and
    ``since``), so a file CloudTrail delivers late into one region's folder is still read
    after another region's newer files. A file is read whole or not at all; it waits for
    a later read while its delivery time (:func:`delivery_time`) or one of its records is
    at or after ``until`` (then the later files of its stream wait too). Records are
    returned in event-time order within one read; a file delivered late can hold records
    older than those of an earlier read (CloudTrail delivers about every 5 minutes, each
    file typically 5-15 minutes after its events).

    ``since``. Where a stream without a cursor starts (naive UTC; ``None``: everything):
    objects delivered wholly before ``since``'s minute are not fetched (a dated stream is
    listed from the day before ``since``'s date), and records with an event time before
    ``since`` in the files read are not returned.

    Bad input. An object that cannot be read (not gzip, not UTF-8) is in ``malformed`` as
    ``s3://bucket/key``; an item in it the normaliser refuses, or a record whose
    ``eventTime`` is not ISO 8601, as ``s3://bucket/key <item>`` (``Records[3]``,
    ``line 7``). Either way the object counts as read: the cursor passes it.

    Parameters
    ----------
    clients
        The client factory (``s3``).
    bucket, prefix
        Where the trail delivers (``prefix`` e.g. ``AWSLogs/123456789012/CloudTrail/``).
    since
        See above.
    max_files
        At most this many objects fetched per :meth:`read` (the rest wait for the next).
    """

    def __init__(
        self,
        clients: AwsClients,
        bucket: str,
        prefix: str = "",
        *,
        since: datetime | None = None,
        max_files: int = 1000,
    ) -> None:
        self._s3 = clients.client("s3")
        self.bucket = bucket
        self.prefix = prefix
        self.since = since
        self.max_files = max_files

    @property
    def source(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}"

    def read(self, cursor: str | None, until: datetime) -> AuditBatch:
        """The records of the objects after ``cursor`` that are wholly before ``until``,
        in event-time order, and the new cursor (see the class)."""
        since, after = self._parse_cursor(cursor)
        outcomes: list[tuple[datetime, Outcome]] = []
        fetched = 0
        for stream in self._streams():
            for key, delivered in self._new_keys(stream, after.get(stream.folder), since):
                if since is not None and delivered + timedelta(minutes=1) <= since:
                    after[stream.folder] = key  # delivered before since: not fetched
                    continue
                if delivered >= until or fetched >= self.max_files:
                    break
                fetched += 1
                found = self._object_outcomes(key, since)
                if any(moment >= until for moment, _ in found):
                    break
                outcomes.extend(found)
                after[stream.folder] = key
        outcomes.sort(key=lambda item: item[0])
        read = collect(outcome for _, outcome in outcomes)
        cursor_doc = {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "since": _iso(since) if since is not None else None,
            "after": after,
        }
        return AuditBatch(
            records=read.records,
            cursor=json.dumps(cursor_doc, sort_keys=True),
            kinds={form: n for form, n in read.kinds.items() if n},
            malformed=read.malformed,
        )

    def _object_outcomes(self, key: str, since: datetime | None) -> list[tuple[datetime, Outcome]]:
        """The outcomes of one object, each with its event time (a malformed item gets
        ``datetime.min``: first in the batch); records before ``since`` left out."""
        where = f"s3://{self.bucket}/{key}"
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            items = list(outcomes_of_text(text_of_bytes(body)))
        except NotCloudTrail as exc:
            return [(datetime.min, Outcome(0, where, None, "", str(exc)))]
        out: list[tuple[datetime, Outcome]] = []
        for item in items:
            named = item._replace(where=f"{where} {item.where}")
            if item.record is None:
                out.append((datetime.min, named))
                continue
            try:
                moment = event_time(item.record, source=where)
            except InputError as exc:
                out.append((datetime.min, named._replace(record=None, problem=exc.problem)))
                continue
            if since is None or moment >= since:
                out.append((moment, named))
        return out

    def _streams(self) -> list[_Stream]:
        """The streams under the prefix, in key order (see the class)."""
        found: list[_Stream] = []
        folders = [self.prefix]
        while folders:
            folder = folders.pop()
            subfolders: list[str] = []
            direct = False
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=folder, Delimiter="/"):
                subfolders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
                direct = direct or any(not o["Key"].endswith("/") for o in page.get("Contents", []))
            names = [sub[len(folder) :] for sub in subfolders]
            if any(_YEAR_FOLDER.fullmatch(name) for name in names):
                found.append(_Stream(folder, dated=True))
                continue
            if direct:
                found.append(_Stream(folder, dated=False))
            folders += [
                s for s, n in zip(subfolders, names, strict=True) if n not in PASSED_FOLDERS
            ]
        return sorted(found, key=lambda stream: stream.folder)

    def _new_keys(
        self, stream: _Stream, last: str | None, since: datetime | None
    ) -> Iterator[tuple[str, datetime]]:
        """The keys of ``stream`` after ``last`` (without it: from the day before
        ``since`` in a dated stream), in key order, with their delivery times."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": stream.folder}
        if not stream.dated:
            kwargs["Delimiter"] = "/"
        if last is not None:
            kwargs["StartAfter"] = last
        elif since is not None and stream.dated:
            kwargs["StartAfter"] = f"{stream.folder}{since - timedelta(days=1):%Y/%m/%d}"
        for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not key.endswith("/"):
                    yield key, delivery_time(key, obj["LastModified"])

    def _parse_cursor(self, cursor: str | None) -> tuple[datetime | None, dict[str, str]]:
        if cursor is None:
            return self.since, {}
        try:
            data = json.loads(cursor)
            since = data["since"]
            moment = None if since is None else event_time({"eventTime": since}, source="")
            after = {str(k): str(v) for k, v in dict(data["after"]).items()}
            place = (data["bucket"], data["prefix"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, InputError):
            raise _bad_cursor(self.source, cursor, "a trail-files cursor") from None
        if place != (self.bucket, self.prefix):
            raise _bad_cursor(self.source, cursor, f"a cursor of {self.source}")
        return moment, after
