"""The NAB scorer on hand-made cases, and the threshold sweep against a brute-force reference.

Each file here has 1,000 rows, so the probationary period is 150 rows; windows are placed
after it unless a test says otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.nab import (
    NEVER_FIRE,
    PROFILES,
    Profile,
    ScoredFile,
    optimise,
    probation_rows,
    row_values,
    scaled_sigmoid,
    score_at,
    score_corpus,
)

N = 1000
STD = PROFILES["standard"]


def file(
    hits: list[int], windows: list[tuple[int, int]], n: int = N, name: str = "f"
) -> ScoredFile:
    scores = np.zeros(n)
    scores[hits] = 1.0
    return ScoredFile(name, scores, tuple(windows))


def test_scaled_sigmoid_and_probation() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.5) == -1.0
    assert probation_rows(1000) == 150 and probation_rows(10_000) == 750


def test_perfect_is_100_and_null_is_0() -> None:
    windows = [(300, 399), (600, 699)]
    perfect = [file([300, 600], windows), file([], [], name="quiet")]
    for name, profile in PROFILES.items():
        r = optimise(perfect, name, profile)
        assert r.normalised == pytest.approx(100.0)
        assert r.raw == pytest.approx(2 * profile.tp) and (r.tp, r.fp, r.fn) == (2, 0, 0)
    never = [file([], windows), file([], [], name="quiet")]
    for name, profile in PROFILES.items():
        r = optimise(never, name, profile)
        assert r.normalised == 0.0 and r.threshold == NEVER_FIRE
        assert r.null == -profile.fn * 2


def test_constant_half_is_the_null_detector() -> None:
    windows = [(300, 399)]
    f = ScoredFile("f", np.full(N, 0.5), (windows[0],))
    assert optimise([f], "standard", STD).normalised == pytest.approx(0.0)


def test_early_detection_is_worth_more_than_late() -> None:
    w = [(300, 399)]
    early, middle, late = (score_at([file([i], w)], "s", STD, 1.0) for i in (300, 350, 399))
    assert early.raw == pytest.approx(1.0)  # first row of the window: exactly A_TP
    assert early.raw > middle.raw > late.raw > 0.0
    # y = -(R - i + 1)/W: the middle row (i = 350) has y = -0.5
    assert middle.raw == pytest.approx(scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0))


def test_only_the_first_detection_in_a_window_counts() -> None:
    w = [(300, 399)]
    one = score_at([file([320], w)], "s", STD, 1.0)
    many = score_at([file([320, 330, 340, 399], w)], "s", STD, 1.0)
    assert many.raw == pytest.approx(one.raw) and many.tp == 1 and many.fp == 0


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_false_positives_outside_windows_cost_a_fp_each(profile: str) -> None:
    p = PROFILES[profile]
    w = [(800, 899)]
    base = score_at([file([800], w)], profile, p, 1.0)
    # before any window: exactly -A_FP each, 5 of them
    fps = score_at([file([800, 200, 210, 220, 230, 240], w)], profile, p, 1.0)
    assert fps.fp == 5
    assert fps.raw - base.raw == pytest.approx(-5 * p.fp)
    # an alert that stays on for 50 rows is 50 false positives
    on = score_at([file([800, *range(400, 450)], w)], profile, p, 1.0)
    assert on.raw - base.raw == pytest.approx(-50 * p.fp)
    # in a file without windows: -A_FP each
    quiet = score_at([file([500, 600], [])], profile, p, 1.0)
    assert quiet.raw == pytest.approx(-2 * p.fp)
    # the low-FP profile charges twice the standard one
    assert PROFILES["reward_low_FP_rate"].fp == pytest.approx(2 * PROFILES["standard"].fp)


def test_alert_just_after_a_window_costs_little() -> None:
    w = [(300, 399)]
    right_after = score_at([file([300, 400], w)], "s", STD, 1.0)
    far_after = score_at([file([300, 800], w)], "s", STD, 1.0)
    y = (400 - 399) / (100 - 1)
    assert right_after.raw - 1.0 == pytest.approx(STD.fp * scaled_sigmoid(y))
    assert far_after.raw - 1.0 == pytest.approx(-STD.fp)
    assert -STD.fp < right_after.raw - 1.0 < 0.0


def test_probationary_rows_are_neither_rewarded_nor_penalised() -> None:
    w = [(300, 399)]
    assert score_at([file([10, 100, 149, 300], w)], "s", STD, 1.0).raw == pytest.approx(1.0)
    assert score_at([file([150, 300], w)], "s", STD, 1.0).raw == pytest.approx(1.0 - STD.fp)


def test_missed_window_costs_a_fn_per_profile() -> None:
    w = [(300, 399), (600, 699)]
    low_fn = PROFILES["reward_low_FN_rate"]
    r = score_at([file([300], w)], "fn", low_fn, 1.0)
    assert r.raw == pytest.approx(1.0 - 2.0) and r.fn == 1


def test_threshold_optimisation_picks_the_best_global_threshold() -> None:
    w = [(300, 399)]
    scores = np.zeros(N)
    scores[300] = 0.6  # the true positive
    scores[[160, 200, 250]] = 0.9  # three confident false positives (before the window)
    f = ScoredFile("f", scores, tuple(w))
    r = optimise([f], "standard", STD)
    # firing at 0.6 gains 2 (a miss becomes a hit) and costs 3 * 0.11
    assert r.threshold == 0.6 and r.raw == pytest.approx(1.0 - 3 * 0.11)
    strict = optimise([f], "strict", Profile(tp=1.0, fp=0.9, fn=1.0))
    assert strict.threshold == NEVER_FIRE and strict.raw == -1.0


def brute_force(files: list[ScoredFile], profile: Profile, theta: float) -> float:
    """File score at θ straight from the rules: one pass over the rows."""
    total = 0.0
    for f in files:
        values, window_of = row_values(len(f.scores), f.windows, profile)
        start = probation_rows(len(f.scores))
        best = {k: -profile.fn for k, (_, right) in enumerate(f.windows) if right >= start}
        for i in range(start, len(f.scores)):
            if f.scores[i] < theta:
                continue
            k = int(window_of[i])
            if k >= 0:
                best[k] = max(best[k], float(values[i]))
            else:
                total += float(values[i])
        total += sum(best.values())
    return total


@pytest.mark.parametrize("seed", range(5))
def test_sweep_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    files = []
    for j in range(3):
        n = int(rng.integers(300, 700))
        k = int(rng.integers(0, 3))
        starts = sorted(rng.choice(np.arange(probation_rows(n), n - 40), size=k, replace=False))
        windows: list[tuple[int, int]] = []
        for s in starts:
            if windows and s <= windows[-1][1] + 1:
                continue
            windows.append((int(s), int(min(n - 1, s + rng.integers(5, 40)))))
        scores = np.round(rng.random(n), 2)  # ties on purpose
        files.append(ScoredFile(f"f{j}", scores, tuple(windows)))
    for name, profile in PROFILES.items():
        best = optimise(files, name, profile)
        candidates = [*sorted({float(s) for f in files for s in f.scores}), NEVER_FIRE]
        raws = {t: brute_force(files, profile, t) for t in candidates}
        assert best.raw == pytest.approx(max(raws.values()), abs=1e-9)
        assert raws[best.threshold] == pytest.approx(best.raw, abs=1e-9)
        for t in candidates[::7]:
            assert score_at(files, name, profile, t).raw == pytest.approx(raws[t], abs=1e-9)


def test_score_corpus_reports_every_profile() -> None:
    res = score_corpus([file([300], [(300, 399)])])
    assert set(res) == set(PROFILES)
    assert all(math.isclose(r.normalised, 100.0) for r in res.values())


def test_bad_windows_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap"):
        ScoredFile("f", np.zeros(10), ((2, 5), (4, 8)))


def test_profiles_are_nabs_shipped_cost_matrices() -> None:
    import json

    from scenarios import data_path

    shipped = json.loads(data_path("nab", "config", "profiles.json").read_text(encoding="utf-8"))
    assert set(shipped) == set(PROFILES)
    for name, profile in PROFILES.items():
        matrix = shipped[name]["CostMatrix"]
        assert (profile.tp, profile.fp, profile.fn) == (
            matrix["tpWeight"],
            matrix["fpWeight"],
            matrix["fnWeight"],
        )
