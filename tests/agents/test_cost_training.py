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
