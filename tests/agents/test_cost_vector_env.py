"""``opsbench/SpotFleet-v0`` vectorised (:class:`SpotFleetVectorEnv`): registration, the
vector contract (gymnasium 1.4 has no vector env checker, so its checks are written out
here), determinism, autoreset, the array plan rule against :func:`plan.execute`, and
fidelity to the SimPy replay and to the single environment."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from fresh_python import run_script
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from agents.cost.controller import Controller
from agents.cost.env import ENV_ID, SpotFleetEnv
from agents.cost.fleet import FleetModel, Market, market_from_world
from agents.cost.plan import Layout, Tick, decode_action, execute
from agents.cost.policies import ActionReplayPolicy
from agents.cost.vector_env import SpotFleetVectorEnv
from agents.cost.vector_fleet import FleetBatch, FleetConstants
from agents.cost.vector_market import MarketConstants, market_arrays
from agents.cost.vector_plan import PlanLayout, decode_actions, execute_batch, top_n_items
from bench import runner
from sim.engine import Replay
from sim.summary import summarise
from sim.telemetry import MemorySink
from sim.errors import InputError
from sim.world import draw_delay


@pytest.fixture(scope="module")
def world_2d() -> Any:
    return runner.prepare_run("default", policy="on-demand", days=2).world


@pytest.fixture(scope="module")
def replay_actions(world_2d: Any) -> list[list[float]]:
    """The existing fidelity test's actions: a new random mix every 3 hours."""
    rng = np.random.default_rng(5)
    actions: list[list[float]] = []
    for step in range(world_2d.n_minutes):
        if step % 180 == 0:
            action = rng.uniform(-1, 1, 7).astype(np.float32).tolist()
        actions.append(action)
    return actions


@pytest.fixture(scope="module")
def simulated(world_2d: Any, replay_actions: list[list[float]]) -> dict[str, Any]:
    replay = Replay(world_2d, ActionReplayPolicy(replay_actions), MemorySink())
    truth = replay.run()
    return summarise(replay, truth, policy="action-replay", wall_s=0.0)


def _replay_totals(env: SpotFleetVectorEnv, actions: list[list[float]]) -> dict[str, Any]:
    env.reset(seed=0)
    batch = np.asarray(actions, dtype=np.float32)
    info: dict[str, Any] = {}
    for action in batch:
        _, _, _, truncated, info = env.step(np.tile(action, (env.num_envs, 1)))
    assert truncated.all()
    totals: dict[str, Any] = info["totals"]
    return totals


def test_make_vec_builds_it_with_the_single_env_spaces(world_2d: Any) -> None:
    envs = gym.make_vec(
        ENV_ID,
        num_envs=3,
        vectorization_mode="vector_entry_point",
        world=world_2d,
        episode_minutes=60,
    )
    single = SpotFleetEnv(world_2d, episode_minutes=60)
    assert isinstance(envs, SpotFleetVectorEnv)
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    assert envs.observation_space == batch_space(single.observation_space, 3)
    assert envs.action_space == batch_space(single.action_space, 3)
    assert isinstance(envs.metadata["autoreset_mode"], AutoresetMode)
    obs, info = envs.reset(seed=3)
    assert envs.observation_space.contains(obs) and isinstance(info, dict)
    envs.action_space.seed(3)
    for _ in range(60):
        previous = obs
        obs, rewards, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert envs.observation_space.contains(obs)
        assert obs is not previous  # fresh arrays each step
        assert rewards.shape == terminated.shape == truncated.shape == (3,)
        assert rewards.dtype == np.float64 and terminated.dtype == truncated.dtype == bool
        assert np.isfinite(rewards).all() and (rewards < 0).all()  # every minute costs
        assert set(info) >= {"cost_usd", "_cost_usd", "slo_ok", "_slo_ok"}
    assert truncated.all() and info["_totals"].all()
    assert (info["totals"]["minutes"] == 60).all()


REGISTRATION = """
import sys
import gymnasium as gym
import agents
assert "agents.cost.vector_env" not in sys.modules
envs = gym.make_vec("opsbench/SpotFleet-v0", num_envs=2, episode_minutes=30)
obs, _ = envs.reset(seed=1)
assert type(envs).__name__ == "SpotFleetVectorEnv" and obs.shape == (2, 26)
envs.step(envs.action_space.sample())
heavy = sorted(m for m in ("torch", "stable_baselines3", "bench", "duckdb") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_make_vec_defaults_to_the_vector_entry_point_without_heavy_imports() -> None:
    """In a fresh interpreter: ``import agents`` registers the vector entry point without
    importing it; ``gym.make_vec`` builds the default scenario from sim alone."""
    assert run_script(REGISTRATION) == "none"


def _rollout(seed: int, steps: int, world: Any) -> tuple[np.ndarray, np.ndarray]:
    env = SpotFleetVectorEnv(3, world, episode_minutes=150)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, _, _, _ = env.step(rng.uniform(-1, 1, (3, 7)).astype(np.float32))
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards)


def test_same_seed_same_episodes_and_sub_envs_differ(world_2d: Any) -> None:
    """Over 320 steps (two autoresets): the same seed repeats observations and rewards;
    another seed, and each sub-environment within one seed, sample other windows."""
    a = _rollout(11, 320, world_2d)
    b = _rollout(11, 320, world_2d)
    c = _rollout(12, 320, world_2d)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    rewards = a[1]
    assert not np.array_equal(rewards[:, 0], rewards[:, 1])
    assert not np.array_equal(rewards[:, 1], rewards[:, 2])


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_autoreset(world_2d: Any, mode: AutoresetMode) -> None:
    env = SpotFleetVectorEnv(2, world_2d, episode_minutes=5, autoreset_mode=mode)
    env.reset(seed=4)
    zero = np.zeros((2, 7), dtype=np.float32)
    for _ in range(4):
        _, _, _, truncated, _ = env.step(zero)
        assert not truncated.any()
    obs, rewards, terminated, truncated, info = env.step(zero)
    assert truncated.all() and not terminated.any()
    if mode == AutoresetMode.NEXT_STEP:
        assert (info["totals"]["minutes"] == 5).all() and info["_totals"].all()
        assert (env.fleet.minute == 5).all()
        obs, rewards, terminated, truncated, info = env.step(zero)  # the reset step
        assert (rewards == 0).all() and not truncated.any() and not terminated.any()
        assert not info["_cost_usd"].any()
    else:
        assert (info["final_info"]["totals"]["minutes"] == 5).all()
        assert all(final.shape == (26,) for final in info["final_obs"])
        assert not np.array_equal(np.stack(info["final_obs"]), obs)
    assert (env.fleet.minute == 0).all()  # a new episode: its first observation
    assert env.observation_space.contains(obs)
    _, rewards, _, truncated, _ = env.step(zero)
    assert (rewards < 0).all() and not truncated.any()


def test_top_n_items_is_the_greedy_loop() -> None:
    rng = np.random.default_rng(0)
    values = np.round(rng.uniform(-3, 3, (500, 4)), 1)  # many ties
    mask = rng.random((500, 4)) < 0.8
    n = rng.integers(0, 12, 500)
    got = top_n_items(values, mask, n)
    for e in range(500):
        taken = [0] * 4
        ks = [k for k in range(4) if mask[e, k]]
        for _ in range(n[e] if ks else 0):
            taken[max(ks, key=lambda k: (values[e, k] - taken[k], -k))] += 1
        assert got[e].tolist() == taken


def _mixed_pools(world: Any) -> tuple[Any, ...]:
    """The scenario's pools, spot at 4 pods per node (pod sizes differ between on-demand
    and spot: the general paths of the plan rule)."""
    od, spot = world.pools
    return (od, dataclasses.replace(spot, pods_per_node=4))


def _two_spot_pools(world: Any) -> tuple[Any, ...]:
    """The scenario's pools, spot at 4 pods per node, plus a 16-pod spot pool in two of
    its AZs (two spot pools share an AZ: a right-sizing layout)."""
    od, spot = world.pools
    small = dataclasses.replace(spot, pods_per_node=4)
    big = dataclasses.replace(
        spot, name="spot-big", azs=spot.azs[:2], pods_per_node=16, max_nodes=9
    )
    return (od, small, big)


def test_several_types_per_capacity_type_are_refused(world_2d: Any) -> None:
    """A right-sizing layout: the vectorised plan rule does not hold the scalar one's
    cover (:func:`agents.cost.plan.adjust_cover`), so it says so."""
    layout = Layout.of(_two_spot_pools(world_2d))
    with pytest.raises(InputError, match="several instance types"):
        PlanLayout.of(layout)


@pytest.mark.parametrize("pools", ["scenario", "mixed"])
def test_execute_batch_is_the_plan_rule(world_2d: Any, pools: str) -> None:
    """:func:`execute_batch` equals :func:`agents.cost.plan.execute` on random ticks."""
    layout = Layout.of(world_2d.pools if pools == "scenario" else _mixed_pools(world_2d))
    n_spot = len(layout.spot_slots)
    rng = np.random.default_rng(1)
    e, k = 1500, len(layout.slots)
    active = rng.integers(0, 25, (e, k))
    pending = np.minimum(active, rng.integers(0, 6, (e, k)))
    price = rng.choice([0.1, 0.15, 0.3, 0.31], (e, k))
    launchable = rng.random((e, k)) < 0.75
    plan = rng.integers(0, 400, e).astype(float)
    actions = rng.uniform(-1, 1, (e, 4 + n_spot))
    actions[rng.random(actions.shape) < 0.2] = 0.0
    actions[:100, 4:] = 0.3  # equal weights: ties
    got = execute_batch(
        PlanLayout.of(layout),
        active,
        pending,
        price,
        launchable,
        decode_actions(actions, n_spot),
        plan,
    )
    for i in range(e):
        tick = Tick(
            0.0, None, None, None, None, active[i].tolist(), pending[i].tolist(),
            price[i].tolist(), [True] * k, launchable[i].tolist(),
        )  # fmt: skip
        mix = decode_action(actions[i].tolist(), n_spot)
        want = execute(layout, tick, mix, plan[i], plan[i])
        assert got[i].tolist() == want, i


def test_replayed_actions_cost_and_slo_match_the_simulator(
    world_2d: Any, replay_actions: list[list[float]], simulated: dict[str, Any]
) -> None:
    """Fidelity: the replay episode through the vector env (two sub-environments, the
    same actions, their own random draws) and through the SimPy replay: every
    sub-environment's cost and SLO attainment within 2% (measured: cost 0.02-0.05%,
    attainment 0.00-0.07%)."""
    env = SpotFleetVectorEnv(2, world_2d, mode="replay")
    totals = _replay_totals(env, replay_actions)
    assert (totals["minutes"] == world_2d.n_minutes).all()
    np.testing.assert_allclose(totals["cost_usd"], simulated["cost_usd"], rtol=0.02)
    np.testing.assert_allclose(totals["slo_attainment"], simulated["slo_attainment"], rtol=0.02)
    assert simulated["spot_cost_usd"] > 0 and simulated["on_demand_cost_usd"] > 0
    assert (totals["spot_cost_usd"] > 0).all() and (totals["interruptions"] > 0).all()


def test_one_sub_env_agrees_with_the_single_env(
    world_2d: Any, replay_actions: list[list[float]]
) -> None:
    """``num_envs=1`` against :class:`SpotFleetEnv` on the replay, same actions.

    What does not depend on the fleet agrees exactly at every step: the first
    observation (the same warm fleet), the planned pods, and the load, forecast, time
    of day and per-AZ price, availability, unavailable-share and drop features. The
    episode totals agree to a measured bound, as the two draw different random numbers
    (the single env the simulator's generators, one draw per node; the vector env
    binomial and hypergeometric counts): over vector seeds 0-9 the episode cost was
    within 0.03% and the SLO attainment within 0.0007 (2 violation minutes in 2,880) of
    the single env's, with the same 26 interruption notices; the test allows 0.5%, 0.002
    and 3 notices."""
    single = SpotFleetEnv(world_2d, mode="replay")
    first, _ = single.reset(seed=0)
    single_obs = [first]
    info: dict[str, Any] = {}
    for action in replay_actions:
        obs, _, _, _, info = single.step(np.asarray(action, dtype=np.float32))
        single_obs.append(obs)
    env = SpotFleetVectorEnv(1, world_2d, mode="replay")
    first, _ = env.reset(seed=0)
    vector_obs = [first[0]]
    for action in replay_actions:
        obs, _, _, _, vector_info = env.step(np.asarray([action], dtype=np.float32))
        vector_obs.append(obs[0])
    one = vector_info["totals"]
    np.testing.assert_array_equal(vector_obs[0], single_obs[0])
    fleet_free = [0, 1, 2, 8, 9] + [11 + 5 * j + c for j in range(3) for c in range(4)]
    np.testing.assert_array_equal(
        np.array(vector_obs)[:, fleet_free], np.array(single_obs)[:, fleet_free]
    )
    assert one["cost_usd"][0] == pytest.approx(info["totals"]["cost_usd"], rel=0.005)
    assert one["slo_attainment"][0] == pytest.approx(info["totals"]["slo_attainment"], abs=0.002)
    assert one["interruptions"][0] == pytest.approx(info["totals"]["interruptions"], abs=3)


def test_an_az_outage_bills_and_blocks_as_the_fleet_model(world_2d: Any) -> None:
    """An AZ outage (none of the shipped spot scenarios has one) injected into the replay
    market: with the warm fleet alone, the count model's cost equals
    :class:`~agents.cost.fleet.FleetModel`'s minute by minute (the AZ's node billed to
    the outage's second), its nodes are gone, and it cannot launch until the outage
    ends."""
    env = SpotFleetVectorEnv(1, world_2d, mode="replay")
    market = market_from_world(world_2d, env.layout)
    market.outages = [(630.0, 1800.0, "us-east-1d")]  # minute 10, second 30, for 30 min
    arrays = market_arrays([market], env.mc)
    fleet = FleetBatch(env.fc, 1)
    fleet.reset(np.arange(1), arrays)
    model = FleetModel.for_world(world_2d, env.layout, market)
    d = [k for k, s in enumerate(env.layout.slots) if s.az == "us-east-1d"]
    assert fleet.active()[0, d].sum() > 0
    rng = np.random.default_rng(0)
    for _ in range(45):
        assert fleet.advance(arrays, rng).cost_usd[0] == pytest.approx(model.advance().cost_usd)
    assert fleet.active()[0, d].sum() == 0 and fleet.active()[0].tolist() == model.act
    assert not arrays.launchable[0, 11:41, d].any() and arrays.launchable[0, 41, d[0]]


def test_train_windows_cost_as_in_the_single_env(world_2d: Any) -> None:
    """Train mode, paired: each sub-environment's sampled window replayed in
    :class:`SpotFleetEnv` (its sampler handed the same window) with the same actions.
    Measured on the full scenario (24 one-day windows): episode cost within 0.1%
    (mean gap +0.001%) and SLO attainment within 0.0007; here 4 half-day windows,
    allowed 0.5% and 0.003."""
    rng = np.random.default_rng(3)
    mixes = rng.uniform(-1, 1, (4, 7)).astype(np.float32)  # a new mix every 3 hours
    env = SpotFleetVectorEnv(4, world_2d, episode_minutes=720, autoreset_mode="SameStep")
    env.reset(seed=7)
    for step in range(720):
        _, _, _, _, info = env.step(np.tile(mixes[step // 180], (4, 1)))
    totals = info["final_info"]["totals"]
    for i in range(4):
        seq = np.random.SeedSequence(env._root, spawn_key=(0, i, 0))
        market = env.single.sample_market(np.random.default_rng(seq))
        single = SpotFleetEnv(world_2d, episode_minutes=720)
        single.sample_market = lambda _rng, m=market: m  # type: ignore[method-assign]
        single.reset(seed=i)
        for step in range(720):
            _, _, _, _, single_info = single.step(mixes[step // 180])
        expected = single_info["totals"]
        assert totals["cost_usd"][i] == pytest.approx(expected["cost_usd"], rel=0.005)
        assert totals["slo_attainment"][i] == pytest.approx(expected["slo_attainment"], abs=0.003)


def _od_fleet(world: Any) -> tuple[SpotFleetVectorEnv, Any, FleetBatch, FleetModel]:
    env = SpotFleetVectorEnv(1, world, mode="replay")
    market = market_from_world(world, env.layout)
    arrays = market_arrays([market], env.mc)
    fleet = FleetBatch(env.fc, 1)
    fleet.reset(np.arange(1), arrays)
    return env, arrays, fleet, FleetModel.for_world(world, env.layout, market)


def test_provisioning_follows_the_delay_distribution(world_2d: Any) -> None:
    """20,000 nodes launched at once: the share ready after each minute, and the pods
    serving in each minute, as 20,000 delays drawn with the simulator's ``draw_delay``
    give them (pod start 15 s; within 0.01 of the launch)."""
    env, arrays, fleet, _ = _od_fleet(world_2d)
    sc = world_2d.scenario
    fleet.run[:] = 0
    fleet.pend[0, 0, 0] = 20_000  # slot 0: an on-demand AZ
    rng = np.random.default_rng(0)
    delay_rng = np.random.default_rng(1)
    delays = np.array([draw_delay(sc.control.provisioning_delay, delay_rng) for _ in range(20_000)])
    serve_at = delays + sc.control.pod_start_delay_s
    ppn = env.layout.slots[0].pods_per_node
    for minute in range(7):
        served = fleet.advance(arrays, rng).serving_pods[0] / ppn / 20_000
        expected = np.clip(60.0 * (minute + 1) - serve_at, 0.0, 60.0).mean() / 60.0
        assert served == pytest.approx(expected, abs=0.01), minute
        ready = fleet.run[0, 0] / 20_000
        assert ready == pytest.approx((delays < 60.0 * (minute + 1)).mean(), abs=0.01), minute


def test_scale_in_and_launches_bill_as_the_fleet_model(world_2d: Any) -> None:
    """On the warm on-demand fleet, the same desired nodes applied to both models, each
    time once every launched node is running (which nodes are still pending is random,
    and cancelling one is cheaper than draining it): drains (billed ``drain_s``) and
    launches (billed from the launch on) give FleetModel's cost minute by minute."""
    env, arrays, fleet, model = _od_fleet(world_2d)
    od = list(env.layout.od_slots)
    rng = np.random.default_rng(0)
    for desired in ([6, 5, 5], [1, 2, 1], [4, 1, 3], [2, 1, 1], [1, 1, 1]):
        target = np.array(fleet.active()[0])
        target[od] = desired
        fleet.apply(target[None], arrays.launchable[:, fleet.minute[0]])
        model.apply(target.tolist())
        for _ in range(6):  # the longest delay is 300 s
            cost = fleet.advance(arrays, rng).cost_usd[0]
            assert cost == pytest.approx(model.advance().cost_usd, rel=1e-9)
        assert fleet.active()[0].tolist() == model.act


@pytest.mark.parametrize("history", [0, 1000, 3000], ids=["no-history", "short", "long"])
def test_load_features_are_the_trackers_with_gaps(world_2d: Any, history: int) -> None:
    """Load, forecast and plan (what depends on the load alone) against
    :class:`FeatureTracker` and :class:`LoadPlanner` fed tick by tick, on a window with
    telemetry gaps (the first 40 minutes and 3 in every 97) and 0, 1,000 or 3,000 minutes
    of history (the forecast starts once a day of loads is known)."""
    env = SpotFleetVectorEnv(1, world_2d, episode_minutes=600)
    market = env.single.sample_market(np.random.default_rng(history))
    market.history_rps = market.history_rps[len(market.history_rps) - history :]
    market.gaps = [i < 40 or i % 97 < 3 for i in range(600)]
    arrays = market_arrays([market], env.mc)
    ctrl = Controller(
        env.layout,
        pod_rate_rps=env.single.pod_rate,
        slo_p95_ms=env.slo_p95_ms,
        start=market.start,
        history_rps=market.history_rps,
    )
    for i in range(601):
        gap = i == 0 or market.gaps[i - 1]
        load = None if gap else market.offered_rps[i - 1]
        tick = Tick(60.0 * i, load, None, None, None, [1] * 6, [0] * 6, [0.1] * 6, [True] * 6,
                    [True] * 6)  # fmt: skip
        ctrl.observe(tick)
        features = ctrl.features()
        assert arrays.load_feature[0, i] == pytest.approx(features[0], abs=1e-6)
        assert arrays.forecast[0, i] == pytest.approx(features[2], abs=1e-6)
        planned = arrays.plan[0, i]
        assert (np.isnan(planned) and not ctrl.planner.loads) or planned == ctrl.plan_pods


def test_a_reclaim_notices_its_share_over_both_spot_pools_of_the_az(world_2d: Any) -> None:
    """Two spot pools in one AZ (8- and 16-pod nodes): an availability drop at 30 s
    into minute 1 notices ``ceil(0.5 n)`` of the AZ's pending and running spot nodes,
    drawn without replacement across both pools (the split's mean is proportional to
    the counts); the noticed nodes are billed 120 s more and the others are not
    touched."""
    layout = Layout.of(_two_spot_pools(world_2d))
    env = SpotFleetVectorEnv(1, world_2d)
    mc = MarketConstants.of(layout, env.single.pod_rate, 5)
    sc = world_2d.scenario
    fc = FleetConstants.of(
        layout,
        mc,
        service=env.single.service,
        slo_p95_ms=env.slo_p95_ms,
        delay=sc.control.provisioning_delay,
        pod_start_delay_s=sc.control.pod_start_delay_s,
        drain_s=sc.control.drain_s,
        notice_s=sc.pricing.interruption_notice_s,
    )
    market = Market(
        start=world_2d.workload.start,
        offered_rps=[0.0] * 5,
        gaps=[False] * 5,
        prices=[[3.6] * 6 for _ in layout.slots],  # 0.001 USD per node-second
        available0={},
        transitions=[(90.0, "us-east-1c", False)],
        history_rps=np.zeros(0),
        reclaim_fraction=0.5,
    )
    e = 4000
    arrays = market_arrays([market] * e, mc)
    fleet = FleetBatch(fc, e)
    fleet.reset(np.arange(e), arrays)
    small, big = (k for k in layout.spot_slots if layout.slots[k].az == "us-east-1c")
    rng = np.random.default_rng(0)
    assert (fleet.advance(arrays, rng).interruptions == 0).all()  # minute 0: no event
    fleet.run[:] = 0
    fleet.run[:, small], fleet.run[:, big] = 10, 5
    fleet.pend[1, :, big] = 2  # launched a minute ago, pending or ready in minute 1
    minutes = [fleet.advance(arrays, rng) for _ in range(3)]  # the drop is in minute 1
    noticed = minutes[0].interruptions
    assert (noticed == 9).all()  # ceil(0.5 x (10 + 5 + 2))
    left = fleet.active()[:, [small, big]]
    assert (left.sum(axis=1) == 17 - 9).all()
    share_small = (10 - left[:, 0]).mean() / 9
    assert share_small == pytest.approx(10 / 17, abs=0.02)
    # minute 3: the survivors' full minute plus 30 s of every noticed node
    np.testing.assert_allclose(minutes[2].cost_usd, 0.06 * (17 - 9) + 0.03 * 9)
