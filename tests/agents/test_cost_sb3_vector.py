"""The SB3 adapter of a gymnasium vector env (:class:`SB3VectorEnv`): SB3's conventions
on the vectorised spot fleet, and a few hundred PPO steps on it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

from agents.cost.sb3_vector import SB3VectorEnv
from agents.cost.vector_env import SpotFleetVectorEnv
from bench import runner


@pytest.fixture(scope="module")
def world_2d() -> Any:
    return runner.prepare_run("default", policy="on-demand", days=2).world


def test_needs_same_step_autoreset(world_2d: Any) -> None:
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VectorEnv(SpotFleetVectorEnv(2, world_2d, episode_minutes=10))


def test_sb3_conventions(world_2d: Any) -> None:
    venv = SB3VectorEnv(
        SpotFleetVectorEnv(3, world_2d, episode_minutes=4, autoreset_mode="SameStep")
    )
    venv.seed(7)
    obs = venv.reset()
    assert obs.shape == (3, 26) and venv.observation_space.contains(obs[0])
    zero = np.zeros((3, 7), dtype=np.float32)
    for _ in range(3):
        obs, rewards, dones, infos = venv.step(zero)
        assert not dones.any() and rewards.dtype == np.float32 and len(infos) == 3
    last = obs
    obs, rewards, dones, infos = venv.step(zero)
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (26,)
        assert not np.array_equal(info["terminal_observation"], last[i])  # one step later
        assert info["totals"]["minutes"] == 4 and info["cost_usd"] > 0
    assert venv.get_attr("num_envs") == [3, 3, 3]
    venv.seed(7)
    first = venv.reset()
    venv.seed(7)
    np.testing.assert_array_equal(venv.reset(), first)  # the seed reaches the vector env


def test_ppo_learns_a_few_hundred_steps(world_2d: Any) -> None:
    torch.set_num_threads(1)
    envs = SpotFleetVectorEnv(4, world_2d, episode_minutes=60, autoreset_mode="SameStep")
    venv = VecMonitor(SB3VectorEnv(envs))
    ppo = PPO("MlpPolicy", venv, n_steps=64, batch_size=128, n_epochs=2, seed=0, device="cpu")
    ppo.learn(total_timesteps=512)
    assert ppo.num_timesteps == 512
    assert len(ppo.ep_info_buffer) == 4 * 2  # two 60-minute episodes per sub-env
    assert all(ep["l"] == 60 and ep["r"] < 0 for ep in ppo.ep_info_buffer)
