"""Running one replay end to end: scenario file → world → policy → telemetry + summary.

Bad input is found before anything is written: the world is prepared (every file
read and validated) first, and telemetry goes to a hidden sibling folder that is
moved into ``--out`` only when the run has finished.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from agents.registry import make_policy
from sim.engine import Replay
from sim.errors import InputError
from sim.scenario import Scenario
from sim.scenario_files import find_scenario, load_scenario_file
from sim.summary import summarise
from sim.telemetry import FanoutSink, ParquetSink, TelemetrySink
from sim.world import World, prepare


STORE_MICRO_BATCH_S = 3600.0  # simulated seconds per micro-batch when streaming to a store


def run_id_for(world: World, policy: str) -> str:
    """The run id a replay is stored under (same formula as ``features build``)."""
    from features.offline import run_id_of

    return run_id_of(
        {
            "scenario": world.scenario.id,
            "policy": policy,
            "seed": world.seed,
            "sim_days": world.duration_s / 86400.0,
        }
    )


class NullSink:
    """Discards telemetry (the writer still hashes every row)."""

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        return None

    def close(self) -> None:
        return None


def load(ref: str) -> tuple[Scenario, Path]:
    """The scenario named by ``ref`` (a file path or a shipped id) and its file."""
    path = find_scenario(ref)
    return load_scenario_file(path), path


def prepare_run(
    ref: str,
    *,
    policy: str | None = None,
    seed: int | None = None,
    trace: Path | None = None,
    days: float | None = None,
    spot_availability: Path | None = None,
) -> tuple[World, Any]:
    """Load and validate everything a replay needs; raise InputError on bad input."""
    scenario, path = load(ref)
    name = policy or scenario.control.policy
    params = scenario.control.params if name == scenario.control.policy else {}
    built = make_policy(
        name,
        params,
        source=str(path) if policy is None else "--policy",
        field="control.policy" if policy is None else "",
    )
    if trace is not None and not trace.exists():
        raise InputError(trace, "--trace", "no such file", "a CSV with columns timestamp,value")
    world = prepare(
        scenario,
        source=path,
        seed=seed,
        days=days,
        trace_override=trace,
        spot_availability_override=spot_availability,
    )
    return world, built


def run(
    world: World,
    policy: Any,
    *,
    out: Path | None = None,
    progress: Callable[[float], None] | None = None,
    store: Path | None = None,
) -> dict[str, Any]:
    """Replay ``world`` under ``policy``; write telemetry + summary.json under ``out``;
    with ``store``, stream telemetry into that feature store while the replay runs."""
    staging: Path | None = None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InputError(out, "--out", "exists and is not a directory", "a directory path")
        staging = out.parent / f".{out.name}.partial-{os.getpid()}"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
        except OSError as exc:
            raise InputError(
                out,
                "--out",
                f"cannot create a folder here: {exc.strerror or exc}",
                "a directory path whose parents are directories",
            ) from None
    feature_store = None
    try:
        sinks: list[TelemetrySink] = [ParquetSink(staging)] if staging is not None else []
        if store is not None:
            from features.sink import FeatureStoreSink
            from features.store import FeatureStore
            from features.views import VIEWS

            feature_store = FeatureStore(store, views=VIEWS, lake=store.parent / "lake")
            run_id = run_id_for(world, policy.name)
            sinks.append(FeatureStoreSink(feature_store, run_id))
        sink: TelemetrySink = FanoutSink(*sinks) if sinks else NullSink()
        started = time.perf_counter()
        replay = Replay(world, policy, sink, micro_batch_s=STORE_MICRO_BATCH_S if store else None)
        truth = replay.run(progress)
        summary = summarise(replay, truth, policy=policy.name, wall_s=time.perf_counter() - started)
        if staging is not None and out is not None:
            (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            from bench.plots import plot_overview

            plot_overview(staging, summary, slo_p95_ms=world.scenario.slo.p95_latency_ms)
            out.mkdir(exist_ok=True)
            for item in staging.iterdir():
                os.replace(item, out / item.name)
            staging.rmdir()
        return summary
    finally:
        if feature_store is not None:
            feature_store.close()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
