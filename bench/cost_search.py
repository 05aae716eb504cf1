"""``opsbench train cost --candidates K [--executor serial|process|ray]``: train ``K``
cost-rl policies (PPO seeds ``seed`` .. ``seed + K - 1``) in parallel on an executor of
:mod:`bench.executors` and keep the one with the best validation reward.

Why a seed search rather than more environment workers: PPO on this environment is noisy
from seed to seed (a rollout sees four days of one market draw each), so the best of a
few seeds, chosen on episodes none of them trained or was selected on, is a better policy
than one seed trained with more parallel environments in the same wall time; and each
candidate is a single-process task, which Ray (or a process pool) runs with no shared
state.

Selection never looks at the scenario's replay (what ``bench cost`` scores): every
candidate plays the same :data:`VALIDATION_EPISODES` one-day episodes of the training
distribution (:class:`~agents.cost.env.SpotFleetEnv` in train mode, reset with seeds
:data:`VALIDATION_SEED` + i — windows and markets the training environments, seeded from
the candidate's seed, and their evaluation environments, seeded from seed + 1,000, do not
draw), deterministically; the highest mean episode reward wins (ties: the lower seed).

A candidate returns its model folder's files as bytes, so the search also works on a Ray
cluster joined with ``--address`` whose workers do not share this machine's disk.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import fmean

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.cost.env import SpotFleetEnv
from agents.cost.training import train
from bench import runner
from bench.executors import ExecutorName, executor
from sim.world import World

VALIDATION_SEED = 7_777_777
VALIDATION_EPISODES = 8


class CandidateTask(BaseModel):
    """One candidate: train seed ``seed`` on ``scenario`` for ``timesteps`` steps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    seed: int = Field(ge=0)
    timesteps: int = Field(ge=1)
    vector_envs: int | None = Field(
        default=None,
        ge=1,
        description="sub-environments of the vectorised env (None: 4 scalar envs)",
    )


class Candidate(BaseModel):
    """A trained candidate, its validation reward and its model folder's files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int
    validation_reward: float = Field(description="mean reward per validation episode")
    train_seconds: float
    files: dict[str, bytes] = Field(repr=False, description="relative path -> content")


def validation_reward(world: World, act: Callable[[np.ndarray], np.ndarray]) -> float:
    """Mean total reward of ``act`` over the validation episodes (see the module)."""
    env = SpotFleetEnv(world, mode="train")
    totals = []
    for i in range(VALIDATION_EPISODES):
        obs, _ = env.reset(seed=VALIDATION_SEED + i)
        total, done = 0.0, False
        while not done:
            obs, reward, term, trunc, _ = env.step(act(obs))
            total += float(reward)
            done = term or trunc
        totals.append(total)
    return fmean(totals)


def train_candidate(task: CandidateTask) -> Candidate:
    """Train one candidate in a scratch folder (module-level: every executor ships it)."""
    world = runner.prepare_run(task.scenario, policy="on-demand").world
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opsbench-candidate-") as scratch:
        folder = Path(scratch) / "model"
        model = train(
            world, folder, timesteps=task.timesteps, seed=task.seed, vector_envs=task.vector_envs
        )
        train_seconds = time.perf_counter() - started
        reward = validation_reward(world, model.act)
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
    return Candidate(
        seed=task.seed, validation_reward=reward, train_seconds=train_seconds, files=files
    )


def best_of(candidates: Sequence[Candidate]) -> Candidate:
    """The highest validation reward; ties: the lower seed."""
    return max(candidates, key=lambda c: (c.validation_reward, -c.seed))


def write_files(candidate: Candidate, folder: Path) -> None:
    """Lay ``candidate``'s model files out in ``folder`` (a fresh scratch folder)."""
    for relative, content in candidate.files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def search(
    scenario: str,
    *,
    seeds: Sequence[int],
    timesteps: int,
    executor_name: ExecutorName,
    workers: int,
    address: str | None = None,
    on_done: Callable[[int, Candidate], None] = lambda _index, _candidate: None,
    vector_envs: int | None = None,
) -> list[Candidate]:
    """Train one candidate per seed on the executor; candidates in the seeds' order."""
    tasks = [
        CandidateTask(scenario=scenario, seed=s, timesteps=timesteps, vector_envs=vector_envs)
        for s in seeds
    ]
    with executor(executor_name, workers=workers, address=address) as ex:
        return ex.map(train_candidate, tasks, on_done)
