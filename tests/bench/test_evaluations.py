"""``bench.evaluations``: what ``opsbench bench all`` measures outside the replays.

Fast: the real sections run on small inputs (one forecaster on the short ELB trace, the
NAB dev split or two of its files, a small security analyser on the real recording, the
HDFS split, the anomaly predictor over loopback HTTP); the scaling, security and cost
latency parts, which need registered models, are replaced by the anomaly predictor.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest

from bench import eval_forecast, eval_latency, eval_security
from bench.eval_nab import alert_counts, nab_evaluation
from bench.evaluations import ALL_SECTIONS, run_evaluations
from bench.nab import PROFILES, ScoredFile, probation_rows, score_at, score_corpus
from bench.nab_data import load_corpus
from bench.nab_run import run_detector
from bench.report_data import EvalRow, Evaluations, LatencySamples, Unit
from agents.security.sigma import SigmaBaseline, load_sigma_rules
from bench.security_eval import SIGMA, labels_of, load_recording
from opsbench_testing import make_nab_corpus
from sim.errors import InputError

ELB_TRACE = eval_forecast.TRACES_DIR / "nab_aws_elb_request_count_5min.csv"
EXPECTED_UNITS: dict[str, dict[str, Unit]] = {
    "forecast": {"mase": "ratio", "wape": "ratio", "coverage_p90": "share", "accuracy": "share"},
    "nab": {
        "standard": "score", "low_fp": "score", "low_fn": "score", "window_recall": "share",
        "alert_precision": "share", "f1": "share", "points_per_s": "per_s",
    },
    "security": {
        "precision": "share", "recall": "share", "f1": "share", "fpr": "share",
        "accuracy": "share", "suspicious_alert_share": "share", "fp_at_sigma_recall": "count",
        "sigma_fp": "count", "fp_vs_sigma": "ratio",
    },
    "hdfs": {"precision": "share", "recall": "share", "f1": "share"},
    "latency": {"p50_ms": "ms", "p99_ms": "ms"},
}  # fmt: skip
"""Every metric each section may report, with its unit."""
TIMED = {("nab", "points_per_s")}
"""Rows whose value is a wall-time measurement (not reproducible)."""


# --------------------------------------------------------------------------- two runs


@pytest.fixture(scope="module")
def two_runs(small_analyser: Any) -> Iterator[tuple[Evaluations, Evaluations, list[str]]]:
    """Two quick runs of every section, the heavy parts replaced (see the module)."""
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eval_forecast, "shipped_traces", lambda *, quick: (ELB_TRACE,))
        mp.setattr(eval_forecast, "SUBJECTS", ("gbm-quantile",))
        mp.setattr(eval_security, "shipped_analyser", lambda *_a, **_k: small_analyser)
        mp.setattr(eval_latency, "scaling_samples", lambda *_a, **_k: [])
        mp.setattr(eval_latency, "security_predictor", lambda *_a: eval_latency.anomaly_predictor())
        mp.setattr(eval_latency, "cost_predictor", lambda *_a: eval_latency.anomaly_predictor())
        mp.setattr("bench.evaluations.QUICK_CALLS", 40)
        runs = [
            run_evaluations(
                quick=True, models_dir="unused", store=Path("unused.duckdb"), progress=lines.append
            )
            for _ in range(2)
        ]  # fmt: skip
    yield runs[0], runs[1], lines


def test_every_row_validates_with_its_unit(
    two_runs: tuple[Evaluations, Evaluations, list[str]],
) -> None:
    first, _, _ = two_runs
    again = Evaluations.model_validate_json(first.model_dump_json())  # JSON-able, no NaN
    assert again == first
    assert {r.section for r in first.rows} == set(ALL_SECTIONS)
    for row in first.rows:
        assert EvalRow.model_validate(row.model_dump()) == row
        assert row.unit in get_args(Unit)
        assert EXPECTED_UNITS[row.section][row.metric] == row.unit, row
        assert np.isfinite(row.value), row
        if row.unit == "share" and row.metric != "accuracy":  # 1 - WAPE may go below 0
            assert 0.0 <= row.value <= 1.0, row
    keys = [(r.section, r.subject, r.dataset, r.metric) for r in first.rows]
    assert len(keys) == len(set(keys)), "one row per (section, subject, dataset, metric)"


def test_sections_report_wall_time_and_progress(
    two_runs: tuple[Evaluations, Evaluations, list[str]],
) -> None:
    first, _, lines = two_runs
    assert list(first.wall_s) == list(ALL_SECTIONS)
    assert all(s >= 0 for s in first.wall_s.values())
    for section in ALL_SECTIONS:
        assert f"evaluating {section}" in lines
    assert first.nab_example is not None and first.security_curve is not None
    assert {(s.model, s.transport) for s in first.latency} == {
        (m, t) for m in ("anomaly", "security", "cost") for t in ("in-process", "http")
    }
    assert all(len(s.samples_ms) == 40 for s in first.latency)


def test_two_runs_give_the_same_rows_except_timings(
    two_runs: tuple[Evaluations, Evaluations, list[str]],
) -> None:
    first, second, _ = two_runs

    def stable(ev: Evaluations) -> list[tuple[Any, ...]]:
        return [
            (r.section, r.subject, r.dataset, r.metric, r.unit)
            + (() if r.section == "latency" or (r.section, r.metric) in TIMED else (r.value,))
            for r in ev.rows
        ]

    assert stable(first) == stable(second)
    assert first.nab_example == second.nab_example
    assert first.security_curve == second.security_curve


def test_forecast_rows_accuracy_is_one_minus_wape(
    two_runs: tuple[Evaluations, Evaluations, list[str]],
) -> None:
    first, _, _ = two_runs
    forecast = {(r.subject, r.metric): r.value for r in first.rows if r.section == "forecast"}
    assert {s for s, _ in forecast} == {"gbm-quantile", "seasonal-naive"}
    for subject in ("gbm-quantile", "seasonal-naive"):
        assert forecast[subject, "accuracy"] == pytest.approx(1.0 - forecast[subject, "wape"])
    assert all(r.dataset == ELB_TRACE.stem for r in first.rows if r.section == "forecast")


def test_score_rows_leave_undefined_scores_out() -> None:
    rows = eval_forecast.score_rows("m", "t", {"mase": None, "wape": 0.25, "coverage_p90": 0.9})
    assert {r.metric: r.value for r in rows} == {
        "wape": 0.25,
        "coverage_p90": 0.9,
        "accuracy": 0.75,
    }
    assert eval_forecast.shipped_traces(quick=True) == (
        eval_forecast.TRACES_DIR / eval_forecast.QUICK_TRACE,
    )
    assert len(eval_forecast.shipped_traces(quick=False)) == 4


def test_unknown_section_is_refused_before_anything_runs() -> None:
    with pytest.raises(InputError, match="unknown evaluation section 'replays'"):
        run_evaluations(quick=True, models_dir="x", store=Path("x"), sections=("hdfs", "replays"))  # type: ignore[arg-type]


def test_hdfs_alone(two_runs: tuple[Evaluations, Evaluations, list[str]]) -> None:
    first, _, _ = two_runs
    hdfs = [r for r in first.rows if r.section == "hdfs"]
    assert [(r.subject, r.dataset, r.metric) for r in hdfs] == [
        ("next-key", "hdfs", m) for m in ("precision", "recall", "f1")
    ]
    p, r, f1 = (row.value for row in hdfs)
    assert f1 == pytest.approx(2 * p * r / (p + r), abs=1e-4)


# --------------------------------------------------------------------------- NAB


def test_window_recall_and_alert_precision_by_hand() -> None:
    # 100 rows: the first 15 are probationary
    scores = np.zeros(100)
    scores[[5, 11]] = 0.9  # in the probation: ignored (row 11 inside window (10, 12))
    scores[[35, 36]] = [0.8, 0.95]  # inside window (30, 39)
    scores[50] = 0.7  # outside any window
    scores[90] = 0.6  # below the threshold
    with_windows = ScoredFile("a/x.csv", scores, ((10, 12), (30, 39), (70, 79)))
    quiet = np.zeros(40)
    quiet[[2, 22]] = 0.99  # row 2 in the probation (6 rows), row 22 inside window (20, 25)
    other = ScoredFile("a/y.csv", quiet, ((20, 25),))
    counts = alert_counts([with_windows, other], 0.65)
    assert probation_rows(100) == 15 and probation_rows(40) == 6
    assert (counts.windows, counts.windows_hit) == (3, 2)  # (10, 12) ends in the probation
    assert (counts.alerts, counts.alerts_in_window) == (4, 3)  # rows 35, 36, 50 of x, 22 of y
    assert counts.window_recall == pytest.approx(2 / 3)
    assert counts.alert_precision == pytest.approx(3 / 4)
    assert counts.f1 == pytest.approx(12 / 17)
    # the same windows and false positives as NAB's scorer counts at that threshold
    nab = score_at([with_windows, other], "standard", PROFILES["standard"], 0.65)
    assert (nab.tp, nab.tp + nab.fn, nab.fp) == (2, 3, 1)
    assert alert_counts([with_windows], 1.0).alerts == 0
    assert alert_counts([with_windows], 1.0).alert_precision == 0.0


def test_nab_on_two_files(tmp_path: Path) -> None:
    keys = [
        "artificialWithAnomaly/art_daily_jumpsup.csv",  # one window, first in sorted order
        "realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv",  # two windows
    ]
    data, windows = make_nab_corpus(tmp_path, keys)
    rows, example = nab_evaluation(data, windows, detector="novelty-ensemble", dataset="two")
    found = {r.metric: r for r in rows}
    assert set(found) == set(EXPECTED_UNITS["nab"])
    assert all(r.subject == "novelty-ensemble" and r.dataset == "two" for r in rows)
    corpus, _ = load_corpus(data, windows)
    files = [ScoredFile(s.key, run_detector("novelty-ensemble", s), s.windows) for s in corpus]
    results = score_corpus(files, PROFILES)
    standard = results["standard"]
    assert found["standard"].value == standard.normalised
    assert found["low_fp"].value == results["reward_low_FP_rate"].normalised
    assert found["low_fn"].value == results["reward_low_FN_rate"].normalised
    assert standard.threshold != results["reward_low_FP_rate"].threshold  # which one counts
    assert found["window_recall"].value == standard.tp / (standard.tp + standard.fn)
    alerts = sum(int((f.scores[probation_rows(len(f.scores)) :] >= standard.threshold).sum())
                 for f in files)  # fmt: skip
    assert found["alert_precision"].value == (alerts - standard.fp) / alerts
    assert found["points_per_s"].value > 0
    assert example is not None and example.file == keys[1]
    chosen = files[1]
    assert example.windows == corpus[1].windows and len(example.windows) == 2
    assert example.values == tuple(corpus[1].values.tolist())
    assert example.probation_rows == probation_rows(len(chosen.scores))
    assert example.alert_rows == tuple(np.flatnonzero(chosen.scores >= standard.threshold))


# --------------------------------------------------------------------------- security


class StubAnalyser:
    """Risk by label and position (see :func:`test_security_rows_by_hand`); alerts at
    0.895."""

    threshold_ = 0.895

    def __init__(self, labels: np.ndarray) -> None:
        risk = np.where(labels == "suspicious", 0.5, 0.1)
        malicious, normal = (
            np.flatnonzero(labels == "malicious"),
            np.flatnonzero(labels == "normal"),
        )
        risk[malicious] = 0.85
        risk[malicious[:10]] = 0.89
        risk[malicious[:5]] = 0.9
        risk[normal[:8]] = 0.87
        risk[normal[:3]] = 0.95
        self.risk = risk

    def analyse(self, records: list[dict[str, Any]]) -> tuple[pd.DataFrame, None]:
        order = np.arange(len(records))[::-1]  # any order: scored() sorts by position
        risk = self.risk[order]
        frame = pd.DataFrame(
            {"position": order, "risk_score": risk, "is_alert": risk >= self.threshold_}
        )
        return frame, None


def test_security_rows_by_hand() -> None:
    """Malicious risk: 5 at 0.9, 5 at 0.89, the rest 0.85; normal: 3 at 0.95, 5 at 0.87,
    the rest 0.1; suspicious 0.5; the threshold 0.895 alerts on 5 malicious and 3 normal."""
    records, label_rows = load_recording()
    y = labels_of(label_rows)
    m, n = int((y == "malicious").sum()), int((y == "normal").sum())
    rows, curve = eval_security.security_evaluation(StubAnalyser(y), records, y, model="stub")
    got = {(r.subject, r.metric): r.value for r in rows}
    low = SigmaBaseline(load_sigma_rules(SIGMA)).levels(records) >= 1
    sigma_fp = int((low & (y == "normal")).sum())
    sigma_recall = float((low & (y == "malicious")).sum() / m)
    assert sigma_fp > 0 and got["stub", "sigma_fp"] == sigma_fp
    assert got["stub", "precision"] == round(5 / 8, 4)
    assert got["stub", "recall"] == round(5 / m, 4)
    assert got["stub", "fpr"] == round(3 / n, 4)
    assert got["stub", "accuracy"] == pytest.approx((5 + n - 3) / (m + n))
    assert got["stub", "suspicious_alert_share"] == 0.0
    # Sigma (>= low) catches more than the 10 malicious events at 0.89 or above: its recall
    # needs the threshold 0.85, where the 8 normal events at 0.87 or above fire
    assert np.ceil(sigma_recall * m) > 10
    assert got["stub", "fp_at_sigma_recall"] == 8
    assert got["stub", "fp_vs_sigma"] == pytest.approx(8 / sigma_fp)
    assert {s for s, _ in got} == {"stub", "sigma>=low", "sigma>=medium", "sigma>=high"}
    # every distinct risk is a point, the operating point (between two others on the
    # vertical at 3 false positives) included
    assert curve.operating_point == (round(3 / n, 6), round(5 / m, 6))
    points = [(0, 0), (3, 0), (3, 5), (3, 10), (8, 10), (8, m), (n, m)]
    assert list(zip(curve.fpr, curve.recall, strict=True)) == [
        (round(fp / n, 6), round(tp / m, 6)) for fp, tp in points
    ]
    assert [name for name, _, _ in curve.sigma] == ["low", "medium", "high"]
    for name, fpr, recall in curve.sigma:
        assert (got[f"sigma>={name}", "fpr"], got[f"sigma>={name}", "recall"]) == (fpr, recall)


def test_security_curve_is_monotone_through_the_operating_point(
    two_runs: tuple[Evaluations, Evaluations, list[str]],
) -> None:
    first, _, _ = two_runs
    curve = first.security_curve
    assert curve is not None and len(curve.fpr) == len(curve.recall) > 2
    fpr, recall = np.asarray(curve.fpr), np.asarray(curve.recall)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(recall) >= 0)
    assert (fpr[0], recall[0], fpr[-1], recall[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert curve.operating_point in set(zip(curve.fpr, curve.recall, strict=True))
    got = {r.metric: r.value for r in first.rows if r.subject == curve.model}
    assert curve.operating_point == pytest.approx((got["fpr"], got["recall"]), abs=1e-4)


# --------------------------------------------------------------------------- latency


def test_latency_rows_are_the_percentiles_of_the_samples() -> None:
    samples = LatencySamples(
        model="anomaly", transport="http", samples_ms=tuple(float(k) for k in range(1, 101))
    )
    rows = eval_latency.latency_rows(samples)
    assert [(r.subject, r.dataset, r.metric, r.unit) for r in rows] == [
        ("anomaly", "http", "p50_ms", "ms"), ("anomaly", "http", "p99_ms", "ms"),
    ]  # fmt: skip
    assert [r.value for r in rows] == pytest.approx([50.5, 99.01])
