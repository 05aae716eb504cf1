"""The anomaly detector's paging-rate monitor: the reference, a storm detected once per
episode, alerts passed through unchanged, and the scenario checks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agents.lifecycle.anomaly_loop import ManagedMetricWatcher
from agents.lifecycle.quality import PagingRate
from opsbench_testing import assert_one_line_error, run_main, write_scenario
from sim.control import PoolMetrics
from sim.lifecycle import AnomalyLifecycle
from sim.lifecycle_events import LifecycleLog
from sim.watch import MetricAlert

START = datetime(2024, 1, 1)
EPOCH_S = (START - datetime(1970, 1, 1)).total_seconds()


class Scripted:
    """A metric watcher that alerts on the minutes it is told."""

    def __init__(self, alert_minutes: set[int]) -> None:
        self.alert_minutes = alert_minutes

    def observe(
        self, timestamp_s: float, metrics: Mapping[str, PoolMetrics]
    ) -> Sequence[MetricAlert]:
        minute = int((timestamp_s - EPOCH_S) // 60)
        return [MetricAlert("od", "error_rate", 1.0)] if minute in self.alert_minutes else []


def watched(
    alert_minutes: set[int], minutes: int
) -> tuple[ManagedMetricWatcher, LifecycleLog, int]:
    log = LifecycleLog()
    clock = {"now": 0.0}
    rows: list[tuple[str, str]] = []
    log.bind(lambda event, reason: rows.append((event, reason)), lambda: clock["now"])
    settings = AnomalyLifecycle(reference_h=2, alert_window_h=1, alert_rate_factor=3)
    watcher = ManagedMetricWatcher(
        Scripted(alert_minutes), settings=settings, log=log, model_name="anomaly-x", start=START
    )
    passed = 0
    for minute in range(minutes):
        clock["now"] = (minute + 1) * 60.0
        passed += len(watcher.observe(EPOCH_S + minute * 60.0, {}))
    return watcher, log, passed


def test_a_storm_is_detected_once_per_episode_and_alerts_pass_through() -> None:
    quiet = {m for m in range(0, 120, 30)}  # 4 pages in the 2-hour reference: 2/h
    storm = set(range(180, 200))  # 20 pages in 20 minutes
    watcher, log, passed = watched(quiet | storm, 300)
    assert passed == len(quiet | storm)
    report = watcher.report()
    assert report["reference_pages_per_h"] == 2.0
    (detection,) = report["drift_detections"]
    assert 180 <= detection["t_min"] <= 190  # the 7th page in the hour exceeds 3 x 2/h
    assert [e.kind for e in log.entries] == ["drift"]


def test_no_detection_at_the_reference_rate() -> None:
    steady = {m for m in range(0, 600, 20)}  # 3 pages an hour throughout
    watcher, _, _ = watched(steady, 600)
    assert watcher.report()["drift_detections"] == []


def test_paging_rate_refuses_bad_settings() -> None:
    with pytest.raises(ValueError):
        PagingRate(0.0, 3600.0, 0.5)


def scenario(**extra: Any) -> dict[str, Any]:
    data = Path(__file__).resolve().parents[2] / "scenarios" / "data"
    return {
        "id": "anomaly-loop",
        "duration_days": 0.1,
        "cluster": {
            "rps_per_vcpu": 50.0,
            "pools": [
                {
                    "name": "od",
                    "instance_type": "c5a.2xlarge",
                    "capacity_type": "on-demand",
                    "azs": ["us-east-1c"],
                    "min_nodes": 1,
                    "max_nodes": 10,
                }
            ],
        },
        "workload": {"kind": "synthetic", "mean_rps": 300.0},
        "slo": {"p95_latency_ms": 200.0},
        "pricing": {"catalogue": str(data / "spot" / "on_demand_prices.csv")},
        **extra,
    }


def test_lifecycle_anomaly_needs_a_detection_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, scenario(lifecycle={"anomaly": {}}))
    code, out, err = run_main(capsys, ["replay", str(path)])
    assert_one_line_error(code, out, err, "lifecycle.anomaly", "detection")


def test_a_replay_reports_the_detector_under_the_monitor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(
        tmp_path,
        scenario(
            detection={"detector": "windowed-gaussian"},
            lifecycle={"anomaly": {"reference_h": 1, "alert_window_h": 0.5}},
        ),
    )
    code, out, err = run_main(capsys, ["replay", str(path), "--json"])
    assert code == 0, err
    block = json.loads(out)["lifecycle"]
    (model,) = block["models"]
    assert model["name"] == "anomaly-windowed-gaussian" and model["retrains"] == []
    assert model["reference_pages_per_h"] is not None
