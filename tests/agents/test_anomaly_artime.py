"""``adaptive-resonance`` (agents/anomaly/artime.py): its parts and one behaviour that can fail."""

from __future__ import annotations

import numpy as np

from agents.anomaly.artime import AdaptiveResonance, FuzzyArt, haar


def test_haar_average_and_half_differences() -> None:
    assert haar([1.0, 0.0, 0.0, 0.0]) == [0.25, 0.25, 0.5, 0.0]
    assert haar([0.5, 0.5]) == [0.5, 0.0]


def test_fuzzy_art_resonates_within_vigilance_and_learns_by_intersection() -> None:
    art = FuzzyArt(2, max_categories=2)
    a = art.code([0.2, 0.8])
    assert art.search(a, 0.9) == (-1, 0.0, False)  # nothing learnt: a new category
    art.learn(a, -1)
    near = art.code([0.25, 0.8])  # the box grows by 0.05 of 2 features: match 0.975
    category, match, resonates = art.search(near, 0.9)
    assert (category, resonates) == (0, True) and abs(match - 0.975) < 1e-12
    art.learn(near, category)
    # the category is now the box [0.2, 0.25] x [0.8, 0.8]: inside it, match 1 - size / 2
    assert abs(art.search(art.code([0.22, 0.8]), 0.9)[1] - 0.975) < 1e-12
    category, match, resonates = art.search(art.code([0.9, 0.1]), 0.9)
    assert (category, resonates) == (-1, False) and abs(match - 0.3) < 1e-12


def periodic(rows: int, period: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    return (
        10.0 + 4.0 * np.sign(np.sin(2 * np.pi * t / period)) + rng.normal(0, 0.1, rows)
    ).tolist()


def test_a_novel_pattern_after_a_learnt_periodic_one_scores_higher() -> None:
    """A square wave of period 16 rows is learnt; then the same values at period 4 (a new
    shape inside the known range) must raise a score above everything the learnt pattern
    scored after warm-up."""
    values = periodic(2000, 16, seed=1) + periodic(64, 4, seed=2)
    det = AdaptiveResonance(refractory_rows=0)
    scores = [det.score_learn_one({"value": v}) for v in values]
    learnt = max(scores[1000:2000])
    assert max(scores[2000:]) > max(0.1, 2 * learnt)


def test_sliding_min_forgets_rows_older_than_its_period() -> None:
    from agents.anomaly.artime import SlidingMin

    trend = SlidingMin(3)
    for row, v in enumerate([0.9, 0.5, 0.8, 0.95]):
        assert trend.value(row, 1.0) == min([1.0, 0.9, 0.5, 0.8][max(0, row - 2) : row + 1])
        trend.record(row, v)
    assert trend.value(4, 1.0) == 0.5  # rows 1..3
    trend.record(4, 0.99)
    assert trend.value(5, 1.0) == 0.8  # rows 2..4: row 1's 0.5 is forgotten
    assert SlidingMin(3).value(0, 0.7) == 0.7
