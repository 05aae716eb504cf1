"""CloudTrail records → the few fields the analyser reads, plus masking for ablations.

A record is the JSON object CloudTrail writes (``eventTime``, ``eventSource``,
``eventName``, ``userIdentity``, ``sourceIPAddress``, ``userAgent``,
``requestParameters``, ``errorCode``, ``readOnly``, ...). :func:`parse_event` reduces it
to an :class:`Event`; times are POSIX seconds (UTC).

Principals
    The behaviour key of a record: the IAM user's ARN, the *role* of an assumed-role
    session (``arn:aws:sts::A:assumed-role/ROLE``; the session name is kept separately
    as the session key), or ``service:<host>`` for AWS service principals.

User-agent families
    A coarse client class (``console``, ``aws-cli``, ``boto``, ``go-sdk``, ``java-sdk``,
    ``js-sdk``, ``terraform``, ``aws-internal``, ``aws-service``, ``http-lib``, ``other``,
    ``none``) read from the user-agent prefix: what the analyser generalises over.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np

_FAMILIES: tuple[tuple[str, str], ...] = (
    ("apn/1.0 hashicorp", "terraform"),
    ("[apn/1.0 hashicorp", "terraform"),
    ("[[apn/1.0 hashicorp", "terraform"),
    ("terraform", "terraform"),
    ("mozilla/", "console"),
    ("signin.amazonaws.com", "console"),
    ("console.amazonaws.com", "console"),
    ("[s3console", "console"),
    ("s3console", "console"),
    ("rds console", "console"),
    ("aws internal", "aws-internal"),
    ("[aws internal", "aws-internal"),
    ("[awscloudtrail", "aws-internal"),
    ("aws-cli/", "aws-cli"),
    ("[aws-cli/", "aws-cli"),
    ("boto3/", "boto"),
    ("[boto3/", "boto"),
    ("botocore/", "boto"),
    ("aws-sdk-go", "go-sdk"),
    ("[aws-sdk-go", "go-sdk"),
    ("aws-sdk-java", "java-sdk"),
    ("[aws-sdk-java", "java-sdk"),
    ("aws-sdk-js", "js-sdk"),
    ("aws-sdk-nodejs", "js-sdk"),
    ("python-requests", "http-lib"),
    ("curl/", "http-lib"),
    ("go-http-client", "http-lib"),
)
UA_FAMILIES: tuple[str, ...] = (
    "none",
    "console",
    "aws-cli",
    "boto",
    "go-sdk",
    "java-sdk",
    "js-sdk",
    "terraform",
    "aws-internal",
    "aws-service",
    "http-lib",
    "other",
)

_ROLE_SESSION = re.compile(r"^(arn:aws[^:]*:sts::\d*:assumed-role/[^/]+)/(.*)$")


def ua_family(user_agent: str) -> str:
    """The client class of a user-agent string (see the module docstring)."""
    ua = user_agent.strip().lower()
    if not ua:
        return "none"
    for prefix, family in _FAMILIES:
        if ua.startswith(prefix):
            return family
    if "aws-internal" in ua:  # the console's back end ("[EC2Console/0.4, aws-internal/3 ...")
        return "console" if "console" in ua else "aws-internal"
    if ua.endswith(".amazonaws.com"):
        return "aws-service"
    return "other"


class Event(NamedTuple):
    """The fields of one CloudTrail record the analyser uses (times in POSIX s).

    An immutable named tuple (cheap to build: a batch parses one per record)."""

    event_id: str
    time_s: float
    account: str
    source: str
    name: str
    error: str
    user_agent: str
    ip: str
    principal: str
    session: str
    identity_type: str
    read_only: bool
    params: Any


def _parse_iso(text: str) -> float:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        return (dt - datetime(1970, 1, 1)).total_seconds()
    return dt.timestamp()


# POSIX seconds of the minutes seen (``YYYY-MM-DDTHH:MM:`` -> s), for the fast path of
# parse_time; bounded (cleared when full)
_MINUTES: dict[str, float] = {}
_DAYS: dict[str, float] = {}  # ``YYYY-MM-DD`` -> s
_SECONDS = {f"{s:02d}": s for s in range(60)}  # also the minutes
_HOURS = {f"{h:02d}": h for h in range(24)}
_CACHE_MAX = 100_000


def parse_time(text: str) -> float:
    """``2023-07-10T11:42:18Z`` (ISO 8601, UTC) as POSIX seconds.

    CloudTrail's own form (``YYYY-MM-DDTHH:MM:SSZ``) takes a fast path: each day is
    parsed once (by :meth:`datetime.fromisoformat`, as every other form), the hours,
    minutes and seconds (checked: 00-23, 00-59, 00-59) added in whole seconds (exact;
    UTC has no DST), minutes cached. Same value, same errors as the general path.
    """
    if len(text) == 20 and text[19] == "Z":
        base = _MINUTES.get(text[:17])
        second = _SECONDS.get(text[17:19])
        if second is not None:
            if base is not None:
                return base + second
            hour = _HOURS.get(text[11:13])
            minute = _SECONDS.get(text[14:16])
            if (
                hour is not None
                and minute is not None
                and text[16] == ":"
                and text[13] == ":"
                and text[10] == "T"
                and text[7] == "-"
                and text[4] == "-"
            ):
                day = _DAYS.get(text[:10])
                if day is None:
                    try:
                        day = _parse_iso(text[:10] + "T00:00:00Z")
                    except ValueError:
                        return _parse_iso(text)  # the general path's own error
                    if len(_DAYS) >= _CACHE_MAX:
                        _DAYS.clear()
                    _DAYS[text[:10]] = day
                base = day + (hour * 3600 + minute * 60)
                if len(_MINUTES) >= _CACHE_MAX:
                    _MINUTES.clear()
                _MINUTES[text[:17]] = base
                return base + second
    return _parse_iso(text)


# arn -> (principal, session) of assumed-role sessions and other ARNs; bounded
_ARNS: dict[str, tuple[str, str]] = {}


def _split_arn(arn: str) -> tuple[str, str]:
    hit = _ARNS.get(arn)
    if hit is None:
        m = _ROLE_SESSION.match(arn)
        hit = (m.group(1), arn) if m else (arn, arn)
        if len(_ARNS) >= _CACHE_MAX:
            _ARNS.clear()
        _ARNS[arn] = hit
    return hit


def principal_of(identity: Mapping[str, Any]) -> tuple[str, str]:
    """The behaviour key and the session key of a ``userIdentity`` object."""
    kind = str(identity.get("type") or "")
    arn = str(identity.get("arn") or "")
    if kind == "AWSService" or (not arn and identity.get("invokedBy")):
        key = f"service:{identity.get('invokedBy') or 'aws'}"
        return key, key
    if arn:
        return _split_arn(arn)
    fallback = str(identity.get("accessKeyId") or identity.get("principalId") or kind or "unknown")
    return f"{kind}:{fallback}", f"{kind}:{fallback}"


def _read_only(record: Mapping[str, Any], name: str) -> bool:
    value = record.get("readOnly")
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() == "true"
    return name.startswith(("Get", "List", "Describe", "Head", "Lookup"))


# Event(...) without the generated __new__'s Python frame (what Event._make does)
_new_event = tuple.__new__


def parse_event(record: Mapping[str, Any]) -> Event:
    """Reduce one CloudTrail record to an :class:`Event`.

    Raises
    ------
    ValueError
        If ``eventTime`` or ``eventName`` is missing or unreadable.
    """
    get = record.get
    name = get("eventName")
    when = get("eventTime")
    if not isinstance(name, str) or not name:
        raise ValueError("eventName is missing")
    if not isinstance(when, str):
        raise ValueError("eventTime is missing")
    identity = get("userIdentity")
    if type(identity) is not dict and not isinstance(identity, Mapping):
        identity = {}
    kind = identity.get("type")
    arn = identity.get("arn")
    if type(kind) is str and type(arn) is str and arn and kind != "AWSService":
        principal, session = _split_arn(arn)  # what principal_of does for these
    else:
        principal, session = principal_of(identity)
    # str(v or "") as a plain str passes through unchanged, without the call
    account = get("recipientAccountId") or identity.get("accountId") or ""
    event_id = get("eventID")
    source = get("eventSource")
    error = get("errorCode")
    agent = get("userAgent")
    ip = get("sourceIPAddress")
    ro = get("readOnly")
    fields = (
        event_id if type(event_id) is str else str(event_id or ""),
        parse_time(when),
        account if type(account) is str else str(account),
        source if type(source) is str else str(source or ""),
        name,
        error if type(error) is str else str(error or ""),
        agent if type(agent) is str else str(agent or ""),
        ip if type(ip) is str else str(ip or ""),
        principal,
        session,
        kind if type(kind) is str else str(kind or ""),
        ro if type(ro) is bool else _read_only(record, name),
        get("requestParameters"),
    )
    return _new_event(Event, fields)


# ------------------------------------------------------------------ scoring order


def scoring_order(events: Sequence[Event], records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Positions of ``events`` (parsed from ``records``, same positions) in the order they
    are scored: by time; events of the same time by ``eventID``; events with the same time
    and ``eventID`` by their record's content (its JSON with sorted keys).

    CloudTrail's ``eventTime`` has whole seconds, so the calls of one second carry no order
    of their own, and a file may list them in any. Scoring them in an order made from their
    content alone makes every score independent of the order of the input: the same records
    in any order get the same scores. Records whose content is not JSON-writable keep their
    input order among themselves (only if they also share time and ``eventID``).
    """
    keys = [(ev.time_s, ev.event_id) for ev in events]
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: ties keep input order
    first = 0
    for k in range(1, len(order) + 1):  # runs of the same time and eventID: by content
        if k == len(order) or keys[order[k]] != keys[order[first]]:
            if k - first > 1:
                order[first:k] = sorted(order[first:k], key=lambda i: _content(records[i]))
            first = k
    return np.asarray(order, dtype=np.int64)


def _content(record: Mapping[str, Any]) -> str:
    """``record`` as JSON with sorted keys ("" if it cannot be written as JSON)."""
    try:
        return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return ""


# ------------------------------------------------------------------ masking (ablation)

MASKED_UA = "masked"
# Kept: plain words (enumerations such as ``launchPermission``), numbers (ports, account
# ids), CIDR blocks and wildcards. Everything else (names, ids, paths) is made opaque.
_KEEP_VALUE = re.compile(r"^([A-Za-z_]{1,40}|\d{1,12}|[0-9a-fA-F.:]+/\d{1,3}|\*)$")


def _opaque(text: str) -> str:
    return "x" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _mask_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(v) for v in value]
    if isinstance(value, str) and value.startswith("arn:"):
        return _mask_arn(value)
    if isinstance(value, str) and not _KEEP_VALUE.match(value):
        return _opaque(value)
    return value


def _mask_arn(arn: str) -> str:
    """Keep the ARN's structure (partition, service, account, resource type), replace
    the resource's names by opaque ids (distinct names stay distinct)."""
    if not arn.startswith("arn:"):
        return arn
    head, _, resource = arn.rpartition(":")
    if head.endswith(":aws"):  # AWS-managed (e.g. arn:aws:iam::aws:policy/...): not ours
        return arn
    parts = resource.split("/")
    if len(parts) == 1:
        return head + ":" + (resource if resource == "root" else _opaque(resource))
    return head + ":" + "/".join([parts[0], *(_opaque(p) for p in parts[1:])])


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with ``userAgent`` masked and resource names made opaque.

    Request-parameter strings that are not plain words (names, ids, ARNs, paths) and the
    names inside the principal's ARN and ``userName`` are replaced by stable opaque ids,
    so identity is kept (behaviour still works) but names no longer describe anything.
    """
    out = dict(record)
    out["userAgent"] = MASKED_UA
    if "requestParameters" in out:
        out["requestParameters"] = _mask_value(out["requestParameters"])
    identity = out.get("userIdentity")
    if isinstance(identity, Mapping):
        ident = dict(identity)
        if isinstance(ident.get("arn"), str):
            ident["arn"] = _mask_arn(ident["arn"])
        if isinstance(ident.get("userName"), str) and ident["userName"]:
            ident["userName"] = _opaque(ident["userName"])
        out["userIdentity"] = ident
    return out
