"""Simulator speed: a 30-day replay of a 200-node fleet, against a raw SimPy loop.

The machines we run on are shared and noisy, so the replay's wall time is reported
together with the wall time of a fixed raw SimPy event loop (one process yielding
``REFERENCE_EVENTS`` timeouts) measured in the same run; their ratio is what to
compare across machines. Peak memory is the replay process's maximum RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Generator
from typing import Any

import simpy

from bench import runner

SCENARIO = "large-fleet"
POLICY = "reactive"
REFERENCE_EVENTS = 1_000_000


def raw_simpy_loop_s(events: int = REFERENCE_EVENTS) -> float:
    """Wall seconds of a bare SimPy process yielding ``events`` one-second timeouts."""
    env = simpy.Environment()

    def ticker() -> Generator[simpy.Event, Any, None]:
        for _ in range(events):
            yield env.timeout(1.0)

    env.process(ticker())
    started = time.perf_counter()
    env.run()
    return time.perf_counter() - started


def replay_once(scenario: str = SCENARIO, policy: str = POLICY) -> dict[str, Any]:
    """One replay with telemetry on (every row built, hashed and batched); its summary."""
    return runner.run(runner.prepare_run(scenario, policy=policy))


def measure_in_subprocess(scenario: str = SCENARIO, policy: str = POLICY) -> dict[str, Any]:
    """Replay in a fresh process so its peak RSS is its own; returns wall and memory."""
    code = (
        "import json, resource; from bench.speed import replay_once; "
        f"s = replay_once({scenario!r}, {policy!r}); "
        "print(json.dumps({'wall_s': s['wall_s'], 'peak_rss_mib': "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "'node_hours': s['node_hours'], 'telemetry_rows': s['telemetry_rows']}))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    reference_s = raw_simpy_loop_s()
    replay = measure_in_subprocess()
    replay["reference_raw_simpy_s"] = round(reference_s, 3)
    replay["ratio_to_raw_simpy"] = round(replay["wall_s"] / reference_s, 2)
    replay["peak_rss_mib"] = round(replay["peak_rss_mib"], 1)
    print(json.dumps(replay))


if __name__ == "__main__":
    main()
