"""Rolling prediction-quality monitors against brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.lifecycle.quality import ForecastQuality, RateMonitor

finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    window=st.integers(1, 20),
    rows=st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=60),
    scale=st.floats(0.01, 1e3),
)
def test_forecast_quality_equals_the_last_window_brute_force(
    window: int, rows: list[tuple[float, float, float]], scale: float
) -> None:
    monitor = ForecastQuality(window, scale)
    for actual, median, p90 in rows:
        monitor.add(actual, median, p90)
    last = np.asarray(rows[-window:])
    assert monitor.n == len(last)
    assert monitor.mase == pytest.approx(np.mean(np.abs(last[:, 0] - last[:, 1])) / scale)
    assert monitor.coverage == pytest.approx(np.mean(last[:, 0] <= last[:, 2]))


def test_forecast_quality_refuses_what_it_cannot_score() -> None:
    assert math.isnan(ForecastQuality(3, 1.0).mase)
    with pytest.raises(ValueError):
        ForecastQuality(0, 1.0)
    with pytest.raises(ValueError):
        ForecastQuality(3, 0.0)
    with pytest.raises(ValueError):
        ForecastQuality(3, 1.0).add(float("nan"), 1.0, 2.0)


@settings(max_examples=100, deadline=None)
@given(
    window=st.integers(1, 10),
    rows=st.lists(
        st.integers(0, 50).flatmap(lambda e: st.tuples(st.integers(0, e), st.just(e))),
        min_size=1,
        max_size=40,
    ),
    baseline=st.floats(0.001, 1.0),
)
def test_rate_is_alerts_over_events_in_the_window(
    window: int, rows: list[tuple[int, int]], baseline: float
) -> None:
    monitor = RateMonitor(window, baseline)
    for alerts, events in rows:
        monitor.add(alerts, events)
    last = rows[-window:]
    events = sum(e for _, e in last)
    if events == 0:
        assert math.isnan(monitor.rate) and math.isnan(monitor.ratio())
    else:
        assert monitor.rate == pytest.approx(sum(a for a, _ in last) / events)
        assert monitor.ratio() == pytest.approx(monitor.rate / baseline)


def test_a_zero_baseline_alerting_is_infinite() -> None:
    monitor = RateMonitor(2, 0.0)
    monitor.add(0, 10)
    assert monitor.ratio() == 1.0
    monitor.add(1, 10)
    assert monitor.ratio() == math.inf
    with pytest.raises(ValueError):
        monitor.add(3, 2)
