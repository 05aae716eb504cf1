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
from typing import Any

import httpx
import numpy as np

from agents.serving.protocol import Predictor
from agents.serving.server import running

JSON = {"content-type": "application/json"}


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


def measure(predictor: Predictor, n: int = 10_000, clients: int = 4) -> dict[str, Any]:
    """Latency (ms) in process and over HTTP, their ratio, and throughput (requests/s)
    with ``clients`` concurrent keep-alive clients (see the module)."""
    records = bodies(predictor, n)
    payloads = [json.dumps(r).encode() for r in records]
    validated = [predictor.request_model.model_validate(r) for r in records]
    inproc = []
    for record in validated:
        t0 = time.perf_counter()
        predictor.predict([record])
        inproc.append(time.perf_counter() - t0)
    with running(predictor) as base:
        http_times = []
        with httpx.Client(base_url=base, timeout=30.0) as http:
            for body in payloads[: min(200, n)]:  # warm-up: connection, caches
                http.post("/invocations", content=body, headers=JSON)
            for body in payloads:
                t0 = time.perf_counter()
                response = http.post("/invocations", content=body, headers=JSON)
                response.json()
                http_times.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    raise RuntimeError(f"{predictor.agent}: {response.text}")
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
