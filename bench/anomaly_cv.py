"""Cross-validated NAB evaluation of a streaming detector (``opsbench anomaly cv``, issue 17).

A score on files a detector was tuned on says little about the next operator's metrics.
This evaluation keeps every choice away from the files it scores:

- **Folds** (:func:`assign_folds`): k-fold by *file*, stratified by NAB category (files of
  each category shuffled by a ``numpy`` Generator from the seed, then dealt in turn, the
  artificial categories first), so every fold holds real and artificial files when the
  corpus has at least k of each.
- **Candidates** (:meth:`DetectorSpace.candidates`): every combination of the values the
  detector declares in ``search_space()`` (the defaults first); parameters it does not
  name keep their defaults.
- **Runs** (:class:`ScoreTable`): each (candidate, file) is run once, prequentially, and its
  scores are reused by every fold the file is part of (training or scoring); files run in
  a process pool when ``workers`` > 1.
- **Selection** (:func:`select`), per fold, on the *other* folds only: the candidate with
  the highest standard-profile NAB score on those files, each candidate at its own optimised
  threshold (ties: the earlier candidate, so the defaults win a tie); for every profile the
  chosen candidate's threshold optimised on the same files is kept.
- **Scoring** (:func:`score_fold`) of the held-out fold with NAB's rules, two ways: the
  threshold optimised per profile on the fold itself (NAB's own convention,
  ``optimised``) and the threshold chosen on the training folds (what an operator would
  get, ``transferred``).
- **Shipped parameters**: what the same selection picks on the whole corpus.

Scores are NAB normalised scores (0: the null detector, 100: the perfect one), unit-free;
the spread over folds is the sample standard deviation (ddof = 1).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from agents.anomaly.base import AnomalyDetector
from agents.registry import DETECTORS
from bench.nab import (
    PROFILES,
    FloatArray,
    ProfileResult,
    ScoredFile,
    as_dict,
    optimise,
    probation_rows,
    score_at,
    score_corpus,
)
from bench.nab_data import NabSeries, load_corpus
from sim.errors import InputError

SELECTION_PROFILE = "standard"
MODES = ("optimised", "transferred")
"""``optimised``: threshold optimised on the scored fold (NAB's convention);
``transferred``: the threshold chosen on the training folds."""

Params = tuple[tuple[str, Any], ...]
"""One candidate: ``(name, value)`` pairs of the searched hyper-parameters, in space order."""

Advance = Callable[[int], None]


def _no_progress(_steps: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RegisteredBuilder:
    """Builds registered detector ``name`` with given hyper-parameters (picklable)."""

    name: str

    def __call__(self, params: Mapping[str, Any]) -> AnomalyDetector:
        return DETECTORS.make(self.name, params)


@dataclass(frozen=True)
class DetectorSpace:
    """A detector and the hyper-parameter values cross-validation may choose between.

    Attributes
    ----------
    name
        The detector's id (in reports).
    build
        Builds a fresh detector from the searched hyper-parameters (others: defaults).
    space
        Values per searched hyper-parameter; each list holds the default.
    defaults
        The detector's default hyper-parameters.
    """

    name: str
    build: Callable[[Mapping[str, Any]], AnomalyDetector]
    space: Mapping[str, Sequence[Any]]
    defaults: Mapping[str, Any]

    def __post_init__(self) -> None:
        for key, values in self.space.items():
            if key not in self.defaults:
                raise ValueError(f"{self.name}: searched parameter {key!r} is not a parameter")
            if self.defaults[key] not in values or len(set(values)) != len(values):
                raise ValueError(
                    f"{self.name}: search values of {key!r} ({list(values)}) must be distinct "
                    f"and hold the default {self.defaults[key]!r}"
                )

    @classmethod
    def registered(cls, name: str) -> DetectorSpace:
        """The space a registered detector declares (unknown name: InputError)."""
        DETECTORS.spec(name, source="--detector")
        detector = DETECTORS.make(name)
        space = type(detector).search_space()
        return cls(name, RegisteredBuilder(name), space, detector.get_params())

    def default_params(self) -> Params:
        return tuple((key, self.defaults[key]) for key in self.space)

    def candidates(self) -> list[Params]:
        """Every combination of the searched values, the defaults first."""
        keys = list(self.space)
        default = self.default_params()
        grid = itertools.product(*(self.space[k] for k in keys))
        combos = [tuple(zip(keys, values, strict=True)) for values in grid]
        return [default, *(c for c in combos if c != default)]


# ---------------------------------------------------------------------------------- folds


def kind_of(key: str) -> str:
    """``"artificial"`` for a file of an ``artificial*`` category, else ``"real"``."""
    return "artificial" if key.split("/", 1)[0].startswith("artificial") else "real"


def assign_folds(keys: Sequence[str], folds: int, seed: int) -> tuple[tuple[str, ...], ...]:
    """Files split into ``folds`` folds, stratified by category, seeded.

    Each category's files (sorted) are permuted by ``numpy.random.default_rng(seed)``, the
    categories are taken artificial first then real, each in name order, and the files are
    dealt to folds 1, 2, ..., k, 1, ... in one run, so each kind with at least k files has
    files in every fold. A kind present with fewer than k files is an InputError.
    """
    if folds < 2:
        raise InputError("--folds", "", f"{folds} folds", allowed="an integer >= 2")
    for kind in ("artificial", "real"):
        n = sum(1 for k in keys if kind_of(k) == kind)
        if 0 < n < folds:
            raise InputError(
                "--folds",
                "",
                f"{folds} folds, but the data has only {n} {kind} files",
                allowed=f"at most {n} folds, so that every fold holds {kind} files",
            )
    by_category: dict[str, list[str]] = {}
    for key in sorted(keys):
        by_category.setdefault(key.split("/", 1)[0], []).append(key)
    rng = np.random.default_rng(seed)
    order: list[str] = []
    for category in sorted(by_category, key=lambda c: (kind_of(c + "/") != "artificial", c)):
        files = by_category[category]
        order.extend(files[i] for i in rng.permutation(len(files)).tolist())
    dealt: list[list[str]] = [[] for _ in range(folds)]
    for i, key in enumerate(order):
        dealt[i % folds].append(key)
    return tuple(tuple(sorted(fold)) for fold in dealt)


def check_folds_scorable(corpus: Sequence[NabSeries], fold_keys: Sequence[Sequence[str]]) -> None:
    """Every fold needs a window after the probationary period (else its score is undefined)."""
    scored = {
        s.key: sum(1 for _, right in s.windows if right >= probation_rows(len(s.values)))
        for s in corpus
    }
    for i, keys in enumerate(fold_keys, start=1):
        if not any(scored[k] for k in keys):
            raise InputError(
                "--folds",
                "",
                f"fold {i} ({len(keys)} files) has no labelled window after the probationary "
                "period, so NAB cannot score it",
                allowed="fewer folds, or more files with labelled windows",
            )


# ----------------------------------------------------------------------------------- runs


def epoch_seconds(series: NabSeries) -> FloatArray:
    """Each row's timestamp in seconds since the epoch (UTC), as ``opsbench anomaly nab``
    feeds it."""
    return series.epoch_s


def prequential_scores(
    detector: AnomalyDetector, stamps: FloatArray, values: FloatArray
) -> FloatArray:
    """Scores of ``detector`` over one series, each row scored then learnt, in row order."""
    step = detector.score_learn_one
    out = np.empty(len(values), dtype=np.float64)
    for i, (t, v) in enumerate(zip(stamps.tolist(), values.tolist(), strict=True)):
        out[i] = step({"value": v, "timestamp": t})
    if out.size and not (np.all(out >= 0.0) and np.all(out <= 1.0)):
        raise AssertionError(f"{detector.name}: scores outside [0, 1]")
    return out


def _run_file(
    build: Callable[[Mapping[str, Any]], AnomalyDetector],
    candidates: Sequence[Params],
    stamps: FloatArray,
    values: FloatArray,
) -> list[FloatArray]:
    """Every candidate's scores on one file (one pool task)."""
    return [prequential_scores(build(dict(c)), stamps, values) for c in candidates]


class ScoreTable:
    """Every candidate's scores on every file of a corpus, each run once.

    Parameters
    ----------
    windows
        Each file's window rows, by key (the scorer's labels).
    scores
        ``scores[params][key]``: one candidate's scores on one file, one per row.
    """

    def __init__(
        self,
        windows: Mapping[str, tuple[tuple[int, int], ...]],
        scores: Mapping[Params, Mapping[str, FloatArray]],
    ) -> None:
        self._windows = dict(windows)
        self._scores = {p: dict(by_key) for p, by_key in scores.items()}

    @classmethod
    def run(
        cls,
        space: DetectorSpace,
        corpus: Sequence[NabSeries],
        *,
        workers: int = 1,
        advance: Advance = _no_progress,
    ) -> ScoreTable:
        """Run every candidate of ``space`` over every file (``workers`` processes).

        One pool task per file (all candidates), so a file's rows are sent once. Measured on
        the shared 2-core machine (load average 7-9, novelty-ensemble, 81 candidates x 28
        files): 42.6 and 43.4 s serial, 51.0 and 56.9 s with 2 workers; hence the default 1.
        """
        candidates = space.candidates()
        inputs = [(epoch_seconds(s), s.values) for s in corpus]
        per_file: list[list[FloatArray]] = []
        if workers <= 1:
            for stamps, values in inputs:
                per_file.append(_run_file(space.build, candidates, stamps, values))
                advance(len(candidates))
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                futures = [
                    pool.submit(_run_file, space.build, candidates, stamps, values)
                    for stamps, values in inputs
                ]
                for future in futures:
                    per_file.append(future.result())
                    advance(len(candidates))
        scores = {
            c: {s.key: runs[j] for s, runs in zip(corpus, per_file, strict=True)}
            for j, c in enumerate(candidates)
        }
        return cls({s.key: s.windows for s in corpus}, scores)

    @property
    def keys(self) -> tuple[str, ...]:
        """The files held, by key."""
        return tuple(self._windows)

    def subset(self, keys: Iterable[str]) -> ScoreTable:
        """The same runs restricted to ``keys``: nothing else can be read from it."""
        wanted = [k for k in keys if k in self._windows]
        return ScoreTable(
            {k: self._windows[k] for k in wanted},
            {p: {k: by_key[k] for k in wanted} for p, by_key in self._scores.items()},
        )

    def files(self, params: Params) -> list[ScoredFile]:
        """Candidate ``params``' scores on every file held, as the NAB scorer takes them."""
        by_key = self._scores[params]
        return [ScoredFile(k, by_key[k], w) for k, w in self._windows.items()]


# ------------------------------------------------------------------- selection and scoring


@dataclass(frozen=True)
class Selection:
    """The candidate chosen on a set of files, and its thresholds there.

    Attributes
    ----------
    params
        The chosen hyper-parameter values.
    score
        Its standard-profile NAB score on those files at its optimised threshold.
    thresholds
        Per profile, the threshold optimised on those files (a score in [0, 1]).
    files
        How many files it was chosen on.
    """

    params: Params
    score: float
    thresholds: Mapping[str, float]
    files: int


def select(
    table: ScoreTable, candidates: Sequence[Params], advance: Advance = _no_progress
) -> Selection:
    """The candidate with the best standard-profile NAB score on every file of ``table``."""
    profile = PROFILES[SELECTION_PROFILE]
    best: tuple[float, Params] | None = None
    for params in candidates:
        score = optimise(table.files(params), SELECTION_PROFILE, profile).normalised
        if best is None or score > best[0]:
            best = (score, params)
        advance(1)
    if best is None:
        raise ValueError("no candidate to select from")
    chosen = table.files(best[1])
    thresholds = {name: optimise(chosen, name, p).threshold for name, p in PROFILES.items()}
    return Selection(best[1], best[0], thresholds, len(table.keys))


@dataclass(frozen=True)
class FoldResult:
    """One held-out fold: its files, the selection made without them and their scores.

    ``optimised`` and ``transferred`` map profile name to the result (see :data:`MODES`).
    """

    files: tuple[str, ...]
    windows: int
    selection: Selection
    optimised: Mapping[str, ProfileResult]
    transferred: Mapping[str, ProfileResult]

    def mode(self, mode: str) -> Mapping[str, ProfileResult]:
        return self.optimised if mode == "optimised" else self.transferred


def score_fold(table: ScoreTable, selection: Selection) -> FoldResult:
    """Score the held-out files of ``table`` with the candidate chosen elsewhere."""
    files = table.files(selection.params)
    transferred = {
        name: score_at(files, name, p, selection.thresholds[name]) for name, p in PROFILES.items()
    }
    return FoldResult(
        files=table.keys,
        windows=sum(len(f.windows) for f in files),
        selection=selection,
        optimised=score_corpus(files),
        transferred=transferred,
    )


@dataclass(frozen=True)
class CvResult:
    """Cross-validation of one detector: per fold, and the whole-corpus selection."""

    detector: str
    candidates: int
    folds: tuple[FoldResult, ...]
    shipped: Selection

    def mean_sd(self, mode: str, profile: str) -> tuple[float, float]:
        """Mean and sample standard deviation over folds of one profile's score."""
        scores = [f.mode(mode)[profile].normalised for f in self.folds]
        sd = float(np.std(scores, ddof=1)) if len(scores) > 1 else math.nan
        return float(np.mean(scores)), sd


def cross_validate(
    table: ScoreTable,
    candidates: Sequence[Params],
    fold_keys: Sequence[Sequence[str]],
    *,
    detector: str,
    advance: Advance = _no_progress,
) -> CvResult:
    """Select on the other folds, score each fold; then select on every file (shipped)."""
    results = []
    for held_out in fold_keys:
        out = set(held_out)
        training = table.subset(k for k in table.keys if k not in out)
        selection = select(training, candidates, advance)
        results.append(score_fold(table.subset(held_out), selection))
    shipped = select(table, candidates, advance)
    return CvResult(detector, len(candidates), tuple(results), shipped)


# --------------------------------------------------------------------------- the command


def result_dict(result: CvResult, space: DetectorSpace, run_wall_s: float) -> dict[str, Any]:
    """One detector's cross-validation as a JSON-friendly dict."""
    folds = []
    for i, f in enumerate(result.folds, start=1):
        folds.append(
            {
                "fold": i,
                "files": list(f.files),
                "windows": f.windows,
                "params": dict(f.selection.params),
                "training_score": round(f.selection.score, 4),
                "training_thresholds": dict(f.selection.thresholds),
                **{m: {p: as_dict(r) for p, r in f.mode(m).items()} for m in MODES},
            }
        )
    summary = {
        m: {
            p: dict(zip(("mean", "sd"), (round(x, 4) for x in result.mean_sd(m, p)), strict=True))
            for p in PROFILES
        }
        for m in MODES
    }
    return {
        "detector": result.detector,
        "search_space": {k: list(v) for k, v in space.space.items()},
        "defaults": dict(space.defaults),
        "candidates": result.candidates,
        "run_wall_s": round(run_wall_s, 3),
        "folds": folds,
        "summary": summary,
        "shipped": {
            "params": dict(result.shipped.params),
            "in_sample_score": round(result.shipped.score, 4),
            "thresholds": dict(result.shipped.thresholds),
        },
    }


def evaluate(
    data: Path,
    windows: Path,
    detectors: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[str, int], Advance] | None = None,
) -> dict[str, Any]:
    """``opsbench anomaly cv``: cross-validate each detector on a NAB-layout folder.

    Every input is checked before anything runs (bad input: InputError). ``progress``,
    given a detector and its total steps (runs and selection evaluations), returns the
    callback that advances its bar.
    """
    started = time.perf_counter()
    spaces = [DetectorSpace.registered(name) for name in detectors]
    corpus, unused_keys = load_corpus(data, windows)
    fold_keys = assign_folds([s.key for s in corpus], folds, seed)
    check_folds_scorable(corpus, fold_keys)
    out: dict[str, Any] = {}
    for space in spaces:
        candidates = space.candidates()
        total = len(candidates) * (len(corpus) + folds + 1)
        advance = progress(space.name, total) if progress is not None else _no_progress
        run_started = time.perf_counter()
        table = ScoreTable.run(space, corpus, workers=workers, advance=advance)
        run_wall = time.perf_counter() - run_started
        result = cross_validate(table, candidates, fold_keys, detector=space.name, advance=advance)
        out[space.name] = result_dict(result, space, run_wall)
    return {
        "files": len(corpus),
        "rows": sum(len(s.values) for s in corpus),
        "windows": sum(len(s.windows) for s in corpus),
        "window_keys_without_data": len(unused_keys),
        "folds": folds,
        "seed": seed,
        "workers": workers,
        "fold_files": [list(keys) for keys in fold_keys],
        "wall_s": round(time.perf_counter() - started, 3),
        "detectors": out,
    }
