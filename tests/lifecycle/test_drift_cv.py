"""The drift monitor's cross-validation (bench/drift_cv.py): the selection never sees the
held-out trace, and the vectorised replay of the monitor is the monitor."""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pytest

from agents.lifecycle.drift import (
    DriftMonitor,
    DriftReference,
    drift,
    load_drift_features,
    rolling_drift,
)
from bench import cusum_cv, drift_cv
from bench.drift_cv import (
    Setting,
    TraceEvidence,
    alarms,
    choose_per_fold,
    fold_choice,
    trace_evidence,
)

DAY = drift_cv.DAY
WINDOWS = (12, 18)
SMALL_GRID = tuple(
    Setting(w, psi, alpha, k, agree)
    for w in WINDOWS
    for psi in (0.2, 1.0)
    for alpha in (1e-2, 1e-6)
    for k in (1, 3)
    for agree in ("any", "all")
)


CUSUM_GRID = tuple(
    cusum_cv.CusumSetting(k, h, agree)
    for k in (0.5, 2.0)
    for h in (0.5, 4.0, 12.0)
    for agree in ("any", "all")
)
SELECTIONS = {
    "window test": (drift_cv.select, SMALL_GRID),
    "cusum": (cusum_cv.select, CUSUM_GRID),
    "window test or cusum": (cusum_cv.select_combined, CUSUM_GRID),
}


def diurnal(seed: int, days: int = 14, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    values = (100 + 60 * np.sin(2 * np.pi * t / DAY)) * rng.lognormal(0, noise, t.size)
    stamps = np.datetime64("2024-01-01T00:00:00") + t * np.timedelta64(300, "s")
    return values, stamps


def evidence(name: str, seed: int, noise: float = 0.05) -> TraceEvidence:
    return trace_evidence(name, *diurnal(seed, noise=noise), windows=WINDOWS, positions=4)


@pytest.fixture(scope="module")
def traces() -> list[TraceEvidence]:
    return [evidence(f"t{i}", seed=i, noise=0.03 + 0.05 * i) for i in range(3)]


class Untouchable:
    """Evidence whose every use raises."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def __getattribute__(self, attr: str) -> NoReturn:
        raise AssertionError(f"the selection read the held-out trace ({attr})")

    def __eq__(self, other: object) -> NoReturn:
        raise AssertionError("the selection compared the held-out trace")

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize("selection", SELECTIONS)
def test_the_held_out_trace_does_not_change_its_folds_choice(
    traces: list[TraceEvidence], selection: str
) -> None:
    """Per fold, the choice is the same with the held-out trace replaced by garbage
    (another series, ten times noisier), though garbage does move a choice it trains."""
    selector, grid = SELECTIONS[selection]
    garbage = evidence("garbage", seed=99, noise=0.6)
    chosen = choose_per_fold(traces, grid, selector)
    for k, held in enumerate(traces):
        swapped = [garbage if i == k else t for i, t in enumerate(traces)]
        assert fold_choice(swapped, k, grid, selector) == chosen[held.name]
    assert selector([garbage], grid) != selector(traces[:1], grid)


@pytest.mark.parametrize("selection", SELECTIONS)
def test_the_selection_never_touches_the_held_out_trace(
    traces: list[TraceEvidence], selection: str
) -> None:
    selector, grid = SELECTIONS[selection]
    for k, held in enumerate(traces):
        poisoned: list[Any] = [
            Untouchable(held.name) if i == k else t for i, t in enumerate(traces)
        ]
        training = [t for i, t in enumerate(traces) if i != k]
        assert fold_choice(poisoned, k, grid, selector) == selector(training, grid)
    # the poison works: a fold that trains on it fails
    poisoned = [Untouchable("t0"), *traces[1:]]
    with pytest.raises(AssertionError, match="held-out"):
        fold_choice(poisoned, 1, grid, selector)


def test_rolling_drift_is_drift_on_every_window() -> None:
    rng = np.random.default_rng(0)
    reference = DriftReference.from_frame(
        pd.DataFrame({"a": rng.normal(0, 1, 3000), "b": rng.integers(0, 5, 3000).astype(float)})
    )
    rows = pd.DataFrame(
        {"a": np.round(np.r_[rng.normal(0, 1, 80), rng.normal(1, 1, 80)], 1),
         "b": rng.integers(0, 6, 160).astype(float)}
    )  # fmt: skip
    rows.loc[rng.choice(160, 30, replace=False), "a"] = np.nan  # varying window sizes
    for w in (12, 20):
        stats = rolling_drift(reference, rows, window_rows=w)
        assert np.isnan(stats.psi[:, : w - 1]).all()
        for i in range(w - 1, len(rows)):
            report = drift(reference, rows.iloc[i - w + 1 : i + 1])
            for f, feature in enumerate(report.features):
                if feature.psi is None:
                    assert np.isnan(stats.psi[f, i]) and np.isnan(stats.ks_pvalue[f, i])
                else:
                    assert stats.psi[f, i] == pytest.approx(feature.psi, abs=1e-12)
                    assert stats.ks_pvalue[f, i] == pytest.approx(feature.ks_pvalue, abs=1e-12)


@pytest.mark.parametrize(
    "setting",
    [Setting(12, 0.2, 1e-3, 1, "any"), Setting(12, 0.2, 1e-3, 3, "all"),
     Setting(18, 0.5, 1e-2, 2, "all"), Setting(12, 0.75, 1e-8, 1, "all")],
)  # fmt: skip
def test_the_cv_replays_the_monitor_row_for_row(setting: Setting) -> None:
    values, stamps = diurnal(5, days=10, noise=0.1)
    values[9 * DAY :] *= 1.5
    rows = drift_cv.drift_rows(values, stamps)
    reference = DriftReference.from_frame(rows.iloc[DAY : 8 * DAY])
    lo, hi = 8 * DAY, 9 * DAY + 36
    monitor = DriftMonitor(
        reference, window_rows=setting.window_rows, psi_threshold=setting.psi_threshold,
        ks_alpha=setting.ks_alpha, agreement=setting.agreement,
        confirm_rows=setting.confirm_rows,
    )  # fmt: skip
    by_monitor = []
    for i in range(lo - setting.window_rows + 1, hi):
        report = monitor.add(rows.iloc[i].to_dict())
        if i >= lo:
            assert report is not None and report.alarm is not None
            assert bool(report.drifted) == report.alarm
            by_monitor.append(report.alarm)
    stats = rolling_drift(reference, rows.iloc[:hi], window_rows=setting.window_rows)
    replayed = alarms(type(stats)(stats.names, stats.psi[:, lo:], stats.ks_pvalue[:, lo:]), setting)
    # the replay needs confirm_rows - 1 rows of history to confirm; the monitor had them
    k = setting.confirm_rows
    assert replayed[k - 1 :].tolist() == by_monitor[k - 1 :]
    assert any(by_monitor)  # the shift is seen: the comparison is not all False


def test_load_drift_features_are_what_the_cv_reads() -> None:
    values, stamps = diurnal(1, days=9)
    from agents.forecasting.features import make_features

    expected = load_drift_features(make_features(values, stamps, step_s=300, horizon_steps=6))
    pd.testing.assert_frame_equal(drift_cv.drift_rows(values, stamps), expected)


def test_first_alarm_credits_only_an_alarm_before_the_unchanged_series(
    traces: list[TraceEvidence],
) -> None:
    """A restarting monitor whose unchanged series alarms at row 3 of a span and changed
    series at row 6 was going to alarm anyway: detected by the row rule, not first_alarm."""
    trace = traces[0]
    unchanged = [np.zeros((1, s.rows), dtype=bool) for s in trace.segments]
    changed = [[np.zeros((1, drift_cv.MAX_DELAY_ROWS), dtype=bool) for _ in s.injections]
               for s in trace.segments]  # fmt: skip
    segment = next(i for i, s in enumerate(trace.segments) if s.injections)
    injection = trace.segments[segment].injections[0]
    span = injection.at - trace.segments[segment].start
    unchanged[segment][0, span + 2] = True
    changed[segment][0][0, 5] = True
    by_row = drift_cv.tally(trace, unchanged, changed)[0]
    first = drift_cv.tally(trace, unchanged, changed, first_alarm=True)[0]
    assert by_row.median_delay[injection.kind] == 6.0 and by_row.detected[injection.kind] > 0
    assert first.detected[injection.kind] == 0.0 and first.median_delay[injection.kind] is None
    assert by_row.chance == first.chance > 0
