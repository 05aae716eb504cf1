"""``opsbench bench sizing-cv``: the composed controller's sizing quantile, chosen across
load traces and scored on a trace the choice never saw (issue 16).

The composed controller ``predictive+spot-greedy`` sizes the capacity from the plan
forecast's quantile ``q`` (``control.params.sizing.quantile``: 0.5, 0.75 or 0.9) and holds
it on spot wherever spot is on offer. A higher ``q`` buys SLO attainment with capacity.
Which ``q`` reaches the 99.9% line at the least cost depends on how noisy the load is, so
it is chosen by **leave-one-trace-out**: the ``default`` scenario's fleet and market
(on-demand + spot, real prices and availability) replays each of the four shipped load
traces (``--trace``: trained on its first 70%, replayed on the rest; NASA-HTTP 1995,
WorldCup98, Google cluster 2019, the NAB AWS ELB series), under ``reactive`` (the rival),
``predictive+spot-greedy`` at every ``q`` and ``oracle+spot-greedy`` (foresight: how far
sizing could go). For each held-out trace, ``q`` is chosen on the other three by
:func:`choose_quantile`; the held-out trace is then scored at that ``q``.

The rule (declared before any of these figures was seen): on the training traces where
some ``q`` reaches :data:`~bench.cost.SLO_TARGET`, keep the ``q`` that reach it on all of
them; of those, the one with the least mean cost relative to ``reactive`` on the training
traces. If no ``q`` reaches it on all of them, the ``q`` with the best worst-case SLO
attainment. The whole-split pick (the same rule on all four traces) is what a user
should configure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import runner
from bench.cost import SLO_TARGET
from bench.executors import Executor, SerialExecutor
from scenarios import data_path

SCENARIO = "default"
TRACES: dict[str, str] = {
    "nasa-http": "nasa_http_1995_requests_per_min.csv",
    "worldcup98": "worldcup98_requests_per_min.csv",
    "google-2019": "google2019_mean_instance_cpu_5min.csv",
    "aws-elb": "nab_aws_elb_request_count_5min.csv",
}
QUANTILES = (0.5, 0.75, 0.9)
COMPOSED = "predictive+spot-greedy"
RIVAL = "reactive"
FORESIGHT = "oracle+spot-greedy"


@dataclass(frozen=True, slots=True)
class CellSpec:
    """One replay: ``policy`` (with the sizing ``quantile`` for :data:`COMPOSED`) on the
    default fleet with ``trace``'s held-back 30% as the workload (``days``: None = all)."""

    trace: str
    policy: str
    quantile: float | None
    days: float | None
    models_dir: str
    store: str


@dataclass(frozen=True, slots=True)
class Cell:
    """A replay's figures: cost in USD, SLO attainment (share of minutes), violation
    minutes, simulated days."""

    trace: str
    policy: str
    quantile: float | None
    cost_usd: float
    slo_attainment: float
    slo_violation_minutes: int
    sim_days: float


def trace_path(name: str) -> Path:
    """The shipped CSV of load trace ``name`` (a key of :data:`TRACES`)."""
    return data_path("traces", TRACES[name])


def specs(
    traces: Sequence[str],
    quantiles: Sequence[float],
    days: float | None,
    models_dir: str,
    store: str,
) -> list[CellSpec]:
    """Every replay the selection needs: per trace the rival, each quantile, foresight."""
    out: list[CellSpec] = []
    for trace in traces:
        out.append(CellSpec(trace, RIVAL, None, days, models_dir, store))
        out.extend(CellSpec(trace, COMPOSED, q, days, models_dir, store) for q in quantiles)
        out.append(CellSpec(trace, FORESIGHT, None, days, models_dir, store))
    return out


def run_cell(spec: CellSpec) -> Cell:
    """Replay one :class:`CellSpec` (the path ``opsbench replay --trace`` takes)."""
    params = {"sizing": {"quantile": spec.quantile}} if spec.quantile is not None else None
    prepared = runner.prepare_run(
        SCENARIO,
        policy=spec.policy,
        params=params,
        trace=trace_path(spec.trace),
        days=spec.days,
    )
    runner.attach_model(prepared, models_dir=spec.models_dir, store=Path(spec.store))
    summary = runner.run(prepared)
    return Cell(
        trace=spec.trace,
        policy=spec.policy,
        quantile=spec.quantile,
        cost_usd=float(summary["cost_usd"]),
        slo_attainment=float(summary["slo_attainment"]),
        slo_violation_minutes=int(summary["slo_violation_minutes"]),
        sim_days=float(summary["sim_days"]),
    )


def _composed(cells: Sequence[Cell], trace: str, q: float) -> Cell:
    return next(c for c in cells if c.trace == trace and c.policy == COMPOSED and c.quantile == q)


def _rival(cells: Sequence[Cell], trace: str) -> Cell:
    return next(c for c in cells if c.trace == trace and c.policy == RIVAL)


def choose_quantile(
    cells: Sequence[Cell], training: Sequence[str], quantiles: Sequence[float] = QUANTILES
) -> float:
    """The quantile the rule of the module picks from the ``training`` traces' cells only."""
    slo = {(t, q): _composed(cells, t, q).slo_attainment for t in training for q in quantiles}
    reachable = [t for t in training if any(slo[t, q] >= SLO_TARGET for q in quantiles)]
    meeting = [q for q in quantiles if all(slo[t, q] >= SLO_TARGET for t in reachable)]
    if not meeting:
        return max(quantiles, key=lambda q: (min(slo[t, q] for t in training), -q))

    def relative_cost(q: float) -> float:
        return sum(
            _composed(cells, t, q).cost_usd / _rival(cells, t).cost_usd for t in training
        ) / len(training)

    return min(meeting, key=lambda q: (relative_cost(q), q))


def fold(cells: Sequence[Cell], held_out: str, quantiles: Sequence[float]) -> dict[str, Any]:
    """Choose on every trace but ``held_out``, score on ``held_out`` against the rival."""
    training = sorted({c.trace for c in cells} - {held_out})
    q = choose_quantile(cells, training, quantiles)
    scored, rival = _composed(cells, held_out, q), _rival(cells, held_out)
    foresight = next(c for c in cells if c.trace == held_out and c.policy == FORESIGHT)
    floor = max(rival.slo_attainment, SLO_TARGET)
    return {
        "held_out": held_out,
        "trained_on": training,
        "quantile": q,
        "cost_usd": scored.cost_usd,
        "slo_attainment": scored.slo_attainment,
        "slo_violation_minutes": scored.slo_violation_minutes,
        "reactive_usd": rival.cost_usd,
        "reactive_slo_attainment": rival.slo_attainment,
        "cost_vs_reactive": scored.cost_usd / rival.cost_usd - 1.0,
        "foresight_usd": foresight.cost_usd,
        "foresight_slo_attainment": foresight.slo_attainment,
        "met": scored.slo_attainment >= floor and scored.cost_usd < rival.cost_usd,
    }


def prepare_models(traces: Sequence[str], models_dir: str, store: str, days: float | None) -> None:
    """Train and register each trace's scaling model once, here, before replays fan out
    (workers then only read the registry and the feature store)."""
    for trace in traces:
        prepared = runner.prepare_run(
            SCENARIO, policy="predictive", trace=trace_path(trace), days=days
        )
        runner.attach_model(prepared, models_dir=models_dir, store=Path(store))


def sizing_cv(
    *,
    traces: Sequence[str] = tuple(TRACES),
    quantiles: Sequence[float] = QUANTILES,
    days: float | None = None,
    executor: Executor | None = None,
    models_dir: str = str(runner.MODELS_DIR),
    store: str = str(runner.DEFAULT_STORE),
    progress: Callable[[str], None] | None = None,
    on_cell: Callable[[int, Cell], None] | None = None,
) -> dict[str, Any]:
    """Every replay, each trace's fold, and the whole-split pick (see the module)."""
    if progress is not None:
        progress("training the scaling model of each trace")
    prepare_models(traces, models_dir, store, days)
    todo = specs(traces, quantiles, days, models_dir, store)
    if progress is not None:
        progress(f"{len(todo)} replays")
    ex = executor or SerialExecutor()
    cells = ex.map(run_cell, todo, on_cell or (lambda i, c: None))
    folds = [fold(cells, t, quantiles) for t in traces]
    return {
        "scenario": SCENARIO,
        "policy": COMPOSED,
        "rival": RIVAL,
        "slo_target": SLO_TARGET,
        "quantiles": list(quantiles),
        "cells": [asdict(c) for c in cells],
        "folds": folds,
        "met": sum(f["met"] for f in folds),
        "whole_split_quantile": choose_quantile(cells, list(traces), quantiles),
    }
