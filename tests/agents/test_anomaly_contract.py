"""The streaming detector contract (river's AnomalyDetector), for every registered detector.

score_one is pure; learn_one copies what it keeps (no aliasing with the caller's data);
scores are in [0, 1], deterministic, causal (a prefix scores the same alone or as part of a
longer stream), and score_learn_one equals score_one followed by learn_one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.anomaly import DetectorBank, NoveltyEnsemble
from agents.registry import DETECTORS, make_detector
from sim.errors import InputError

NAMES = sorted(DETECTORS)
STEP_S = 300.0


def stream(n: int = 900, seed: int = 3) -> list[dict[str, float]]:
    """A daily pattern with noise, a level shift at 2/3 and a spike near the end."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 10 + 5 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.5, n)
    values[2 * n // 3 :] += 20
    values[n - 20] += 80
    return [{"value": float(v), "timestamp": 1.4e9 + i * STEP_S} for i, v in enumerate(values)]


def run(name: str, xs: list[dict[str, float]]) -> list[float]:
    det = make_detector(name)
    return [det.score_learn_one(x) for x in xs]


@pytest.mark.parametrize("name", NAMES)
def test_names_have_no_underscore(name: str) -> None:
    assert "_" not in name and make_detector(name).name == name


@pytest.mark.parametrize("name", NAMES)
def test_scores_in_unit_interval_and_the_anomalies_stand_out(name: str) -> None:
    scores = run(name, stream())
    assert all(0.0 <= s <= 1.0 and math.isfinite(s) for s in scores)
    # the spike scores above the median of the normal stretch
    assert scores[-20] > float(np.median(scores[300:580]))


@pytest.mark.parametrize("name", NAMES)
def test_score_one_is_pure(name: str) -> None:
    xs = stream()
    det = make_detector(name)
    probe = {"value": 1e6, "timestamp": xs[0]["timestamp"]}
    scores = []
    for x in xs:
        first = det.score_one(x)
        assert det.score_one(x) == first  # same answer twice
        det.score_one(probe)  # scoring anything else changes nothing
        scores.append(first)
        det.learn_one(x)
    assert scores == run(name, xs)


@pytest.mark.parametrize("name", NAMES)
def test_score_learn_one_is_score_then_learn(name: str) -> None:
    xs = stream()
    det = make_detector(name)
    separate = []
    for x in xs:
        separate.append(det.score_one(x))
        det.learn_one(x)
    assert separate == run(name, xs)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_clone_is_fresh(name: str) -> None:
    xs = stream()
    det = make_detector(name)
    first = [det.score_learn_one(x) for x in xs]
    assert first == run(name, xs)
    assert [det.clone().score_learn_one(x) for x in xs[:1]] == first[:1]
    twin = det.clone()
    assert [twin.score_learn_one(x) for x in xs] == first


@pytest.mark.parametrize("name", NAMES)
def test_no_look_ahead(name: str) -> None:
    xs = stream()
    full = run(name, xs)
    for cut in (200, 600, 881):
        assert run(name, xs[:cut]) == full[:cut]


@pytest.mark.parametrize("name", NAMES)
def test_no_aliasing_with_inputs(name: str) -> None:
    xs = stream()
    det = make_detector(name)
    mutable = [dict(x) for x in xs]
    scores = []
    for x in mutable:
        scores.append(det.score_learn_one(x))
        x["value"] = -1e9  # the caller reuses its buffer
        x["timestamp"] = 0.0
    later = stream(50, seed=9)
    reference = make_detector(name)
    for x in xs:
        reference.learn_one(x)
    assert [det.score_learn_one(x) for x in later] == [reference.score_learn_one(x) for x in later]
    assert scores == run(name, xs)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_value_is_rejected(name: str) -> None:
    det = make_detector(name)
    with pytest.raises(ValueError):
        det.learn_one({"value": math.nan})


def test_bank_keeps_state_per_series() -> None:
    bank = DetectorBank(NoveltyEnsemble)
    xs, ys = stream(), stream(seed=5)
    got_x = [bank.score_learn_one("a", x) for x in xs]
    got_y = [bank.score_learn_one("b", y) for y in ys]
    assert len(bank) == 2
    assert got_x == run("novelty-ensemble", xs) and got_y == run("novelty-ensemble", ys)


def test_novelty_ensemble_alerts_once_per_episode() -> None:
    scores = run("novelty-ensemble", stream())
    shift = 2 * len(scores) // 3
    # after one full day (the range of the daily pattern has been seen)
    alerts = [i for i, s in enumerate(scores) if s >= 0.5 and i >= 288]
    assert alerts and alerts[0] == shift  # at the onset of the level shift, not later
    assert len([i for i in alerts if shift <= i < shift + 144]) == 1


def test_unknown_detector_is_an_input_error() -> None:
    allowed = "allowed: novelty-ensemble, ops-ensemble, robust-spike, windowed-gaussian"
    with pytest.raises(InputError, match=allowed):
        make_detector("nope")


def test_robust_spike_alerts_once_on_a_jump_and_ignores_noise() -> None:
    from agents.anomaly.spike import RobustSpike

    detector = RobustSpike()
    rng = np.random.default_rng(4)
    scores = [detector.score_learn_one({"value": 100.0 + v}) for v in rng.normal(0, 2, 200)]
    assert max(scores) == 0.0  # noise around a level: no alert
    jump = [detector.score_learn_one({"value": 180.0}) for _ in range(5)]
    assert jump[0] >= 0.5  # the first minute of the jump
    assert jump[1:] == [0.0] * 4  # one alert per episode
