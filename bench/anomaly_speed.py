"""Speed of the streaming anomaly detectors over the NAB dev split (``scenarios/data/nab``).

What is timed: a fresh detector per file, ``score_learn_one`` on every row in order, with the
observations (``{"value", "timestamp"}`` dicts) built beforehand, so only detector work is
counted. Throughput is points per second over the whole split; latency is the per-point
wall time of each call (``perf_counter_ns``), reported as p50 / p99 / max in microseconds.
A reference loop that only reads each observation's value is timed in the same run, so
figures from different (shared, noisy) machines can be compared by their ratio.

``python -m bench.anomaly_speed`` prints one JSON line per detector.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from agents.registry import DETECTORS, make_detector
from bench.nab_data import load_corpus
from scenarios import data_path

NAB = data_path("nab")

Stream = list[dict[str, float]]


def dev_streams() -> list[Stream]:
    """Every dev-split file as a list of observations, in row order."""
    corpus, _ = load_corpus(NAB / "data", NAB / "labels" / "combined_windows.json")
    return [
        [
            {"value": v, "timestamp": t}
            for v, t in zip(s.values.tolist(), s.epoch_s.tolist(), strict=True)
        ]
        for s in corpus
    ]


def reference_rate(streams: list[Stream]) -> float:
    """Points/s of a loop that only reads each value (the interpreter's floor)."""
    started = time.perf_counter()
    for xs in streams:
        total = 0.0
        for x in xs:
            total += x["value"]
    return sum(len(xs) for xs in streams) / (time.perf_counter() - started)


def throughput(name: str, streams: list[Stream]) -> float:
    """Points/s of detector ``name`` over every stream (fresh detector per stream)."""
    started = time.perf_counter()
    for xs in streams:
        step = make_detector(name).score_learn_one
        for x in xs:
            step(x)
    return sum(len(xs) for xs in streams) / (time.perf_counter() - started)


def latency_us(name: str, streams: list[Stream]) -> dict[str, float]:
    """Per-point latency of ``score_learn_one`` (µs): p50, p99, max."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    for xs in streams:
        step = make_detector(name).score_learn_one
        for x in xs:
            t0 = clock()
            step(x)
            samples.append(clock() - t0)
    arr = np.asarray(samples, dtype=np.float64) / 1000.0
    return {
        "p50_us": float(np.percentile(arr, 50)),
        "p99_us": float(np.percentile(arr, 99)),
        "max_us": float(arr.max()),
    }


def main() -> None:
    streams = dev_streams()
    ref = max(reference_rate(streams) for _ in range(3))
    for name in sorted(DETECTORS):
        rate = max(throughput(name, streams) for _ in range(3))
        out: dict[str, Any] = {
            "detector": name,
            "points": sum(len(xs) for xs in streams),
            "points_per_s": round(rate),
            "reference_points_per_s": round(ref),
            "ratio_to_reference": round(ref / rate, 2),
            **{k: round(v, 2) for k, v in latency_us(name, streams).items()},
        }
        print(json.dumps(out))


if __name__ == "__main__":
    main()
