"""CloudTrail records as they really arrive → plain CloudTrail records, with the form each
came in.

The analyser reads CloudTrail *records* (the JSON objects of a trail file's ``Records``
array). Real inputs wrap them in other ways; :func:`normalise_item` turns one item into
the record and names its form, :func:`normalise_items` does a page or file of them, and
:func:`read_cloudtrail_bytes` reads a file's bytes (gzipped or not). Accepted forms:

``record``
    A plain record: ``eventTime`` and ``eventName`` are non-empty strings.
``trail-file``
    A trail file as S3 delivers it: ``{"Records": [record, ...]}``, also gzipped
    (``.json.gz``; gzip is detected by its magic bytes, whatever the file's name).
``lookup-events``
    A CloudTrail ``LookupEvents`` page ``{"Events": [event, ...]}`` or one such event: the
    record is the JSON string of its ``CloudTrailEvent`` (the page's other fields,
    ``EventId``, ``Username``, ... are CloudTrail's summary of that same record).
``eventbridge``
    An EventBridge event whose ``detail-type`` ends with ``via CloudTrail`` (``AWS API Call
    via CloudTrail``, ``AWS Console Sign In via CloudTrail``, ...): the record is its
    ``detail``. Other detail types are not CloudTrail records and are refused.
``lake``
    CloudTrail Lake query results: a ``GetQueryResults`` page ``{"QueryResultRows":
    [row, ...]}``, one row as the API gives it (a list of one-column objects
    ``[{"eventid": "..."}, ...]``) or as one object. A row with the ``eventjson`` column
    (``SELECT eventjson FROM <store>``) is the original record, read from that JSON string.
    A row of the event data store's columns (``eventtime``, ``eventname``, ``useridentity``,
    ... in Lake's lower case) gets CloudTrail's names back (``eventTime``, ``eventName``,
    ``userIdentity``, ``sourceIPAddress``, ``requestID``, ...; also inside ``useridentity``,
    ``resources`` and ``tlsdetails``), ``eventtime`` (``2023-07-10 11:42:18.000``, UTC) in
    CloudTrail's format; a struct or map column must be JSON (an object or a JSON string):
    Lake's text rendering ``{key=value, ...}`` cannot be read back faithfully and is
    refused (select ``eventjson`` instead). Columns not in Lake's schema keep their names;
    scalar values are kept as given (``GetQueryResults`` gives ``readonly`` as the string
    ``"true"``, which the analyser reads as CloudTrail's boolean).
``log-export``
    Records that went through a log pipeline:

    - the record under ``_source`` (an Elasticsearch / OpenSearch hit; a search response
      ``{"hits": {"hits": [...]}}`` is read hit by hit), ``@message`` (a CloudWatch Logs
      Insights result row: the raw log event; the ``GetQueryResults`` row form
      ``[{"field": "@message", "value": "..."}, ...]`` too), ``message`` (a CloudWatch Logs
      event, as ``filter-log-events`` ``{"events": [...]}`` or a subscription's
      ``{"logEvents": [...]}`` give them; Logstash's raw line), ``_raw`` (Splunk; its JSON
      export's rows ``{"result": {"_raw": ...}}`` too),
      ``event.original`` (Elastic Common Schema's copy of the raw event) or ``detail``
      without an EventBridge envelope, as an object or a JSON string;
    - a record whose time is under ``@timestamp`` instead of ``eventTime`` (Logstash, Fluent
      Bit, OpenSearch ingestion), at the top level or beside the wrapped record.

    A payload that is itself one of the other forms (an EventBridge event written to
    CloudWatch Logs) is unwrapped too; the form counted is ``log-export``.

A JSON array of items, and a file of JSON lines holding any of the above (one item or page
per line), are read item by item. Items inside a container are counted under the
container's form (the ``Records`` of a trail file are ``trail-file``).

Nothing is invented: the record is what the item carries. The one change is the time: when
``eventTime`` is missing and ``@timestamp`` is present (on the record or on its wrapper) it
becomes ``eventTime``, ISO 8601 normalised to CloudTrail's ``%Y-%m-%dT%H:%M:%SZ`` (UTC;
fractions of a second dropped, as CloudTrail's own times have none; a time without a zone
is UTC, as CloudWatch Logs and Lake write them). Every other field is kept as it is (the
``@timestamp`` field too); a wrapper's own fields (index, log stream, envelope id) are not
part of the record. An item that is none of these forms is malformed and gets a reason
(:class:`NotCloudTrail`).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

FORMS: tuple[str, ...] = (
    "record",
    "trail-file",
    "lookup-events",
    "eventbridge",
    "lake",
    "log-export",
)
"""The forms an item can arrive in (see the module docstring)."""

ACCEPTED = (
    'CloudTrail records as JSON lines or a JSON array, a trail file {"Records": [...]} '
    "(also .json.gz), LookupEvents pages (CloudTrailEvent), EventBridge events via "
    "CloudTrail (detail), CloudTrail Lake rows (eventjson, or the store's columns), "
    "log exports (_source, @message, message, _raw, event.original, detail; @timestamp "
    "for eventTime)"
)
"""What is accepted, in one line (the ``allowed`` of an input error)."""

CLOUDTRAIL_TIME = "%Y-%m-%dT%H:%M:%SZ"
_MAX_DEPTH = 4  # wrappers and containers inside one another: deeper is refused


class NotCloudTrail(ValueError):
    """An item (or a file's bytes) holds no CloudTrail record; the message says why."""


class Outcome(NamedTuple):
    """What one item gave: a record and its form, or (``record`` None) why it is none.

    ``number`` is the item's line (JSON lines, from 1) or index (one JSON document,
    from 0); ``where`` names it for a person (``line 4``, ``Records[12]``,
    ``line 2 Events[0]``)."""

    number: int
    where: str
    record: dict[str, Any] | None
    form: str
    problem: str


class NormalisedItems(NamedTuple):
    """Records read from items, counted by form, and the items that held none.

    ``records[i]`` came from the item named ``origins[i]``; ``kinds`` counts every form
    of :data:`FORMS` (zeros included); ``malformed`` lists ``(where, reason)``."""

    records: list[dict[str, Any]]
    kinds: dict[str, int]
    malformed: list[tuple[str, str]]
    origins: list[str]


# ------------------------------------------------------------------ time


def cloudtrail_time(value: Any, *, field: str = "@timestamp") -> str:
    """``value`` (an ISO 8601 string: ``T`` or space, optional fraction, ``Z``, an offset
    or no zone = UTC) in CloudTrail's ``%Y-%m-%dT%H:%M:%SZ`` (UTC, whole seconds).

    Raises
    ------
    NotCloudTrail
        If ``value`` is not such a string (``field`` names it in the reason).
    """
    if not isinstance(value, str):
        raise NotCloudTrail(f"{field} is not an ISO 8601 string ({type(value).__name__})")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise NotCloudTrail(f"{field} {value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(CLOUDTRAIL_TIME)


# ------------------------------------------------------------------ one item


def _is_record(item: dict[str, Any]) -> bool:
    when, name = item.get("eventTime"), item.get("eventName")
    return type(when) is str and type(name) is str and bool(when) and bool(name)


def _plain_record(item: Any, what: str, stamp: Any = None) -> dict[str, Any]:
    """``item`` as a record: ``eventName`` required, ``eventTime`` or else a ``@timestamp``
    (its own, or ``stamp``: the wrapper's)."""
    if not isinstance(item, dict):
        raise NotCloudTrail(f"{what} is not a JSON object ({type(item).__name__})")
    if _is_record(item):
        return item
    name = item.get("eventName")
    if not isinstance(name, str) or not name:
        raise NotCloudTrail(f"{what}: eventName is missing or not a string")
    if item.get("eventTime") is not None:
        raise NotCloudTrail(f"{what}: eventTime is not a non-empty string")
    own = item.get("@timestamp")
    if own is None and stamp is None:
        raise NotCloudTrail(f"{what}: eventTime is missing or not a string (no @timestamp)")
    out = dict(item)
    out["eventTime"] = cloudtrail_time(own if own is not None else stamp)
    return out


def _json_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if an object, else the object its JSON string holds."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise NotCloudTrail(f"{what} is neither a JSON object nor a JSON string")
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        raise NotCloudTrail(f"{what} is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise NotCloudTrail(f"{what} is not a JSON object ({type(parsed).__name__})")
    return parsed


def _eventbridge(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("detail-type")
    if not isinstance(kind, str) or not kind.endswith("via CloudTrail"):
        raise NotCloudTrail(
            f"an EventBridge event of detail-type {kind!r}, not one 'via CloudTrail'"
        )
    return _plain_record(item.get("detail"), "detail")


# Lake's lower-case column names -> CloudTrail's (the event data store schema for
# CloudTrail management, data and network activity events)
LAKE_COLUMNS: dict[str, str] = {
    "eventversion": "eventVersion",
    "useridentity": "userIdentity",
    "eventtime": "eventTime",
    "eventsource": "eventSource",
    "eventname": "eventName",
    "awsregion": "awsRegion",
    "sourceipaddress": "sourceIPAddress",
    "useragent": "userAgent",
    "errorcode": "errorCode",
    "errormessage": "errorMessage",
    "requestparameters": "requestParameters",
    "responseelements": "responseElements",
    "additionaleventdata": "additionalEventData",
    "requestid": "requestID",
    "eventid": "eventID",
    "readonly": "readOnly",
    "resources": "resources",
    "eventtype": "eventType",
    "apiversion": "apiVersion",
    "managementevent": "managementEvent",
    "recipientaccountid": "recipientAccountId",
    "sharedeventid": "sharedEventID",
    "annotation": "annotation",
    "vpcendpointid": "vpcEndpointId",
    "vpcendpointaccountid": "vpcEndpointAccountId",
    "serviceeventdetails": "serviceEventDetails",
    "addendum": "addendum",
    "edgedevicedetails": "edgeDeviceDetails",
    "insightdetails": "insightDetails",
    "eventcategory": "eventCategory",
    "tlsdetails": "tlsDetails",
    "sessioncredentialfromconsole": "sessionCredentialFromConsole",
}
# the struct columns' field names (renamed at any depth inside them); map columns
# (requestparameters, ...) keep their keys: they are the record's own
_LAKE_STRUCT_FIELDS: dict[str, str] = {
    "principalid": "principalId",
    "accountid": "accountId",
    "accesskeyid": "accessKeyId",
    "username": "userName",
    "sessioncontext": "sessionContext",
    "creationdate": "creationDate",
    "mfaauthenticated": "mfaAuthenticated",
    "sessionissuer": "sessionIssuer",
    "webidfederationdata": "webIdFederationData",
    "federatedprovider": "federatedProvider",
    "sourceidentity": "sourceIdentity",
    "ec2roledelivery": "ec2RoleDelivery",
    "ec2issuedinvpc": "ec2IssuedInVPC",
    "onbehalfof": "onBehalfOf",
    "userid": "userId",
    "identitystorearn": "identityStoreArn",
    "inscopeof": "inScopeOf",
    "sourcearn": "sourceArn",
    "sourceaccount": "sourceAccount",
    "issuertype": "issuerType",
    "credentialsissuedto": "credentialsIssuedTo",
    "invokedby": "invokedBy",
    "identityprovider": "identityProvider",
    "arn": "ARN",  # only inside resources (userIdentity's arn is lower case)
    "arnprefix": "ARNPrefix",
    "tlsversion": "tlsVersion",
    "ciphersuite": "cipherSuite",
    "clientprovidedhostheader": "clientProvidedHostHeader",
}
_LAKE_STRUCTS = frozenset({"useridentity", "resources", "tlsdetails"})
_LAKE_MAPS = frozenset(
    {
        "requestparameters",
        "responseelements",
        "additionaleventdata",
        "serviceeventdetails",
        "addendum",
        "edgedevicedetails",
        "insightdetails",
    }
)


def _struct_names(value: Any, *, resources: bool) -> Any:
    if isinstance(value, list):
        return [_struct_names(v, resources=resources) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, inner in value.items():
        name = _LAKE_STRUCT_FIELDS.get(key, key) if key != "arn" or resources else key
        out[name] = _struct_names(inner, resources=resources)
    return out


def _lake_value(column: str, value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise NotCloudTrail(
                f"column {column} is Lake's text rendering, not JSON "
                "(select eventjson for whole records)"
            ) from None
    else:
        raise NotCloudTrail(f"column {column} is a {type(value).__name__}, not JSON")
    if column in _LAKE_STRUCTS:
        return _struct_names(parsed, resources=column == "resources")
    return parsed


def _lake_row(row: dict[str, Any]) -> dict[str, Any]:
    """The record of a Lake row (its ``eventjson``, or its columns renamed)."""
    for key, value in row.items():
        if key.lower() == "eventjson":
            return _plain_record(_json_object(value, key), key)
    out: dict[str, Any] = {}
    for key, value in row.items():
        column = key.lower()
        name = LAKE_COLUMNS.get(column, key)
        if name in out:
            raise NotCloudTrail(f"column {name} given twice ({key})")
        if column == "eventtime":
            value = cloudtrail_time(value, field=key)
        elif column in _LAKE_STRUCTS or column in _LAKE_MAPS:
            value = _lake_value(key, value)
        out[name] = value
    return _plain_record(out, "Lake row")


def _is_lake_row(item: dict[str, Any]) -> bool:
    """An ``eventjson`` column (any case), or Lake's lower-case time or name column."""
    if "eventtime" in item or "eventname" in item:
        return True
    return any(isinstance(k, str) and k.lower() == "eventjson" for k in item)


_WRAPPERS = ("_source", "@message", "message", "_raw", "result", "detail")


def _payload(item: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first wrapper key of ``item`` holding a JSON object (or its string), and it."""
    for key in _WRAPPERS:
        value = item.get(key)
        if isinstance(value, dict):
            return key, value
        if isinstance(value, str) and value.lstrip().startswith("{"):
            return key, _json_object(value, key)
    event = item.get("event")
    if isinstance(event, dict):
        original = event.get("original")
        if isinstance(original, str) and original.lstrip().startswith("{"):
            return "event.original", _json_object(original, "event.original")
    return None


def _row_object(row: list[Any]) -> tuple[dict[str, Any], str] | None:
    """A row given as a list of cells as a single object, and its form: Lake's
    ``[{"col": value}, ...]`` (``lake``) or Logs Insights' ``[{"field": f, "value": v},
    ...]`` (``log-export``); None if ``row`` is neither."""
    if not row or not all(isinstance(cell, dict) for cell in row):
        return None
    out: dict[str, Any] = {}
    if all(set(cell) == {"field", "value"} for cell in row):
        for cell in row:
            if cell["field"] in out:
                raise NotCloudTrail(f"field {cell['field']} given twice in the row")
            out[cell["field"]] = cell["value"]
        return out, "log-export"
    if all(len(cell) == 1 for cell in row):
        for cell in row:
            ((key, value),) = cell.items()
            if key in out:
                raise NotCloudTrail(f"column {key} given twice in the row")
            out[key] = value
        return out, "lake"
    return None


def _normalise(item: Any, depth: int) -> tuple[dict[str, Any], str]:
    if depth > _MAX_DEPTH:
        raise NotCloudTrail("wrapped too deeply")
    if isinstance(item, list):
        row = _row_object(item)
        if row is None:
            raise NotCloudTrail("a JSON array that is not a Lake or Logs Insights row")
        obj, form = row
        record, _ = _normalise(obj, depth + 1)
        return record, form
    if not isinstance(item, dict):
        raise NotCloudTrail(f"not a JSON object ({type(item).__name__})")
    if _is_record(item):
        return item, "record"
    if "detail-type" in item:
        return _eventbridge(item), "eventbridge"
    if "CloudTrailEvent" in item:
        event = _json_object(item["CloudTrailEvent"], "CloudTrailEvent")
        return _plain_record(event, "CloudTrailEvent"), "lookup-events"
    if _is_lake_row(item):
        return _lake_row(item), "lake"
    wrapped = _payload(item)
    if wrapped is not None:
        key, inner = wrapped
        if not _is_record(inner) and "eventTime" not in inner and "eventName" in inner:
            return _plain_record(inner, key, item.get("@timestamp")), "log-export"
        record, _ = _normalise(inner, depth + 1)
        return record, "log-export"
    record = _plain_record(item, "record")
    return record, "log-export" if record is not item else "record"


def normalise_item(item: Any) -> tuple[dict[str, Any], str]:
    """The CloudTrail record of one item (not a container: see :func:`normalise_items`)
    and the form it came in (one of :data:`FORMS`). A plain record is returned as it is
    (not copied); otherwise the record is the item's payload, or a copy given
    ``eventTime`` from ``@timestamp``.

    Raises
    ------
    NotCloudTrail
        If ``item`` is none of the accepted forms (the message says why).
    """
    return _normalise(item, 0)


# ------------------------------------------------------------------ containers

_CONTAINERS: tuple[tuple[str, str], ...] = (
    ("Records", "trail-file"),
    ("Events", "lookup-events"),
    ("QueryResultRows", "lake"),
    ("events", "log-export"),
    ("logEvents", "log-export"),
    ("results", "log-export"),
)


def _members(item: Any) -> tuple[str, list[tuple[str, Any]]] | None:
    """The form and the labelled items of a container (``form`` "" for a plain JSON
    array: its items keep their own forms); None if ``item`` is not one."""
    if isinstance(item, dict):
        if "eventName" in item:
            return None
        for key, form in _CONTAINERS:
            inner = item.get(key)
            if isinstance(inner, list):
                return form, [(f"{key}[{i}]", m) for i, m in enumerate(inner)]
        hits = item.get("hits")
        if isinstance(hits, dict) and isinstance(hits.get("hits"), list):
            return "log-export", [(f"hits.hits[{i}]", m) for i, m in enumerate(hits["hits"])]
        return None
    if isinstance(item, list):
        if not any(isinstance(m, dict | list) for m in item):
            return None  # no item could be a record: one malformed item
        try:
            if _row_object(item) is not None:
                return None
        except NotCloudTrail:
            return None  # a row with a repeated column: malformed as an item
        return "", [(f"[{i}]", m) for i, m in enumerate(item)]
    return None


def outcomes_of(item: Any, number: int, where: str) -> Iterator[Outcome]:
    """The outcome of every item in ``item`` (itself, or the items of a container, at any
    depth), labelled from ``number`` and ``where``."""
    yield from _outcomes(item, number, where, "", 0)


def _outcomes(item: Any, number: int, where: str, form: str, depth: int) -> Iterator[Outcome]:
    members = _members(item) if depth <= _MAX_DEPTH else None
    if members is not None:
        inner_form, items = members
        for label, member in items:
            here = f"{where} {label}" if where else label
            yield from _outcomes(member, number, here, inner_form or form, depth + 1)
        return
    try:
        record, own = _normalise(item, 0)
    except NotCloudTrail as exc:
        yield Outcome(number, where, None, "", str(exc))
        return
    yield Outcome(number, where, record, form or own, "")


def collect(outcomes: Iterable[Outcome]) -> NormalisedItems:
    """Records, counts by form, malformed items and origins of ``outcomes``."""
    records: list[dict[str, Any]] = []
    origins: list[str] = []
    kinds = dict.fromkeys(FORMS, 0)
    malformed: list[tuple[str, str]] = []
    for out in outcomes:
        if out.record is None:
            malformed.append((out.where, out.problem))
        else:
            records.append(out.record)
            origins.append(out.where)
            kinds[out.form] += 1
    return NormalisedItems(records, kinds, malformed, origins)


def normalise_items(items: Iterable[Any], *, label: str = "item") -> NormalisedItems:
    """Normalise parsed items (records, pages, envelopes, rows, or containers of them:
    a trail file's object, a ``LookupEvents`` or ``GetQueryResults`` response, ...).

    Item ``i`` is named ``f"{label} {i}"`` in ``origins`` and ``malformed`` (with the
    path inside a container: ``item 0 Events[3]``). Never raises for a bad item: it is
    listed in ``malformed`` with its reason."""
    return collect(
        out for i, item in enumerate(items) for out in outcomes_of(item, i, f"{label} {i}")
    )


# ------------------------------------------------------------------ bytes and text

GZIP_MAGIC = b"\x1f\x8b"


def text_of_bytes(data: bytes) -> str:
    """``data`` as text: gunzipped first if it starts with gzip's magic bytes.

    Raises
    ------
    NotCloudTrail
        A broken gzip stream, or text that is not UTF-8.
    """
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise NotCloudTrail(f"not a readable gzip file ({exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotCloudTrail(f"not UTF-8 text (byte {exc.start})") from None


def outcomes_of_text(text: str) -> Iterator[Outcome]:
    """The outcome of every item of ``text``: one JSON document (a container, a JSON
    array, or one pretty-printed item; its items numbered from 0), else JSON lines (each
    non-blank line an item or a container, numbered from 1)."""
    stripped = text.strip()
    whole: Any = None
    parsed = False
    if stripped[:1] in ("{", "["):
        try:
            whole, parsed = json.loads(stripped), True
        except (json.JSONDecodeError, RecursionError):
            pass
    members = _members(whole) if parsed else None
    if members is not None:  # one container: its items numbered from 0
        form, items = members
        for i, (label, member) in enumerate(items):
            yield from _outcomes(member, i, label, form, 1)
        return
    if parsed and "\n" in stripped:  # one item written over several lines
        yield from outcomes_of(whole, 0, "document")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Outcome(number, f"line {number}", None, "", f"invalid JSON ({exc.msg})")
            continue
        except RecursionError:
            yield Outcome(number, f"line {number}", None, "", "JSON nested too deeply")
            continue
        yield from outcomes_of(item, number, f"line {number}")


def read_cloudtrail_bytes(data: bytes) -> NormalisedItems:
    """Normalise a file's bytes: an S3 trail object (``.json.gz``), a ``LookupEvents`` or
    Lake response saved as JSON, JSON lines of any form, gzipped or not.

    Raises
    ------
    NotCloudTrail
        If ``data`` cannot be read as text (bad items are listed, not raised).
    """
    return collect(outcomes_of_text(text_of_bytes(data)))
