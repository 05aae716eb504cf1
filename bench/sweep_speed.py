"""Sweep speed: 100 one-day replays on the Ray executor against the serial executor, in
the same run (the ratio is what to compare; the machines we run on are shared and noisy).

The sweep is :data:`SCENARIOS` x :data:`POLICIES` x :data:`SEEDS` seeds, one simulated
day each, with policies that need no trained model (so nothing is trained while timing).
The Ray time is the user's: starting a local Ray of ``workers`` CPUs, the replays, and
shutting it down; the time of the replays alone on the running Ray is reported beside it,
and so is the process executor's (``workers`` spawned processes, their start included) as
the reference for what the replays themselves allow on this machine. Every executor must
give the same rows apart from wall time (checked).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench import sweep
from bench.executors import ExecutorName, executor

SCENARIOS = ("default", "spot-storm")
POLICIES = ("static", "reactive", "oracle", "on-demand", "uniform-progress")
SEEDS = 10
DAYS = 1.0


def sweep_specs() -> tuple[sweep.RunSpec, ...]:
    """The 100 one-day run specs."""
    return sweep.plan_sweep(SCENARIOS, POLICIES, seeds=SEEDS, days=DAYS).specs


def timed_sweep(
    name: ExecutorName, specs: tuple[sweep.RunSpec, ...], *, workers: int, scratch: Path
) -> tuple[list[dict[str, Any]], float, float]:
    """The rows (without wall time), the wall seconds with the executor's start and stop,
    and the wall seconds of the replays alone."""
    started = time.perf_counter()
    with executor(name, workers=workers) as ex:
        replays_started = time.perf_counter()
        rows = sweep.run_sweep(
            specs, ex, models_dir=str(scratch / "models"), store=scratch / "s.duckdb"
        )
        replays_s = time.perf_counter() - replays_started
    return [r.without_wall_time() for r in rows], time.perf_counter() - started, replays_s


def sweep_speed(workers: int = 2, parallel: ExecutorName = "ray") -> dict[str, Any]:
    """Serial, process-pool and ``parallel`` wall seconds of the 100-replay sweep and their
    ratios to serial."""
    specs = sweep_specs()
    with tempfile.TemporaryDirectory(prefix="opsbench-sweep-speed-") as scratch:
        serial_rows, serial_s, _ = timed_sweep("serial", specs, workers=1, scratch=Path(scratch))
        process_rows, process_s, _ = timed_sweep(
            "process", specs, workers=workers, scratch=Path(scratch)
        )
        rows, total_s, replays_s = timed_sweep(
            parallel, specs, workers=workers, scratch=Path(scratch)
        )
    return {
        "replays": len(specs),
        "workers": workers,
        "executor": parallel,
        "serial_s": round(serial_s, 2),
        f"{parallel}_s": round(total_s, 2),
        f"{parallel}_replays_only_s": round(replays_s, 2),
        "ratio": round(serial_s / total_s, 3),
        "ratio_replays_only": round(serial_s / replays_s, 3),
        f"{parallel}_start_and_stop_s": round(total_s - replays_s, 2),
        "process_s": round(process_s, 2),
        "process_ratio": round(serial_s / process_s, 3),
        "identical_rows": rows == serial_rows and process_rows == serial_rows,
    }
