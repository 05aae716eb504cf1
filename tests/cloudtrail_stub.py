"""CloudTrail ``lookup_events`` without AWS (moto answers it with HTTP 500): events built
from CloudTrail records as the service answers them, queued on a botocore ``Stubber``
(:func:`stub_lookup_pages`), or answered from the request like CloudTrail's event history
(:class:`EventHistory`). Every answer is checked against the service model first, as the
``Stubber`` checks its responses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from botocore.validate import validate_parameters

PAGE_SIZE = 50  # lookup_events' largest page


def record_time(record: Mapping[str, Any]) -> datetime:
    """A record's ``eventTime`` (CloudTrail's format), timezone-aware UTC."""
    return datetime.strptime(str(record["eventTime"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def lookup_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """One ``Events[]`` item of lookup_events for ``record``, as CloudTrail answers it."""
    user = record.get("userIdentity", {})
    return {
        "EventId": record["eventID"], "EventName": record["eventName"],
        "ReadOnly": str(record.get("readOnly", False)).lower(),
        "AccessKeyId": user.get("accessKeyId", ""),
        "EventTime": record_time(record),
        "EventSource": record["eventSource"], "Username": user.get("userName", ""),
        "Resources": [], "CloudTrailEvent": json.dumps(record),
    }  # fmt: skip


def pages(events: Sequence[Mapping[str, Any]], page_size: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """``events`` (newest first) as lookup_events pages, each but the last with a token."""
    out: list[dict[str, Any]] = []
    for n, first in enumerate(range(0, len(events), page_size)):
        page: dict[str, Any] = {"Events": list(events[first : first + page_size])}
        if first + page_size < len(events):
            page["NextToken"] = f"page-{n + 1}"
        out.append(page)
    return out or [{"Events": []}]


def stub_lookup_pages(
    stub: Stubber, events: Sequence[Mapping[str, Any]], expected: Mapping[str, Any]
) -> None:
    """Queue on ``stub`` the pages of ``events`` (newest first) for one paginated
    lookup_events call whose first request is ``expected``."""
    token = None
    for page in pages(events):
        params = dict(expected) if token is None else {**expected, "NextToken": token}
        stub.add_response("lookup_events", page, params)
        token = page.get("NextToken")


class EventHistory:
    """CloudTrail's event history over ``records`` on ``client``: lookup_events answered
    from its ``StartTime``/``EndTime`` (both inclusive), newest first, in pages of
    ``page_size``; ``calls`` keeps every request's parameters."""

    def __init__(self, client: Any, records: Sequence[Mapping[str, Any]], page_size: int = 7):
        self.events = [lookup_event(r) for r in sorted(records, key=record_time, reverse=True)]
        self.page_size = page_size
        self.calls: list[dict[str, Any]] = []
        client.meta.events.register("before-parameter-build.cloudtrail.LookupEvents", self._ask)
        client.meta.events.register("before-call.cloudtrail.LookupEvents", self._answer)

    def _ask(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))

    def _answer(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        asked = self.calls[-1]
        start, end = asked.get("StartTime"), asked.get("EndTime")
        chosen = [
            e for e in self.events
            if (start is None or e["EventTime"] >= start) and (end is None or e["EventTime"] <= end)
        ]  # fmt: skip
        at = int(str(asked.get("NextToken", "page-0")).removeprefix("page-"))
        answer = pages(chosen, self.page_size)[at]
        validate_parameters(answer, model.output_shape)
        return AWSResponse("https://cloudtrail.stub", 200, {}, None), answer
