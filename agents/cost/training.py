"""Training ``cost-rl`` offline: PPO (stable-baselines3) on ``opsbench/SpotFleet-v0``.

Episodes are one-day windows sampled as :class:`~agents.cost.env.SpotFleetEnv` describes
(the scenario's history load; random dev availability traces and price series at random
offsets), four environments per rollout. Torch runs on one thread: the network is tiny,
the environment is the cost, and the machine's cores are shared.

Hyper-parameters (fixed; chosen on the default scenario's history): a 64x64 tanh MLP for
the policy and the value function, 1,024 steps per environment per update, batches of
256, 5 epochs, gamma 0.99, learning rate 3e-4, initial log-std -1 (actions start near
the zero action, ``spot-greedy``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from agents.cost.env import SLO_PENALTY, SpotFleetEnv
from agents.cost.model import CostModel, save_model
from agents.cost.view import n_features
from sim.world import World

DEFAULT_TIMESTEPS = 300_000
N_ENVS = 4
NET_ARCH = (64, 64)


def train(
    world: World,
    folder: Path,
    *,
    timesteps: int = DEFAULT_TIMESTEPS,
    seed: int = 0,
    slo_penalty: float = SLO_PENALTY,
    progress: Callable[[int, int], None] | None = None,
) -> CostModel:
    """Train PPO on ``world``'s scenario and save it in ``folder``; ``progress(done,
    total)`` is called as timesteps complete."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    torch.manual_seed(seed)

    def make(i: int) -> Callable[[], SpotFleetEnv]:
        return lambda: SpotFleetEnv(world, mode="train", slo_penalty=slo_penalty)

    venv = DummyVecEnv([make(i) for i in range(N_ENVS)])
    venv.seed(seed)

    class Progress(BaseCallback):
        def _on_step(self) -> bool:
            if progress is not None and self.num_timesteps % 2048 < N_ENVS:
                progress(min(self.num_timesteps, timesteps), timesteps)
            return True

    ppo = PPO(
        "MlpPolicy",
        venv,
        learning_rate=3e-4,
        n_steps=1024,
        batch_size=256,
        n_epochs=5,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        ent_coef=0.0,
        policy_kwargs={
            "net_arch": {"pi": list(NET_ARCH), "vf": list(NET_ARCH)},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": -1.0,
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )
    started = time.perf_counter()
    if timesteps > 0:
        ppo.learn(total_timesteps=timesteps, callback=Progress())
    if progress is not None:
        progress(timesteps, timesteps)
    env0 = cast(SpotFleetEnv, venv.envs[0])
    meta: dict[str, Any] = {
        "obs_dim": n_features(env0.layout),
        "n_spot": len(env0.layout.spot_slots),
        "act_dim": 4 + len(env0.layout.spot_slots),
        "net_arch": NET_ARCH,
        "scenario": world.scenario.id,
        "timesteps": int(timesteps),
        "seed": int(seed),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    return save_model(ppo, folder, meta)


def evaluate_in_env(world: World, act: Callable[[np.ndarray], np.ndarray]) -> dict[str, float]:
    """Run ``act`` over the whole replay in the fast model (replay mode)."""
    env = SpotFleetEnv(world, mode="replay")
    obs, _ = env.reset(seed=0)
    done = False
    info: dict[str, Any] = {}
    while not done:
        obs, _, term, trunc, info = env.step(act(obs))
        done = term or trunc
    episode: dict[str, float] = info["totals"]
    return episode
