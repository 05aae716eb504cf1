"""``--availability traces|generated`` of ``opsbench train cost`` and ``opsbench bench
cost-rl-cv``: the option reaches :func:`agents.cost.training.train`, and the held-out set
is still what the policy is replayed on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opsbench_testing import assert_one_line_error, run_main

from agents.cost import training
from agents.cost.model import MIN_TIMESTEPS
from bench import cost_rl_cv
from bench.cost import TRACE_SETS
from bench.cost_rl_cv import FoldTask, run_task, summarise, tasks


class Stop(Exception):
    """Raised by the fake trainer once it has seen its arguments."""


def test_the_folds_carry_the_option_to_training(monkeypatch: pytest.MonkeyPatch) -> None:
    todo = tasks(["preempt-p3"], 2, MIN_TIMESTEPS, 1.0, None, "generated")
    assert [t.availability for t in todo if t.policy == "cost-rl"] == ["generated"] * 2
    assert tasks(["preempt-p3"], 1, MIN_TIMESTEPS, 1.0)[0].availability == "traces"
    seen: list[dict[str, Any]] = []

    def fake_train(world: Any, folder: Path, **kwargs: Any) -> Any:
        seen.append(kwargs)
        raise Stop

    monkeypatch.setattr(training, "train", fake_train)
    for availability in ("generated", "traces"):
        task = FoldTask(trace_set="preempt-p3", policy="cost-rl", seed=0,
                        timesteps=MIN_TIMESTEPS, days=0.05, availability=availability)  # fmt: skip
        with pytest.raises(Stop):
            run_task(task)
    assert [s["availability"] for s in seen] == ["generated", "traces"]
    assert all(s["held_out_traces"] == frozenset(TRACE_SETS["preempt-p3"]) for s in seen)


def test_bench_cost_rl_cv_passes_the_option_and_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        {"trace_set": "preempt-p3", "policy": p, "seed": s, "cost_usd": c, "slo_attainment": 1.0}
        for p, s, c in (("spot-greedy", None, 380.0), ("price-capacity", None, 390.0),
                        ("uniform-progress", None, 450.0), ("cost-rl", 0, 379.0))
    ]  # fmt: skip
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"rows": rows, **summarise(rows, ["preempt-p3"])}

    monkeypatch.setattr(cost_rl_cv, "cost_rl_cv", fake)
    base = ["bench", "cost-rl-cv", "--executor", "serial", "--set", "preempt-p3", "--seeds", "1"]
    code, out, err = run_main(capsys, [*base, "--availability", "generated"])
    assert code == 0, err
    assert calls[-1]["availability"] == "generated" and "generated availability" in out
    code, out, err = run_main(capsys, base)
    assert code == 0, err
    assert calls[-1]["availability"] == "traces" and "generated" not in out
    code, out, err = run_main(capsys, [*base, "--availability", "nope"])
    assert code != 0 and out == "" and "--availability" in err
    assert len(err.strip().splitlines()) == 1


def test_train_cost_passes_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def fake_train(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["availability"])
        raise Stop

    monkeypatch.setattr(training, "train", fake_train)
    base = ["train", "cost", "--scenario", "default", "--timesteps", str(MIN_TIMESTEPS),
            "--models", str(tmp_path / "models")]  # fmt: skip
    for args in ([*base, "--availability", "generated"], base):
        with pytest.raises(Stop):
            run_main(capsys, args)
    assert seen == ["generated", "traces"]
    code, out, err = run_main(capsys, [*base, "--availability", "generated", "--candidates", "2"])
    assert_one_line_error(code, out, err, "--availability", "--candidates")


def test_training_builds_every_env_with_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.cost.env import SpotFleetEnv, prepare_world

    built: list[str] = []
    original = SpotFleetEnv.__init__

    def spy(self: SpotFleetEnv, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        built.append(self.availability)

    monkeypatch.setattr(SpotFleetEnv, "__init__", spy)

    def no_learning(*args: Any, **kwargs: Any) -> Any:
        raise Stop  # every env is built by then

    monkeypatch.setattr(training, "_ppo", no_learning)
    with pytest.raises(Stop):
        training.train(prepare_world("default", days=1), tmp_path / "m", timesteps=MIN_TIMESTEPS,
                       episode_minutes=60, availability="generated")  # fmt: skip
    assert built == ["generated"] * (training.N_ENVS + 1)  # training and evaluation envs
