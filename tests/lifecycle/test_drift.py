"""Feature drift: PSI on training-quantile bins and KS against the training reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.lifecycle.drift import (
    MIN_WINDOW_ROWS,
    REFERENCE_FILE,
    DriftReference,
    drift,
    psi,
)
from sim.errors import InputError


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "load": rng.normal(100 + shift, 10 * scale, n),
            "hour": rng.integers(0, 24, n).astype(float),  # few distinct values
            "constant": np.full(n, 3.0),
        }
    )


@st.composite
def shares(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    k = draw(st.integers(2, 12))
    a = np.asarray(draw(st.lists(st.floats(0, 1), min_size=k, max_size=k))) + 1e-9
    b = np.asarray(draw(st.lists(st.floats(0, 1), min_size=k, max_size=k))) + 1e-9
    return list(a / a.sum()), list(b / b.sum())


@settings(max_examples=200, deadline=None)
@given(shares())
def test_psi_is_zero_on_itself_and_never_negative(pair: tuple[list[float], list[float]]) -> None:
    e, a = pair
    assert psi(e, e) == pytest.approx(0.0, abs=1e-12)
    assert psi(e, a) >= 0.0
    assert psi(e, a) == pytest.approx(psi(a, e))  # symmetric


def test_a_window_like_training_does_not_drift_a_shifted_one_does() -> None:
    rng = np.random.default_rng(7)
    reference = DriftReference.from_frame(frame(rng, 5_000))
    same = drift(reference, frame(rng, 288))
    assert same.drifted == () and same.max_psi < 0.1
    shifted = drift(reference, frame(rng, 288, shift=20.0))
    assert shifted.drifted == ("load",)
    load = next(f for f in shifted.features if f.name == "load")
    assert load.psi is not None and load.psi > 1.0 and load.ks_pvalue is not None
    assert load.ks_pvalue < 1e-6


def test_bins_come_from_training_quantiles_and_merge_ties() -> None:
    rng = np.random.default_rng(1)
    reference = DriftReference.from_frame(frame(rng, 2_000), bins=10)
    by_name = {f.name: f for f in reference.features}
    load = by_name["load"]
    assert len(load.edges) == 9 and all(abs(s - 0.1) < 0.01 for s in load.expected)
    assert by_name["constant"].edges == (3.0,) and len(by_name["constant"].expected) == 2
    assert drift(reference, frame(rng, 50)).features[2].psi == pytest.approx(0.0, abs=1e-9)


def test_missing_values_are_counted_and_small_windows_get_no_verdict() -> None:
    rng = np.random.default_rng(2)
    reference = DriftReference.from_frame(frame(rng, 1_000))
    window = frame(rng, 40)
    window.loc[:9, "load"] = np.nan
    report = drift(reference, window)
    load = report.features[0]
    assert load.missing == 10 and load.n == 30
    tiny = drift(reference, frame(rng, MIN_WINDOW_ROWS - 1, shift=50.0))
    assert tiny.drifted == () and tiny.features[0].psi is None
    with pytest.raises(ValueError, match="lacks features"):
        drift(reference, window.drop(columns=["hour"]))


def test_the_reference_round_trips_and_a_bad_file_is_one_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    reference = DriftReference.from_frame(frame(rng, 500))
    reference.save(tmp_path)
    assert DriftReference.load(tmp_path) == reference
    doc = json.loads((tmp_path / REFERENCE_FILE).read_text())
    doc["features"][0]["expected"][0] = 5.0
    (tmp_path / REFERENCE_FILE).write_text(json.dumps(doc))
    with pytest.raises(InputError) as caught:
        DriftReference.load(tmp_path)
    assert "\n" not in str(caught.value) and REFERENCE_FILE in str(caught.value)
    assert "sum to 1" in str(caught.value)


def test_a_level_shift_is_caught_within_an_hour_and_a_stationary_day_is_not() -> None:
    """Seasonality-free features over a rolling hour of 5-minute rows: the diurnal cycle
    alone never drifts, a 1.5x level shift is confirmed within 12 rows (60 minutes)."""
    from agents.forecasting.features import make_features
    from agents.lifecycle.drift import DriftMonitor, load_drift_features

    step, day = 300, 288
    rng = np.random.default_rng(11)
    n = 10 * day
    t = np.arange(n)
    level = np.where(t >= 9 * day, 1.5, 1.0)
    values = level * (1000 + 500 * np.sin(2 * np.pi * t / day)) * rng.lognormal(0, 0.03, n)
    stamps = np.datetime64("2024-01-01T00:00:00") + t * np.timedelta64(step, "s")
    rows = load_drift_features(make_features(values, stamps, step_s=step, horizon_steps=6))
    reference = DriftReference.from_frame(rows.iloc[2 * day : 8 * day])
    monitor = DriftMonitor(reference, window_rows=12)
    alarms = []
    for i in range(8 * day - 11, n):
        report = monitor.add(rows.iloc[i].to_dict())
        if report is not None and report.drifted:
            alarms.append(i)
    stationary = [i for i in alarms if i < 9 * day]
    assert stationary == []
    assert alarms and alarms[0] - 9 * day < 12


def test_the_monitor_alarms_only_when_its_rules_agree() -> None:
    """``agreement="all"``: one drifted feature is not enough; ``confirm_rows``: the window
    must drift on that many consecutive rows; bad rules are refused."""
    from agents.lifecycle.drift import DriftMonitor

    rng = np.random.default_rng(4)
    reference = DriftReference.from_frame(frame(rng, 2_000).drop(columns=["constant"]))
    one = frame(rng, 30, shift=40.0).drop(columns=["constant"])  # only "load" drifts
    both = one.assign(hour=one["hour"] + 30.0)

    def alarms(rows: pd.DataFrame, **rules: object) -> list[bool]:
        monitor = DriftMonitor(reference, window_rows=12, **rules)  # type: ignore[arg-type]
        reports = [monitor.add(row._asdict()) for row in rows.itertuples(index=False)]
        return [r is not None and bool(r.drifted) for r in reports]

    assert any(alarms(one, agreement="any")) and not any(alarms(one, agreement="all"))
    assert alarms(both, agreement="all")[11:] == [True] * 19
    assert alarms(both, confirm_rows=3)[11:] == [False, False] + [True] * 17
    with pytest.raises(ValueError, match="agreement"):
        DriftMonitor(reference, agreement="most")
    with pytest.raises(ValueError, match="confirm_rows"):
        DriftMonitor(reference, confirm_rows=0)
