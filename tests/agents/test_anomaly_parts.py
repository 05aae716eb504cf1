"""The parts of issue 17's detectors: the series unit, one alert per episode, the seasonal
residual's time-of-day view, and a library failure the river wrapper absorbs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.anomaly.seasonal import SeasonalResidual
from agents.anomaly.suppress import Refractory
from agents.anomaly.units import LIMIT, UnitScale


def test_unit_scale_is_exact_and_saturates_without_overflow() -> None:
    unit = UnitScale()
    assert unit.scaled(0.0) == 0.0 and unit.exponent is None
    unit.learn(0.0)
    unit.learn(3.0 * 2.0**600)  # the first non-zero value fixes the unit: 2**602
    assert unit.scaled(3.0 * 2.0**600) == 0.75
    assert unit.scaled(-1.5 * 2.0**601) == -0.75
    assert unit.scaled(sys_max := 1.7976931348623157e308) == LIMIT
    assert unit.scaled(-sys_max) == -LIMIT
    small = UnitScale()
    small.learn(0.25)
    assert small.scaled(sys_max) == LIMIT  # ldexp would overflow: saturated first


def test_refractory_passes_only_a_new_maximum_of_the_last_rows() -> None:
    gate = Refractory(3)
    raws = [0.0, 0.5, 0.4, 0.6, 0.6, 0.2, 0.1, 0.1, 0.3]
    out = []
    for row, raw in enumerate(raws):
        out.append(gate.output(row, raw))
        gate.commit(row, raw)
    assert out == [0.0, 0.5, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.3]
    assert Refractory(0).output(5, 0.1) == 0.1


def test_seasonal_residual_sees_a_usual_value_at_an_unusual_hour() -> None:
    """A daily peak at noon repeated at midnight: inside the range of every value seen,
    but far from what that hour usually holds."""
    rng = np.random.default_rng(2)
    step, day = 300.0, 288
    t = np.arange(8 * day)
    values = 10 + 8 * np.exp(-(((t % day) - day / 2) ** 2) / 200.0) + rng.normal(0, 0.2, t.size)
    odd = 7 * day + 6  # 00:30 on day 8
    values[odd : odd + 6] = values[odd - day // 2 : odd - day // 2 + 6]  # noon's values
    det = SeasonalResidual()
    scores = [
        det.score_learn_one({"value": float(v), "timestamp": i * step})
        for i, v in enumerate(values)
    ]
    assert max(scores[odd : odd + 6]) >= 0.5
    assert max(scores[5 * day : odd]) < max(scores[odd : odd + 6])


@pytest.mark.filterwarnings("error")
def test_river_gaussian_scores_a_constant_window_after_noise() -> None:
    """river's rolling variance rounds below 0 on a constant window after noise (this stream:
    row 588) and its cdf then raises TypeError on a complex sigma; the wrapper scores it 1,
    river's own score for a zero sigma."""
    from agents.registry import make_detector

    rng = np.random.default_rng(0)
    values = [float(v) for v in rng.normal(50, 20, 300)] + [0.1] * 400
    det = make_detector("river-gaussian")
    det = type(det)(window_size=288)
    scores = [det.score_learn_one({"value": v}) for v in values]
    assert all(0.0 <= s <= 1.0 and math.isfinite(s) for s in scores)
    assert scores[588] == 1.0
