"""The ``nab`` section of :func:`bench.evaluations.run_evaluations`: the registry's default
anomaly detector (:data:`agents.registry.DEFAULT_DETECTOR`, what ``opsbench anomaly nab``
runs by default) over the shipped NAB dev split (``scenarios/data/nab``), each file scored
prequentially by a fresh detector (:func:`bench.nab_run.run_detector`) and the corpus
scored by :mod:`bench.nab`.

Rows (subject: the detector, dataset: ``nab-dev``):

``standard``, ``low_fp``, ``low_fn`` (score)
    NAB's normalised score under the standard, reward-low-FP and reward-low-FN profiles,
    each at its own optimised threshold (0 = null detector, 100 = perfect);
``window_recall`` (share)
    at the standard profile's optimised threshold, the share of the labelled windows
    that have at least one detection; as NAB counts them, only windows that reach past
    the probationary period count, and only detections after it (so ``window_recall``
    is ``tp / (tp + fn)`` of the standard :class:`~bench.nab.ProfileResult`);
``alert_precision`` (share)
    at that threshold, the share of the detections after the probationary period that
    fall inside a window (0 when there is no detection);
``f1`` (share)
    the harmonic mean of those two (0 when both are 0);
``points_per_s`` (per_s)
    rows scored per wall second by the detector over the whole corpus (reading and
    validating the files excluded).

A detection is a row whose score reaches the threshold (``score >= threshold``).

The example file (:class:`~bench.report_data.NabExample`): the **first file in sorted
key order that has at least two labelled windows** (none if no file has two); its
``alert_rows`` are every row, probationary ones included, where the score reaches the
standard profile's optimised threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.registry import DEFAULT_DETECTOR
from bench.nab import PROFILES, ProfileResult, ScoredFile, probation_rows, score_corpus
from bench.nab_data import load_corpus
from bench.nab_run import run_detector
from bench.report_data import EvalRow, NabExample, Unit
from scenarios import data_path

NAB_DIR = data_path("nab")
NAB_DATA = NAB_DIR / "data"
NAB_WINDOWS = NAB_DIR / "labels" / "combined_windows.json"
DATASET = "nab-dev"
PROFILE_METRICS = {
    "standard": "standard",
    "reward_low_FP_rate": "low_fp",
    "reward_low_FN_rate": "low_fn",
}
"""NAB's profile names (:data:`bench.nab.PROFILES`) and the metric each is reported as."""
EXAMPLE_MIN_WINDOWS = 2


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """Windows and detections of a corpus at one threshold (after the probation).

    Attributes
    ----------
    windows
        Labelled windows that reach past their file's probationary period.
    windows_hit
        Those of them with at least one detection after the probation.
    alerts
        Detections (rows with ``score >= threshold``) after the probation.
    alerts_in_window
        Those of them inside a labelled window.
    """

    windows: int
    windows_hit: int
    alerts: int
    alerts_in_window: int

    @property
    def window_recall(self) -> float:
        """``windows_hit / windows`` (0 without windows)."""
        return self.windows_hit / self.windows if self.windows else 0.0

    @property
    def alert_precision(self) -> float:
        """``alerts_in_window / alerts`` (0 without detections)."""
        return self.alerts_in_window / self.alerts if self.alerts else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of :attr:`window_recall` and :attr:`alert_precision`."""
        r, p = self.window_recall, self.alert_precision
        return 2 * p * r / (p + r) if p + r else 0.0


def alert_counts(files: Sequence[ScoredFile], threshold: float) -> AlertCounts:
    """Windows hit and detections in windows at ``threshold`` (see :class:`AlertCounts`)."""
    windows = hit = alerts = inside = 0
    for f in files:
        start = probation_rows(len(f.scores))
        fired = np.asarray(f.scores) >= threshold
        fired[:start] = False
        in_window = np.zeros(len(f.scores), dtype=bool)
        for left, right in f.windows:
            in_window[left : right + 1] = True
            if right >= start:
                windows += 1
                hit += int(fired[left : right + 1].any())
        alerts += int(fired.sum())
        inside += int((fired & in_window).sum())
    return AlertCounts(windows, hit, alerts, inside)


def example(
    files: Sequence[ScoredFile], values: Sequence[np.ndarray], detector: str, threshold: float
) -> NabExample | None:
    """The example file of the module docstring (``files`` and ``values`` in the same
    order), or None."""
    chosen = sorted(
        (f.name, k) for k, f in enumerate(files) if len(f.windows) >= EXAMPLE_MIN_WINDOWS
    )
    if not chosen:
        return None
    f = files[chosen[0][1]]
    return NabExample(
        file=f.name,
        detector=detector,
        values=tuple(float(v) for v in values[chosen[0][1]]),
        windows=f.windows,
        probation_rows=probation_rows(len(f.scores)),
        alert_rows=tuple(int(i) for i in np.flatnonzero(np.asarray(f.scores) >= threshold)),
    )


def nab_rows(
    results: dict[str, ProfileResult],
    counts: AlertCounts,
    *,
    detector: str,
    dataset: str,
    points_per_s: float,
) -> list[EvalRow]:
    """The rows of the module docstring."""
    figures: list[tuple[str, float, Unit]] = [
        (PROFILE_METRICS[name], r.normalised, "score") for name, r in results.items()
    ]
    figures += [
        ("window_recall", counts.window_recall, "share"),
        ("alert_precision", counts.alert_precision, "share"),
        ("f1", counts.f1, "share"),
        ("points_per_s", points_per_s, "per_s"),
    ]
    return [
        EvalRow(section="nab", subject=detector, dataset=dataset, metric=m, value=v, unit=u)
        for m, v, u in figures
    ]


def nab_evaluation(
    data: Path = NAB_DATA,
    windows: Path = NAB_WINDOWS,
    *,
    detector: str = DEFAULT_DETECTOR,
    dataset: str = DATASET,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[EvalRow], NabExample | None]:
    """Run ``detector`` over the NAB-layout folder ``data`` (windows in ``windows``),
    every file validated first; its rows and example file (see the module)."""
    corpus, _ = load_corpus(data, windows)
    if progress is not None:
        rows_total = sum(len(s.values) for s in corpus)
        progress(f"nab: {detector} on {len(corpus)} files, {rows_total:,} rows")
    started = time.perf_counter()
    files = [ScoredFile(s.key, run_detector(detector, s), s.windows) for s in corpus]
    wall_s = time.perf_counter() - started
    results = score_corpus(files, PROFILES)
    threshold = results["standard"].threshold
    counts = alert_counts(files, threshold)
    points = sum(len(f.scores) for f in files)
    rows = nab_rows(
        results,
        counts,
        detector=detector,
        dataset=dataset,
        points_per_s=points / wall_s if wall_s > 0 else 0.0,
    )
    return rows, example(files, [s.values for s in corpus], detector, threshold)
