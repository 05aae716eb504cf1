"""The contract every served agent implements, and the base of its request model.

A :class:`Predictor` is built from an already-loaded model. The server validates each
request record against :attr:`Predictor.request_model` (frozen, no unknown fields, finite
numbers only: :class:`RequestModel`), hands the validated records to
:meth:`Predictor.predict` in one call, and writes back what it returns (one JSON object
per record, in the same order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

MAX_BODY_BYTES = 1 << 20
"""Default limit of a request body (1 MiB; larger ones are refused with HTTP 413)."""


class RequestModel(BaseModel):
    """Base of the request models: frozen, unknown fields refused, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class PredictionError(ValueError):
    """A request the model cannot answer although it validated (HTTP 400: the message
    names the field and what is allowed), e.g. one series more than a detector bank keeps."""


class Predictor(Protocol):
    """One agent's model behind ``/invocations``.

    Attributes
    ----------
    agent
        ``scaling``, ``cost``, ``anomaly`` or ``security``.
    model_version
        The version of the loaded model (returned with every answer).
    request_model
        The pydantic model of one request record.
    csv_columns
        Column order of a ``text/csv`` body (nested fields as ``parent.child``).
    """

    @property
    def agent(self) -> str: ...

    @property
    def model_version(self) -> str: ...

    @property
    def request_model(self) -> type[RequestModel]: ...

    @property
    def csv_columns(self) -> tuple[str, ...]: ...

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """One answer (a JSON-writable dict) per validated record, same order.

        Raises :class:`PredictionError` for a request it refuses."""
        ...

    def example_request(self) -> dict[str, Any]:
        """A valid JSON body of one record."""
        ...
