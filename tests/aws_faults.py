"""Faults injected into boto3 clients in tests: throttling answered before a request
leaves the client (a botocore ``before-send`` hook), and the retries botocore made.

Shared by the adapter tests (``tests/adapters/``) and the live-mode tests (``tests/live/``);
import the fixtures into a test module or conftest to use them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse


class _Raw:
    """The raw body botocore reads from an HTTP response."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def error_response(protocol: str, status: int, code: str) -> AWSResponse:
    """An AWS error answer in ``protocol`` (``json`` for EKS/CloudTrail-style services,
    ``query`` for EC2 and Auto Scaling), as the service sends it."""
    if protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            "<Message>Rate exceeded</Message></Error>"
            "<RequestId>8d3c1bd5-4f2a-11e9-8c2a-0d4f5e3c1b2a</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    else:
        body = json.dumps({"__type": code, "message": "Rate exceeded"}).encode()
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.1"}
    return AWSResponse("https://throttled.invalid", status, headers, _Raw(body))


class Throttle:
    """A ``before-send`` hook answering the first ``times`` sends with a throttling
    error (the request never reaches the server), then letting sends through."""

    def __init__(self, protocol: str, status: int, code: str, times: int) -> None:
        self.protocol, self.status, self.code, self.left = protocol, status, code, times
        self.sends = 0

    def __call__(self, **_: Any) -> AWSResponse | None:
        self.sends += 1
        if self.left > 0:
            self.left -= 1
            return error_response(self.protocol, self.status, self.code)
        return None


BACKOFF_SHRINK = 100  # throttling backs off rand(0, 1) x 2^i seconds; tests wait 1/100 of it


@pytest.fixture
def throttle(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Throttle]:
    """``throttle(client, "eks", "DescribeNodegroup", times=2)``: throttle that call of
    ``client`` (service event name, operation); the hook's ``sends`` counts every send.
    botocore's standard-mode backoff keeps its schedule, shrunk by ``BACKOFF_SHRINK``."""
    from botocore.retries.standard import ExponentialBackoff

    full_delay = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff,
        "delay_amount",
        lambda self, context: full_delay(self, context) / BACKOFF_SHRINK,
    )

    def install(
        client: Any, event: str, operation: str, *, times: int, protocol: str = "json",
        status: int = 429, code: str = "ThrottlingException",
    ) -> Throttle:  # fmt: skip
        hook = Throttle(protocol, status, code, times)
        client.meta.events.register(f"before-send.{event}.{operation}", hook)
        return hook

    return install


class RetryLog:
    """Records each call's ``ResponseMetadata.RetryAttempts`` (an ``after-call`` hook)."""

    def __init__(self) -> None:
        self.attempts: list[int] = []

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        self.attempts.append(int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0)))


@pytest.fixture
def retry_log() -> Callable[[Any, str, str], RetryLog]:
    """``retry_log(client, "eks", "DescribeNodegroup")``: the retries of each such call."""

    def install(client: Any, event: str, operation: str) -> RetryLog:
        log = RetryLog()
        client.meta.events.register(f"after-call.{event}.{operation}", log)
        return log

    return install
