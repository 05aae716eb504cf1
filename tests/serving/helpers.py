"""What the serving tests share: the agents, a real server with a client, CSV rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx

from agents.serving.protocol import Predictor
from agents.serving.server import running

AGENTS = ("scaling", "cost-rl", "anomaly", "security")

Serve = Callable[..., AbstractContextManager[httpx.Client]]


@contextmanager
def serving(predictor: Predictor, **options: Any) -> Iterator[httpx.Client]:
    """The real uvicorn server on a free loopback port and a keep-alive client bound to
    it; both stopped after."""
    with running(predictor, **options) as base, httpx.Client(base_url=base, timeout=10.0) as http:
        yield http


def csv_row(predictor: Predictor, record: dict[str, Any]) -> list[str]:
    """``record`` as CSV cells in the predictor's column order (objects as JSON text where
    a column names the whole object)."""
    cells = []
    for column in predictor.csv_columns:
        value: Any = record
        for part in column.split("."):
            value = value.get(part) if isinstance(value, dict) else value[int(part)]
            if value is None:
                break
        if value is None:
            cells.append("")
        elif isinstance(value, dict | list):
            cells.append(json.dumps(value))
        elif isinstance(value, bool):
            cells.append(str(value).lower())
        else:
            cells.append(str(value))
    return cells


