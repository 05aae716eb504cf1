"""Metric anomaly detection in the replay: the watcher seam, alert events and the summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from bench import runner
from opsbench_testing import run_main
from sim.control import PoolMetrics
from sim.engine import Replay
from sim.watch import ALERT_EVENT, BookedAlert, FaultWindow, MetricAlert, detection_summary

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_detection_summary_delays_and_false_alerts() -> None:
    faults = [
        FaultWindow("az_outage", 3600.0, 7200.0),
        FaultWindow("spot_storm", 50_000.0, 51_000.0),
    ]
    alerts = [
        BookedAlert(600.0, "p", "cpu_utilization", 0.9),  # false: before any fault
        BookedAlert(600.0, "p", "error_rate", 0.9),  # same minute: one page
        BookedAlert(3600.0 + 240.0, "p", "error_rate", 0.8),  # 4 min after onset
        BookedAlert(3600.0 + 60.0 * 30, "p", "cpu_utilization", 0.7),
        BookedAlert(7200.0 + 3000.0, "p", "cpu_utilization", 0.7),  # recovery: not false
        BookedAlert(30_000.0, "p", "request_rate_rps", 0.6),  # false
    ]
    got = detection_summary(alerts, faults, 86_400.0)
    assert got["faults_detected"] == 1 and got["detection_delay_min"] == 4.0
    assert got["per_fault"][0]["first_alert"] == "p/error_rate"
    assert got["per_fault"][1]["delay_min"] is None
    assert got["false_alerts"] == 2 and got["false_alerts_per_day"] == 2.0
    assert got["false_alerts_during_slo_violations"] == 0
    # the SLO was missed at minute 497 (30,000 s is minute 500): that false alert is explained
    explained = detection_summary(alerts, faults, 86_400.0, slo_violation_minutes=[497])
    assert explained["false_alerts_during_slo_violations"] == 1
    assert explained["false_alerts_outside_slo_violations_per_day"] == 1.0


class Recorder:
    """A watcher that alerts on every 100th minute it sees and records what it saw."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def observe(
        self, timestamp_s: float, metrics: Mapping[str, PoolMetrics]
    ) -> Sequence[MetricAlert]:
        self.seen.append(timestamp_s)
        return [
            MetricAlert(pool, "cpu_utilization", m.cpu_utilization)
            for pool, m in metrics.items()
            if len(self.seen) % 100 == 0
        ]


class Collect:
    def __init__(self) -> None:
        self.events: list[pa.RecordBatch] = []

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        if stream == "events":
            self.events.append(batch)

    def close(self) -> None:
        return None


def test_watcher_sees_each_minute_outside_gaps_and_alerts_become_events() -> None:
    prepared = runner.prepare_run("spot-storm", days=4.0)
    world, policy = prepared.world, prepared.policy
    watcher, sink = Recorder(), Collect()
    replay = Replay(world, policy, sink, watcher=watcher)
    replay.run()
    gap_minutes = 30  # spot-storm has a 30-minute telemetry gap at 80 h
    assert len(watcher.seen) == world.n_minutes - gap_minutes
    assert watcher.seen == sorted(watcher.seen)
    table = pa.Table.from_batches(sink.events).to_pandas()
    booked = table[table.event == ALERT_EVENT]
    assert (
        len(booked)
        == len(replay.alerts)
        == len(world.scenario.cluster.pools) * (len(watcher.seen) // 100)
    )
    assert (booked.node_id == "").all() and booked.reason.str.startswith("cpu_utilization").all()


def test_scenarios_with_detection_report_delay_and_false_alerts() -> None:
    for sid in ("az-outage", "spot-storm"):
        prepared = runner.prepare_run(sid)
        world = prepared.world
        s = runner.run(prepared)
        d = s["detection"]
        assert d["faults"] == len(world.scenario.faults.az_outages) + len(
            world.scenario.faults.spot_storms
        )
        assert d["faults_detected"] == d["faults"]  # every outage and storm is caught
        assert d["detection_delay_min"] <= 5.0  # the target, in simulated minutes
        assert d["false_alerts_per_day"] >= d["false_alerts_outside_slo_violations_per_day"]
        assert s["telemetry_rows"]["events"] > 0


def test_scenarios_without_detection_have_no_alerts() -> None:
    s = runner.run(runner.prepare_run("default", days=1.0))
    assert "detection" not in s


def test_unknown_detector_in_a_scenario_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = yaml.safe_load((SCENARIOS / "spot-storm.yaml").read_text())
    doc["detection"] = {"detector": "nope"}
    for key in ("pricing",):
        pricing = doc[key]
        pricing["catalogue"] = str(SCENARIOS / pricing["catalogue"])
        pricing["spot_prices"]["path"] = str(SCENARIOS / pricing["spot_prices"]["path"])
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    code, _, err = run_main(capsys, ["replay", str(path), "--days", "0.05", "--out", str(out)])
    assert code == 2 and "detection.detector" in err and "unknown detector 'nope'" in err
    assert not out.exists()
