"""sim.market.availability_model: the fit (Kaplan-Meier, kernel), seeded sampling, and
statistics of generated series close to the traces they were fitted on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sim.market.availability import AvailabilitySeries, load_availability_trace
from sim.market.availability_model import (
    AvailabilityModel,
    fit_availability,
    kaplan_meier,
    spell_statistics,
)

TRACES = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "spot" / "traces"
DAY_S = 86_400.0


def _dev_traces() -> list[tuple[AvailabilitySeries, float]]:
    """Every dev trace, whole, with the seconds it covers."""
    out = []
    for path in sorted(TRACES.rglob("*.json")):
        doc = json.loads(path.read_text())
        length_s = float(doc["metadata"]["gap_seconds"]) * len(doc["data"])
        out.append((load_availability_trace(path, offset_s=0.0, duration_s=length_s), length_s))
    return out


@pytest.fixture(scope="module")
def dev() -> list[tuple[AvailabilitySeries, float]]:
    return _dev_traces()


@pytest.fixture(scope="module")
def model(dev: list[tuple[AvailabilitySeries, float]]) -> AvailabilityModel:
    return fit_availability([s for s, _ in dev], [n for _, n in dev])


def _series(states: list[bool], lengths_s: list[float]) -> tuple[AvailabilitySeries, float]:
    times = np.concatenate(([0.0], np.cumsum(lengths_s)[:-1]))
    return AvailabilitySeries(times, np.array(states), "test"), float(sum(lengths_s))


def test_kaplan_meier_moves_censored_mass_to_longer_spells() -> None:
    support, w = kaplan_meier(np.array([1.0, 2.0, 3.0]), np.zeros(3, dtype=bool))
    np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 3])
    # the shortest spell censored: it only says "at least 1", its mass goes to 2 and 3
    support, w = kaplan_meier(np.array([1.0, 2.0, 3.0]), np.array([True, False, False]))
    np.testing.assert_allclose(w, [0.0, 0.5, 0.5])
    # the longest censored: the survival left stays on it (a lower bound)
    support, w = kaplan_meier(np.array([3.0, 1.0, 2.0]), np.array([True, False, False]))
    np.testing.assert_allclose(support, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 3])


def test_the_first_and_last_spells_are_censored_in_the_fit() -> None:
    # up 1 (cut at t=0), down 5, up 2, down 5, up 4, down 50 (cut at the end)
    series, end = _series([True, False, True, False, True, False], [1, 5, 2, 5, 4, 50])
    (regime,) = fit_availability([series], [end]).regimes
    assert regime.up is not None and regime.down is not None
    # up: 2 and 4 observed; the cut 1 only says ">= 1", so it weighs nothing
    np.testing.assert_allclose(regime.up.lengths_s, [1.0, 2.0, 4.0])
    np.testing.assert_allclose(regime.up.weights, [0.0, 0.5, 0.5])
    # down: 5, 5 observed, 50 cut and the longest: the survival left stays on it
    np.testing.assert_allclose(regime.down.lengths_s, [5.0, 50.0])
    np.testing.assert_allclose(regime.down.weights, [2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="after its last change"):
        fit_availability([series], [end - 50.0])  # at the last change
    with pytest.raises(ValueError, match="observed_s"):
        fit_availability([series], [])


def test_a_one_state_regime_stays_in_that_state() -> None:
    series, end = _series([True], [DAY_S])
    model = fit_availability([series], [end])
    sample = model.sample(DAY_S, np.random.default_rng(0))
    assert sample.available.tolist() == [True] and sample.times_s.tolist() == [0.0]


def test_sampling_is_a_function_of_the_generator_alone(model: AvailabilityModel) -> None:
    def draw(seed: int) -> list[AvailabilitySeries]:
        rng = np.random.default_rng(seed)
        return [model.sample(DAY_S, rng) for _ in range(20)]

    a, b, c = draw(5), draw(5), draw(6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.times_s, y.times_s)
        np.testing.assert_array_equal(x.available, y.available)
        assert x.source == y.source
    assert any(not np.array_equal(x.times_s, z.times_s) for x, z in zip(a, c, strict=True))
    for series in a:
        assert series.times_s[0] == 0.0 and np.all(series.times_s < DAY_S)
        assert series.source.startswith("generated:")
    with pytest.raises(ValueError, match="duration_s"):
        model.sample(0.0, np.random.default_rng(0))


def test_each_regime_keeps_its_trace_statistics(
    dev: list[tuple[AvailabilitySeries, float]], model: AvailabilityModel
) -> None:
    """Per fitted trace: the regime's long-run share available within 0.04 of the
    trace's, its drops per day (one per up + down cycle) within 15%, its mean spells
    within 20% (the Kaplan-Meier correction lengthens the spells of a trace cut in long
    ones: 04-22 us-east-1c's down spells by 17%); and 300 days sampled from it come
    within 0.06 and 25% of those long-run figures."""
    rng = np.random.default_rng(1)
    for (series, length_s), regime in zip(dev, model.regimes, strict=True):
        real = spell_statistics([series], [length_s])
        where = series.source
        assert regime.source == where and regime.up is not None and regime.down is not None
        cycle_s = regime.up.mean_s + regime.down.mean_s
        assert abs(regime.up_share - real.up_share) < 0.04, where
        assert math.isclose(DAY_S / cycle_s, real.drops_per_day, rel_tol=0.15), where
        assert math.isclose(regime.up.mean_s, real.mean_up_s, rel_tol=0.2), where
        assert math.isclose(regime.down.mean_s, real.mean_down_s, rel_tol=0.2), where
        one = AvailabilityModel((regime,))
        sampled = spell_statistics([one.sample(30 * DAY_S, rng) for _ in range(10)],
                                   [30 * DAY_S] * 10)  # fmt: skip
        assert abs(sampled.up_share - regime.up_share) < 0.06, where
        assert math.isclose(sampled.drops_per_day, DAY_S / cycle_s, rel_tol=0.25), where


def test_one_day_samples_look_like_one_day_windows_of_the_traces(
    dev: list[tuple[AvailabilitySeries, float]], model: AvailabilityModel
) -> None:
    """What the training env sees: 1-day windows of a uniformly drawn trace vs 1-day
    samples, pooled; and the state at t = 0 is available about as often as the time is."""
    rng = np.random.default_rng(2)
    windows = []
    for _ in range(600):
        series, length_s = dev[int(rng.integers(len(dev)))]
        offset = float(rng.uniform(0.0, length_s - DAY_S))
        shifted = series.times_s - offset
        k = max(int(np.searchsorted(shifted, 0.0, side="right")) - 1, 0)
        times = np.concatenate(([0.0], shifted[k + 1 :]))
        windows.append(AvailabilitySeries(times, series.available[k:], "window"))
    samples = [model.sample(DAY_S, rng) for _ in range(600)]
    real = spell_statistics(windows, [DAY_S] * 600)
    generated = spell_statistics(samples, [DAY_S] * 600)
    assert abs(generated.up_share - real.up_share) < 0.05
    assert math.isclose(generated.drops_per_day, real.drops_per_day, rel_tol=0.2)
    assert math.isclose(generated.mean_up_s, real.mean_up_s, rel_tol=0.25)
    assert math.isclose(generated.mean_down_s, real.mean_down_s, rel_tol=0.25)
    up_at_start = np.mean([s.available[0] for s in samples])
    assert abs(up_at_start - generated.up_share) < 0.07


def test_spell_statistics_pool_over_series() -> None:
    a, end_a = _series([True, False, True], [3600.0, 1800.0, 1800.0])
    b, end_b = _series([False], [7200.0])
    stats = spell_statistics([a, b], [end_a, end_b])
    assert stats.observed_s == 14_400.0 and stats.up_share == pytest.approx(0.375)
    assert stats.drops_per_day == pytest.approx(6.0)  # one drop in 4 h
    assert stats.mean_up_s == 2700.0 and stats.mean_down_s == 4500.0
    with pytest.raises(ValueError, match="as many"):
        spell_statistics([a], [])
