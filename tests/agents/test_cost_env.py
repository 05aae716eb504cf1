"""``opsbench/SpotFleet-v0``: the gymnasium contract, determinism, and fidelity to the
SimPy replay (the same actions give the same cost and SLO attainment within 2%)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from fresh_python import run_script
from gymnasium.utils.env_checker import check_env

from agents.cost.env import ENV_ID, SLO_PENALTY, SpotFleetEnv
from agents.cost.plan import decode_action, encode_mix
from agents.cost.policies import ActionReplayPolicy
from bench import runner
from sim.engine import Replay
from sim.summary import summarise
from sim.telemetry import MemorySink


@pytest.fixture(scope="module")
def world_2d() -> Any:
    world = runner.prepare_run("default", policy="on-demand", days=2).world
    return world


def test_registered_and_passes_the_env_checker(world_2d: Any) -> None:
    env = gym.make(ENV_ID, world=world_2d, episode_minutes=120)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert env.action_space.shape == (4 + 3,)


def _rollout(env: SpotFleetEnv, seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, term, trunc, _ = env.step(rng.uniform(-1, 1, 7).astype(np.float32))
        observations.append(obs)
        rewards.append(reward)
        if term or trunc:
            break
    return np.array(observations), np.array(rewards)


def test_same_seed_same_trajectory_and_rewards(world_2d: Any) -> None:
    a = _rollout(SpotFleetEnv(world_2d, episode_minutes=400), 11, 400)
    b = _rollout(SpotFleetEnv(world_2d, episode_minutes=400), 11, 400)
    c = _rollout(SpotFleetEnv(world_2d, episode_minutes=400), 12, 400)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[1].size == 400
    assert not np.array_equal(a[1], c[1])  # another seed samples another market window


def test_action_decoding_round_trips() -> None:
    action = [0.25, 0.5, 0.4, 0.7, -1.0, 0.0, 1.0]
    mix = decode_action(action, 3)
    assert mix.od_floor == 0.25 and mix.weights == (0.0, 0.5, 1.0)
    np.testing.assert_allclose(encode_mix(mix), action, atol=1e-12)
    zero = decode_action([0.0] * 7, 3)  # spot-greedy
    assert (zero.od_floor, zero.od_fill, zero.spot_buffer, zero.keep) == (0.0, 1.0, 0.0, 0.0)


def test_replayed_actions_cost_and_slo_match_the_simulator(world_2d: Any) -> None:
    """Fidelity: the env's episode over the whole replay, then the same action sequence
    through the SimPy replay; the reward's cost is the env's billing, and it is within 2%
    of the simulator's billing, as is the SLO attainment."""
    env = SpotFleetEnv(world_2d, mode="replay")
    env.reset(seed=0)
    rng = np.random.default_rng(5)
    actions: list[list[float]] = []
    costs, rewards, oks = [], [], []
    done = False
    info: dict[str, Any] = {}
    while not done:
        if env.steps % 180 == 0:  # a new random mix every 3 hours
            action = rng.uniform(-1, 1, 7).astype(np.float32)
        actions.append(action.tolist())
        plan = env.ctrl.plan_pods if env.ctrl else 0.0
        _, reward, term, trunc, info = env.step(action)
        od_ref = max(plan, 1.0) * env.od_price_per_pod / 60.0
        assert reward == pytest.approx(
            -info["cost_usd"] / od_ref - SLO_PENALTY * (0 if info["slo_ok"] else 1)
        )
        costs.append(info["cost_usd"])
        rewards.append(reward)
        oks.append(info["slo_ok"])
        done = term or trunc
    totals = info["totals"]
    assert sum(costs) == pytest.approx(totals["cost_usd"])
    sink = MemorySink()
    replay = Replay(world_2d, ActionReplayPolicy(actions), sink)
    truth = replay.run()
    summary = summarise(replay, truth, policy="action-replay", wall_s=0.0)
    billed = float(np.sum(sink.table("billing").column("cost_usd").to_numpy()))
    assert billed == pytest.approx(summary["cost_usd"], abs=1e-5)
    assert totals["cost_usd"] == pytest.approx(summary["cost_usd"], rel=0.02)
    assert totals["slo_attainment"] == pytest.approx(summary["slo_attainment"], rel=0.02)
    assert summary["spot_cost_usd"] > 0 and summary["on_demand_cost_usd"] > 0  # both used


REGISTRATION = """
import sys
import gymnasium as gym
from gymnasium.utils.env_checker import check_env
{imports}
env = gym.make({env_id!r}, episode_minutes=60)
check_env(env.unwrapped, skip_render_check=True)
obs, _ = env.reset(seed=1)
assert env.observation_space.contains(obs) and env.action_space.shape == (7,)
heavy = sorted(m for m in ("torch", "stable_baselines3", "bench", "duckdb") if m in sys.modules)
print(",".join(heavy) or "none")
"""


@pytest.mark.parametrize(
    ("imports", "env_id"),
    [("import agents", ENV_ID), ("", "agents.cost:" + ENV_ID)],
    ids=["import-agents", "module-prefix"],
)
def test_gym_make_builds_the_default_scenario_from_sim_alone(imports: str, env_id: str) -> None:
    """In a fresh interpreter: ``import agents`` (or gymnasium's ``module:id`` form)
    registers the env; ``gym.make`` builds it from keyword defaults (``scenario="default"``,
    ``mode="train"``), with neither bench, torch nor stable-baselines3 imported."""
    assert run_script(REGISTRATION.format(imports=imports, env_id=env_id)) == "none"
