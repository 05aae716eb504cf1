"""``opsbench bench cost-rl-cv``: held-out traces never reach training, the summary's
arithmetic, and one small training + replay end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opsbench_testing import run_main

from agents.cost.env import SpotFleetEnv, training_traces
from agents.cost.model import MIN_TIMESTEPS
from bench import cost_rl_cv
from bench.cost import TRACE_SETS
from bench.cost_rl_cv import FoldTask, best_heuristic, run_task, summarise, tasks

HELD = frozenset(TRACE_SETS["preempt-p3"])


def test_held_out_traces_are_never_drawn() -> None:
    every, kept = training_traces(), training_traces(HELD)
    assert len(kept) == len(every) - 3
    held = [s for s in every if not any(s is k for k in kept)]
    env = SpotFleetEnv(scenario="default", days=1, held_out_traces=HELD)
    assert env.availability_traces == kept
    for series in held:  # none of the held-out series is among those sampled
        assert all(series is not k for k in env.availability_traces)
    from agents.cost.vector_env import SpotFleetVectorEnv

    vector = SpotFleetVectorEnv(2, env.world, held_out_traces=HELD)
    assert vector.single.availability_traces == kept
    with pytest.raises(ValueError, match=r"not dev traces: nope\.json"):
        training_traces(frozenset({"nope.json"}))
    from agents.cost.env import _dev_traces

    with pytest.raises(ValueError, match="none is left"):
        training_traces(frozenset(_dev_traces()))


def _row(trace_set: str, policy: str, cost: float, slo: float, seed: int | None = None) -> Any:
    return {"trace_set": trace_set, "policy": policy, "seed": seed, "cost_usd": cost,
            "slo_attainment": slo}  # fmt: skip


def test_the_best_heuristic_is_the_cheapest_on_the_line_and_savings_are_against_it() -> None:
    rows = [
        _row("s", "spot-greedy", 100.0, 0.9995),
        _row("s", "price-capacity", 90.0, 0.998),  # cheaper but under the line
        _row("s", "uniform-progress", 110.0, 1.0),
        _row("s", "cost-rl", 95.0, 0.9999, 0),
        _row("s", "cost-rl", 99.0, 0.9993, 1),
    ]
    assert best_heuristic(rows[:3])["policy"] == "spot-greedy"
    assert best_heuristic(rows[1:2])["policy"] == "price-capacity"  # none on it: best SLO
    result = summarise(rows, ["s"])
    (row,) = result["sets"]
    assert row["best_heuristic"] == "spot-greedy" and row["cost_rl_usd"] == [95.0, 99.0]
    assert row["saving_mean"] == pytest.approx(0.03) and row["saving_sd"] == pytest.approx(0.02)
    assert result["met"]  # 3% at SLO >= 99.9% on every seed
    rows[-1] = _row("s", "cost-rl", 99.0, 0.998, 1)
    assert not summarise(rows, ["s"])["met"]  # one seed under the line


def test_training_jobs_come_first_one_per_set_and_seed() -> None:
    todo = tasks(["avail-us-east-1", "preempt-p3"], 2, MIN_TIMESTEPS, 1.0)
    learned = [(t.trace_set, t.seed) for t in todo if t.policy == "cost-rl"]
    assert learned == [("avail-us-east-1", 0), ("avail-us-east-1", 1), ("preempt-p3", 0),
                       ("preempt-p3", 1)]  # fmt: skip
    assert [t.policy for t in todo[4:]] == [*cost_rl_cv.HEURISTICS] * 2
    vector = tasks(["preempt-p3"], 1, MIN_TIMESTEPS, 1.0, 32)
    assert [(t.policy, t.vector_envs) for t in vector][:2] == [("cost-rl", 32),
                                                             ("spot-greedy", None)]  # fmt: skip


def test_a_fold_trains_without_its_traces_and_replays_on_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[frozenset[str]] = []
    original = SpotFleetEnv.__init__

    def spy(self: SpotFleetEnv, *args: Any, **kwargs: Any) -> None:
        seen.append(kwargs.get("held_out_traces", frozenset()))
        original(self, *args, **kwargs)

    monkeypatch.setattr(SpotFleetEnv, "__init__", spy)
    task = FoldTask(trace_set="preempt-p3", policy="cost-rl", seed=0, timesteps=MIN_TIMESTEPS,
                    days=0.05)  # fmt: skip
    row = run_task(task)
    assert seen and all(held == HELD for held in seen)  # training and evaluation envs
    assert row["policy"] == "cost-rl" and row["trace_set"] == "preempt-p3"
    assert row["cost_usd"] > 0 and 0.0 <= row["slo_attainment"] <= 1.0
    assert np.isfinite(row["eval_mean_reward"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--set", "nope"], "'nope'"), (["--timesteps", "10"], "--timesteps"),
     (["--days", "0"], "--days"), (["--seeds", "0"], "--seeds"),
     (["--vector-envs", "3"], "does not divide"),
     (["--sizing", "predictive", "--vector-envs", "32"], "--sizing predictive")],
)  # fmt: skip
def test_bad_options_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code, out, err = run_main(capsys, ["bench", "cost-rl-cv", *args])
    assert code != 0 and out == "" and needle in err and len(err.strip().splitlines()) == 1


def test_the_command_prints_each_held_out_set_and_the_verdict(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        _row("preempt-p3", "spot-greedy", 380.8, 0.99977),
        _row("preempt-p3", "price-capacity", 398.4, 0.99977),
        _row("preempt-p3", "uniform-progress", 457.9, 0.99965),
        _row("preempt-p3", "cost-rl", 378.5, 0.99977, 0),
        _row("preempt-p3", "cost-rl", 379.4, 0.99965, 1),
    ]
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"rows": rows, **summarise(rows, ["preempt-p3"])}

    monkeypatch.setattr(cost_rl_cv, "cost_rl_cv", fake)
    args = ["bench", "cost-rl-cv", "--executor", "serial", "--set", "preempt-p3", "--seeds", "2"]
    code, out, err = run_main(capsys, args)
    assert code == 0, err
    assert calls[0]["sets"] == ("preempt-p3",) and calls[0]["seeds"] == 2
    assert "preempt-p3" in out and "spot-greedy" in out and "378.95" in out  # mean of 2
    assert "(target >= 3% at SLO >= 99.9%): not met" in " ".join(out.split())


def test_another_scenario_is_carried_by_every_task_and_replayed() -> None:
    todo = tasks(["preempt-r5"], 2, MIN_TIMESTEPS, 0.1, scenario="right-sizing")
    assert {t.scenario for t in todo} == {"right-sizing"}
    row = run_task(FoldTask(trace_set="preempt-r5", policy="spot-greedy", days=0.1,
                            scenario="right-sizing"))  # fmt: skip
    default = run_task(FoldTask(trace_set="preempt-r5", policy="spot-greedy", days=0.1))
    assert row["cost_usd"] != default["cost_usd"]  # seven instance types, not one


def test_a_scenario_without_three_spot_azs_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, ["bench", "cost-rl-cv", "--scenario", "nasa-diurnal"])
    assert code == 2 and out == ""
    assert "--scenario" in err and "three spot AZs" in err


def test_under_predictive_sizing_every_policy_runs_composed_and_cost_rl_trains_under_it(
    default_scaling_models: Path,
) -> None:
    """``--sizing predictive``: the heuristics replay as ``predictive+<mix>`` at the
    sizing quantile, cost-rl trains on feature version 2 without the set and replays as
    ``predictive+cost-rl``; the scaling model is read from the registry."""
    common = {"trace_set": "preempt-p3", "days": 0.05, "models_dir": str(default_scaling_models)}
    todo = tasks(["preempt-p3"], 1, MIN_TIMESTEPS, 0.05, sizing="predictive")
    assert {(t.sizing, t.sizing_quantile) for t in todo} == {("predictive", 0.9)}
    sized = run_task(FoldTask(policy="spot-greedy", sizing="predictive", **common))
    own = run_task(FoldTask(policy="spot-greedy", **common))
    assert sized["cost_usd"] != own["cost_usd"]  # the predictive plan, not the controller's
    learned = run_task(
        FoldTask(policy="cost-rl", seed=0, timesteps=MIN_TIMESTEPS, sizing="predictive", **common)
    )
    assert learned["cost_usd"] > 0 and np.isfinite(learned["eval_mean_reward"])
