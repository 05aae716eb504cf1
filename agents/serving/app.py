"""The SageMaker inference contract as a Starlette application, built from one predictor.

``GET /ping``
    200 with ``{"status": "ok", "agent", "model_version"}``: the app is only built from a
    loaded model, so answering means loaded.
``POST /invocations``
    A body of ``application/json`` or ``text/csv`` (:mod:`agents.serving.bodies`):
    one JSON record is answered with one JSON object, a JSON list or CSV rows with a
    list (same order). Answers are always ``application/json``.

Refusals are one-line JSON ``{"error": "..."}``: 400 for a body that does not parse or
validate (naming the record, the field and what is allowed) or that the model refuses;
413 for a body over ``max_body_bytes`` (by ``Content-Length`` and by the bytes actually
received); 415 for another content type; 500 if the model fails (the traceback goes to
the server's log, never to the client). The server keeps serving after each.

The model runs on the event loop: a prediction takes well under a millisecond, and
running them one at a time is also what keeps the stateful predictors (anomaly,
security) consistent without locks.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from agents.serving.bodies import (
    CONTENT_TYPES,
    CSV,
    BadRequest,
    csv_records,
    json_records,
    validate,
)
from agents.serving.protocol import MAX_BODY_BYTES, PredictionError, Predictor

LOG = logging.getLogger("opsbench.serving")


class TooLarge(Exception):
    """A body over the limit (HTTP 413)."""


def answer(data: Any, status: int = 200) -> Response:
    """A JSON response (finite numbers only)."""
    return Response(
        json.dumps(data, allow_nan=False, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
    )


def error(message: str, status: int) -> Response:
    return answer({"error": message}, status)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes by header and as streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body: Content-Length {int(declared):,} bytes; allowed: at most {limit:,}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body: more than {limit:,} bytes; allowed: at most {limit:,}")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(predictor: Predictor, *, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The application serving ``predictor`` (see the module)."""
    if max_body_bytes <= 0:
        raise ValueError(f"max_body_bytes (={max_body_bytes}) must be > 0")
    allowed = ", ".join(CONTENT_TYPES)
    pong = {"status": "ok", "agent": predictor.agent, "model_version": predictor.model_version}

    async def ping(request: Request) -> Response:
        return answer(pong)

    async def invocations(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in CONTENT_TYPES:
            return error(f"Content-Type {kind or '(none)'!r}; allowed: {allowed}", 415)
        try:
            body = await read_body(request, max_body_bytes)
        except TooLarge as exc:
            return error(str(exc), 413)
        except ClientDisconnect:
            return error("body: the client disconnected", 400)
        try:
            if kind == CSV:
                rows = csv_records(body, predictor.csv_columns)
                single = False
                records = validate(rows, predictor.request_model, single=False, item="row")
            else:
                raw, single = json_records(body)
                records = validate(raw, predictor.request_model, single=single)
            answers = predictor.predict(records)
            return answer(answers[0] if single else answers)
        except (BadRequest, PredictionError) as exc:
            return error(" ".join(str(exc).split()), 400)
        except Exception:
            LOG.exception("%s model %s failed", predictor.agent, predictor.model_version)
            return error(f"the {predictor.agent} model failed on this request (logged)", 500)

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ]
    )
