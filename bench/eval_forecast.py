"""The ``forecast`` section of :func:`bench.evaluations.run_evaluations`: the shipped scaling
forecaster and the seed's, each beside the one-day seasonal-naive baseline, backtested on
the shipped load traces by :func:`bench.forecast_eval.evaluate` (30-minute horizon, first
70% of the working steps train, the rest test; see that module for the rules).

Rows per (subject, dataset), the dataset being the trace file's stem:

``mase`` (ratio)
    test MAE over the one-day seasonal naive's in-sample MAE on the train part;
``wape`` (ratio)
    sum |actual - p50| / sum |actual| over the test targets;
``coverage_p90`` (share)
    share of test targets at or below the p90 forecast;
``accuracy`` (share)
    **1 - WAPE**, the unit share of the test load the p50 forecast gets right
    (0 or less when the absolute errors add up to the load itself or more).

Subjects: :data:`SUBJECTS` (the backtest fits each on the trace's train part: a
backtest is the evaluation itself, no registered model is involved) and
``seasonal-naive`` (``seasonal-naive-1d``, the baseline :func:`evaluate` reports beside
each model; one set of rows per trace). A score the backtest leaves undefined (``None``,
e.g. MASE with a zero scale) has no row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.registry import DEFAULT_FORECASTER
from bench.forecast_eval import evaluate
from bench.report_data import EvalRow, Unit
from scenarios import data_path

SUBJECTS: tuple[str, ...] = (DEFAULT_FORECASTER, "seed-rf")
"""The shipped forecaster and the seed pipeline's random forest."""
BASELINE_SUBJECT = "seasonal-naive"
TRACES_DIR = data_path("traces")
QUICK_TRACE = "nasa_http_1995_requests_per_min.csv"
HORIZON_MIN = 30
METRIC_UNITS: Mapping[str, Unit] = {
    "mase": "ratio",
    "wape": "ratio",
    "coverage_p90": "share",
    "accuracy": "share",
}


def shipped_traces(*, quick: bool) -> tuple[Path, ...]:
    """Every shipped real load trace (sorted by name), or only :data:`QUICK_TRACE`."""
    if quick:
        return (TRACES_DIR / QUICK_TRACE,)
    return tuple(sorted(TRACES_DIR.glob("*.csv")))


def score_rows(subject: str, dataset: str, scores: Mapping[str, Any]) -> list[EvalRow]:
    """The rows of one backtest's ``mase``, ``wape``, ``coverage_p90`` and ``accuracy``
    (1 - WAPE, rounded to 4 digits like the scores); undefined scores have none."""
    values = {k: scores.get(k) for k in ("mase", "wape", "coverage_p90")}
    wape = values["wape"]
    values["accuracy"] = None if wape is None else round(1.0 - float(wape), 4)
    return [
        EvalRow(
            section="forecast",
            subject=subject,
            dataset=dataset,
            metric=metric,
            value=float(value),
            unit=METRIC_UNITS[metric],
        )
        for metric, value in values.items()
        if value is not None
    ]


def forecast_rows(
    traces: Sequence[Path],
    *,
    subjects: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[EvalRow]:
    """Backtest every subject (default :data:`SUBJECTS`) on every trace (see the module);
    rows in trace, then subject order, the baseline's after the subjects'."""
    chosen = SUBJECTS if subjects is None else subjects
    rows: list[EvalRow] = []
    for trace in traces:
        baseline: Mapping[str, Any] | None = None
        for subject in chosen:
            if progress is not None:
                progress(f"forecast: {subject} on {trace.stem}")
            result = evaluate(trace, horizon_min=HORIZON_MIN, model=subject)
            rows += score_rows(subject, trace.stem, result)
            baseline = result["baseline"]
        if baseline is not None:
            rows += score_rows(BASELINE_SUBJECT, trace.stem, baseline)
    return rows
