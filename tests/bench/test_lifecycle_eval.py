"""The lifecycle benchmark's windows and the replay's --lifecycle modes."""

from __future__ import annotations

from bench.lifecycle_eval import after_hour, window
from bench.lifecycle_report import window_cost_usd
from bench.runner import load, with_lifecycle


def test_window_sums_the_hours_from_the_start_hour() -> None:
    hourly = {"cost_usd": [1.0, 2.0, 4.0], "minutes": [60, 60, 30], "slo_ok_minutes": [60, 59, 30]}
    assert window(hourly, 1) == {"slo_attainment": round(89 / 90, 6), "cost_usd": 6.0, "hours": 2}
    assert window(hourly, 3)["slo_attainment"] is None


def test_the_after_window_starts_at_the_first_whole_hour_after_the_promotion() -> None:
    def block(*stages: tuple[str, int]) -> dict:
        rollout = {"stages": [{"stage": s, "t_min": t} for s, t in stages]}
        return {"models": [{"rollouts": [rollout]}]}

    assert after_hour(block(("shadow", 10), ("promoted", 61)), shift_min=0) == 2
    assert after_hour(block(("shadow", 10), ("rolled back", 130)), shift_min=None) == 3
    assert after_hour(block(("shadow", 10), ("rolled back", 130)), shift_min=125) == 3
    assert after_hour({"models": []}, shift_min=None) is None


def test_window_cost_splits_a_shared_hour_by_minutes() -> None:
    by_hour = {0: 60.0, 1: 120.0}
    assert window_cost_usd(by_hour, 30, 90) == 30.0 + 60.0
    assert window_cost_usd(by_hour, 0, 0) == 0.0


def test_lifecycle_modes() -> None:
    scenario, _ = load("bad-model")
    assert scenario.lifecycle is not None and scenario.lifecycle.scaling is not None
    assert with_lifecycle(scenario, "on") is scenario
    assert with_lifecycle(scenario, "off").lifecycle is None
    monitored = with_lifecycle(scenario, "monitor").lifecycle
    assert monitored is not None and monitored.scaling is not None
    assert monitored.scaling.retrain_on_drift is False
    assert monitored.scaling.injected_challengers == []
    assert monitored.scaling.rollout == scenario.lifecycle.scaling.rollout
