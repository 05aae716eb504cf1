"""Training ``cost-rl`` offline: PPO (stable-baselines3) on ``opsbench/SpotFleet-v0``.

Episodes are one-day windows sampled as :class:`~agents.cost.env.SpotFleetEnv` describes
(the scenario's history load; random dev availability traces, or with
``availability="generated"`` series from the generator fitted on them, and price series at
random offsets), four environments per rollout. Torch runs on one thread: the network is tiny,
the environment is the cost, and the machine's cores are shared.

Hyper-parameters (fixed; chosen on the default scenario's history): a 64x64 tanh MLP for
the policy and the value function, 1,024 steps per environment per update, batches of
256, 5 epochs, gamma 0.99, learning rate 3e-4, initial log-std -1 (actions start near
the zero action, ``spot-greedy``).

Monitoring and model selection. Each training environment is wrapped in SB3's
``Monitor`` (episode returns and lengths to ``training/train-<i>.monitor.csv`` in the
model's folder). An ``EvalCallback`` runs the deterministic policy on a separate
evaluation environment (seed ``seed + EVAL_SEED_OFFSET``: windows the training
environments do not draw) every :data:`EVAL_EVERY_ROLLOUTS` rollouts, and once more on
the policy training ended with; it is reseeded before every evaluation, so each one
scores the same :data:`EVAL_EPISODES` episodes and their rewards compare
(``training/evaluations.npz``, ``training/eval.monitor.csv``).

The saved model is the **best evaluated** policy, not the final one: PPO's updates are
noisy on this environment (a rollout sees four days of one market draw each), and the
last update can be worse than an earlier one, while the final policy is itself one of
the candidates, so the best is never worse on the evaluation episodes. The mean reward
over 4 days is a small sample, so the chosen policy's score is optimistic; the metadata
records which was saved (``selected``), its evaluation reward and when it was reached.

Training is deterministic for a seed: the same seed gives the same weights (the
evaluations draw no random numbers from the training environments or the policy).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from agents.artifacts import staging_folder
from agents.cost.env import SLO_PENALTY, SpotFleetEnv
from agents.cost.model import MAX_TIMESTEPS, MIN_TIMESTEPS, CostModel, HazardPrior, save_model
from agents.cost.view import n_features
from sim import atomic
from sim.world import World

if TYPE_CHECKING:
    from agents.cost.env_sizing import SizingSource

DEFAULT_TIMESTEPS = 300_000
N_ENVS = 4
N_STEPS = MIN_TIMESTEPS // N_ENVS
"""Steps per environment per rollout (one rollout is :data:`MIN_TIMESTEPS`)."""
NET_ARCH = (64, 64)
EVAL_EPISODES = 4
EVAL_EVERY_ROLLOUTS = 12
EVAL_SEED_OFFSET = 1_000
LOG_FOLDER = "training"


def check_timesteps(timesteps: int) -> None:
    """ValueError unless ``MIN_TIMESTEPS <= timesteps <= MAX_TIMESTEPS``."""
    if not MIN_TIMESTEPS <= timesteps <= MAX_TIMESTEPS:
        raise ValueError(
            f"timesteps {timesteps:,} outside [{MIN_TIMESTEPS:,}, {MAX_TIMESTEPS:,}] "
            "(at least one PPO rollout)"
        )


def train(
    world: World,
    folder: Path,
    *,
    timesteps: int = DEFAULT_TIMESTEPS,
    seed: int = 0,
    slo_penalty: float = SLO_PENALTY,
    episode_minutes: int = 1440,
    eval_every_rollouts: int = EVAL_EVERY_ROLLOUTS,
    tensorboard: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    held_out_traces: frozenset[str] = frozenset(),
    vector_envs: int | None = None,
    availability: Literal["traces", "generated"] = "traces",
    sizing_source: SizingSource | None = None,
) -> CostModel:
    """Train PPO on ``world``'s scenario and publish the best evaluated policy in
    ``folder`` with its training logs (see the module). ``episode_minutes``: the
    training and evaluation episodes' length; ``eval_every_rollouts``: rollouts between
    evaluations during training; ``tensorboard``: a folder for TensorBoard event files
    (needs the ``tensorboard`` package); ``held_out_traces``: dev availability traces
    (paths under ``scenarios/data/spot/traces``) no training or evaluation episode
    draws. ``progress(done, total)`` is called as timesteps complete. ``vector_envs``: step
    that many sub-environments of the vectorised environment
    (:class:`~agents.cost.vector_env.SpotFleetVectorEnv`) instead of :data:`N_ENVS`
    copies of the scalar one; the rollout stays :data:`MIN_TIMESTEPS` steps (so
    ``MIN_TIMESTEPS / vector_envs`` per sub-environment, which must divide it).
    ``availability``: the training and evaluation episodes' spot availability, windows of
    the dev traces (``"traces"``) or series from the generator fitted on them
    (``"generated"``; :class:`~agents.cost.env.SpotFleetEnv`). ``sizing_source``: train
    under the ``predictive`` sizing it holds (feature version 2; the model then runs as
    ``predictive+cost-rl``); the scalar environments only."""
    check_timesteps(timesteps)
    if sizing_source is not None and vector_envs is not None:
        raise ValueError("predictive sizing trains on the scalar environment (no vector_envs)")
    n_envs = N_ENVS if vector_envs is None else vector_envs
    if n_envs < 1 or MIN_TIMESTEPS % n_envs:
        raise ValueError(f"vector_envs {n_envs} must divide {MIN_TIMESTEPS:,} (e.g. 16, 32, 64)")
    n_steps = MIN_TIMESTEPS // n_envs
    import torch
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    staging = staging_folder(folder)
    logs = staging / LOG_FOLDER
    logs.mkdir()

    def make(name: str) -> Callable[[], Monitor]:
        def build() -> Monitor:
            env = SpotFleetEnv(
                world, mode="train", episode_minutes=episode_minutes, slo_penalty=slo_penalty,
                held_out_traces=held_out_traces, availability=availability,
                sizing_source=sizing_source,
            )  # fmt: skip
            return Monitor(env, filename=str(logs / name))

        return build

    class Progress(BaseCallback):
        def _on_step(self) -> bool:
            if progress is not None and self.num_timesteps % 2048 < n_envs:
                progress(min(self.num_timesteps, timesteps), timesteps)
            return True

    try:
        if vector_envs is None:
            venv = DummyVecEnv([make(f"train-{i}") for i in range(N_ENVS)])
            first_env = cast(SpotFleetEnv, venv.envs[0].unwrapped)
            layout, hazard_prior = first_env.layout, first_env.hazard_prior
        else:
            venv, layout = _vector(world, logs, vector_envs, episode_minutes, slo_penalty,
                                   held_out_traces, availability)  # fmt: skip
            hazard_prior = None
        venv.seed(seed)
        evaluation = _evaluation(
            DummyVecEnv([make("eval")]),
            seed=seed + EVAL_SEED_OFFSET,
            every=n_steps * eval_every_rollouts,
            log_path=logs,
        )
        ppo = _ppo(venv, seed=seed, tensorboard=tensorboard, n_steps=n_steps)
        if tensorboard is None:  # else SB3 makes an empty /tmp/SB3-<time> folder per run
            from stable_baselines3.common.logger import configure

            ppo.set_logger(configure(str(logs), ["csv"]))  # training/progress.csv
        started = time.perf_counter()
        with warnings.catch_warnings():
            # the vectorised route trains on a VecMonitor and evaluates on the scalar env
            # (a DummyVecEnv): the same environment in distribution, another wrapper type
            warnings.filterwarnings("ignore", "Training and eval env are not of the same type")
            ppo.learn(
                total_timesteps=timesteps,
                callback=CallbackList([Progress(), evaluation]),
                tb_log_name=f"cost-rl-{world.scenario.id}",
            )
        train_seconds = time.perf_counter() - started
        final_is_best = evaluation.evaluate_now()  # the final policy is a candidate too
        best = evaluation.keep_best
        if not final_is_best:
            ppo.policy.load_state_dict(best.state)
        if progress is not None:
            progress(timesteps, timesteps)
        version = 1 if sizing_source is None else 2
        meta: dict[str, Any] = {
            "feature_version": version,
            "obs_dim": n_features(layout, version),
            "n_spot": len(layout.spot_slots),
            "act_dim": 4 + len(layout.spot_slots),
            "net_arch": NET_ARCH,
            "scenario": world.scenario.id,
            "timesteps": int(ppo.num_timesteps),
            "seed": int(seed),
            "train_seconds": round(train_seconds, 2),
            "selected": "final" if final_is_best else "best",
            "eval_mean_reward": round(float(evaluation.best_mean_reward), 4),
            "eval_at_timesteps": best.at_timesteps,
        }
        if sizing_source is not None and hazard_prior is not None:
            meta["sizing"] = "predictive"
            meta["sizing_quantile"] = sizing_source.params.quantile
            meta["hazard_prior"] = HazardPrior.of(hazard_prior).model_dump()
        return save_model(ppo, folder, meta, staging=staging)
    finally:
        atomic.discard(staging)  # published by then, unless training failed


def _vector(
    world: World,
    logs: Path,
    n_envs: int,
    episode_minutes: int,
    slo_penalty: float,
    held_out_traces: frozenset[str],
    availability: Literal["traces", "generated"] = "traces",
) -> tuple[Any, Any]:
    """The vectorised training environment as one stable-baselines3 ``VecEnv`` (episode
    returns to ``training/train-vector.monitor.csv``) and its layout. The vectorised env
    draws its windows with its single env's ``sample_market`` (with ``availability``)."""
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.cost.sb3_vector import SB3VectorEnv
    from agents.cost.vector_env import SpotFleetVectorEnv

    vector = SpotFleetVectorEnv(
        n_envs, world, mode="train", episode_minutes=episode_minutes, slo_penalty=slo_penalty,
        autoreset_mode="SameStep", held_out_traces=held_out_traces, availability=availability,
    )  # fmt: skip
    venv = VecMonitor(SB3VectorEnv(vector), filename=str(logs / "train-vector"))
    return venv, vector.layout


def _ppo(venv: Any, *, seed: int, tensorboard: Path | None, n_steps: int = N_STEPS) -> Any:
    """The PPO learner with this module's hyper-parameters (``n_steps`` per environment
    per rollout)."""
    import torch
    from stable_baselines3 import PPO

    return PPO(
        "MlpPolicy",
        venv,
        learning_rate=3e-4,
        n_steps=n_steps,
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
        tensorboard_log=None if tensorboard is None else str(tensorboard),
    )


def _evaluation(eval_env: Any, *, seed: int, every: int, log_path: Path) -> Any:
    """The ``EvalCallback`` of :func:`train`: reseeds ``eval_env`` before each
    evaluation, keeps the best policy's weights in memory (``.keep_best``), and can be
    run once more after training (``.evaluate_now()``: whether that one is the best).
    ``every``: vector-environment steps between evaluations."""
    from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

    class KeepBest(BaseCallback):
        """Called on a new best evaluation: copies the policy's weights."""

        state: dict[str, Any] | None = None
        at_timesteps: int | None = None

        def _on_step(self) -> bool:
            self.state = {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}
            self.at_timesteps = int(self.model.num_timesteps)
            return True

    class SameEpisodesEval(EvalCallback):
        def __init__(self) -> None:
            self.keep_best = KeepBest()
            super().__init__(
                eval_env,
                callback_on_new_best=self.keep_best,
                n_eval_episodes=EVAL_EPISODES,
                eval_freq=every,
                log_path=str(log_path),
                deterministic=True,
                verbose=0,
            )

        def _on_step(self) -> bool:
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                self.eval_env.seed(seed)
            return super()._on_step()

        def evaluate_now(self) -> bool:
            self.num_timesteps = self.model.num_timesteps
            best_before = self.best_mean_reward
            every, self.eval_freq = self.eval_freq, 1
            try:
                self._on_step()
            finally:
                self.eval_freq = every
            return bool(self.best_mean_reward > best_before)

    return SameEpisodesEval()


def evaluate_in_env(
    world: World,
    act: Callable[[np.ndarray], np.ndarray],
    sizing_source: SizingSource | None = None,
) -> dict[str, float]:
    """Run ``act`` over the whole replay in the fast model (replay mode), under
    ``sizing_source``'s predictive sizing if given."""
    env = SpotFleetEnv(world, mode="replay", sizing_source=sizing_source)
    obs, _ = env.reset(seed=0)
    done = False
    info: dict[str, Any] = {}
    while not done:
        obs, _, term, trunc, info = env.step(act(obs))
        done = term or trunc
    episode: dict[str, float] = info["totals"]
    return episode
