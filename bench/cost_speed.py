"""Speed of the spot-fleet environment and of a ``cost-rl`` decision.

- :func:`env_speed`: raw ``step`` rate of ``opsbench/SpotFleet-v0`` (train mode, one-day
  episodes, random actions drawn beforehand, one thread) and of gymnasium's
  ``CartPole-v1`` in the same process, as a reference (target: >= 20,000 steps/s);
- :func:`vector_env_speed`: sub-environment steps/s of the vectorised environment
  (:class:`~agents.cost.vector_env.SpotFleetVectorEnv`, train mode, one-day episodes with
  their autoresets, random actions drawn beforehand, one thread) beside gymnasium's
  ``CartPoleVectorEnv`` with as many sub-environments and raw ``CartPole-v1``, in the
  same process (target: >= 100,000 steps/s at 256 sub-environments);
- :func:`decision_latency`: ``cost-rl``'s ``decide`` (observation in, decision and
  records out) over a replay of the default scenario, p50 / p99 (target p99 <= 1 ms).

``python -m bench.cost_speed`` prints them as JSON lines (the vectorised figure at 1, 64,
256 and 1,024 sub-environments).
"""

from __future__ import annotations

import json
import time
from typing import Any

import gymnasium as gym
import numpy as np

from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

from agents.cost.env import SpotFleetEnv
from agents.cost.vector_env import SpotFleetVectorEnv
from bench import runner
from sim.engine import Replay


def _rate(env: gym.Env[Any, Any], steps: int, seed: int) -> float:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    started = time.perf_counter()
    for action in actions:
        _, _, term, trunc, _ = env.step(action)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - started)


def env_speed(steps: int = 50_000) -> dict[str, float]:
    """Steps/s of SpotFleet-v0 and CartPole-v1 (best of 3 runs each)."""
    world = runner.prepare_run("default", policy="on-demand").world
    fleet = SpotFleetEnv(world, mode="train")
    cartpole = gym.make("CartPole-v1").unwrapped
    fleet_rate = max(_rate(fleet, steps, s) for s in range(3))
    cart_rate = max(_rate(cartpole, steps, s) for s in range(3))
    return {
        "spotfleet_steps_per_s": round(fleet_rate, 1),
        "cartpole_steps_per_s": round(cart_rate, 1),
        "ratio_to_cartpole": round(fleet_rate / cart_rate, 4),
    }


def _vector_rate(envs: gym.vector.VectorEnv[Any, Any, Any], steps: int, seed: int) -> float:
    """Sub-environment steps/s: ``num_envs`` x ``steps`` vector steps (autoresets included)."""
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    actions = [envs.action_space.sample() for _ in range(steps)]
    started = time.perf_counter()
    for action in actions:
        envs.step(action)
    return envs.num_envs * steps / (time.perf_counter() - started)


def vector_env_speed(num_envs: int = 64, steps: int = 1500) -> dict[str, float]:
    """Sub-environment steps/s of the vectorised SpotFleet-v0 (``num_envs`` sub-envs,
    ``steps`` vector steps: more than one 1,440-minute episode, so an autoreset with its
    market sampling is in the figure), of ``CartPoleVectorEnv`` with ``num_envs``
    sub-envs and of raw ``CartPole-v1`` (best of 2 runs each)."""
    world = runner.prepare_run("default", policy="on-demand").world
    fleet = SpotFleetVectorEnv(num_envs, world, mode="train")
    cart_vector = CartPoleVectorEnv(num_envs=num_envs)
    cartpole = gym.make("CartPole-v1").unwrapped
    fleet_rate = max(_vector_rate(fleet, steps, s) for s in range(2))
    cart_vector_rate = max(_vector_rate(cart_vector, steps, s) for s in range(2))
    cart_rate = max(_rate(cartpole, 50_000, s) for s in range(2))
    return {
        "num_envs": num_envs,
        "spotfleet_vector_steps_per_s": round(fleet_rate, 1),
        "cartpole_vector_steps_per_s": round(cart_vector_rate, 1),
        "cartpole_steps_per_s": round(cart_rate, 1),
        "ratio_to_cartpole_vector": round(fleet_rate / cart_vector_rate, 4),
        "ratio_to_cartpole": round(fleet_rate / cart_rate, 4),
    }


def decision_latency(days: float = 2.0) -> dict[str, float]:
    """Per-decision latency of ``cost-rl`` in a replay (microseconds)."""
    prepared = runner.prepare_run("default", policy="cost-rl", days=days)
    runner.attach_model(prepared)
    world, policy = prepared.world, prepared.policy
    times: list[float] = []
    decide = policy.decide

    def timed(obs: Any) -> Any:
        t0 = time.perf_counter()
        out = decide(obs)
        times.append(time.perf_counter() - t0)
        return out

    policy.decide = timed
    Replay(world, policy, runner.NullSink()).run()
    us = np.array(times) * 1e6
    return {
        "decisions": int(us.size),
        "p50_us": round(float(np.percentile(us, 50)), 1),
        "p99_us": round(float(np.percentile(us, 99)), 1),
    }


if __name__ == "__main__":
    print(json.dumps(env_speed()))
    for n in (1, 64, 256, 1024):
        print(json.dumps(vector_env_speed(n)))
    print(json.dumps(decision_latency()))
