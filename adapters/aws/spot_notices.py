"""EC2's spot notices as they arrive through EventBridge -> SQS, parsed.

An SQS message body is the EventBridge event itself (or, through an SNS topic, an SNS
notification whose ``Message`` is that event)::

    {"version": "0", "id": "...", "detail-type": "EC2 Spot Instance Interruption Warning",
     "source": "aws.ec2", "account": "123456789012", "time": "2024-05-01T12:00:00Z",
     "region": "us-east-1",
     "resources": ["arn:aws:ec2:us-east-1a:instance/i-1234567890abcdef0"],
     "detail": {"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"}}

``detail-type`` ``"EC2 Instance Rebalance Recommendation"`` has ``detail`` with only
``instance-id``. An interruption is carried out two minutes after the event time
(``action_time``). The zone is read from the resource ARN when EC2 puts one there (the
documented interruption example names ``us-east-1a`` in the region part); else ``None``.
Anything else is a :class:`MalformedNotice`, reported with the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adapters.protocols import NoticeKind, SpotNotice
from adapters.times import naive_utc

INTERRUPTION_DETAIL_TYPE = "EC2 Spot Instance Interruption Warning"
REBALANCE_DETAIL_TYPE = "EC2 Instance Rebalance Recommendation"
DETAIL_TYPES = {INTERRUPTION_DETAIL_TYPE: NoticeKind.INTERRUPTION,
                REBALANCE_DETAIL_TYPE: NoticeKind.REBALANCE}  # fmt: skip
INTERRUPTION_WARNING_S = 120
_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")


class MalformedNotice(ValueError):
    """A message that is not a spot notice EC2 sends (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """An SQS message that could not be read as a notice (left on the queue)."""

    message_id: str
    reason: str


def parse_notice(body: str) -> SpotNotice:
    """One SQS message body -> a :class:`SpotNotice`; :class:`MalformedNotice` if not."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedNotice(f"body is not JSON ({exc.msg} at char {exc.pos})") from None
    if isinstance(event, dict) and event.get("Type") == "Notification" and "Message" in event:
        return parse_notice(str(event["Message"]))  # through an SNS topic
    if not isinstance(event, dict):
        raise MalformedNotice("body is not a JSON object (an EventBridge event)")
    detail_type = event.get("detail-type")
    if event.get("source") != "aws.ec2" or detail_type not in DETAIL_TYPES:
        raise MalformedNotice(
            f"event source {event.get('source')!r} detail-type {detail_type!r} is not "
            f"aws.ec2 {INTERRUPTION_DETAIL_TYPE!r} or {REBALANCE_DETAIL_TYPE!r}"
        )
    detail = event.get("detail")
    instance_id = detail.get("instance-id") if isinstance(detail, dict) else None
    if not isinstance(instance_id, str) or not instance_id.startswith("i-"):
        raise MalformedNotice(f"detail.instance-id {instance_id!r} is not an instance id")
    time = _event_time(event.get("time"))
    kind = DETAIL_TYPES[detail_type]
    return SpotNotice(
        kind=kind,
        time=time,
        instance_id=instance_id,
        az=_zone(event.get("resources")),
        action_time=(
            time + timedelta(seconds=INTERRUPTION_WARNING_S)
            if kind is NoticeKind.INTERRUPTION
            else None
        ),
    )


def _event_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise MalformedNotice(f"time {value!r} is not an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedNotice(f"time {value!r} is not an ISO 8601 time") from None
    return naive_utc(moment)


def _zone(resources: Any) -> str | None:
    """The zone in an instance ARN's region part (``arn:aws:ec2:us-east-1a:...``)."""
    for arn in resources if isinstance(resources, list) else []:
        parts = str(arn).split(":")
        if len(parts) > 3 and _ZONE.match(parts[3]):
            return parts[3]
    return None
