"""``opsbench anomaly``: streaming anomaly detectors scored on the Numenta Anomaly Benchmark
(:mod:`bench.nab_run` runs them, :mod:`bench.nab` scores them, :mod:`bench.anomaly_cv`
cross-validates their parameters by file)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.registry import DEFAULT_DETECTOR, DETECTORS
from bench.cli.common import path_option, command_group, json_option, stderr, stdout
from bench.anomaly_cv import MODES, evaluate as cross_validate_corpus
from bench.nab import PROFILES
from bench.nab_run import evaluate


anomaly = command_group(
    "anomaly",
    "Streaming metric anomaly detectors and the NAB benchmark.",
)


nab_data_option = path_option(
    "--data",
    required=True,
    help="folder in NAB layout: <category>/<file>.csv with columns timestamp,value",
)
nab_windows_option = path_option(
    "--windows", required=True, help="NAB windows JSON (combined_windows.json)"
)


def int_option(flag: str, *, minimum: int, default: int, help: str) -> Any:
    """``click.option(flag)``: an integer >= ``minimum`` with a shown default."""
    return click.option(
        flag, type=click.IntRange(min=minimum), default=default, show_default=True, help=help
    )


@anomaly.command("nab")
@nab_data_option
@nab_windows_option
@path_option("--out", required=True, help="results folder")
@click.option(
    "--detector",
    default=DEFAULT_DETECTOR,
    show_default=True,
    help=f"one of: {', '.join(sorted(DETECTORS))}",
)
@json_option
def anomaly_nab(data: Path, windows: Path, out: Path, detector: str, as_json: bool) -> None:
    """Run a detector over a NAB corpus, write NAB-format results, print the three scores."""
    bar = stderr if stderr.is_terminal and not as_json else None
    result = evaluate(data, windows, out, detector, progress=bar)
    if as_json:
        click.echo(json.dumps(result))
        return
    table = Table(
        title=f"NAB: {detector} on {result['files']} files, {result['rows']:,} rows, "
        f"{result['windows']} windows"
    )
    for col in ("profile", "score", "threshold", "tp", "fp", "fn"):
        table.add_column(col, justify="left" if col == "profile" else "right")
    for name, r in result["profiles"].items():
        table.add_row(
            name,
            f"{r['score']:.2f}",
            f"{r['threshold']:.4g}",
            str(r["tp"]),
            str(r["fp"]),
            str(r["fn"]),
        )
    stdout.print(table)
    stdout.print(
        f"results in {result['results_dir']} "
        f"({result['run_points_per_s']:,} points/s incl. writing)"
        + (
            f"; {result['window_keys_without_data']} window keys had no data file here"
            if result["window_keys_without_data"]
            else ""
        )
    )


PROFILE_LABELS = {
    "standard": "standard",
    "reward_low_FP_rate": "low FP",
    "reward_low_FN_rate": "low FN",
}
MODE_TITLES = {
    "optimised": "threshold optimised on the scored fold (NAB's convention)",
    "transferred": "threshold chosen on the training folds",
}


@anomaly.command("cv")
@nab_data_option
@nab_windows_option
@int_option("--folds", minimum=2, default=5, help="folds by file, stratified by category")
@int_option("--seed", minimum=0, default=0, help="seed of the fold assignment")
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    default=(DEFAULT_DETECTOR,),
    show_default=True,
    help=f"repeatable; one of: {', '.join(sorted(DETECTORS))}",
)
@int_option("--workers", minimum=1, default=1, help="processes running the detector over files")
@json_option
def anomaly_cv(
    data: Path,
    windows: Path,
    folds: int,
    seed: int,
    detectors: tuple[str, ...],
    workers: int,
    as_json: bool,
) -> None:
    """Cross-validate detectors' parameters by file on a NAB corpus; print the fold scores.

    For each fold every searched parameter and the thresholds are chosen on the other folds
    only; the fold is then scored with the threshold optimised on it (NAB's convention) and
    with the threshold chosen on the training folds.
    """
    enabled = stderr.is_terminal and not as_json
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not enabled,
    ) as bar:

        def track(name: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(f"{name}: runs, then selections", total=total)
            return lambda steps: bar.advance(task, steps)

        result = cross_validate_corpus(
            data,
            windows,
            list(dict.fromkeys(detectors)),
            folds=folds,
            seed=seed,
            workers=workers,
            progress=track,
        )
    if as_json:
        click.echo(json.dumps(result))
        return
    for det in result["detectors"].values():
        for mode in MODES:
            stdout.print(cv_table(det, result, mode))
        for fold in det["folds"]:
            stdout.print(
                f"fold {fold['fold']}, chosen on the other folds: {format_params(fold['params'])}"
            )
        shipped = det["shipped"]
        stdout.print(
            f"shipped parameters (the same selection on all {result['files']} files): "
            f"{format_params(shipped['params'])}; in-sample standard score "
            f"{shipped['in_sample_score']:.2f} (not a held-out figure)"
        )
    unused = result["window_keys_without_data"]
    stdout.print(
        f"{result['folds']} folds, seed {result['seed']}, wall {result['wall_s']:.1f} s"
        + (f"; {unused} window keys had no data file here" if unused else "")
    )


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "(nothing searched)"


def cv_table(det: dict[str, Any], result: dict[str, Any], mode: str) -> Table:
    """One detector's held-out fold scores in one threshold mode, then mean and sd."""
    table = Table(
        title=f"{det['detector']}: NAB {result['folds']}-fold CV by file "
        f"({det['candidates']} candidates), {MODE_TITLES[mode]}"
    )
    for col in ("fold", "files", "windows", *(PROFILE_LABELS[p] for p in PROFILES)):
        table.add_column(col, justify="right")
    for fold in det["folds"]:
        table.add_row(
            str(fold["fold"]),
            str(len(fold["files"])),
            str(fold["windows"]),
            *(f"{fold[mode][p]['score']:.2f}" for p in PROFILES),
        )
    for stat in ("mean", "sd"):
        table.add_row(stat, "", "", *(f"{det['summary'][mode][p][stat]:.2f}" for p in PROFILES))
    return table
