"""Running a streaming detector over a NAB-layout corpus: prequential scores, NAB-format
result files written atomically, and the three profile scores of :mod:`bench.nab`.

Every file is read and validated first (bad input: one line, exit 2, nothing written);
each series is scored then learnt point by point (no look-ahead); results go to a
hidden sibling folder that replaces ``OUT/<detector>`` only when every file is done.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from agents.registry import DETECTORS, make_detector
from bench.nab import PROFILES, ScoredFile, as_dict, score_corpus
from bench.nab_data import NabSeries, load_corpus, write_results
from sim.atomic import staging_path
from sim.errors import InputError


def run_detector(name: str, series: NabSeries) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Scores of a fresh detector ``name`` over one series, prequentially, in row order."""
    det = make_detector(name)
    step = det.score_learn_one
    out = np.empty(len(series.values), dtype=np.float64)
    stamps = series.epoch_s.tolist()
    for i, (t, v) in enumerate(zip(stamps, series.values.tolist(), strict=True)):
        out[i] = step({"value": v, "timestamp": t})
    if out.size and not (np.all(out >= 0.0) and np.all(out <= 1.0)):
        raise AssertionError(f"{name}: scores outside [0, 1] on {series.key}")
    return out


def evaluate(
    data: Path,
    windows: Path,
    out: Path,
    detector: str,
    *,
    progress: Console | None = None,
) -> dict[str, Any]:
    """Run ``detector`` over a NAB-layout folder, write results, score every profile."""
    DETECTORS.spec(detector, source="--detector")
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out", "exists and is not a folder", "a folder (created if absent)")
    corpus, unused_keys = load_corpus(data, windows)
    out.mkdir(parents=True, exist_ok=True)
    final = out / detector
    partial = staging_path(final)  # also removes partials of runs that died
    scored: list[ScoredFile] = []
    started = time.perf_counter()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=progress,
            transient=True,
            disable=progress is None,
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
