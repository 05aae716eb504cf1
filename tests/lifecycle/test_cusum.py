"""The CUSUM change monitor (agents/lifecycle/cusum.py) and its replay in the
cross-validation (bench/cusum_cv.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.lifecycle.cusum import CusumMonitor, log_scale
from agents.lifecycle.drift import DriftReference
from bench.cusum_cv import CusumSetting, replay, standardised

NAMES = ("now_vs_day_ago", "now_vs_week_ago")


def reference(seed: int = 0, sd: float = 0.1) -> DriftReference:
    """Ratios whose logarithm is normal with median 0 and ``sd``."""
    rng = np.random.default_rng(seed)
    return DriftReference.from_frame(
        pd.DataFrame({name: np.exp(rng.normal(0, sd, 5000)) for name in NAMES})
    )


def ratios(rng: np.random.Generator, rows: int, shift_sd: float = 0.0) -> np.ndarray:
    """``(features, rows)`` ratios from the reference's distribution, shifted by
    ``shift_sd`` reference sd on the log scale."""
    return np.exp(rng.normal(0.1 * shift_sd, 0.1, (len(NAMES), rows)))


def feed(monitor: CusumMonitor, values: np.ndarray) -> list[bool]:
    return [monitor.add(dict(zip(NAMES, column, strict=True))).alarm for column in values.T]


def test_the_scale_is_the_log_median_and_mad_sd_of_the_sample() -> None:
    scale = log_scale(reference(sd=0.1).features[0])
    assert scale is not None
    assert scale.centre == pytest.approx(0.0, abs=0.01)
    assert scale.scale == pytest.approx(0.1, rel=0.05)
    assert scale.standardise(np.array([np.exp(0.3), np.nan]))[0] == pytest.approx(3, rel=0.1)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_shift_of_three_sd_is_alarmed_within_a_few_rows(sign: int) -> None:
    rng = np.random.default_rng(1)
    for agreement in ("any", "all"):
        monitor = CusumMonitor(reference(), k=0.5, h=5.0, agreement=agreement)
        feed(monitor, ratios(rng, 50))
        monitor.upper[:] = monitor.lower[:] = 0.0  # whatever chance left behind
        alarmed = feed(monitor, ratios(rng, 20, shift_sd=3.0 * sign))
        assert True in alarmed[:4], agreement
        report = monitor.add(dict(zip(NAMES, ratios(rng, 1, 3.0 * sign)[:, 0], strict=True)))
        side = [f.side for f in report.features]
        assert side == ["up" if sign > 0 else "down"] * 2


def test_a_stationary_series_rarely_alarms() -> None:
    """k = 0.5, h = 5: Page's average run length in control is about 930 rows per side,
    so two features, two sides, ``any``: about one alarm per 230 rows."""
    rng = np.random.default_rng(2)
    monitor = CusumMonitor(reference(), k=0.5, h=5.0, agreement="any")
    alarms = sum(feed(monitor, ratios(rng, 5000)))
    assert alarms <= 5000 / 100
    strict = CusumMonitor(reference(), k=0.5, h=5.0, agreement="all")
    assert sum(feed(strict, ratios(rng, 5000))) <= 5
    assert sum(feed(CusumMonitor(reference(), k=1.0, h=8.0), ratios(rng, 5000))) == 0


def test_nan_rows_are_skipped() -> None:
    rng = np.random.default_rng(3)
    values = ratios(rng, 40, shift_sd=1.0)
    holed = np.insert(values, [5, 5, 20, 33], np.nan, axis=1)
    holed[1, 10] = np.nan  # and one feature alone
    plain, with_holes = (
        CusumMonitor(reference(), k=0.5, h=50.0),
        CusumMonitor(reference(), k=0.5, h=50.0),
    )
    feed(plain, values)
    kept = []
    for column in holed.T:
        report = with_holes.add(dict(zip(NAMES, column, strict=True)))
        kept.append([f.statistic for f in report.features])
    # the first feature saw exactly the rows of ``values``
    assert with_holes.upper[0] == pytest.approx(plain.upper[0])
    assert with_holes.lower[0] == pytest.approx(plain.lower[0])
    # a NaN row leaves the statistics as they were
    assert kept[4] == kept[5] == kept[6]  # two NaN rows inserted at 5
    assert kept[6] != kept[7]


def test_the_statistics_restart_after_an_alarm() -> None:
    monitor = CusumMonitor(reference(), k=0.5, h=4.0, agreement="any")
    up = dict(zip(NAMES, (np.exp(0.3), 1.0), strict=True))  # +3 sd on the first feature
    reports = [monitor.add(up) for _ in range(3)]
    assert [r.alarm for r in reports] == [False, True, False]
    assert reports[1].drifted == ("now_vs_day_ago",)
    assert reports[1].features[0].statistic == pytest.approx(2 * (3 - 0.5), rel=0.1)
    # after the alarm, the third row starts from zero
    assert reports[2].features[0].statistic == pytest.approx(3 - 0.5, rel=0.1)
    assert reports[2].drifted == ()


def test_all_needs_every_judged_feature() -> None:
    up = dict(zip(NAMES, (np.exp(0.5), 1.0), strict=True))  # +5 sd on the first feature
    one = CusumMonitor(reference(), k=0.5, h=6.0, agreement="all")
    assert not any(one.add(up).alarm for _ in range(10))
    # a feature never seen (NaN so far) does not take part
    monitor = CusumMonitor(reference(), k=0.5, h=6.0, agreement="all")
    alarms = [monitor.add({NAMES[0]: np.exp(0.5), NAMES[1]: np.nan}).alarm for _ in range(3)]
    assert alarms == [False, True, False]


def test_a_feature_the_reference_cannot_scale_is_not_judged() -> None:
    ref = DriftReference.from_frame(
        pd.DataFrame({NAMES[0]: np.exp(np.random.default_rng(0).normal(0, 0.1, 500)),
                      NAMES[1]: np.full(500, np.nan)})
    )  # fmt: skip
    report = CusumMonitor(ref, h=1.0, agreement="all").add({NAMES[0]: 2.0, NAMES[1]: 5.0})
    assert report.features[1].statistic is None and report.features[1].side is None
    assert report.alarm and report.drifted == (NAMES[0],)


@pytest.mark.parametrize(
    "keywords",
    [{"k": -0.1}, {"k": float("nan")}, {"h": 0.0}, {"h": -1.0}, {"h": float("inf")},
     {"agreement": "most"}],
)  # fmt: skip
def test_bad_parameters_are_refused(keywords: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CusumMonitor(reference(), **keywords)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CusumSetting(**{"k": 0.5, "h": 5.0, "agreement": "any", **keywords})  # type: ignore[arg-type]


def test_the_cv_replays_the_monitor_row_for_row() -> None:
    """Every setting of a small grid, a series with a shift, NaN holes and a restart from
    a mid-series state: the vectorised replay is the monitor."""
    rng = np.random.default_rng(4)
    values = np.concatenate([ratios(rng, 150), ratios(rng, 150, shift_sd=1.5)], axis=1)
    values[0, rng.choice(300, 30, replace=False)] = np.nan
    values[:, 40:45] = np.nan
    values[1, :3] = np.nan
    ref = reference()
    grid = [CusumSetting(k, h, a) for k in (0.0, 0.5, 1.5) for h in (1.0, 4.0, 10.0)
            for a in ("any", "all")]  # fmt: skip
    z = standardised(ref, values)
    whole = replay(z[None], grid, keep_history=True)
    assert whole.history is not None
    cut = 200
    rest = replay(z[None, :, cut:], grid,
                  start=tuple(h[..., cut - 1] for h in whole.history))  # type: ignore[arg-type]  # fmt: skip
    for s, setting in enumerate(grid):
        monitor = CusumMonitor(ref, k=setting.k, h=setting.h, agreement=setting.agreement)
        by_monitor = feed(monitor, values)
        assert whole.alarms[0, s].tolist() == by_monitor
        assert rest.alarms[0, s].tolist() == by_monitor[cut:]
        np.testing.assert_allclose(whole.upper[0, s], monitor.upper)
        np.testing.assert_allclose(whole.lower[0, s], monitor.lower)
    assert whole.alarms.any() and not whole.alarms.all()
