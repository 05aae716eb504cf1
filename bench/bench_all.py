"""``opsbench bench all``: the replay sweep (:mod:`bench.sweep`) on an executor
(:mod:`bench.executors`), written as results.parquet, results.json and REPORT.md
(:mod:`bench.sweep_results`, which documents the files' schema).

Order: the options are checked and every scenario and policy validated, the models the
replays need are trained and registered once, then the replays fan out; nothing is
written to ``--out`` before all of them have finished.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.registry import MIX_POLICIES
from bench import sweep
from bench.executors import ExecutorName, check_executor, executor
from bench.sweep_results import check_out, results_document, write_results
from sim.errors import InputError

DEFAULT_SEEDS, QUICK_SEEDS = 3, 1

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
        )


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
    document = results_document(
        rows,
        settings=settings.model_dump(),
        skipped=plan.skipped,
        wall_s=time.perf_counter() - started,
    )
    write_results(out, rows, document)
    return document
