"""The security analyser as an endpoint: CloudTrail records in, their assessment out.

A request is one CloudTrail record (the JSON object CloudTrail writes; the fields of
:class:`CloudTrailRecord`, ``eventTime`` and ``eventName`` required) or a list of them.
The endpoint scores with the analyser's streaming scorer
(:meth:`agents.security.analyser.SecurityAnalyser.stream`), as the replay's audit
watcher does: each principal's behaviour state holds the records scored before, so
**an endpoint instance owns the accounts it watches**: send it their records in time
order (a list is scored in scoring order: by time, one second's records by
``eventID``). A restarted instance starts with no behaviour history.

The answer per record: ``eventID``, ``risk_score`` (0..1), ``is_alert`` (risk at or
above the threshold fixed when the model was fitted), ``threat_category`` (``none``
unless an alert), ``recommended_actions`` (from the category, by the table
:data:`agents.security.analyser.CATEGORY_ACTIONS`, e.g. ``defense-evasion`` →
re-enable logging, revoke the principal's sessions and keys; ``none`` → no action),
``reasons`` (the features that raised the risk most), ``label`` (the most likely class:
normal / suspicious / malicious) and ``model_version``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from agents.security.analyser import SecurityAnalyser
from agents.security.events import parse_time
from agents.serving.protocol import RequestModel

JsonObject = dict[str, Any]


class CloudTrailRecord(RequestModel):
    """One CloudTrail record (CloudTrail's field names; nested objects as CloudTrail
    writes them; in a CSV body, ``requestParameters`` and the other objects may be JSON
    text)."""

    eventTime: str = Field(description="ISO 8601, e.g. 2024-06-14T00:02:29Z")
    eventName: str = Field(min_length=1)
    eventSource: str | None = None
    eventVersion: str | None = None
    eventID: str | None = None
    eventType: str | None = None
    eventCategory: str | None = None
    awsRegion: str | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    userIdentity: JsonObject | None = None
    requestParameters: JsonObject | None = None
    responseElements: JsonObject | None = None
    additionalEventData: JsonObject | None = None
    serviceEventDetails: JsonObject | None = None
    tlsDetails: JsonObject | None = None
    resources: list[JsonObject] | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    requestID: str | None = None
    sharedEventID: str | None = None
    readOnly: bool | None = None
    managementEvent: bool | None = None
    apiVersion: str | None = None
    recipientAccountId: str | None = None
    vpcEndpointId: str | None = None
    sessionCredentialFromConsole: str | None = None

    @field_validator("eventTime")
    @classmethod
    def _readable_time(cls, value: str) -> str:
        try:
            parse_time(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        return value

    @field_validator(
        "userIdentity",
        "requestParameters",
        "responseElements",
        "additionalEventData",
        "serviceEventDetails",
        "tlsDetails",
        "resources",
        mode="before",
    )
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        """A CSV cell holds an object as JSON text."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("JSON text of an object could not be read") from None
        return value


CSV_COLUMNS: tuple[str, ...] = (
    "eventTime",
    "eventName",
    "eventSource",
    "eventID",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.accountId",
    "userIdentity.accessKeyId",
    "requestParameters",
    "errorCode",
    "readOnly",
    "recipientAccountId",
)
"""Columns of a CSV body (``requestParameters``: JSON text; an empty cell: absent)."""


class SecurityPredictor:
    """Streaming assessments of a fitted :class:`SecurityAnalyser` (see the module).

    Parameters
    ----------
    analyser
        The fitted analyser.
    model_version
        Returned with every answer (the artefact's version).
    """

    agent = "security"
    request_model = CloudTrailRecord
    csv_columns = CSV_COLUMNS

    def __init__(self, analyser: SecurityAnalyser, *, model_version: str) -> None:
        self.scorer = analyser.stream()
        self.model_version = model_version

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        raw = [r.model_dump(exclude_none=True) for r in records]
        scored = self.scorer.score_many(raw) if len(raw) > 1 else [self.scorer.score_one(raw[0])]
        return [
            {
                "eventID": s["eventID"],
                "risk_score": s["risk_score"],
                "is_alert": s["is_alert"],
                "threat_category": s["threat_category"],
                "recommended_actions": s["recommended_actions"],
                "reasons": s["reasons"],
                "label": s["label"],
                "model_version": self.model_version,
            }
            for s in scored
        ]

    def example_request(self) -> dict[str, Any]:
        """A console user turning CloudTrail logging off."""
        return {
            "eventVersion": "1.08",
            "eventTime": "2024-06-14T03:12:09Z",
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "StopLogging",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.7",
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            "userIdentity": {
                "type": "IAMUser",
                "arn": "arn:aws:iam::123456789012:user/alice",
                "accountId": "123456789012",
                "userName": "alice",
            },
            "requestParameters": {"name": "management-trail"},
            "eventID": "3f1c1a2e-0000-4000-8000-000000000001",
            "eventType": "AwsApiCall",
            "readOnly": False,
            "recipientAccountId": "123456789012",
        }
