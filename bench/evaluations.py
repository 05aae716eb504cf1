"""What ``opsbench bench all`` measures besides the replays: every model evaluated on its
own data, outside any replay (:class:`~bench.report_data.Evaluations`).

Sections (:data:`ALL_SECTIONS`; each module's docstring defines its rows and units):

``forecast`` (:mod:`bench.eval_forecast`)
    the shipped scaling forecaster (``gbm-quantile``) and the seed's ``seed-rf``, with
    the one-day seasonal-naive baseline, backtested on the shipped load traces: MASE,
    WAPE, p90 coverage and ``accuracy`` = 1 - WAPE (a unit share); ``quick``: the NASA
    trace only, else all four;
``nab`` (:mod:`bench.eval_nab`)
    the default anomaly detector on the NAB dev split: the three profile scores, window
    recall, alert precision and F1 at the standard profile's threshold, points/s, and
    one example file;
``security`` (:mod:`bench.eval_security`)
    the registered shipped security analyser on the invictus recording beside the
    Sigma-style baseline, and its recall / FPR curve;
``hdfs`` (:mod:`bench.eval_security`)
    the next-key log model on its documented HDFS split;
``latency`` (:mod:`bench.eval_latency`)
    per-decision wall time of the scaling, anomaly, security and cost models in process
    and over loopback HTTP: :data:`QUICK_CALLS` calls each with ``quick``, else
    :data:`FULL_CALLS`.

Models come from the registry at ``models_dir`` (and the feature store ``store``) as the
sweep's :func:`bench.sweep.prepare_models` leaves them: a registered version is reused,
and one is trained and registered only where the registry lacks it. Everything but the
latency figures and ``points_per_s`` is deterministic (the same rows on a second run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

from bench.report_data import EvalRow, Evaluations, LatencySamples, NabExample, SecurityCurve
from bench.report_data import Section
from sim.errors import InputError

ALL_SECTIONS: tuple[Section, ...] = get_args(Section)
QUICK_CALLS = 300
FULL_CALLS = 3000
"""Decisions timed per model and transport in the latency section."""


def check_sections(sections: Sequence[str]) -> tuple[Section, ...]:
    """``sections`` without repeats, in the given order; InputError on an unknown name."""
    for name in sections:
        if name not in ALL_SECTIONS:
            raise InputError(
                "sections", "", f"unknown evaluation section {name!r}", ", ".join(ALL_SECTIONS)
            )
    return tuple(dict.fromkeys(sections))  # type: ignore[arg-type]


def run_evaluations(
    *,
    quick: bool,
    models_dir: str,
    store: Path,
    progress: Callable[[str], None] | None = None,
    sections: Sequence[Section] = ALL_SECTIONS,
) -> Evaluations:
    """Run the chosen ``sections`` (see the module) in :data:`ALL_SECTIONS`' order.

    Parameters
    ----------
    quick
        The small set: one trace for the forecasters, :data:`QUICK_CALLS` latency calls.
    models_dir
        The model registry (a folder or registry URI), as ``opsbench bench all --models``.
    store
        The DuckDB feature store a scaling model is trained from if the registry lacks it.
    progress
        Gets one line per section and step.
    sections
        Which sections to run.

    Returns
    -------
    Evaluations
        The rows, latency samples, NAB example and security curve of the sections run,
        and ``wall_s``: wall seconds per section run.
    """
    chosen = set(check_sections(sections))
    say = progress or (lambda _line: None)
    rows: list[EvalRow] = []
    latency: list[LatencySamples] = []
    nab_example: NabExample | None = None
    curve: SecurityCurve | None = None
    wall_s: dict[str, float] = {}
    for section in ALL_SECTIONS:
        if section not in chosen:
            continue
        say(f"evaluating {section}")
        started = time.perf_counter()
        if section == "forecast":
            from bench.eval_forecast import forecast_rows, shipped_traces

            rows += forecast_rows(shipped_traces(quick=quick), progress=progress)
        elif section == "nab":
            from bench.eval_nab import nab_evaluation

            found, nab_example = nab_evaluation(progress=progress)
            rows += found
        elif section == "security":
            from bench.eval_security import recording_evaluation

            found, curve = recording_evaluation(models_dir, progress)
            rows += found
        elif section == "hdfs":
            from bench.eval_security import hdfs_rows

            rows += hdfs_rows()
        else:
            from bench.eval_latency import latency_evaluation

            calls = QUICK_CALLS if quick else FULL_CALLS
            found, latency = latency_evaluation(
                calls, models_dir=models_dir, store=store, progress=progress
            )
            rows += found
        wall_s[section] = round(time.perf_counter() - started, 3)
        say(f"{section}: {wall_s[section]:.1f} s")
    return Evaluations(
        rows=tuple(rows),
        latency=tuple(latency),
        nab_example=nab_example,
        security_curve=curve,
        wall_s=wall_s,
    )
