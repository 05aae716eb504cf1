"""``sequence-memory`` (agents/anomaly/sequence_memory.py): its parts and one behaviour that
can fail."""

from __future__ import annotations

import math

import numpy as np

from agents.anomaly.sequence_memory import SequenceMemory, likelihood_score, unpredicted_share


def test_unpredicted_share_counts_the_bits_no_prediction_covers() -> None:
    assert unpredicted_share(10, [], 4) == 1.0
    assert unpredicted_share(10, [10], 4) == 0.0
    assert unpredicted_share(10, [8], 4) == 0.5  # bits 10, 11 of 10..13 covered by 8..11
    assert unpredicted_share(10, [12], 4) == 0.5  # bits 12, 13
    assert unpredicted_share(10, [9, 12, 20, 0], 4) == 0.0  # 10..12 and 12..13
    assert unpredicted_share(10, [6, 14], 4) == 1.0  # ends just before, starts just after


def test_likelihood_score_is_the_log_gaussian_tail() -> None:
    assert likelihood_score(0.5, 0.5, 0.1) == -math.log10(0.5) / 10  # z = 0: tail 0.5
    assert likelihood_score(1.0, 0.0, 0.1) == 1.0  # z = 10: tail below 1e-10
    assert likelihood_score(0.2, 0.1, 0.0) == likelihood_score(0.2, 0.1, 0.03)  # sd floor


def sequence(pattern: list[float], repeats: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    values = np.tile(pattern, repeats)
    return (values + rng.normal(0, 0.05, values.size)).tolist()


def test_a_novel_order_after_a_learnt_periodic_sequence_scores_higher() -> None:
    """A staircase 0, 2, 4, ..., 14 is learnt; then the same levels in reverse order (no new
    value, new transitions) must score above everything the learnt sequence scored."""
    stairs = [2.0 * i for i in range(8)]
    values = sequence(stairs, 250, seed=1) + sequence(stairs[::-1], 4, seed=2)
    det = SequenceMemory(refractory_rows=0)
    scores = [det.score_learn_one({"value": v}) for v in values]
    learnt = max(scores[1000:2000])
    assert max(scores[2000:]) > max(0.3, 2 * learnt)
