"""``SpotFleetEnv(availability=...)``: "traces" is what it was (digests recorded on main's
code before the option existed), "generated" draws each AZ's availability from the model
fitted on the training traces only, passes the env checker, and reaches the vectorised
training route."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agents.cost import env as env_module
from agents.cost.env import (
    SLO_PENALTY,
    SpotFleetEnv,
    training_availability_model,
    training_traces,
)
from bench import runner
from bench.cost import TRACE_SETS
from sim.market.availability_model import AvailabilityModel

HELD = frozenset(TRACE_SETS["preempt-p3"])

# sha256 of the markets and rollouts below, recorded on main (f5e6679) before
# ``availability`` existed: "traces" must stay bit for bit what it was
MAIN_MARKETS = "c0ec455ffdbad28a1850e771f5e0c0f4531a53bf3b1573e16cf485e468c2791e"
MAIN_ROLLOUTS = "d2ee52e7828809c3421d42c2bff82477e74b4c15e77b0898c73b6e6743509fd6"
MAIN_MARKETS_HELD = "9b87dfd9129c0887a1ad80eff8e2ed929adc27275de20c09dae7b0e1c22c1986"


@pytest.fixture(scope="module")
def world_2d() -> Any:
    return runner.prepare_run("default", policy="on-demand", days=2).world


def _market_digest(env: SpotFleetEnv, seeds: range) -> str:
    h = hashlib.sha256()
    for seed in seeds:
        m = env.sample_market(np.random.default_rng(seed))
        h.update(json.dumps([m.start.isoformat(), m.offered_rps, m.prices,
                             sorted(m.available0.items()), m.transitions,
                             m.history_rps.tolist()]).encode())  # fmt: skip
    return h.hexdigest()


def _rollout_digest(env: SpotFleetEnv, seeds: list[int], steps: int) -> str:
    h = hashlib.sha256()
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        h.update(obs.tobytes())
        for _ in range(steps):
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, reward, *_ = env.step(action)
            h.update(obs.tobytes())
            h.update(np.float64(reward).tobytes())
    return h.hexdigest()


def test_traces_mode_is_bit_for_bit_what_it_was(world_2d: Any) -> None:
    env = SpotFleetEnv(world_2d, episode_minutes=300)
    assert env.availability == "traces" and env.availability_model is None
    assert _market_digest(env, range(5)) == MAIN_MARKETS
    assert _rollout_digest(env, [0, 7], 300) == MAIN_ROLLOUTS
    held = SpotFleetEnv(world_2d, episode_minutes=300, held_out_traces=HELD)
    assert _market_digest(held, range(5)) == MAIN_MARKETS_HELD
    explicit = SpotFleetEnv(world_2d, episode_minutes=300, availability="traces")
    assert _market_digest(explicit, range(5)) == MAIN_MARKETS


def test_generated_mode_passes_the_env_checker_and_runs_episodes(world_2d: Any) -> None:
    env = SpotFleetEnv(world_2d, episode_minutes=120, availability="generated")
    check_env(env, skip_render_check=True)
    rewards = []
    for seed in (1, 1, 2):
        env.reset(seed=seed)
        total, done, info = 0.0, False, {}
        while not done:
            _, reward, term, trunc, info = env.step(np.zeros(7, np.float32))
            total, done = total + reward, term or trunc
        assert info["totals"]["minutes"] == 120
        rewards.append(total)
    assert rewards[0] == rewards[1]  # the seed fixes the episode
    generated = _market_digest(env, range(5))
    assert generated != _market_digest(SpotFleetEnv(world_2d, episode_minutes=120), range(5))
    with pytest.raises(ValueError, match="'traces' or 'generated'"):
        SpotFleetEnv(world_2d, availability="nope")  # type: ignore[arg-type]


def test_generated_windows_come_from_the_model(
    world_2d: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = SpotFleetEnv(world_2d, episode_minutes=600, availability="generated")
    drawn: list[Any] = []
    original = AvailabilityModel.sample

    def spy(self: AvailabilityModel, duration_s: float, rng: np.random.Generator) -> Any:
        drawn.append(original(self, duration_s, rng))
        return drawn[-1]

    monkeypatch.setattr(AvailabilityModel, "sample", spy)
    market = env.sample_market(np.random.default_rng(4))
    assert len(drawn) == 3 and all(s.source.startswith("generated:") for s in drawn)
    for az, series in zip(sorted(market.available0), drawn, strict=True):
        assert market.available0[az] == bool(series.available[0])
        changes = [(t, a) for t, z, a in market.transitions if z == az]
        assert changes == [(float(t), bool(a)) for t, a in series.transitions()]


def test_held_out_traces_take_no_part_in_the_fit(
    world_2d: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = training_traces(HELD)
    model = training_availability_model(HELD)
    assert model.sources == tuple(s.source for s in kept) and len(model.sources) == 13
    assert not any(source.endswith(held) for source in model.sources for held in HELD)
    fitted: list[tuple[Any, ...]] = []
    original = env_module.fit_availability

    def spy(traces: Any, observed_s: Any) -> AvailabilityModel:
        fitted.append(tuple(traces))
        return original(traces, observed_s)

    monkeypatch.setattr(env_module, "fit_availability", spy)
    training_availability_model.cache_clear()
    try:
        env = SpotFleetEnv(world_2d, held_out_traces=HELD, availability="generated")
    finally:
        training_availability_model.cache_clear()
    (traces,) = fitted
    assert len(traces) == 13 and all(any(s is k for k in kept) for s in traces)
    held = [s for s in training_traces() if not any(s is k for k in kept)]
    assert len(held) == 3 and not any(s is h for s in traces for h in held)
    assert env.availability_model is not None and env.availability_model.sources == model.sources


def test_the_vectorised_route_samples_generated_availability(world_2d: Any, tmp_path: Path) -> None:
    from agents.cost.training import _vector

    venv, _ = _vector(world_2d, tmp_path, 2, 60, SLO_PENALTY, HELD, "generated")
    vector = venv.venv.venv  # VecMonitor -> SB3VectorEnv -> SpotFleetVectorEnv
    assert vector.single.availability == "generated"
    assert vector.single.availability_model.sources == training_availability_model(HELD).sources
    venv.reset()
    venv, _ = _vector(world_2d, tmp_path, 2, 60, SLO_PENALTY, HELD)
    assert venv.venv.venv.single.availability == "traces"
