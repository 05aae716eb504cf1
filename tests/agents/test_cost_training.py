"""Training ``cost-rl``: deterministic for a seed (with evaluations during training), the
saved policy the best evaluated one, and its training logs published with it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.cost.env import prepare_world
from agents.cost.model import MAX_TIMESTEPS, MIN_TIMESTEPS, CostModel
from agents.cost.training import train


@pytest.fixture(scope="module")
def world() -> Any:
    return prepare_world("default", days=1)


def _train(world: Any, folder: Path, seed: int) -> CostModel:
    """One rollout of 2-hour episodes, evaluated at its end (before the update) and after."""
    return train(
        world,
        folder,
        timesteps=MIN_TIMESTEPS,
        seed=seed,
        episode_minutes=120,
        eval_every_rollouts=1,
    )


def test_same_seed_same_weights_and_the_best_evaluation_is_saved(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    a = _train(world, tmp_path / "a", seed=3)
    assert list(scratch.glob("SB3-*")) == []  # SB3's default logger folder is not made
    assert (tmp_path / "a" / "training" / "progress.csv").is_file()  # SB3's losses, per update
    b = _train(world, tmp_path / "b", seed=3)
    for (wa, ba), (wb, bb) in zip((*a.layers, a.head), (*b.layers, b.head), strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    meta = a.metadata
    assert meta.model_dump(exclude={"train_seconds", "model_sha256", "model_version"}) == (
        b.metadata.model_dump(exclude={"train_seconds", "model_sha256", "model_version"})
    )
    evaluations = np.load(tmp_path / "a" / "training" / "evaluations.npz")
    # during training at the rollout's end (before its update), then the final policy
    assert evaluations["timesteps"].tolist() == [4096, 4096]
    means = evaluations["results"].mean(axis=1)
    best = int(np.argmax(means))  # the first of equals, as EvalCallback keeps it
    assert meta.eval_mean_reward == pytest.approx(float(means[best]), abs=1e-3)
    assert meta.selected == ("final" if best == 1 else "best")
    assert meta.eval_at_timesteps == int(evaluations["timesteps"][best])
    assert meta.timesteps == MIN_TIMESTEPS


def test_timesteps_outside_the_bounds_are_refused_before_anything_is_written(
    world: Any, tmp_path: Path
) -> None:
    for steps in (0, MIN_TIMESTEPS - 1, MAX_TIMESTEPS + 1):
        with pytest.raises(ValueError, match="at least one PPO rollout"):
            train(world, tmp_path / "m", timesteps=steps)
    assert list(tmp_path.iterdir()) == []


def test_the_vectorised_route_trains_deterministically_with_its_monitor_log(
    world: Any, tmp_path: Path
) -> None:
    """``vector_envs``: the same rollout of 4,096 steps over 16 sub-environments of the
    vectorised env (256 steps each), episode returns in ``train-vector.monitor.csv``."""

    def once(folder: Path) -> CostModel:
        return train(world, folder, timesteps=MIN_TIMESTEPS, seed=5, episode_minutes=120,
                     eval_every_rollouts=1, vector_envs=16)  # fmt: skip

    a, b = once(tmp_path / "a"), once(tmp_path / "b")
    for (wa, ba), (wb, bb) in zip((*a.layers, a.head), (*b.layers, b.head), strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    assert a.metadata.timesteps == MIN_TIMESTEPS
    monitor = (tmp_path / "a" / "training" / "train-vector.monitor.csv").read_text()
    episodes = monitor.strip().splitlines()[2:]  # a JSON comment line and the header first
    assert len(episodes) == 16 * (256 // 120)  # every sub-environment ended 2 episodes
    scalar = _train(world, tmp_path / "s", seed=5)
    assert not np.array_equal(scalar.head[0], a.head[0])  # another route, other weights
    with pytest.raises(ValueError, match="must divide 4,096"):
        train(world, tmp_path / "m", timesteps=MIN_TIMESTEPS, vector_envs=3)
