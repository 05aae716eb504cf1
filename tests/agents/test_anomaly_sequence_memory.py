"""``sequence-memory`` (agents/anomaly/sequence_memory.py): its parts, behaviours that can
fail, and its time-of-day option."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from agents.anomaly.sequence_memory import SequenceMemory, likelihood_score, unpredicted_share
from bench.anomaly_cv import epoch_seconds
from bench.nab_data import read_series
from scenarios import data_path


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


MIDNIGHT_S = 1_399_939_200.0  # 2014-05-13 00:00:00 UTC
STEP_S = 300.0


def square_days(days: int, high_from_h: float, last_high_from_h: float) -> list[dict[str, float]]:
    """5-minute rows, 0 at night and 10 by day (from ``high_from_h`` to 20:00 UTC); on the last
    day the high starts at ``last_high_from_h`` instead."""
    rows = []
    for i in range(days * 288):
        hour = (i % 288) * STEP_S / 3600.0
        start = last_high_from_h if i >= (days - 1) * 288 else high_from_h
        value = 10.0 if start <= hour < 20.0 else 0.0
        rows.append({"value": value, "timestamp": MIDNIGHT_S + i * STEP_S})
    return rows


def test_a_daily_step_at_the_wrong_time_of_day_stands_out_only_with_the_time_of_day() -> None:
    """Days low, high from 08:00 to 20:00; on the last day the rise comes at 03:00. The same
    rise after the same values was learnt (and every follower is predicted: min_share 0), so
    without the time of day nothing is new; with hourly buckets the 03:00 context never saw a
    rise."""
    xs = square_days(20, high_from_h=8.0, last_high_from_h=3.0)
    last_day = slice(19 * 288, 20 * 288)

    def scores(day_buckets: int) -> list[float]:
        det = SequenceMemory(day_buckets=day_buckets, min_share=0.0, refractory_rows=0)
        return [det.score_learn_one(x) for x in xs]

    without, with_day = scores(0), scores(24)
    assert max(with_day[last_day]) > 0.2
    assert max(with_day[last_day]) > 5 * max(without[last_day])
    assert max(with_day[10 * 288 : 19 * 288]) < 0.1  # the learnt days stay quiet


def nab_rows(key: str) -> list[dict[str, float]]:
    series = read_series(data_path("nab", "data", key), key, [])
    stamps = epoch_seconds(series).tolist()
    return [
        {"value": v, "timestamp": t} for v, t in zip(series.values.tolist(), stamps, strict=True)
    ]


BEFORE_THE_OPTION = {"buckets": 130, "min_share": 0.0, "refractory_rows": 144}
"""The defaults before the time-of-day option (commit b3a29fa)."""


def test_without_the_time_of_day_scores_are_those_of_the_detector_before_the_option() -> None:
    """On a NAB file, ``day_buckets=0`` with the defaults of then reproduces what the detector
    printed before the option existed (commit b3a29fa: 54 non-zero rows, their sum, the rows
    above 0.1), and ignores the timestamps."""
    xs = nab_rows("realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv")
    det = SequenceMemory(day_buckets=0, **BEFORE_THE_OPTION)
    scores = [det.score_learn_one(x) for x in xs]
    assert sum(1 for s in scores if s > 0) == 54
    assert math.fsum(scores) == pytest.approx(5.485076259512554, abs=1e-9)
    assert [i for i, s in enumerate(scores) if s > 0.1] == [
        861,
        1626,
        2394,
        2395,
        2396,
        2731,
        2732,
        2733,
        2734,
    ]
    shifted = SequenceMemory(day_buckets=0, **BEFORE_THE_OPTION)
    assert [shifted.score_learn_one({**x, "timestamp": x["timestamp"] + 7 * 3600}) for x in xs] == (
        scores
    )


def test_the_time_of_day_changes_scores_on_a_nab_file_with_a_daily_pattern() -> None:
    xs = nab_rows("artificialWithAnomaly/art_daily_jumpsup.csv")
    plain, daily = SequenceMemory(day_buckets=0), SequenceMemory(day_buckets=24)
    assert [plain.score_learn_one(x) for x in xs] != [daily.score_learn_one(x) for x in xs]


def test_without_a_timestamp_row_i_is_at_i_times_step_s() -> None:
    xs = square_days(3, high_from_h=8.0, last_high_from_h=3.0)
    stamped = SequenceMemory(day_buckets=6, step_s=STEP_S, refractory_rows=0)
    bare = SequenceMemory(day_buckets=6, step_s=STEP_S, refractory_rows=0)
    assert [stamped.score_learn_one({**x, "timestamp": i * STEP_S}) for i, x in enumerate(xs)] == [
        bare.score_learn_one({"value": x["value"]}) for x in xs
    ]


def test_params_round_trip_through_get_params() -> None:
    det = SequenceMemory(day_buckets=6, step_s=60.0, order=3)
    params = det.get_params()
    assert params["day_buckets"] == 6 and params["step_s"] == 60.0
    assert SequenceMemory(**params).get_params() == params
    assert det.clone().get_params() == params
    assert SequenceMemory().get_params()["day_buckets"] == 24  # the whole-split pick


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"day_buckets": -1}, "day_buckets"),
        ({"day_buckets": 86_401}, "day_buckets"),
        ({"day_buckets": 2.5}, "day_buckets"),
        ({"day_buckets": True}, "day_buckets"),
        ({"step_s": 0.0}, "step_s"),
        ({"step_s": float("nan")}, "step_s"),
    ],
)
def test_bad_time_of_day_params_are_rejected(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SequenceMemory(**params)


def test_a_non_finite_timestamp_is_rejected_with_the_time_of_day() -> None:
    det = SequenceMemory(day_buckets=24)
    with pytest.raises(ValueError, match="timestamp"):
        det.learn_one({"value": 1.0, "timestamp": float("inf")})


def test_the_time_of_day_is_read_from_the_timestamp_modulo_a_day() -> None:
    """Timestamps moved by whole days score the same. With 5 hours of rows missing on day 3,
    the timestamps keep the clock (the rises stay at 08:00) where row counting would not."""
    xs = square_days(6, high_from_h=8.0, last_high_from_h=8.0)

    def scores(rows: list[dict[str, float]]) -> list[float]:
        det = SequenceMemory(day_buckets=24, step_s=STEP_S, refractory_rows=0)
        return [det.score_learn_one(x) for x in rows]

    moved = [{**x, "timestamp": x["timestamp"] + 3 * 86_400.0} for x in xs]
    assert scores(moved) == scores(xs)
    gap = xs[: 2 * 288] + xs[2 * 288 + 60 :]
    assert scores(gap) != scores([{"value": x["value"]} for x in gap])


def test_nab_timestamps_are_read_as_utc_whatever_the_machine_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NAB's timestamps carry no zone: the detector's time of day must not depend on TZ."""
    key = "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv"
    series = read_series(data_path("nab", "data", key), key, [])
    utc = epoch_seconds(series)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        shifted = epoch_seconds(series)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert np.array_equal(utc, shifted)
    first = series.timestamps[0]
    assert utc[0] == (first - datetime(1970, 1, 1)).total_seconds()
