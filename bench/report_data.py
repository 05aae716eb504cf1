"""What ``opsbench bench all`` measures besides the replays, and everything its report
draws: the data contract between the measuring side (:mod:`bench.evaluations`,
:mod:`bench.sweep`, :mod:`bench.seed_tables`) and the rendering side
(:mod:`bench.report_html`).

Units are in the field names or in :attr:`EvalRow.unit`: ``_ms`` milliseconds, ``_rps``
requests per second, ``_usd`` US dollars, shares in [0, 1].
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Section = Literal["forecast", "nab", "security", "hdfs", "latency"]
Unit = Literal["share", "ratio", "score", "ms", "count", "per_s"]
"""``share`` in [0, 1]; ``ratio`` a unit-free ratio (MASE, WAPE); ``score`` a NAB score
(0 = null detector, 100 = perfect); ``ms`` milliseconds; ``count``; ``per_s`` per second."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EvalRow(_Frozen):
    """One measured figure of a model evaluation (not a replay)."""

    section: Section
    subject: str = Field(description="model, detector or baseline: gbm-quantile, sigma>=medium")
    dataset: str = Field(description="what it was measured on: a trace name, nab-dev, invictus")
    metric: str = Field(description="e.g. mase, wape, coverage_p90, standard, recall, f1, p99_ms")
    value: float
    unit: Unit


class LatencySamples(_Frozen):
    """Per-call wall times of one model's decision (for the latency histograms)."""

    model: str = Field(description="scaling, anomaly, security, cost (what decides)")
    transport: Literal["in-process", "http"]
    samples_ms: tuple[float, ...]


class NabExample(_Frozen):
    """One NAB file with its labelled windows and the detector's alerts (rows, 0-based)."""

    file: str = Field(description="<category>/<name>.csv")
    detector: str
    values: tuple[float, ...]
    windows: tuple[tuple[int, int], ...] = Field(description="inclusive row ranges")
    probation_rows: int
    alert_rows: tuple[int, ...] = Field(
        description="rows where the score reaches the standard profile's optimised threshold"
    )


class SecurityCurve(_Frozen):
    """Malicious recall against false-positive rate on normal events (the recording)."""

    model: str
    dataset: str
    fpr: tuple[float, ...] = Field(description="ascending, shares of normal events")
    recall: tuple[float, ...] = Field(description="shares of malicious events, same length")
    operating_point: tuple[float, float] = Field(
        description="(fpr, recall) at the shipped threshold"
    )
    sigma: tuple[tuple[str, float, float], ...] = Field(
        description="(level, fpr, recall) of the Sigma-style baseline per rule level"
    )


class Evaluations(_Frozen):
    """Everything :func:`bench.evaluations.run_evaluations` measured."""

    rows: tuple[EvalRow, ...]
    latency: tuple[LatencySamples, ...] = ()
    nab_example: NabExample | None = None
    security_curve: SecurityCurve | None = None
    wall_s: dict[str, float] = Field(default_factory=dict, description="per section")


class RunSeries(_Frozen):
    """A replay's time series, binned for plotting (hours since the start, bin middles)."""

    scenario: str
    policy: str
    seed: int
    bin_min: int
    hours: tuple[float, ...]
    offered_rps: tuple[float, ...]
    served_rps: tuple[float, ...]
    capacity_rps: tuple[float, ...] = Field(description="pods x per-pod rps at target use")
    cost_usd: tuple[float, ...] = Field(description="cumulative spend at each bin's end")


class SeedClaimRow(_Frozen):
    """One claim of the source pipeline beside what we measure and its anchor."""

    table: Literal["models", "business"]
    item: str = Field(description="the model or the business claim")
    claim: str = Field(description="the seed's figure, verbatim (e.g. '95% accuracy')")
    definition: str = Field(description="what we measure for it, precisely")
    measured: str = Field(description="our figure, formatted with its unit")
    anchor: str = Field(description="the reference beside it and its figure")
    verdict: Literal["reproduced", "not reproduced", "not measured here"]
    note: str = ""


class ReportData(_Frozen):
    """Everything ``REPORT.md`` and ``report.html`` show."""

    document: dict[str, Any] = Field(description="results.json's content")
    series: tuple[RunSeries, ...] = ()
    evaluations: Evaluations | None = None
    seed_tables: tuple[SeedClaimRow, ...] = ()
