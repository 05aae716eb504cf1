"""``opsbench/SpotFleet-v0`` vectorised: ``num_envs`` spot fleets stepped as numpy arrays.

Build it with::

    import agents, gymnasium as gym
    envs = gym.make_vec(
        "opsbench/SpotFleet-v0", num_envs=64, vectorization_mode="vector_entry_point"
    )

Each sub-environment is :class:`~agents.cost.env.SpotFleetEnv`: the same single
observation and action spaces and meaning, the same episodes (``mode="train"`` samples
a window per sub-environment with the single environment's own sampler;
``mode="replay"`` is the scenario's replay), the same plan rule
(:mod:`agents.cost.vector_plan`, equal to :func:`agents.cost.plan.execute`), the same
features (:mod:`agents.cost.vector_market`) and the same reward
``-cost / od_cost - slo_penalty * violation``. The fleet is the count model of
:mod:`agents.cost.vector_fleet` (node counts per slot instead of nodes on an event heap:
see its docstring for what it averages); it draws its own random numbers, so a
sub-environment agrees with the single environment in distribution, not draw by draw.

``step`` runs no Python loop over sub-environments. ``reset(seed=s)`` makes every
sub-environment's episodes a function of ``s``: sub-environment ``i``'s ``j``-th window
comes from ``SeedSequence(root, spawn_key=(0, i, j))`` and the fleet draws (one
generator for the batch) from ``SeedSequence(root, spawn_key=(1,))``, ``root`` drawn
from the seeded ``np_random``; a sub-environment's fleet draws depend on ``num_envs``.

Autoreset: ``autoreset_mode`` ``NEXT_STEP`` (gymnasium's default: the step after an
episode's end ignores that sub-environment's action and returns its first observation,
reward 0) or ``SAME_STEP`` (the ending step returns the next episode's first observation,
the last one in ``info["final_obs"]`` and its info in ``info["final_info"]``). The ending
step's info carries ``totals`` (cost, SLO attainment, ...) as the single environment's.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from agents.cost.env import SLO_PENALTY, SpotFleetEnv
from agents.cost.fleet import market_from_world
from agents.cost.vector_fleet import FleetBatch, FleetConstants, MinuteBatch
from agents.cost.vector_market import MarketArrays, MarketConstants, market_arrays
from agents.cost.vector_plan import PlanLayout, decode_actions, execute_batch
from agents.cost.view import SLO_TARGET
from sim.world import World

__all__ = ["SpotFleetVectorEnv"]

_TOTALS = ("cost_usd", "spot_cost_usd", "od_ref_usd", "violations", "interruptions")


class SpotFleetVectorEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """``num_envs`` :class:`~agents.cost.env.SpotFleetEnv` episodes at once (see the
    module docstring). Arguments as :class:`~agents.cost.env.SpotFleetEnv`'s, plus
    ``num_envs`` and ``autoreset_mode``; ``held_out_traces`` and ``availability`` as the
    single env's."""

    def __init__(
        self,
        num_envs: int = 1,
        world: World | None = None,
        *,
        scenario: str = "default",
        days: float | None = None,
        mode: Literal["train", "replay"] = "train",
        episode_minutes: int = 1440,
        slo_penalty: float = SLO_PENALTY,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        held_out_traces: frozenset[str] = frozenset(),
        availability: Literal["traces", "generated"] = "traces",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs(={num_envs}) must be >= 1")
        autoreset_mode = AutoresetMode(autoreset_mode)
        if autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode: NEXT_STEP or SAME_STEP (DISABLED is not supported)")
        self.metadata = {"render_modes": [], "autoreset_mode": autoreset_mode}
        self.autoreset_mode = autoreset_mode
        single = SpotFleetEnv(
            world, scenario=scenario, days=days, mode=mode, episode_minutes=episode_minutes,
            held_out_traces=held_out_traces, availability=availability,
        )  # fmt: skip
        self.single = single
        self.world, self.layout, self.mode = single.world, single.layout, mode
        self.num_envs = num_envs
        self.episode_minutes = single.episode_minutes
        self.slo_penalty = slo_penalty
        self.single_observation_space = single.observation_space
        self.single_action_space = single.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        sc = self.world.scenario
        self.slo_p95_ms = single.slo_p95_ms
        self.mc = MarketConstants.of(self.layout, single.pod_rate, self.episode_minutes)
        self.fc = FleetConstants.of(
            self.layout,
            self.mc,
            service=single.service,
            slo_p95_ms=single.slo_p95_ms,
            delay=sc.control.provisioning_delay,
            pod_start_delay_s=sc.control.pod_start_delay_s,
            drain_s=sc.control.drain_s,
            notice_s=sc.pricing.interruption_notice_s,
        )
        self.plan_layout = PlanLayout.of(self.layout)
        self.n_spot = len(self.layout.spot_slots)
        od = next(p for p in self.layout.pools if p.capacity_type == "on-demand")
        self.cap_pods = max(1.0, float(od.max_nodes * od.pods_per_node))
        self.od_price_per_pod = single.od_price_per_pod
        self.rows = np.arange(num_envs)
        self.fleet = FleetBatch(self.fc, num_envs)
        self.market: MarketArrays | None = None
        self._replay_market: MarketArrays | None = None
        self._root = 0
        self._episodes = np.zeros(num_envs, dtype=np.int64)
        self._fleet_rng = np.random.default_rng(0)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self.cpu = np.zeros(num_envs)
        self.p95 = np.zeros(num_envs)
        self.minutes = np.zeros(num_envs, dtype=np.int64)
        self.violations = np.zeros(num_envs, dtype=np.int64)
        self.plan = np.zeros(num_envs)
        self.last_interruptions = np.zeros(num_envs, dtype=np.int64)
        self.totals = {key: np.zeros(num_envs) for key in _TOTALS}

    # ------------------------------------------------------------------ episodes
    def _markets(self, rows: np.ndarray) -> MarketArrays:
        if self.mode == "replay":
            if self._replay_market is None:
                market = market_from_world(self.world, self.layout)
                self._replay_market = market_arrays([market], self.mc)
            one = self._replay_market
            return MarketArrays(
                **{
                    f.name: np.repeat(getattr(one, f.name), rows.size, axis=0)
                    for f in fields(one)
                    if f.init and f.name != "events"
                },
                events=one.events * rows.size,
            )
        markets = []
        for i in rows.tolist():
            seq = np.random.SeedSequence(self._root, spawn_key=(0, i, int(self._episodes[i])))
            markets.append(self.single.sample_market(np.random.default_rng(seq)))
        return market_arrays(markets, self.mc)

    def _start(self, rows: np.ndarray) -> None:
        """New episodes for sub-environments ``rows``."""
        fresh = self._markets(rows)
        if self.market is None or rows.size == self.num_envs:
            self.market = fresh
        else:
            self.market.assign(rows, fresh)
        self._episodes[rows] += 1
        self.fleet.reset(rows, self.market)
        for arr in (self.cpu, self.p95, self.minutes, self.violations, self.last_interruptions):
            arr[rows] = 0
        for arr in self.totals.values():
            arr[rows] = 0.0
        active_pods = (self.fleet.active()[rows] * self.fc.ppn).sum(axis=1)
        self.plan[rows] = active_pods  # the planner has seen no load yet

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode in every sub-environment."""
        super().reset(seed=seed)
        self._root = int(self.np_random.integers(2**63 - 1))
        self._episodes[:] = 0
        self._fleet_rng = np.random.default_rng(np.random.SeedSequence(self._root, spawn_key=(1,)))
        self._autoreset[:] = False
        self._start(self.rows)
        return self._observe(), {}

    # ------------------------------------------------------------------ steps
    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One minute of every sub-environment (``actions`` shape ``(num_envs, 4 + n_spot)``)."""
        market, fleet, rows = self.market, self.fleet, self.rows
        assert market is not None, "call reset() first"
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        i = np.minimum(fleet.minute, self.episode_minutes)
        launchable = market.launchable[rows, i]
        plan = self.plan
        pending = fleet.pending()
        desired = execute_batch(
            self.plan_layout,
            fleet.run + pending,
            pending,
            market.price[rows, i],
            launchable,
            decode_actions(actions, self.n_spot),
            plan,
        )
        fleet.apply(desired, launchable)
        minute = fleet.advance(market, self._fleet_rng)
        od_ref = np.maximum(plan, 1.0) * self.od_price_per_pod / 60.0
        violation = ~minute.ok
        rewards = -minute.cost_usd / od_ref - self.slo_penalty * violation
        t = self.totals
        t["cost_usd"] += minute.cost_usd
        t["spot_cost_usd"] += minute.spot_cost_usd
        t["od_ref_usd"] += od_ref
        t["violations"] += violation
        t["interruptions"] += minute.interruptions
        active = fleet.active()
        self._see(minute, active)
        truncated = fleet.minute >= self.episode_minutes
        terminated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {
            "cost_usd": minute.cost_usd,
            "slo_ok": minute.ok,
            "_cost_usd": np.ones(self.num_envs, dtype=bool),
            "_slo_ok": np.ones(self.num_envs, dtype=bool),
        }
        observations = self._observe(active)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            if truncated.any():
                infos["totals"] = self._totals()
                infos["_totals"] = truncated.copy()
            restart = np.nonzero(self._autoreset)[0]
            if restart.size:
                self._start(restart)
                observations[restart] = self._observe()[restart]
                rewards[restart] = 0.0
                truncated[restart] = False
                for key in ("_cost_usd", "_slo_ok"):
                    infos[key] = ~self._autoreset
                if "_totals" in infos:
                    infos["_totals"] &= ~self._autoreset
            self._autoreset = truncated | terminated
        else:
            done = np.nonzero(truncated | terminated)[0]
            if done.size:
                final_info = {"totals": self._totals(), "_totals": truncated | terminated}
                final_obs = np.full(self.num_envs, None, dtype=object)
                for j in done.tolist():
                    final_obs[j] = observations[j].copy()
                infos["final_obs"] = final_obs
                infos["_final_obs"] = truncated | terminated
                infos["final_info"] = final_info
                infos["_final_info"] = truncated | terminated
                self._start(done)
                observations[done] = self._observe()[done]
        return observations, rewards, terminated, truncated, infos

    def _totals(self) -> dict[str, np.ndarray]:
        t = {key: value.copy() for key, value in self.totals.items()}
        minutes = np.maximum(self.fleet.minute, 1)
        t["minutes"] = self.fleet.minute.copy()
        t["slo_attainment"] = 1.0 - t["violations"] / minutes
        return t

    def _see(self, minute: MinuteBatch, active: np.ndarray) -> None:
        """The controller's tick: planner and feature tracker move on."""
        market, fleet = self.market, self.fleet
        assert market is not None
        i = np.minimum(fleet.minute, self.episode_minutes)
        seen = ~market.gap[self.rows, i]
        violated = (minute.p95_ms > self.slo_p95_ms) | (
            (minute.offered_rps > 0) & (minute.dropped > 0.0)
        )
        self.minutes += seen
        self.violations += seen & violated
        self.cpu = np.where(seen, minute.cpu, self.cpu)
        self.p95 = np.where(seen, minute.p95_ms, self.p95)
        self.last_interruptions = minute.interruptions
        planned = market.plan[self.rows, i]
        active_pods = active @ self.fc.ppn_f
        self.plan = np.where(np.isnan(planned), active_pods, planned)

    def _observe(self, active: np.ndarray | None = None) -> np.ndarray:
        """The observation of every sub-environment (as :class:`FeatureTracker`)."""
        market, fleet, rows = self.market, self.fleet, self.rows
        assert market is not None
        i = np.minimum(fleet.minute, self.episode_minutes)
        plan = np.maximum(1.0, self.plan)
        pods = (fleet.active() if active is None else active) * self.fc.ppn
        allowed = (1.0 - SLO_TARGET) * self.minutes + 1.0
        od_pods = pods[:, self.plan_layout.od].sum(axis=1)
        spot_pods = pods[:, self.plan_layout.spot]
        glob = np.stack(
            (
                market.load_feature[rows, i],
                self.plan / self.cap_pods,
                market.forecast[rows, i],
                self.cpu / 1.5,
                self.p95 / self.slo_p95_ms / 2.0,
                np.zeros(self.num_envs),
                od_pods / plan / 2.0,
                spot_pods.sum(axis=1) / plan / 2.0,
                np.zeros(self.num_envs),
                np.zeros(self.num_envs),
                self.last_interruptions / 5.0,
            ),
            axis=1,
        )
        np.minimum(np.maximum(glob, 0.0, out=glob), 1.0, out=glob)
        glob[:, 5] = np.maximum(np.minimum((allowed - self.violations) / allowed, 1.0), -1.0)
        glob[:, 8] = market.day_sin[rows, i]
        glob[:, 9] = market.day_cos[rows, i]
        per_slot = np.concatenate(
            (
                market.spot_features[rows, i],
                np.minimum(spot_pods / plan[:, None] / 2.0, 1.0)[:, :, None],
            ),
            axis=2,
        )
        return np.concatenate((glob, per_slot.reshape(self.num_envs, -1)), axis=1).astype(
            np.float32
        )
