"""``opsbench anomaly``: streaming anomaly detectors scored on the Numenta Anomaly Benchmark.

``opsbench anomaly nab --data DIR --windows FILE --out DIR [--detector NAME] [--json]`` reads
and validates every file first (bad input: one line, exit 2, nothing written), runs the
detector prequentially over each series (score, then learn: no look-ahead), writes NAB-format
results into a hidden sibling folder that replaces ``OUT/<detector>`` only when every file is
done, and prints the three profile scores of :mod:`bench.nab`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from agents.anomaly.registry import DEFAULT_DETECTOR, DETECTORS, make_detector
from bench.nab import PROFILES, ScoredFile, as_dict, score_corpus
from bench.nab_data import NabSeries, load_corpus, write_results
from sim.errors import InputError

stdout = Console()
stderr = Console(stderr=True)


def run_detector(name: str, series: NabSeries) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Scores of a fresh detector ``name`` over one series, prequentially, in row order."""
    det = make_detector(name)
    step = det.score_learn_one
    out = np.empty(len(series.values), dtype=np.float64)
    for i, (t, v) in enumerate(zip(series.timestamps, series.values.tolist(), strict=True)):
        out[i] = step({"value": v, "timestamp": t.timestamp()})
    if out.size and not (np.all(out >= 0.0) and np.all(out <= 1.0)):
        raise AssertionError(f"{name}: scores outside [0, 1] on {series.key}")
    return out


def evaluate(
    data: Path, windows: Path, out: Path, detector: str, *, progress: bool = False
) -> dict[str, Any]:
    """Run ``detector`` over a NAB-layout folder, write results, score every profile."""
    if detector not in DETECTORS:
        raise InputError(
            "--detector", "", f"unknown detector {detector!r}", ", ".join(sorted(DETECTORS))
        )
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out", "exists and is not a folder", "a folder (created if absent)")
    corpus, unused_keys = load_corpus(data, windows)
    out.mkdir(parents=True, exist_ok=True)
    final = out / detector
    partial = out / f".{detector}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    scored: list[ScoredFile] = []
    started = time.perf_counter()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=stderr,
            transient=True,
            disable=not progress,
        ) as bar:
            task = bar.add_task(detector, total=len(corpus))
            for s in corpus:
                scores = run_detector(detector, s)
                # OUT/<detector>/<category>/<detector>_<file>.csv once renamed
                write_results(partial / s.category / f"{detector}_{s.file_name}", s, scores)
                scored.append(ScoredFile(s.key, scores, s.windows))
                bar.advance(task)
        wall = time.perf_counter() - started
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    results = score_corpus(scored, PROFILES)
    points = sum(len(f.scores) for f in scored)
    return {
        "detector": detector,
        "files": len(scored),
        "rows": points,
        "windows": sum(len(f.windows) for f in scored),
        "window_keys_without_data": len(unused_keys),
        "detector_wall_s": round(wall, 3),
        "run_points_per_s": round(points / wall) if wall > 0 else None,
        "results_dir": str(final),
        "profiles": {name: as_dict(r) for name, r in results.items()},
    }


@click.group()
def anomaly() -> None:
    """Streaming metric anomaly detectors and the NAB benchmark."""


@anomaly.command("nab")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    required=True,
    help="folder in NAB layout: <category>/<file>.csv with columns timestamp,value",
)
@click.option(
    "--windows",
    type=click.Path(path_type=Path),
    required=True,
    help="NAB windows JSON (combined_windows.json)",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="results folder")
@click.option(
    "--detector",
    default=DEFAULT_DETECTOR,
    show_default=True,
    help=f"one of: {', '.join(sorted(DETECTORS))}",
)
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def anomaly_nab(data: Path, windows: Path, out: Path, detector: str, as_json: bool) -> None:
    """Run a detector over a NAB corpus, write NAB-format results, print the three scores."""
    result = evaluate(data, windows, out, detector, progress=stderr.is_terminal and not as_json)
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
