"""``opsbench bench all``: the replay sweep (:mod:`bench.sweep`) on an executor
(:mod:`bench.executors`) and the models measured outside the replay
(:mod:`bench.evaluations`), written as results.parquet, results.json, REPORT.md and
report.html (:mod:`bench.sweep_results`, which documents the files' schema; the seed's two
tables from :mod:`bench.seed_tables`; the HTML from :mod:`bench.report_html`).

Order: the options are checked and every scenario and policy validated, the models the
replays need are trained and registered once, the replays fan out, then the evaluations
run; nothing is written to ``--out`` before all of them have finished.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.registry import MIX_POLICIES
from bench import sweep
from bench.executors import ExecutorName, check_executor, executor
from bench.report_data import Evaluations, ReportData, RunSeries, SeedClaimRow, Section
from bench.sweep_results import check_out, results_document, write_results
from sim.errors import InputError

DEFAULT_SEEDS, QUICK_SEEDS = 3, 1
SECTIONS: tuple[Section, ...] = ("forecast", "nab", "security", "hdfs", "latency")
"""The model evaluations ``bench all`` runs after the replays (``--evaluations``)."""

ProgressBar = Callable[[int], AbstractContextManager[Callable[[float], None]]]


class SweepSettings(BaseModel):
    """What ``opsbench bench all`` was asked to sweep and how (defaults resolved)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quick: bool
    scenarios: tuple[str, ...]
    policies: tuple[str, ...]
    seeds: int = Field(ge=1)
    days: float | None = Field(gt=0)
    executor: ExecutorName
    workers: int = Field(ge=1)
    address: str | None = None
    evaluations: tuple[Section, ...] = SECTIONS

    @classmethod
    def from_options(
        cls,
        *,
        quick: bool,
        seeds: int | None,
        executor: str,
        address: str | None,
        workers: int | None,
        scenarios: tuple[str, ...],
        policies: tuple[str, ...],
        days: float | None,
        evaluations: str = "all",
    ) -> SweepSettings:
        """The settings from the command line's options (InputError on a bad one)."""
        if days is not None and not days > 0:
            raise InputError("--days", "", f"{days:g}", "a number of simulated days > 0")
        every_policy = sweep.SCALING_POLICIES + MIX_POLICIES
        return cls(
            quick=quick,
            scenarios=scenarios or (sweep.QUICK_SCENARIOS if quick else sweep.SCENARIOS),
            policies=policies or (sweep.QUICK_POLICIES if quick else every_policy),
            seeds=seeds or (QUICK_SEEDS if quick else DEFAULT_SEEDS),
            days=days if days is not None else (sweep.QUICK_DAYS if quick else None),
            executor=executor,  # type: ignore[arg-type]
            workers=1 if executor == "serial" else workers or os.cpu_count() or 1,
            address=address,
            evaluations=parse_sections(evaluations),
        )


def parse_sections(text: str) -> tuple[Section, ...]:
    """``--evaluations``: ``all``, ``none`` or a comma-separated list of :data:`SECTIONS`."""
    text = text.strip()
    if text == "all":
        return SECTIONS
    if text == "none":
        return ()
    names = tuple(part.strip() for part in text.split(","))
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not all(names):
        raise InputError(
            "--evaluations", "", f"{text!r}", f"all, none or a comma-separated list of "
            f"{', '.join(SECTIONS)}",
        )  # fmt: skip
    return tuple(n for n in SECTIONS if n in names)  # type: ignore[misc]


def run_all(
    settings: SweepSettings,
    *,
    out: Path,
    models_dir: str,
    store: Path,
    progress: Callable[[str], None] | None = None,
    bar: ProgressBar | None = None,
) -> dict[str, Any]:
    """Plan, prepare the models, replay on the chosen executor, write ``out``; returns
    results.json's content."""
    check_out(out)
    check_executor(settings.executor, settings.address)
    plan = sweep.plan_sweep(
        settings.scenarios, settings.policies, seeds=settings.seeds, days=settings.days
    )
    sweep.prepare_models(plan.specs, models_dir=models_dir, store=store, progress=progress)
    started = time.perf_counter()
    with executor(settings.executor, workers=settings.workers, address=settings.address) as ex:
        if bar is None:
            rows = sweep.run_sweep(plan.specs, ex, models_dir=models_dir, store=store)
        else:
            with bar(len(plan.specs)) as update:
                finished = 0

                def one_done(_index: int, _row: sweep.RunRow) -> None:
                    nonlocal finished
                    finished += 1
                    update(finished)

                rows = sweep.run_sweep(
                    plan.specs, ex, models_dir=models_dir, store=store, on_done=one_done
                )
    replays_wall_s = time.perf_counter() - started
    markets = market_of_scenarios(plan.specs)
    evaluations = None
    if settings.evaluations:
        from bench.evaluations import run_evaluations

        evaluations = run_evaluations(
            quick=settings.quick, models_dir=models_dir, store=store, progress=progress,
            sections=settings.evaluations,
        )  # fmt: skip
    document = results_document(
        rows,
        settings=settings.model_dump(),
        skipped=plan.skipped,
        wall_s=replays_wall_s,
        evaluations=evaluations,
        markets=markets,
    )
    write_results(out, rows, document, evaluations=evaluations, report_html=render_html(document))
    return document


def market_of_scenarios(specs: Sequence[sweep.RunSpec]) -> dict[str, dict[str, float]]:
    """What the spot market allowed on each scenario a mix policy ran on
    (:func:`bench.cost.market_figures` over the world of its first run spec), by scenario
    id."""
    from agents.registry import places_on_spot_and_on_demand
    from bench import runner
    from bench.cost import market_figures

    markets: dict[str, dict[str, float]] = {}
    seen: set[str] = set()
    for spec in specs:
        if spec.scenario in seen or not places_on_spot_and_on_demand(spec.policy):
            continue
        seen.add(spec.scenario)  # one world per scenario, not one per run spec
        prepared = runner.prepare_run(spec.scenario, policy="on-demand", seed=spec.seed,
                                      days=spec.days)  # fmt: skip
        figures = market_figures(prepared.world)
        markets[prepared.world.scenario.id] = {
            "spot_on_offer_share": figures["spot_on_offer_share"],
            "cheapest_spot_saving": figures["cheapest_spot_saving"],
        }
    return markets


def report_data(document: dict[str, Any]) -> ReportData:
    """What the report shows, from results.json's content."""
    evaluations = document.get("evaluations")
    return ReportData(
        document=document,
        series=tuple(RunSeries.model_validate(s) for s in document.get("series") or []),
        evaluations=Evaluations.model_validate(evaluations) if evaluations else None,
        seed_tables=tuple(
            SeedClaimRow.model_validate(r) for r in document.get("seed_tables") or []
        ),
    )


def render_html(document: dict[str, Any]) -> str:
    """report.html's text for results.json's content."""
    from bench.report_html import render_report

    return render_report(report_data(document))
