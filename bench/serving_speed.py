"""Serving latency and throughput of a predictor over loopback HTTP, beside its in-process
``predict`` measured in the same run.

:func:`measure` starts the real server (:func:`agents.serving.server.running`: uvicorn on
127.0.0.1, a free port), then

1. times ``predictor.predict`` in process on ``n`` validated records (the model alone);
2. sends ``n`` requests of one JSON record each over one keep-alive connection
   (``httpx.Client``), timing each round trip (client-side, body parsed);
3. sends ``n`` more from ``clients`` threads, each with its own keep-alive client, and
   reports the requests answered per second.

Stateful predictors (anomaly, security) get a stream that moves on: each record one
minute (anomaly) or one second (security) after the previous one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from agents.serving.protocol import Predictor
from agents.serving.server import running

JSON = {"content-type": "application/json"}
WARMUP = 200
"""Untimed requests before the timed ones (connection, caches)."""


def bodies(predictor: Predictor, n: int) -> list[dict[str, Any]]:
    """``n`` request records from the predictor's example, moving on in time where the
    predictor keeps state."""
    base = predictor.example_request()
    if predictor.agent == "anomaly":
        start = np.datetime64("2024-01-15T00:00:00", "s")
        return [
            {**base, "timestamp": f"{start + np.timedelta64(60 * i, 's')}Z",
             "value": round(0.4 + 0.1 * np.sin(i / 60.0), 6)}
            for i in range(n)
        ]  # fmt: skip
    if predictor.agent == "security":
        start = np.datetime64("2024-06-14T00:00:00", "s")
        return [
            {**base, "eventTime": f"{start + np.timedelta64(i, 's')}Z", "eventID": f"bench-{i}"}
            for i in range(n)
        ]
    return [base] * n


def _percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(np.asarray(seconds) * 1e3, [50, 99])
    return float(p50), float(p99)


def inprocess_times_s(predictor: Predictor, validated: Sequence[Any]) -> list[float]:
    """Wall seconds of ``predictor.predict`` on each validated record, one call each."""
    times = []
    for record in validated:
        t0 = time.perf_counter()
        predictor.predict([record])
        times.append(time.perf_counter() - t0)
    return times


def http_times_s(
    http: httpx.Client, agent: str, payloads: Sequence[bytes], *, warmup: int = WARMUP
) -> list[float]:
    """Round-trip seconds (client side, body parsed) of one request per payload over
    ``http`` (a keep-alive client of a running server), after ``warmup`` untimed requests
    (connection, caches) of the first payloads."""
    for body in payloads[: min(warmup, len(payloads))]:
        http.post("/invocations", content=body, headers=JSON)
    times = []
    for body in payloads:
        t0 = time.perf_counter()
        response = http.post("/invocations", content=body, headers=JSON)
        response.json()
        times.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"{agent}: {response.text}")
    return times


def latency_samples(predictor: Predictor, n: int) -> dict[str, list[float]]:
    """Per-call seconds of ``n`` records in process (``"in-process"``) and, over a server
    started for it on a free loopback port, of ``n`` single-record requests on one
    keep-alive connection (``"http"``); as :func:`measure` times them, without the
    throughput part."""
    records = bodies(predictor, n)
    payloads = [json.dumps(r).encode() for r in records]
    inproc = inprocess_times_s(
        predictor, [predictor.request_model.model_validate(r) for r in records]
    )
    with running(predictor) as base, httpx.Client(base_url=base, timeout=30.0) as http:
        over_http = http_times_s(http, predictor.agent, payloads)
    return {"in-process": inproc, "http": over_http}


def measure(predictor: Predictor, n: int = 10_000, clients: int = 4) -> dict[str, Any]:
    """Latency (ms) in process and over HTTP, their ratio, and throughput (requests/s)
    with ``clients`` concurrent keep-alive clients (see the module)."""
    records = bodies(predictor, n)
    payloads = [json.dumps(r).encode() for r in records]
    validated = [predictor.request_model.model_validate(r) for r in records]
    inproc = inprocess_times_s(predictor, validated)
    with running(predictor) as base:
        with httpx.Client(base_url=base, timeout=30.0) as http:
            http_times = http_times_s(http, predictor.agent, payloads)
        answered = [0] * clients
        share = n // clients

        def client(k: int) -> None:
            with httpx.Client(base_url=base, timeout=30.0) as own:
                for body in payloads[k * share : (k + 1) * share]:
                    if own.post("/invocations", content=body, headers=JSON).status_code == 200:
                        answered[k] += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - t0
    in_p50, in_p99 = _percentiles_ms(inproc)
    http_p50, http_p99 = _percentiles_ms(http_times)
    return {
        "agent": predictor.agent,
        "requests": n,
        "inproc_p50_ms": in_p50,
        "inproc_p99_ms": in_p99,
        "http_p50_ms": http_p50,
        "http_p99_ms": http_p99,
        "http_over_inproc_p50": http_p50 / in_p50 if in_p50 > 0 else float("inf"),
        "clients": clients,
        "throughput_rps": sum(answered) / wall,
        "errors": clients * share - sum(answered),
    }
