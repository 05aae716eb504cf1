"""Bit-for-bit regression of ``opsbench/SpotFleet-v0`` trajectories.

Every rollout below hashes (sha256) each reset observation and every step's
(observation bytes, reward, terminated, truncated, info) with floats written exactly
(``float.hex``), so any change to a single float, flag or info entry changes the digest.
The digests were recorded from the environment before its speed work; an optimisation
of :mod:`agents.cost.env`, :mod:`agents.cost.fleet`, :mod:`agents.cost.plan` or
:mod:`agents.cost.view` must leave them unchanged. Never update them to make a change
pass: a different digest means the environment behaves differently.

Run this file as a script to print the digests of the current code.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import numpy as np
import pytest

from agents.cost.env import SpotFleetEnv, prepare_world
from agents.cost.plan import Layout, Mix, Tick, decode_action, execute
from sim.control import PoolSpec
from sim.scenario import AzOutage, Faults
from sim.scenario_files import find_scenario, load_scenario_file
from sim.world import World, prepare

TRAIN_STEPS = 3000
"""Steps per train-mode rollout: two full 1,440-minute episodes and part of a third."""
ACTION_SCALE = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.5}
"""Seed 4 scales its actions past [-1, 1] so the decoder's clipping is covered."""

TRAIN_DIGESTS = {
    0: "0a3d1644dcde3133bb66c3803ea8f427d27b56cf156151f0e027bf610a595606",
    1: "d25cf68e69824bde7e29be71b09db24458464d7cd1f1973a146b5f60bb6b0b08",
    2: "a8c294c298ee81acd1a9683cb3d59d985a6c351493744320999dd2a63c0fa28d",
    3: "6c0e40d548fc3fbce425509dbd1bbbc18555acf39d898cf5be72356b517b02c3",
    4: "e456334b346ff3fcffdcbbb5d2f799606ad8a07a1efc52f9af9cce6851c9dca7",
}
REPLAY_CASES = {
    # scenario, days, seed: spot storms and a telemetry gap; the default scenario with an
    # AZ outage and frequent node failures added (:func:`_outage_world`)
    "spot-storm": (4.0, 7),
    "default+outage": (1.0, 8),
}
REPLAY_DIGESTS = {
    "spot-storm": "f935a09dd0ca7a7995556e684e237a2117262ffd06e433b1babb0a1b3adece91",
    "default+outage": "1a3644d4921a5f252584ba9b6c4b189f901d1a67e7b1cd9f44f7086b770ac39e",
}


def _canonical(value: Any) -> str:
    """An exact, order-independent text of an info value (floats as ``float.hex``)."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{k!r}:{_canonical(v)}" for k, v in items) + "}"
    if isinstance(value, bool | np.bool_):
        return repr(bool(value))
    if isinstance(value, int | np.integer):
        return f"int:{int(value)}"
    if isinstance(value, float | np.floating):
        return float(value).hex()
    raise TypeError(f"unexpected info value {value!r} ({type(value).__name__})")


def _feed_obs(digest: Any, obs: np.ndarray) -> None:
    assert obs.dtype == np.float32
    digest.update(obs.tobytes())


def rollout_digest(env: SpotFleetEnv, seed: int, steps: int, scale: float = 1.0) -> str:
    """sha256 of ``steps`` steps from ``reset(seed=seed)`` with actions drawn from the
    env's action space seeded with ``seed`` (times ``scale``), resetting at episode ends."""
    digest = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    _feed_obs(digest, obs)
    digest.update(_canonical(info).encode())
    env.action_space.seed(seed)
    for _ in range(steps):
        action = env.action_space.sample() * np.float32(scale)
        obs, reward, terminated, truncated, info = env.step(action)
        _feed_obs(digest, obs)
        assert type(reward) is float
        digest.update(f"|{reward.hex()}|{terminated!r}|{truncated!r}|{_canonical(info)}".encode())
        if terminated or truncated:
            obs, info = env.reset()
            _feed_obs(digest, obs)
            digest.update(_canonical(info).encode())
    return digest.hexdigest()


@lru_cache(maxsize=4)
def _world(scenario: str, days: float) -> World:
    if scenario == "default+outage":
        return _outage_world(days)
    return prepare_world(scenario, days)


def _outage_world(days: float) -> World:
    """The default scenario with a 2-hour outage of us-east-1d from hour 10 and 20 node
    failures per node-day (no shipped scenario has an outage and spot pools)."""
    path = find_scenario("default")
    scenario = load_scenario_file(path)
    faults = Faults(
        node_failure_rate_per_node_day=20.0,
        az_outages=[AzOutage(az="us-east-1d", start_h=10.0, duration_h=2.0)],
    )
    return prepare(scenario.model_copy(update={"faults": faults}), source=path, days=days)


def train_digest(seed: int) -> str:
    env = SpotFleetEnv(_world("default", 2.0), mode="train")
    return rollout_digest(env, seed, TRAIN_STEPS, ACTION_SCALE[seed])


def replay_digest(scenario: str) -> str:
    days, seed = REPLAY_CASES[scenario]
    env = SpotFleetEnv(_world(scenario, days), mode="replay")
    return rollout_digest(env, seed, env.episode_minutes)


def _pool(name: str, kind: str, azs: tuple[str, ...], lo: int, hi: int, ppn: int) -> PoolSpec:
    return PoolSpec(name, "c5a.2xlarge", kind, azs, lo, hi, 8, 16.0, ppn, 0.3 * ppn / 8, 100.0)


LAYOUTS = {
    "default": (
        _pool("od", "on-demand", ("a", "b", "c"), 3, 60, 8),
        _pool("spot", "spot", ("a", "b", "c"), 0, 60, 8),
    ),
    "mixed": (  # pod sizes differ, a small on-demand pool, two spot pools, tight maxima
        _pool("od", "on-demand", ("a", "b"), 1, 12, 4),
        _pool("spot-big", "spot", ("a", "b", "c"), 0, 9, 16),
        _pool("od-2", "on-demand", ("c",), 0, 5, 8),
        _pool("spot-small", "spot", ("b", "c"), 2, 20, 4),
    ),
    "kinds-differ": (  # one type per capacity type and AZ, pod sizes differ between kinds
        _pool("od", "on-demand", ("a", "b"), 1, 12, 4),
        _pool("spot", "spot", ("a", "b", "c"), 0, 9, 16),
    ),
}
PLAN_CALLS = 4000
PLAN_DIGESTS = {
    "default": "a4b4857b316eba849c189051517e52beccfd64cbb2848eb7cc8db7dd9f4da963",
    # several types per capacity type (two spot pools share AZs): right-sizing's cover
    # since 2026-12-06 (recorded from main before the speed work merged; the pre-cover
    # rule gave 55b196c2...)
    "mixed": "96b150fce9b30da25d2f6b41febe4568650629f260a8be805ee63c4513091f51",
    "kinds-differ": "7cc0df52bb661862c934b3174058cefdb3d31e435e6935c52c599df47e37fdd5",
}


def plan_digest(name: str) -> str:
    """sha256 of :func:`execute`'s desired nodes for ``PLAN_CALLS`` random (tick, action,
    plan) draws on layout ``name`` (fleets of 0-30 nodes per slot, random prices,
    launchability, pending nodes and plans of 0-400 pods)."""
    layout = Layout.of(LAYOUTS[name])
    rng = np.random.default_rng(2024)
    n, n_spot = len(layout.slots), len(layout.spot_slots)
    digest = hashlib.sha256()
    for _ in range(PLAN_CALLS):
        active = rng.integers(0, 31, n).tolist()
        pending = [int(rng.integers(0, a + 1)) for a in active]
        launchable = (rng.random(n) < 0.7).tolist()
        tick = Tick(
            t_s=60.0,
            load_rps=None,
            cpu=None,
            p95_ms=None,
            error_rate=None,
            active=active,
            pending=pending,
            price=rng.choice([0.1, 0.12, 0.15, 0.3], n).tolist(),
            available=launchable,
            launchable=launchable,
        )
        mix = decode_action((rng.uniform(-1.3, 1.3, 4 + n_spot)).tolist(), n_spot)
        plan = float(rng.choice([0.0, rng.uniform(0, 400), float(rng.integers(0, 400))]))
        pods_now = plan if rng.random() < 0.5 else float(rng.uniform(0, 400))
        desired = execute(layout, tick, mix, plan, pods_now)
        assert all(type(d) is int for d in desired)
        digest.update(repr((desired, astuple_mix(mix))).encode())
    return digest.hexdigest()


def astuple_mix(mix: Mix) -> tuple[str, ...]:
    """The mix's values, exactly."""
    values = (mix.od_floor, mix.od_fill, mix.spot_buffer, mix.keep, *mix.weights)
    return tuple(float(v).hex() for v in values)


@pytest.mark.parametrize("name", sorted(PLAN_DIGESTS))
def test_plan_execution_is_unchanged(name: str) -> None:
    assert plan_digest(name) == PLAN_DIGESTS[name]


@pytest.mark.parametrize("seed", sorted(TRAIN_DIGESTS))
def test_train_mode_trajectory_is_unchanged(seed: int) -> None:
    assert train_digest(seed) == TRAIN_DIGESTS[seed]


@pytest.mark.parametrize("scenario", sorted(REPLAY_DIGESTS))
def test_replay_mode_trajectory_is_unchanged(scenario: str) -> None:
    assert replay_digest(scenario) == REPLAY_DIGESTS[scenario]


if __name__ == "__main__":
    for layout_name in PLAN_DIGESTS:
        print(f"    {layout_name!r}: {plan_digest(layout_name)!r},")
    for s in sorted(TRAIN_DIGESTS):
        print(f"    {s}: {train_digest(s)!r},")
    for name in REPLAY_DIGESTS:
        print(f"    {name!r}: {replay_digest(name)!r},")
