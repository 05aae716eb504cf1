"""CloudTrail as an :class:`~adapters.protocols.AuditLog`: ``lookup_events`` or trail files.

- :class:`CloudTrailLookup`: ``lookup_events`` (paginated, the last 90 days of management
  events), each event's ``CloudTrailEvent`` string parsed to the record. The cursor is the
  last event time read and the ids read at that time (``StartTime`` is inclusive, so the
  events of that second are asked again and skipped). Events reach ``lookup_events``
  minutes after they happen: read up to ``until = now - a few minutes`` to miss none.
- :class:`S3TrailFiles`: the trail's objects under ``s3://bucket/prefix`` in key order
  (CloudTrail names them by region and time), each gzipped JSON ``{"Records": [...]}``.
  The cursor is the last key read. A file holding a record at or after ``until`` is not
  read yet (a file is read whole or not at all). Digest files (``CloudTrail-Digest/``)
  and keys not ending ``.json.gz`` / ``.json`` are not trail files and are passed over.

Records are parsed here minimally (the two forms above). A shared normaliser for every form
(trail files, lookup pages, EventBridge envelopes, Lake rows, ``@timestamp`` exports) is
agents/security/cloudtrail_input.py's job; these readers can switch to it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.aws.clients import AwsClients
from adapters.protocols import AuditBatch
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
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class CloudTrailLookup:
    """CloudTrail ``lookup_events`` from a cursor on.

    Parameters
    ----------
    clients
        The client factory (``cloudtrail``).
    start
        Where a read without a cursor starts (naive UTC); ``None``: as far back as
        CloudTrail keeps (90 days).
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
        """Records before ``until`` not read at ``cursor``, in event-time order."""
        after, seen = self._parse_cursor(cursor)
        kwargs: dict[str, Any] = {"EndTime": until.replace(tzinfo=UTC)}
        start = after if after is not None else self.start
        if start is not None:
            kwargs["StartTime"] = start.replace(tzinfo=UTC)
        if self.lookup_attribute is not None:
            key, value = self.lookup_attribute
            kwargs["LookupAttributes"] = [{"AttributeKey": key, "AttributeValue": value}]
        found: dict[str, tuple[datetime, dict[str, Any]]] = {}
        for page in self._cloudtrail.get_paginator("lookup_events").paginate(**kwargs):
            for event in page.get("Events", []):
                record = self._record(event)
                moment = event_time(record, source=self.SOURCE)
                event_id = str(record.get("eventID") or event.get("EventId"))
                if moment >= until or (after is not None and moment < after):
                    continue
                if moment == after and event_id in seen:
                    continue
                found[event_id] = (moment, record)
        ordered = sorted(found.items(), key=lambda item: (item[1][0], item[0]))
        records = [record for _, (_, record) in ordered]
        if ordered:
            last = ordered[-1][1][0]
            ids = {event_id for event_id, (moment, _) in ordered if moment == last}
            after, seen = last, (ids | seen if last == after else ids)
        return AuditBatch(
            records=records,
            cursor=json.dumps(
                {"after": _iso(after) if after else None, "seen": sorted(seen)}, sort_keys=True
            ),
            kinds={"lookup-events": len(records)} if records else {},
        )

    def _record(self, event: Mapping[str, Any]) -> dict[str, Any]:
        text = event.get("CloudTrailEvent")
        try:
            record = json.loads(str(text))
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            raise InputError(
                self.SOURCE,
                f"Events[EventId={event.get('EventId')}].CloudTrailEvent",
                "is not a JSON object",
                "the CloudTrail record as a JSON string",
            )
        return record

    def _parse_cursor(self, cursor: str | None) -> tuple[datetime | None, set[str]]:
        if cursor is None:
            return None, set()
        try:
            data = json.loads(cursor)
            after = data["after"]
            seen = {str(i) for i in data["seen"]}
            moment = None if after is None else event_time({"eventTime": after}, source="")
        except (json.JSONDecodeError, KeyError, TypeError, InputError):
            raise InputError(
                self.SOURCE, "cursor", f"{cursor!r} is not a lookup cursor",
                "a cursor an earlier read returned",
            ) from None  # fmt: skip
        return moment, seen


class S3TrailFiles:
    """A trail's files in S3 from a cursor (the last key read) on.

    Parameters
    ----------
    clients
        The client factory (``s3``).
    bucket, prefix
        Where the trail delivers (``prefix`` e.g. ``AWSLogs/123456789012/CloudTrail/``).
    max_files
        At most this many files read per :meth:`read`.
    """

    def __init__(
        self, clients: AwsClients, bucket: str, prefix: str = "", *, max_files: int = 1000
    ) -> None:
        self._s3 = clients.client("s3")
        self.bucket = bucket
        self.prefix = prefix
        self.max_files = max_files

    def read(self, cursor: str | None, until: datetime) -> AuditBatch:
        """The records of the files after ``cursor`` whose records all precede ``until``,
        in event-time order; the new cursor is the last file read."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if cursor:
            kwargs["StartAfter"] = cursor
        timed: list[tuple[datetime, Mapping[str, Any]]] = []
        last_key = cursor or ""
        files = 0
        for key in self._trail_keys(kwargs):
            if files >= self.max_files:
                break
            records = self._file_records(key)
            if any(moment >= until for moment, _ in records):
                break
            timed.extend(records)
            last_key, files = key, files + 1
        timed.sort(key=lambda item: item[0])
        return AuditBatch(
            records=[record for _, record in timed],
            cursor=last_key,
            kinds={"trail-file": len(timed)} if timed else {},
        )

    def _trail_keys(self, kwargs: Mapping[str, Any]) -> Sequence[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for page in paginator.paginate(**kwargs)
            for obj in page.get("Contents", [])
            if obj["Key"].endswith((".json.gz", ".json")) and "CloudTrail-Digest/" not in obj["Key"]
        ]

    def _file_records(self, key: str) -> list[tuple[datetime, Mapping[str, Any]]]:
        source = f"s3://{self.bucket}/{key}"
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            text = gzip.decompress(body) if key.endswith(".gz") else body
            document = json.loads(text)
        except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(source, "(file)", f"not gzipped JSON ({exc})",
                             'a gzipped JSON object {"Records": [...]}') from None  # fmt: skip
        records = document.get("Records") if isinstance(document, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InputError(source, "Records", "missing or not a list of objects",
                             'a gzipped JSON object {"Records": [...]}')  # fmt: skip
        return [(event_time(r, source=source), r) for r in records]
