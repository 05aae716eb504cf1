"""The CUSUM change monitor's settings, chosen by the drift monitor's leave-one-trace-out
cross-validation: ``python -m bench.cusum_cv [--json]``.

Everything but the monitor is :mod:`bench.drift_cv`'s: the same traces, 3-day segments
watched against the 7 days before them, the same injected changes at the same seeded rows
(level x1.5, x0.6, the daily profile rotated by 12 hours), the same scoring (detection
within ``MAX_DELAY_ROWS`` = 12 rows at a row where the unchanged series would not alarm,
median delay, alarm episodes per day on the series as it is, chance) and the same
objective and folds (:func:`bench.drift_cv.best`, :func:`bench.drift_cv.fold_choice`).
The CUSUM starts from zero at each segment's first row (a monitor is made afresh with
the reference of a new model); a change injected at a row starts from the statistics the
unchanged series had reached just before it.

Two monitors are scored per setting of :data:`GRID`:

- ``cusum``: :class:`~agents.lifecycle.cusum.CusumMonitor` alone;
- ``either``: an alarm when the CUSUM or the window test
  (:class:`~agents.lifecycle.drift.DriftMonitor` at its shipped defaults) alarms.

Each is selected on its own scores (:func:`select` with ``combined`` False or True). The
shipped defaults of :mod:`agents.lifecycle.cusum` are what :func:`select` picks for the
CUSUM alone on all four traces.

The grid (:data:`GRID`): slack ``k`` 0-2 sd, threshold ``h`` 2-40 sd, ``agreement``
``any``/``all``. The replay (:func:`replay`) runs the recursion once per row over every
setting at once (numpy over the grid, a Python loop over rows: the statistic is a
recursion with resets), so the grid costs a few passes over each trace.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from agents.lifecycle import drift
from agents.lifecycle.cusum import check_parameters, log_scale
from agents.lifecycle.drift import AGREEMENTS, DriftReference
from bench import drift_cv
from bench.drift_cv import (
    LEAD,
    MAX_DELAY_ROWS,
    TRACES,
    Segment,
    TraceEvidence,
    TraceScore,
    best,
    choose_per_fold,
    print_folds,
    read_trace,
    score_row,
    tally,
    trace_evidence,
)


@dataclass(frozen=True, slots=True)
class CusumSetting:
    """One CUSUM setting (the keywords of :class:`~agents.lifecycle.cusum.CusumMonitor`)."""

    k: float
    h: float
    agreement: str

    def __post_init__(self) -> None:
        check_parameters(self.k, self.h, self.agreement)


SLACKS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
THRESHOLDS = (
    0.25,
    0.5,
    1.0,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
    8.0,
    10.0,
    12.0,
    15.0,
    20.0,
    25.0,
    30.0,
    40.0,
)
GRID: tuple[CusumSetting, ...] = tuple(
    CusumSetting(k, h, agreement)
    for k, h, agreement in itertools.product(SLACKS, THRESHOLDS, AGREEMENTS)
)
WINDOW_TEST = drift_cv.Setting(
    drift.DEFAULT_WINDOW_ROWS,
    drift.DEFAULT_PSI_THRESHOLD,
    drift.DEFAULT_KS_ALPHA,
    drift.DEFAULT_CONFIRM_ROWS,
    drift.DEFAULT_AGREEMENT,
)
"""The window test the ``either`` monitor adds the CUSUM to: its shipped defaults."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The CUSUM of a batch of series under every setting of a grid: ``alarms``
    ``(batch, settings, rows)``; ``upper``, ``lower`` ``(batch, settings, features)`` and
    ``seen`` (a feature has had a finite value) after the last row (after any reset), and
    the same per row (``(..., rows)``) when asked for."""

    alarms: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    seen: np.ndarray
    history: tuple[np.ndarray, np.ndarray, np.ndarray] | None


def replay(
    z: np.ndarray,
    grid: Sequence[CusumSetting],
    *,
    start: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    keep_history: bool = False,
) -> Replay:
    """:class:`~agents.lifecycle.cusum.CusumMonitor` over ``z`` (standardised values,
    ``(batch, features, rows)``, NaN skipped) for every setting of ``grid`` at once, from
    the statistics ``start`` (``upper``, ``lower``, ``seen``, each ``(batch, settings,
    features)``; zeros when None)."""
    batch, features, rows = z.shape
    k = np.array([s.k for s in grid])[None, :, None]
    h = np.array([s.h for s in grid])[None, :, None]
    every = np.array([s.agreement == "all" for s in grid])[None, :]
    shape = (batch, len(grid), features)
    if start is None:
        upper, lower, seen = np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=bool)
    else:
        upper, lower, seen = (np.array(a, copy=True) for a in start)
    alarms = np.zeros((batch, len(grid), rows), dtype=bool)
    history = (
        (np.zeros((*shape, rows)), np.zeros((*shape, rows)), np.zeros((*shape, rows), bool))
        if keep_history
        else None
    )
    for i in range(rows):
        x = z[:, None, :, i]
        finite = np.isfinite(x)
        seen = seen | finite
        step = np.where(finite, x, 0.0)
        upper = np.where(finite, np.maximum(0.0, upper + step - k), upper)
        lower = np.where(finite, np.maximum(0.0, lower - step - k), lower)
        over = np.maximum(upper, lower) > h
        alarm = np.where(every, (over | ~seen).all(axis=2) & seen.any(axis=2), over.any(axis=2))
        alarms[:, :, i] = alarm
        upper = np.where(alarm[:, :, None], 0.0, upper)
        lower = np.where(alarm[:, :, None], 0.0, lower)
        if history is not None:
            history[0][..., i], history[1][..., i], history[2][..., i] = upper, lower, seen
    return Replay(alarms, upper, lower, seen, history)


def standardised(reference: DriftReference, features: np.ndarray) -> np.ndarray:
    """``z`` of the drift features ``(features, rows)`` against ``reference`` (NaN for a
    feature the reference cannot scale)."""
    out = np.full(features.shape, np.nan)
    for f, feature in enumerate(reference.features):
        scale = log_scale(feature)
        if scale is not None:
            out[f] = scale.standardise(features[f])
    return out


def segment_alarms(
    segment: Segment, grid: Sequence[CusumSetting]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per setting, the CUSUM's alarms on the segment as it is ``(settings, rows)`` and on
    each injected change's rows ``(settings, MAX_DELAY_ROWS)``."""
    unchanged = replay(
        standardised(segment.reference, segment.features)[None], grid, keep_history=True
    )
    assert unchanged.history is not None
    changed = []
    if segment.injections:
        spans = [injection.at - segment.start for injection in segment.injections]
        z = np.stack([standardised(segment.reference, i.features) for i in segment.injections])
        shape = (len(spans), len(grid), segment.features.shape[0])
        before = tuple(
            np.stack([h[0, ..., span - 1] if span else np.zeros(shape[1:], h.dtype)
                      for span in spans])
            for h in unchanged.history
        )  # fmt: skip
        after = replay(z, grid, start=(before[0], before[1], before[2])).alarms
        changed = list(after)
    return unchanged.alarms[0], changed


def window_alarms(segment: Segment) -> tuple[np.ndarray, list[np.ndarray]]:
    """The window test's (:data:`WINDOW_TEST`) alarms, shaped as :func:`segment_alarms`'s
    for one setting."""
    w = WINDOW_TEST.window_rows
    unchanged = drift_cv.alarms(segment.unchanged[w], WINDOW_TEST)[None, LEAD:]
    changed = [drift_cv.alarms(i.stats[w], WINDOW_TEST)[None, LEAD:] for i in segment.injections]
    return unchanged, changed


def window_score(trace: TraceEvidence) -> TraceScore:
    """The window test alone (:data:`WINDOW_TEST`), scored by the rule of :func:`scores`."""
    unchanged, changed = zip(*(window_alarms(segment) for segment in trace.segments), strict=True)
    return tally(trace, unchanged, changed, first_alarm=True)[0]


def scores(
    trace: TraceEvidence, grid: Sequence[CusumSetting], *, combined: bool
) -> list[TraceScore]:
    """Every setting's score on ``trace``: the CUSUM alone, or (``combined``) OR-ed with
    the window test. A change counts as detected only when the monitor alarms before the
    unchanged series would (``first_alarm`` of :func:`bench.drift_cv.tally`): the CUSUM
    restarts after each alarm, so its alarms on the two series part ways."""
    unchanged, changed = [], []
    for segment in trace.segments:
        base, after = segment_alarms(segment, grid)
        if combined:
            window_base, window_after = window_alarms(segment)
            base = base | window_base
            after = [a | b for a, b in zip(after, window_after, strict=True)]
        unchanged.append(base)
        changed.append(after)
    return tally(trace, unchanged, changed, first_alarm=True)


def select(
    training: Sequence[TraceEvidence],
    grid: Sequence[CusumSetting] = GRID,
    *,
    combined: bool = False,
) -> CusumSetting:
    """:mod:`bench.drift_cv`'s objective on ``training`` only."""
    per_trace = [scores(trace, grid, combined=combined) for trace in training]
    return grid[best([[s[i] for s in per_trace] for i in range(len(grid))])]


def select_combined(
    training: Sequence[TraceEvidence], grid: Sequence[CusumSetting] = GRID
) -> CusumSetting:
    return select(training, grid, combined=True)


@dataclass(frozen=True, slots=True)
class Fold:
    held_out: str
    setting: CusumSetting
    score: TraceScore


def cross_validate(
    evidence: Sequence[TraceEvidence], grid: Sequence[CusumSetting] = GRID, *, combined: bool
) -> list[Fold]:
    selector = select_combined if combined else select
    chosen = choose_per_fold(evidence, grid, selector)
    return [
        Fold(t.name, chosen[t.name], scores(t, [chosen[t.name]], combined=combined)[0])
        for t in evidence
    ]


def _describe(setting: CusumSetting) -> str:
    return f"k={setting.k:<4} h={setting.h:<4} {setting.agreement:3}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cusum_cv", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    evidence = [
        trace_evidence(name, *read_trace(name), windows=(WINDOW_TEST.window_rows,))
        for name in TRACES
    ]
    prepared = time.perf_counter()
    result = {}
    for monitor, combined in (("cusum", False), ("either", True)):
        folds = cross_validate(evidence, combined=combined)
        overall = select(evidence, combined=combined)
        on_all = {t.name: scores(t, [overall], combined=combined)[0] for t in evidence}
        result[monitor] = (folds, overall, on_all)
    window = {t.name: window_score(t) for t in evidence}
    done = time.perf_counter()
    if args.json:
        print(json.dumps({
            "grid_size": len(GRID),
            "window_test": asdict(WINDOW_TEST),
            "window_test_alone": {name: asdict(s) for name, s in window.items()},
            **{monitor: {
                "folds": [{"held_out": f.held_out, "setting": asdict(f.setting),
                           "score": asdict(f.score)} for f in folds],
                "chosen_on_all": asdict(overall),
                "on_all": {name: asdict(s) for name, s in on_all.items()},
            } for monitor, (folds, overall, on_all) in result.items()},
            "seconds": {"prepare": prepared - began, "grid": done - prepared},
        }, indent=2))  # fmt: skip
        return
    print(
        f"grid: {len(GRID)} settings; detection: share within {MAX_DELAY_ROWS} rows, median delay"
    )
    for monitor, (folds, overall, on_all) in result.items():
        title = "CUSUM alone" if monitor == "cusum" else f"window test ({WINDOW_TEST}) OR CUSUM"
        print(f"\n{title}")
        print_folds(folds, overall, on_all, _describe)
    print(f"\nwindow test alone, same rule: {WINDOW_TEST}")
    for name, s in window.items():
        print(score_row(name, " " * len(_describe(GRID[0])), s))
    print(f"\n{prepared - began:.1f} s to prepare, {done - prepared:.1f} s for the grid")


if __name__ == "__main__":
    main()
