"""Test helpers: hypothesis strategies for random, valid scenarios (synthetic load: no files needed
beyond the shipped price catalogue and spot price history)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import strategies as st

from sim.control import ControlContext, Decision, Observation, Policy, PolicyNeeds

DATA = Path(__file__).resolve().parents[1] / "scenarios" / "data"
AZS = ["us-east-1c", "us-east-1d", "us-east-1f"]


@st.composite
def pools(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 2))
    out = []
    for i in range(n):
        capacity = "on-demand" if i == 0 else draw(st.sampled_from(["on-demand", "spot"]))
        lo = draw(st.integers(0, 4))
        hi = draw(st.integers(max(1, lo), 40))
        out.append(
            {
                "name": f"pool-{i}",
                "instance_type": draw(st.sampled_from(["c5a.2xlarge", "c5.2xlarge"]))
                if capacity == "on-demand"
                else "c5a.2xlarge",
                "capacity_type": capacity,
                "azs": draw(st.lists(st.sampled_from(AZS), min_size=1, max_size=3, unique=True)),
                "min_nodes": lo,
                "max_nodes": hi,
            }
        )
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid scenario as a plain dict (absolute data paths)."""
    pool_list = draw(pools())
    azs = sorted({az for p in pool_list for az in p["azs"]})
    days = draw(st.sampled_from([0.1, 0.2, 0.3]))
    hours = days * 24
    faults: dict[str, Any] = {
        "node_failure_rate_per_node_day": draw(st.sampled_from([0.0, 0.5, 5.0])),
    }
    if draw(st.booleans()):
        faults["az_outages"] = [
            {"az": draw(st.sampled_from(azs)), "start_h": hours * 0.3, "duration_h": hours * 0.2}
        ]
    has_spot = any(p["capacity_type"] == "spot" for p in pool_list)
    if has_spot and draw(st.booleans()):
        faults["spot_storms"] = [
            {
                "azs": [draw(st.sampled_from(azs))],
                "start_h": hours * 0.5,
                "duration_h": hours * 0.2,
                "interrupt_fraction": draw(st.sampled_from([0.5, 1.0])),
            }
        ]
    if draw(st.booleans()):
        faults["telemetry_gaps"] = [{"start_h": hours * 0.6, "duration_h": hours * 0.1}]
    pricing: dict[str, Any] = {"catalogue": str(DATA / "spot" / "on_demand_prices.csv")}
    if has_spot:
        pricing["spot_prices"] = {
            "kind": "replay",
            "path": str(DATA / "spot" / "spot_price_history.csv"),
            "instance_type": "c5a.2xlarge",
        }
        if draw(st.booleans()):
            trace_dir = DATA / "spot" / "traces" / "availability" / "1-node" / "aws-02-15-2023"
            pricing["spot_availability"] = {
                "kind": "replay",
                "reclaim_fraction": draw(st.sampled_from([0.25, 1.0])),
                "files": {az: str(trace_dir / f"{az}_v100_1.json") for az in azs},
            }
    return {
        "id": "random",
        "seed": draw(st.integers(0, 2**31 - 1)),
        "duration_days": days,
        "cluster": {
            "rps_per_vcpu": draw(st.sampled_from([20.0, 50.0])),
            "target_utilization": draw(st.sampled_from([0.5, 0.6, 0.7])),
            "pools": pool_list,
        },
        "workload": {
            "kind": "synthetic",
            "mean_rps": draw(st.sampled_from([200.0, 1500.0, 4000.0])),
            "noise": 0.1,
            "flash_crowds": {"rate_per_day": draw(st.sampled_from([0.0, 5.0]))},
        },
        "slo": {"p95_latency_ms": draw(st.sampled_from([150.0, 300.0]))},
        "pricing": pricing,
        "control": {
            "policy": "reactive",
            "interval_s": draw(st.sampled_from([15.0, 60.0, 120.0])),
            "drain_s": draw(st.sampled_from([0.0, 30.0])),
        },
        "faults": faults,
    }


def write_scenario(directory: Path, data: dict[str, Any], name: str = "scenario.yaml") -> Path:
    """Write ``data`` as a scenario YAML file into ``directory`` and return its path."""
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_main(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    """``bench.cli.main(args)`` in-process: (exit code, stdout, stderr)."""
    try:
        from bench.cli import main

        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, stdout: str, stderr: str, *needles: str) -> str:
    """Exit 2, one non-empty stderr line ``opsbench: error: ...`` containing every needle."""
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("opsbench: error: "), line
    assert line.strip() != "opsbench: error:", line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def assert_nothing_written(out: Path) -> None:
    """``--out`` does not exist and no hidden ``.NAME.partial-*`` sibling was left."""
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    leftovers = sorted(p.name for p in out.parent.glob(f".{out.name}.partial-*"))
    assert leftovers == []


def shipped_doc(scenario_id: str = "default") -> dict[str, Any]:
    """A shipped scenario file as a dict, every data path made absolute (so that a copy
    written anywhere still validates)."""
    from scenarios import package_dir

    shipped = package_dir()
    doc: dict[str, Any] = yaml.safe_load(
        (shipped / f"{scenario_id}.yaml").read_text(encoding="utf-8")
    )
    if doc["workload"]["kind"] == "trace":
        doc["workload"]["path"] = str(shipped / doc["workload"]["path"])
        if doc["workload"].get("shift"):
            doc["workload"]["shift"]["path"] = str(shipped / doc["workload"]["shift"]["path"])
    pricing = doc["pricing"]
    pricing["catalogue"] = str(shipped / pricing["catalogue"])
    if pricing.get("spot_prices"):
        pricing["spot_prices"]["path"] = str(shipped / pricing["spot_prices"]["path"])
    files = pricing.get("spot_availability", {}).get("files", {})
    if files:
        pricing["spot_availability"]["files"] = {az: str(shipped / f) for az, f in files.items()}
    return doc


def registered_forecasters() -> dict[str, Callable[..., Any]]:
    """Every registered forecaster's factory by name: the one place tests read that registry."""
    from agents.registry import FORECASTERS, make_forecaster

    return {name: partial(make_forecaster, name) for name in FORECASTERS}


@dataclass
class Recorded:
    """Wraps a policy (same name, needs and parameters) and keeps what the replay told it
    and what it decided at every control tick."""

    inner: Policy
    contexts: list[ControlContext] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def needs(self) -> PolicyNeeds:
        return self.inner.needs

    @property
    def params(self) -> Any:
        return getattr(self.inner, "params", None)

    @property
    def context(self) -> ControlContext:
        """The context of the last :meth:`reset`."""
        return self.contexts[-1]

    def reset(self, context: ControlContext) -> None:
        self.contexts.append(context)
        self.inner.reset(context)

    def decide(self, observation: Observation) -> Decision:
        self.observations.append(observation)
        decision = self.inner.decide(observation)
        self.decisions.append(decision)
        return decision


NAB = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "nab"


def make_nab_corpus(root: Path, keys: list[str]) -> tuple[Path, Path]:
    """A NAB-layout folder under ``root`` holding the shipped files ``keys``, and a windows
    JSON with their windows: ``(data folder, windows file)``."""
    data = root / "data"
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    for key in keys:
        (data / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / "data" / key, data / key)
    wfile = root / "windows.json"
    wfile.write_text(json.dumps({k: windows[k] for k in keys}))
    return data, wfile


def run_nab(
    capsys: pytest.CaptureFixture[str], data: Path, windows: Path, out: Path, *extra: str
) -> tuple[int, str, str]:
    """``opsbench anomaly nab --data DATA --windows WINDOWS --out OUT [EXTRA...]``."""
    args = ["anomaly", "nab", "--data", str(data), "--windows", str(windows), "--out", str(out)]
    return run_main(capsys, [*args, *extra])


SYNTHETIC_START = datetime(2024, 1, 8)
"""Where the synthetic scaling tests' replays start (their history ends here)."""


def minute_load(n: int, seed: int = 0) -> np.ndarray:
    """Requests/s per minute: a daily cycle with noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 1000 + 600 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 40, n).clip(-300, 300)


def train_synthetic_scaling(base: Path) -> tuple[Any, Path, np.ndarray]:
    """A gbm-quantile scaling model trained on 3 days of :func:`minute_load` history in a
    registry under ``base``: (model, its folder, the history)."""
    from agents.scaling.training import load_or_train, plan_window_min

    history = minute_load(3 * 1440)
    model, folder, trained_now = load_or_train(
        history,
        np.zeros(history.size, dtype=bool),
        SYNTHETIC_START,
        models_dir=base,
        store_path=base / "store.duckdb",
        name="test",
        source="synthetic test load",
        forecaster="gbm-quantile",
        plan_window=plan_window_min(135.0, 300.0),
    )
    assert trained_now
    return model, folder, history
