"""Decision latency of the predictive policy: one recommendation, features in, records out.

A model is trained on the ``default`` scenario's history (in a temporary folder), a
policy is reset on that scenario's control context, and the feature rows of its first
origin are fed to :meth:`~agents.scaling.policy.PredictivePolicy.recommend` again and
again: both forecasts (plan and 30-minute), the capacity plan and one validated
recommendation record per pool. Each call is timed with ``perf_counter_ns``; p50 and p99
are reported in microseconds. Run ``python -m bench.scaling_latency`` for one JSON line.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.scaling.policy import PredictivePolicy
from bench import runner
from sim.engine import Replay


def recommendation_times_ns(prepared: runner.PreparedRun, calls: int) -> np.ndarray:
    """Wall nanoseconds of ``calls`` recommendations of a prepared predictive run whose
    model is attached (:func:`bench.runner.attach_model`): the policy reset on the
    scenario's control context, the feature rows of its first origin fed again and again
    (one untimed call first, to warm up)."""
    world, policy = prepared.world, prepared.policy
    if not isinstance(policy, PredictivePolicy):
        raise TypeError(f"policy {policy.name!r} is not the predictive policy")
    replay = Replay(world, policy, runner.NullSink())
    policy.reset(replay.context)
    observation = replay._observe()
    rows = {role: policy.pipeline.features(horizon) for role, horizon in policy.roles.items()}
    policy.recommend(rows, observation)  # warm up
    times = np.empty(calls)
    for k in range(calls):
        t0 = time.perf_counter_ns()
        policy.recommend(rows, observation)
        times[k] = time.perf_counter_ns() - t0
    return times


def recommendation_latency(forecaster: str = "gbm-quantile", calls: int = 2000) -> dict[str, Any]:
    """p50 / p99 (µs) of one recommendation with ``forecaster``'s trained model."""
    with tempfile.TemporaryDirectory() as folder:
        prepared = runner.prepare_run("default", policy="predictive", params={"model": forecaster})
        started = time.perf_counter()
        runner.attach_model(prepared, models_dir=Path(folder), store=Path(folder) / "store.duckdb")
        train_s = time.perf_counter() - started
        times = recommendation_times_ns(prepared, calls)
    return {
        "forecaster": forecaster,
        "calls": calls,
        "p50_us": float(np.percentile(times, 50) / 1e3),
        "p99_us": float(np.percentile(times, 99) / 1e3),
        "train_s": round(train_s, 2),
    }


if __name__ == "__main__":
    print(json.dumps([recommendation_latency(), recommendation_latency("seed-rf", calls=200)]))
