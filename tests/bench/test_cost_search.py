"""``opsbench train cost --candidates K``: candidates trained on an executor, the best on
the validation episodes kept, the selection never playing the scenario's replay, and the
CLI making the same choice as the search (the executors' equality is the sweep tests')."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.cost import env as env_module
from bench import cost_search
from bench.cost_search import Candidate, best_of, search
from agents.cost.model import MIN_TIMESTEPS
from opsbench_testing import assert_one_line_error, run_main


def candidate(seed: int, reward: float) -> Candidate:
    return Candidate(seed=seed, validation_reward=reward, train_seconds=1.0, files={})


def test_the_best_validation_reward_wins_and_ties_go_to_the_lower_seed() -> None:
    assert best_of([candidate(0, -5.0), candidate(1, -3.0), candidate(2, -4.0)]).seed == 1
    assert best_of([candidate(3, -3.0), candidate(1, -3.0)]).seed == 1


@pytest.fixture(scope="module")
def serial_candidates() -> list[Candidate]:
    return search("default", seeds=[0, 1], timesteps=MIN_TIMESTEPS, executor_name="serial",
                  workers=1)  # fmt: skip


def test_the_selection_never_plays_the_replay(
    serial_candidates: list[Candidate], monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[str] = []
    real_init = env_module.SpotFleetEnv.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        modes.append(kwargs.get("mode", "train"))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(env_module.SpotFleetEnv, "__init__", spy)
    again = cost_search.train_candidate(
        cost_search.CandidateTask(scenario="default", seed=0, timesteps=MIN_TIMESTEPS)
    )
    assert modes and set(modes) == {"train"}
    # deterministic for a seed: the same validation reward as in the search
    assert again.validation_reward == serial_candidates[0].validation_reward
    assert {"metadata.json", "model.zip"} <= set(again.files)


def test_train_cost_keeps_the_best_candidate_and_registers_its_seed(
    serial_candidates: list[Candidate], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = run_main(
        capsys,
        ["train", "cost", "--scenario", "default", "--timesteps", str(MIN_TIMESTEPS),
         "--candidates", "2", "--executor", "serial", "--models",
         str(tmp_path / "models"), "--json"],
    )  # fmt: skip
    assert code == 0, stderr
    record = json.loads(stdout)
    rewards = {str(c.seed): round(c.validation_reward, 4) for c in serial_candidates}
    assert record["search"]["validation_rewards"] == rewards  # the CLI's search == search()
    chosen = best_of(serial_candidates).seed
    assert record["search"]["chosen_seed"] == chosen
    assert record["metrics"]["validation_reward"] == rewards[str(chosen)]


def test_tensorboard_with_several_candidates_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = run_main(
        capsys,
        ["train", "cost", "--scenario", "default", "--timesteps", str(MIN_TIMESTEPS),
         "--candidates", "2", "--tensorboard", str(tmp_path / "tb"), "--models",
         str(tmp_path / "models")],
    )  # fmt: skip
    assert_one_line_error(code, stdout, stderr, "--tensorboard", "--candidates")
