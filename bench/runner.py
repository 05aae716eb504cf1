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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from agents.anomaly.watch import watcher_for
from agents.registry import make_policy
from bench.security_replay import audit_watcher_for
from features import DEFAULT_STORE
from sim.engine import Replay
from sim.errors import InputError
from sim.scenario import Scenario
from sim.scenario_files import find_scenario, load_scenario_file
from sim.summary import summarise
from sim.telemetry import FanoutSink, ParquetSink, TelemetrySink
from sim.world import World, delay_bounds, prepare


STORE_MICRO_BATCH_S = 3600.0  # simulated seconds per micro-batch when streaming to a store
TRACE_TRAIN_FRACTION = 0.7
"""With ``--trace``: the share of the trace that is history (training), as in
``opsbench forecast eval``; every policy replays the rest."""
MODELS_DIR = Path(".opsbench") / "models"


def trace_split(path: Path) -> tuple[datetime, float]:
    """Where ``--trace`` replays start and how many days remain.

    The split of ``opsbench forecast eval``: the trace on its working step (5 minutes
    for 1-minute data), the first ``floor(0.7 * n)`` steps are history (training), the
    replay starts at the next step and runs to the trace's end, so every policy replays
    the same evaluation part and the predictive model trains only on what precedes it.
    """
    from agents.forecasting import to_working_series
    from sim.traces import load_trace

    trace = load_trace(path)
    series = to_working_series(trace)
    cut = int(np.floor(TRACE_TRAIN_FRACTION * series.values.size))
    if cut < 1 or cut >= series.values.size:
        raise InputError(
            path, "--trace", f"{series.values.size} working steps cannot be split 70/30", ">= 2"
        )
    start_s = int(series.timestamps[cut].astype("datetime64[s]").astype(np.int64))
    end_s = int(trace.timestamps[-1].astype(np.int64)) + trace.step_s
    minutes = (end_s - start_s) // 60
    start = datetime(1970, 1, 1) + timedelta(seconds=start_s)
    return start, minutes * 60 / 86400.0


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
    spot_prices: Path | None = None,
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
    trace_start = None
    if trace is not None:
        if not trace.exists():
            raise InputError(trace, "--trace", "no such file", "a CSV with columns timestamp,value")
        trace_start, rest_days = trace_split(trace)
        days = rest_days if days is None else days
    watcher_for(scenario.detection, source=str(path))  # an unknown detector: exit 2 before any run
    world = prepare(
        scenario,
        source=path,
        seed=seed,
        days=days,
        trace_override=trace,
        trace_start=trace_start,
        spot_availability_override=spot_availability,
        spot_prices_override=spot_prices,
    )
    return world, built


def attach_model(
    world: World,
    policy: Any,
    *,
    models_dir: Path = MODELS_DIR,
    store: Path = DEFAULT_STORE,
    retrain: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path | None:
    """Give a policy that needs a trained model (``predictive``) the one for this world's
    history, training and saving it first if there is none. Returns its folder."""
    if not getattr(policy, "needs_model", False):
        return None
    if getattr(policy, "model_kind", "scaling") == "cost":  # cost-rl: a PPO model
        from agents.cost.model import find_model, load_model

        folder = find_model(world.scenario.id, models_dir)
        policy.use_model(load_model(folder, models_dir=models_dir))
        return folder
    from agents.forecasting.series import MIN_WORKING_STEP_S
    from agents.scaling.training import load_or_train, plan_window_min

    workload = world.workload
    source = f"{world.scenario.id}: {Path(workload.source).name}"
    control = world.scenario.control
    median_s, _ = delay_bounds(control.provisioning_delay)
    window = plan_window_min(
        median_s + control.pod_start_delay_s, max(MIN_WORKING_STEP_S, control.interval_s)
    )
    model, folder, _ = load_or_train(
        workload.history_rps,
        workload.history_filled,
        workload.start,
        models_dir=models_dir,
        store_path=store,
        name=world.scenario.id,
        source=source,
        forecaster=policy.params.model,
        plan_window=window,
        retrain=retrain,
        progress=progress,
    )
    policy.use_model(model)
    return folder


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
    store_sink = None
    try:
        sinks: list[TelemetrySink] = [ParquetSink(staging)] if staging is not None else []
        if store is not None:
            from features.sink import FeatureStoreSink
            from features.store import FeatureStore
            from features.views import VIEWS

            feature_store = FeatureStore(store, views=VIEWS, lake=store.parent / "lake")
            run_id = run_id_for(world, policy.name)
            store_sink = FeatureStoreSink(feature_store, run_id)
            sinks.append(store_sink)
        sink: TelemetrySink = FanoutSink(*sinks) if sinks else NullSink()
        audit_watcher = audit_watcher_for(world)  # may train the shipped model (first use)
        started = time.perf_counter()
        replay = Replay(
            world,
            policy,
            sink,
            micro_batch_s=STORE_MICRO_BATCH_S if store else None,
            watcher=watcher_for(world.scenario.detection, source=world.scenario.id),
            audit_watcher=audit_watcher,
        )
        truth = replay.run(progress)
        summary = summarise(replay, truth, policy=policy.name, wall_s=time.perf_counter() - started)
        if store_sink is not None:  # the run is complete in the store (or refused there)
            store_sink.finish(summary["telemetry_sha256"])
        if staging is not None and out is not None:
            (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            if replay.audit is not None:  # ground truth beside the telemetry, never in it
                replay.audit.write_labels(staging / "audit_labels.csv")
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
