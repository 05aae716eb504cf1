"""sim.market.hazard: the drop-probability formula, online == batch, the empirical-Bayes
fit on simulated data, bad input, and the prior fitted on the shipped traces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from agents.cost.env import training_observations, training_prior
from sim.market.availability import AvailabilitySeries
from sim.market.hazard import (
    HAZARD_HORIZON_MIN,
    HAZARD_WINDOW_MIN,
    HAZARD_WINDOWS_MIN,
    DropHazard,
    DropRatePrior,
    fit_drop_rate_prior,
    hazard_series,
    minute_availability,
    window_counts,
)


def _series_from_minutes(states: np.ndarray, source: str = "test") -> AvailabilitySeries:
    """A step function whose state at tick ``k`` (t = 60 k s) is ``states[k]``."""
    return AvailabilitySeries(np.arange(states.size) * 60.0, states.astype(bool), source)


# --- the formula -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "d", "u", "h"),
    [(0.44, 0.77, 0, 0, 30), (0.44, 0.77, 3, 120, 30), (2.0, 5.0, 1, 360, 60), (7.5, 0.1, 0, 1, 5)],
)
def test_drop_probability_is_one_minus_the_negative_binomial_zero(
    a: float, b: float, d: int, u: int, h: float
) -> None:
    prior = DropRatePrior(a, b, 60)
    exposure_h = b + u / 60.0
    no_drop = stats.nbinom.pmf(0, a + d, exposure_h / (exposure_h + h / 60.0))
    assert prior.drop_probability(d, u, h) == pytest.approx(1.0 - no_drop, rel=1e-12)
    # and directly: E[1 - exp(-lambda h)] under the posterior Gamma(a + d, b + u / 60)
    posterior = stats.gamma(a + d, scale=1.0 / exposure_h)
    direct, _ = integrate.quad(
        lambda lam: -math.expm1(-lam * h / 60.0) * posterior.pdf(lam), 0.0, np.inf
    )
    assert prior.drop_probability(d, u, h) == pytest.approx(direct, rel=1e-7)


def test_drop_probability_scalar_array_and_zero_horizon() -> None:
    prior = DropRatePrior(0.5, 1.0, 60)
    assert isinstance(prior.drop_probability(1, 30), float)
    grid = prior.drop_probability(np.array([[0, 1], [2, 3]]), np.array([10, 20]))
    assert isinstance(grid, np.ndarray) and grid.shape == (2, 2)
    assert grid[1, 0] == prior.drop_probability(2, 10)
    assert prior.drop_probability(4, 100, horizon_min=0.0) == 0.0
    with pytest.raises(ValueError, match="must be >= 0"):
        prior.drop_probability(-1, 10)


def test_more_drops_raise_and_more_quiet_up_time_lowers_the_probability() -> None:
    prior = DropRatePrior(0.44, 0.77, 360)
    drops = np.arange(0, 10)[:, None]
    up = np.arange(0, 361, 30)[None, :]
    p = prior.drop_probability(drops, up)
    assert np.all(np.diff(p, axis=0) > 0)  # more drops at the same up-time
    assert np.all(np.diff(p, axis=1) < 0)  # more up-time with the same drops


@pytest.mark.parametrize(
    ("shape", "rate", "window"),
    [(0.0, 1.0, 60), (1.0, -1.0, 60), (math.nan, 1.0, 60), (1.0, 1.0, 0), (1.0, 1.0, 1.5)],
)
def test_prior_rejects_bad_parameters(shape: float, rate: float, window: int) -> None:
    with pytest.raises(ValueError, match="DropRatePrior"):
        DropRatePrior(shape, rate, window)


# --- minute ticks ----------------------------------------------------------------------


def test_minute_availability_is_the_state_at_each_tick() -> None:
    series = AvailabilitySeries(
        np.array([0.0, 120.0, 150.0, 200.0]), np.array([True, False, True, False]), "t"
    )
    got = minute_availability(series, 0.0, 5)
    assert got.dtype == np.bool_
    # ticks 0, 60, 120 (the change at 120 is seen), 180, 240
    assert got.tolist() == [True, True, False, True, False]
    assert minute_availability(series, 90.0, 2).tolist() == [True, True]  # 90 s, 150 s
    assert got.tolist() == [series.available_at(60.0 * k) for k in range(5)]
    assert minute_availability(series, 0.0, 0).shape == (0,)
    with pytest.raises(ValueError, match="n_minutes"):
        minute_availability(series, 0.0, -1)


# --- online == batch -------------------------------------------------------------------


@st.composite
def _histories(draw: st.DrawFn) -> tuple[DropRatePrior, np.ndarray, np.ndarray | None]:
    n_az = draw(st.integers(1, 3))
    n_minutes = draw(st.integers(1, 40))
    cells = draw(st.lists(st.booleans(), min_size=n_minutes * n_az, max_size=n_minutes * n_az))
    available = np.array(cells, dtype=bool).reshape(n_minutes, n_az)
    initial = draw(st.none() | st.lists(st.booleans(), min_size=n_az, max_size=n_az))
    prior = DropRatePrior(
        draw(st.floats(0.05, 20.0)), draw(st.floats(0.05, 20.0)), draw(st.integers(1, 8))
    )
    return prior, available, None if initial is None else np.array(initial, dtype=bool)


@settings(max_examples=60, deadline=None)
@given(history=_histories())
def test_online_equals_batch(history: tuple[DropRatePrior, np.ndarray, np.ndarray | None]) -> None:
    prior, available, initial = history
    n_az = available.shape[1]
    online = DropHazard(prior, n_az, None if initial is None else initial.tolist())
    drops, up = window_counts(available, prior.window_min, initial)
    batch = hazard_series(prior, available, initial=initial)
    assert batch.shape == available.shape and batch.dtype == np.float64
    for k, row in enumerate(available):
        online.update(row.tolist())
        assert online.counts() == (drops[k].tolist(), up[k].tolist())
        # the counts agree exactly; the probabilities to the last bits (numpy's vectorised
        # log1p/expm1 against the C library's in the online scalars)
        np.testing.assert_allclose(online.probabilities(), batch[k], rtol=1e-12, atol=0)


@settings(max_examples=30, deadline=None)
@given(history=_histories())
def test_window_counts_are_the_last_w_minutes(
    history: tuple[DropRatePrior, np.ndarray, np.ndarray | None],
) -> None:
    """Against a direct count: minute k is up if the state at tick k-1 was, a drop if
    it was up then and is down at tick k (tick -1 = ``initial``, unknown if None)."""
    prior, available, initial = history
    w = prior.window_min
    drops, up = window_counts(available, w, initial)
    n, n_az = available.shape
    for z in range(n_az):
        before = [None if initial is None else bool(initial[z]), *available[:, z].tolist()]
        for k in range(n):
            minutes = range(max(0, k - w + 1), k + 1)
            assert up[k, z] == sum(before[j] is True for j in minutes)
            assert drops[k, z] == sum(before[j] is True and not before[j + 1] for j in minutes)


def test_batch_takes_leading_axes() -> None:
    rng = np.random.default_rng(7)
    available = rng.random((4, 50, 3)) < 0.7
    initial = rng.random((4, 3)) < 0.5
    prior = DropRatePrior(0.4, 0.8, 12)
    stacked = hazard_series(prior, available, initial=initial)
    for e in range(4):
        assert np.array_equal(stacked[e], hazard_series(prior, available[e], initial=initial[e]))
    with pytest.raises(ValueError, match="initial must be a bool array of shape"):
        hazard_series(prior, available, initial=initial[0])
    with pytest.raises(ValueError, match="available must be a bool array"):
        hazard_series(prior, available[0, :, 0])


def test_a_first_tick_is_a_drop_only_after_a_known_initial_up() -> None:
    prior = DropRatePrior(0.5, 1.0, 60)
    fresh = DropHazard(prior, 2)
    assert fresh.probabilities() == [prior.drop_probability(0, 0)] * 2  # the prior alone
    fresh.update([False, True])
    assert fresh.counts() == ([0, 0], [0, 0])
    known = DropHazard(prior, 2, initial=[True, True])
    known.update([False, True])
    assert known.counts() == ([1, 0], [1, 1])
    assert known.probabilities()[0] > known.probabilities()[1]


def test_a_drop_leaves_the_window_after_w_minutes() -> None:
    prior = DropRatePrior(0.5, 1.0, 5)
    hazard = DropHazard(prior, 1, initial=[True])
    hazard.update([False])  # minute 0: a drop
    for _ in range(4):
        hazard.update([True])  # minutes 1-4: down, then up-minutes 2, 3, 4
    assert hazard.counts() == ([1], [4])
    hazard.update([True])  # minute 5: the drop's minute leaves
    assert hazard.counts() == ([0], [4])


def test_flapping_az_has_the_higher_hazard() -> None:
    prior = DropRatePrior(0.44, 0.77, 360)
    hazard = DropHazard(prior, 2, initial=[True, True])
    for minute in range(120):
        hazard.update([True, minute % 20 != 10])  # AZ 1 drops every 20 minutes
    steady, flapping = hazard.probabilities()
    assert flapping > 2 * steady
    assert steady < prior.drop_probability(0, 0)  # two quiet hours lower the prior's


def test_online_rejects_the_wrong_number_of_azs() -> None:
    hazard = DropHazard(DropRatePrior(0.5, 1.0, 60), 3)
    with pytest.raises(ValueError, match="available must be 3 bools"):
        hazard.update([True, False])
    with pytest.raises(ValueError, match="initial must be 2 bools"):
        DropHazard(DropRatePrior(0.5, 1.0, 60), 2, initial=[True])
    with pytest.raises(ValueError, match="n_az"):
        DropHazard(DropRatePrior(0.5, 1.0, 60), 0)


# --- the fit ---------------------------------------------------------------------------


def _simulated_traces(
    a: float, b: float, window: int, rng: np.random.Generator
) -> list[AvailabilitySeries]:
    """Traces from the model: per ``window``-minute window a rate ~ Gamma(a, b) drops per
    up-hour; an up minute ends in a drop with probability 1 - exp(-rate / 60); a down
    minute recovers with probability 0.2."""
    n_traces, n_windows = 40, 60
    n = n_windows * window + 1
    rates = rng.gamma(a, 1.0 / b, size=(n_traces, n_windows))
    up = np.ones((n_traces, n), dtype=bool)
    draws = rng.random((n_traces, n))
    for j in range(1, n):
        p_drop = -np.expm1(-rates[:, (j - 1) // window] / 60.0)
        up[:, j] = np.where(up[:, j - 1], draws[:, j] >= p_drop, draws[:, j] < 0.2)
    return [_series_from_minutes(row) for row in up]


def test_fit_recovers_the_prior_of_simulated_traces() -> None:
    a, b, window = 1.5, 3.0, 120
    traces = _simulated_traces(a, b, window, np.random.default_rng(20240611))
    fitted = fit_drop_rate_prior(traces, window)
    assert fitted.window_min == window
    assert fitted.shape == pytest.approx(a, rel=0.3)
    assert fitted.rate_up_hours == pytest.approx(b, rel=0.3)
    assert fitted.mean_drops_per_up_hour == pytest.approx(a / b, rel=0.15)


def test_fit_reads_each_trace_over_its_duration() -> None:
    """A long quiet tail after the last change lowers the fitted rate."""
    traces = _simulated_traces(1.5, 3.0, 60, np.random.default_rng(3))[:10]
    cut = fit_drop_rate_prior(traces, 60)
    durations = [float(s.times_s[-1]) + 50 * 3600.0 for s in traces]
    longer = fit_drop_rate_prior(traces, 60, durations_s=durations)
    assert longer.mean_drops_per_up_hour < cut.mean_drops_per_up_hour
    with pytest.raises(ValueError, match="10 traces but 2 durations_s"):
        fit_drop_rate_prior(traces, 60, durations_s=durations[:2])


def test_fit_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="at least one availability trace"):
        fit_drop_rate_prior([], 60)
    all_down = [_series_from_minutes(np.zeros(500, dtype=bool))] * 2
    with pytest.raises(ValueError, match="no up-minute in any of the 2 traces"):
        fit_drop_rate_prior(all_down, 60, durations_s=[30_000.0, 30_000.0])
    always_up = [_series_from_minutes(np.ones(500, dtype=bool))]
    with pytest.raises(ValueError, match="no drop"):
        fit_drop_rate_prior(always_up, 60, durations_s=[30_000.0])
    flapping = [_series_from_minutes(np.arange(500) % 7 != 0)]
    with pytest.raises(ValueError, match="window_min"):
        fit_drop_rate_prior(flapping, 0)


# --- the shipped traces ----------------------------------------------------------------


def test_training_prior_on_the_shipped_traces() -> None:
    prior = training_prior()
    assert prior is training_prior()  # cached
    assert prior.window_min == HAZARD_WINDOW_MIN in HAZARD_WINDOWS_MIN
    assert math.isfinite(prior.shape) and prior.shape > 0
    assert math.isfinite(prior.rate_up_hours) and prior.rate_up_hours > 0
    names = [name for name, _, _ in training_observations()]
    assert len(names) == 16
    held = frozenset(names[:3])
    without = training_prior(held)
    assert (without.shape, without.rate_up_hours) != (prior.shape, prior.rate_up_hours)
    assert [name for name, _, _ in training_observations(held)] == names[3:]
    assert 0.0 < prior.drop_probability(0, 0, HAZARD_HORIZON_MIN) < 1.0
