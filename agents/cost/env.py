"""``opsbench/SpotFleet-v0``: hold a replayed service's capacity on spot and on-demand.

Registered with gymnasium when :mod:`agents` (or :mod:`agents.cost`) is imported; build it
with either of::

    import agents, gymnasium as gym
    env = gym.make("opsbench/SpotFleet-v0", scenario="default", episode_minutes=1440)

    env = gym.make("agents.cost:opsbench/SpotFleet-v0")  # gymnasium imports agents.cost

The world is built from :mod:`sim` alone (scenario file → :func:`sim.world.prepare`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.cost import ENV_ID
from agents.cost.controller import Controller
from agents.cost.fleet import (
    FleetModel,
    Market,
    market_from_world,
    minute_prices,
    window_transitions,
)
from agents.cost.plan import Layout, Tick, decode_action
from agents.cost.view import n_features
from scenarios import data_path
from sim.market.availability import AvailabilitySeries, load_availability_trace
from sim.market.availability_model import AvailabilityModel, fit_availability
from sim.market.hazard import HAZARD_WINDOW_MIN, DropRatePrior, fit_drop_rate_prior
from sim.market.prices import PriceSeries, replay_spot_prices
from sim.scenario import ReplayedSpotPrices
from sim.scenario_files import find_scenario, load_scenario_file
from sim.traffic import ServiceModel
from sim.world import World, prepare

if TYPE_CHECKING:
    from agents.cost.env_sizing import PredictiveSizing, SizingSource

__all__ = ["ENV_ID", "SLO_PENALTY", "SpotFleetEnv", "prepare_world"]

SLO_PENALTY = 100.0
"""lambda: one SLO-violation minute costs as much as holding the plan on on-demand for 100
minutes, about the saving of 200 minutes on spot (spot costs ~0.5 of on-demand here).
The 99.9% target allows one violation per 1,000 minutes, so a policy may buy a lower
violation risk at up to a fifth of what spot saves, and a risk that costs one violation
per 200 minutes or more of spot is never worth it."""
DATA = data_path("spot")
PRICE_TYPE = "c5a.2xlarge"
PRICE_AZS = ("us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f")
PRICE_DAYS = 32.0


def prepare_world(scenario: str = "default", days: float | None = None) -> World:
    """The world of ``scenario`` (a shipped id or a scenario file), ``days`` long (default:
    the scenario's own duration). Raises :class:`~sim.errors.InputError` on bad input."""
    path = find_scenario(scenario)
    return prepare(load_scenario_file(path), source=path, days=days)


@lru_cache(maxsize=1)
def _dev_trace_lengths() -> dict[str, float]:
    """Seconds each dev availability and preemption trace covers, by path relative to
    ``scenarios/data/spot/traces`` (read once per process)."""
    out = {}
    for path in sorted((DATA / "traces").rglob("*.json")):
        doc = json.loads(path.read_text())
        name = path.relative_to(DATA / "traces").as_posix()
        out[name] = float(doc["metadata"]["gap_seconds"]) * len(doc["data"])
    return out


@lru_cache(maxsize=1)
def _dev_traces() -> dict[str, AvailabilitySeries]:
    """Every dev availability and preemption trace, whole, by path relative to
    ``scenarios/data/spot/traces`` (read once per process)."""
    return {
        name: load_availability_trace(DATA / "traces" / name, offset_s=0.0, duration_s=length_s)
        for name, length_s in _dev_trace_lengths().items()
    }


def training_traces(exclude: frozenset[str] = frozenset()) -> tuple[AvailabilitySeries, ...]:
    """Every dev availability and preemption trace (``scenarios/data/spot/traces``), whole,
    but those named in ``exclude`` (paths relative to that folder, e.g. held out for
    evaluation). Raises ValueError if an excluded name is not a trace or none is left."""
    every = _dev_traces()
    if unknown := sorted(exclude - every.keys()):
        raise ValueError(f"not dev traces: {', '.join(unknown)}")
    kept = tuple(series for name, series in every.items() if name not in exclude)
    if not kept:
        raise ValueError("every dev trace is held out: none is left to train on")
    return kept


@lru_cache(maxsize=8)
def training_availability_model(exclude: frozenset[str] = frozenset()) -> AvailabilityModel:
    """The availability generator (:mod:`sim.market.availability_model`) fitted on
    :func:`training_traces` ``(exclude)``, each trace whole (its last spell cut at the
    trace's end), so the traces named in ``exclude`` take no part in it."""
    observed = training_observations(exclude)
    return fit_availability([s for _, s, _ in observed], [d for _, _, d in observed])


def training_observations(
    exclude: frozenset[str] = frozenset(),
) -> tuple[tuple[str, AvailabilitySeries, float], ...]:
    """``(name, series, duration_s)`` of each of :func:`training_traces` ``(exclude)``:
    the dev traces, whole, by path relative to ``scenarios/data/spot/traces``, with the
    seconds each covers."""
    lengths = _dev_trace_lengths()
    names = [name for name in lengths if name not in exclude]
    series = training_traces(exclude)
    return tuple((name, one, lengths[name]) for name, one in zip(names, series, strict=True))


@lru_cache(maxsize=8)
def training_prior(exclude: frozenset[str] = frozenset()) -> DropRatePrior:
    """The hazard features' drop-rate prior (:func:`sim.market.hazard.fit_drop_rate_prior`
    over :data:`~sim.market.hazard.HAZARD_WINDOW_MIN`-minute windows) fitted on
    :func:`training_observations` ``(exclude)``, each trace over its whole length, so the
    traces named in ``exclude`` take no part in it. Cached per ``exclude``."""
    observed = training_observations(exclude)
    return fit_drop_rate_prior(
        [series for _, series, _ in observed],
        HAZARD_WINDOW_MIN,
        durations_s=[duration for _, _, duration in observed],
    )


@lru_cache(maxsize=1)
def training_prices() -> tuple[PriceSeries, ...]:
    """The c5a.2xlarge spot price series of five us-east-1 AZs (32 days each)."""
    cfg = ReplayedSpotPrices(kind="replay", path="spot_price_history.csv", instance_type=PRICE_TYPE)
    series = replay_spot_prices(
        cfg,
        base_dir=DATA,
        pools=[(PRICE_TYPE, az) for az in PRICE_AZS],
        duration_s=PRICE_DAYS * 86400.0,
    )
    return tuple(series[(PRICE_TYPE, az)] for az in PRICE_AZS)


class SpotFleetEnv(gym.Env[np.ndarray, np.ndarray]):
    """Hold a replayed service's capacity on spot and on-demand at the lowest cost
    that keeps the latency SLO.

    ## Description

    A step is one control interval (the scenario's, 60 s) of a replayed workload and
    spot market. Every policy shares one capacity plan (the highest load of the last
    30 minutes + 20%, at the target utilisation; :mod:`agents.cost.controller`); the agent
    chooses how to hold it: which share goes on on-demand, how spot is split over the
    AZs where it can be launched, how much extra spot buffers reclaims, and what to do
    with spot nodes stranded in AZs whose capacity is gone. The fast fleet model
    (:mod:`agents.cost.fleet`) then runs one minute: provisioning delays, pod start,
    drains, interruption notices on availability drops, per-second billing, and the
    simulator's own fluid traffic and latency model.

    In ``mode="train"`` each episode samples a window: the load from the scenario's
    history (the load before its replay; its replay window if the history is too
    short), each spot AZ's availability from a random dev trace (Can't-Be-Late
    availability and preemption traces) at a random offset (or, with
    ``availability="generated"``, a series drawn from the generator fitted on those
    traces), and each AZ's spot price from a random c5a.2xlarge series at a random
    offset. In ``mode="replay"`` the one episode is the scenario's replay itself, with
    the simulator's generators, so its actions can be replayed in the simulator (the
    fidelity test).

    ## Action Space

    ``Box(-1, 1, (4 + n_spot,), float32)`` (:func:`agents.cost.plan.decode_action`):

    ======  ====================================================================
    index   meaning (the zero action is ``spot-greedy``)
    ======  ====================================================================
    0       on-demand floor: ``max(0, a)`` of the plan always on on-demand
    1       on-demand fill: ``1 - 0.4 max(0, a)`` of any spot shortfall
    2       spot buffer: ``0.3 max(0, a)`` extra spot
    3       keep: ``max(0, a)`` of surplus stranded spot nodes kept
    4...    one weight ``(a + 1) / 2`` per spot pool x AZ (0.05 or less: avoid)
    ======  ====================================================================

    ## Observation Space

    ``Box(-1, 1, (11 + 5 n_spot,), float32)``: load now and the planned pods, a
    seasonal forecast, CPU, p95 / SLO, SLO headroom against the 99.9% line, on-demand
    and spot shares of the plan, time of day, recent interruptions, and per spot AZ
    its price / on-demand ratio, whether spot is on offer, the share of the last hour
    without it, drops in the last 6 h and its share of the plan (table in
    :mod:`agents.cost.view`). Under predictive sizing (feature version 2) ``2 + n_spot``
    more: the sizing's forecast (median and provisioned quantile over the plan) and each
    spot AZ's probability of a drop within 30 up-minutes.

    ## Rewards

    ``r = -cost / od_cost - lambda * violation`` per minute: ``cost`` is what the fleet
    was billed in the minute (USD), ``od_cost`` what the plan would cost on on-demand
    in that minute, ``violation`` is 1 when the minute's p95 exceeded the SLO target or
    a request was dropped, and ``lambda = 100`` (:data:`SLO_PENALTY`, justified there).

    ## Starting State

    The simulator's warm fleet: pool minimums plus enough nodes for the first minute's
    load on the pool with the cheapest pod slot (spot when it is on offer).

    ## Episode End

    Truncated after ``episode_minutes`` steps (``mode="train"``) or at the end of the
    replay (``mode="replay"``); never terminated early.

    ## Arguments

    ``world``: a prepared :class:`~sim.world.World`; or ``scenario`` (a shipped id or a
    scenario file, default ``"default"``) and ``days`` (default: the scenario's
    duration) to prepare one (:func:`prepare_world`). ``mode``: ``"train"`` (default)
    or ``"replay"``. ``episode_minutes``: window length in train mode (default 1,440).
    ``slo_penalty``: lambda. ``held_out_traces``: dev availability traces (paths under
    ``scenarios/data/spot/traces``) that train-mode episodes never draw, so a policy can
    be scored on them (:mod:`bench.cost_rl_cv`). ``availability``: ``"traces"`` (default)
    replays windows of the dev traces; ``"generated"`` draws each AZ's availability from
    :func:`training_availability_model` (fitted on the same traces, so without the
    held-out ones; :mod:`sim.market.availability_model`).

    ``sizing_source``: whose plan the mix holds. ``None`` (the default): the
    controller's own, feature version 1. A :class:`~agents.cost.env_sizing.SizingSource`
    (the trained scaling model, its parameters and its forecasts over the scenario's
    history, built once and shared by every environment of a training run): the
    ``predictive`` scaling policy's plan (:mod:`agents.cost.env_sizing`), and the
    observation is feature version 2, with the sizing's forecast and each spot AZ's drop hazard
    (:mod:`agents.cost.view`), and train-mode windows start once the history holds
    the :data:`~agents.scaling.history.MIN_HISTORY_DAYS` the forecaster needs.

    ``reset(seed=...)`` makes the episode (window, generators) a function of the seed.
    Registered without ``max_episode_steps``: the environment truncates its episodes
    itself (see :func:`agents.cost.register`).
    """

    metadata = {"render_modes": []}  # noqa: RUF012  (gymnasium's convention)

    def __init__(
        self,
        world: World | None = None,
        *,
        scenario: str = "default",
        days: float | None = None,
        mode: Literal["train", "replay"] = "train",
        episode_minutes: int = 1440,
        slo_penalty: float = SLO_PENALTY,
        held_out_traces: frozenset[str] = frozenset(),
        availability: Literal["traces", "generated"] = "traces",
        sizing_source: SizingSource | None = None,
    ) -> None:
        if availability not in ("traces", "generated"):
            raise ValueError(f"availability {availability!r}: 'traces' or 'generated'")
        if world is None:
            world = prepare_world(scenario, days)
        self.world = world
        self.sizing_source = sizing_source
        self.sizing: PredictiveSizing | None = None
        self.feature_version = 1 if sizing_source is None else 2
        self.hazard_prior: DropRatePrior | None = None
        if sizing_source is not None:
            self.hazard_prior = training_prior(held_out_traces)
        self.availability_traces = training_traces(held_out_traces)
        self.availability = availability
        self.availability_model = (
            training_availability_model(held_out_traces) if availability == "generated" else None
        )
        self.mode = mode
        self.layout = Layout.of(world.pools, source=world.source)
        sc = world.scenario
        self.service = ServiceModel(
            world.latency,
            queue_limit_per_pod=sc.cluster.queue_limit_per_pod,
            request_timeout_ms=sc.cluster.request_timeout_ms,
        )
        self.pod_rate = self.service.pod_rate_rps * sc.cluster.target_utilization
        self.slo_p95_ms = sc.slo.p95_latency_ms
        self.slo_penalty = slo_penalty
        self.episode_minutes = (
            world.n_minutes if mode == "replay" else min(episode_minutes, world.n_minutes)
        )
        n_spot = self._n_spot = len(self.layout.spot_slots)
        if sizing_source is not None:
            self.sizing = sizing_source.sizing(
                pod_rate_rps=self.pod_rate,
                target_utilization=sc.cluster.target_utilization,
                max_pods=sum(s.max_nodes * s.pods_per_node for s in self.layout.pools),
            )
        n_obs = n_features(self.layout, self.feature_version)
        self.observation_space = spaces.Box(-1.0, 1.0, (n_obs,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (4 + n_spot,), np.float32)
        self._od_slot = self.layout.od_slots[0]
        self.od_price_per_pod = (
            self.layout.slots[self._od_slot].on_demand_usd_per_hour
            / self.layout.slots[self._od_slot].pods_per_node
        )
        self.model: FleetModel | None = None
        self.ctrl: Controller | None = None
        self.steps = 0

    # ------------------------------------------------------------------ episodes
    def sample_market(self, rng: np.random.Generator) -> Market:
        """A training window drawn with ``rng`` (see the class docstring: load from the
        history, each spot AZ's availability and price from a random dev series at a
        random offset, or the availability from the generator); the vectorised env draws
        its sub-environments' windows here too."""
        world, layout = self.world, self.layout
        n = self.episode_minutes
        hist = world.workload.history_rps
        if self.sizing_source is not None:  # the forecasts cover the history from its start
            load_source, first = hist, self.sizing_source.history_start_min
        else:
            load_source = hist if hist.size >= n + 1440 else world.workload.offered_rps
            first = 1440 if load_source is hist else 0
        start = int(rng.integers(first, max(first + 1, load_source.size - n + 1)))
        offered = load_source[start : start + n]
        history = load_source[:start]
        traces, price_series = self.availability_traces, training_prices()
        available0: dict[str, bool] = {}
        transitions: list[tuple[float, str, bool]] = []
        for az in sorted({layout.slots[k].az for k in layout.spot_slots}):
            if self.availability_model is not None:
                series, offset = self.availability_model.sample(n * 60.0, rng), 0.0
            else:
                series = traces[int(rng.integers(len(traces)))]
                length = float(series.times_s[-1]) if series.times_s.size > 1 else 0.0
                offset = float(rng.uniform(0.0, max(0.0, length - n * 60.0)))
            up, changes = window_transitions(series, offset, n * 60.0)
            available0[az] = up
            transitions.extend((t, az, a) for t, a in changes)
        transitions.sort(key=lambda x: x[0])
        prices: list[list[float]] = []
        price_offset = float(rng.uniform(0.0, PRICE_DAYS * 86400.0 - n * 60.0))
        for slot in layout.slots:
            if slot.spot:
                price = price_series[int(rng.integers(len(price_series)))]
                prices.append(minute_prices(price, price_offset, n))
            else:
                prices.append([slot.on_demand_usd_per_hour] * (n + 1))
        sc = world.scenario
        from datetime import timedelta

        return Market(
            start=world.workload.start + timedelta(minutes=start - hist.size),
            offered_rps=offered.tolist(),
            gaps=[False] * n,
            prices=prices,
            available0=available0,
            transitions=transitions,
            history_rps=history,
            reclaim_fraction=float(getattr(sc.pricing.spot_availability, "reclaim_fraction", 1.0)),
            failure_rate_per_node_day=sc.faults.node_failure_rate_per_node_day,
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        if self.mode == "replay":
            market = market_from_world(self.world, self.layout)
            self.model = FleetModel.for_world(self.world, self.layout, market)
        else:
            market = self.sample_market(rng)
            seeds = rng.integers(0, 2**63 - 1, size=3)
            rngs = (
                np.random.default_rng(int(seeds[0])),
                np.random.default_rng(int(seeds[1])),
                np.random.default_rng(int(seeds[2])),
            )
            self.model = FleetModel.from_scenario(
                self.world, self.layout, market, self.service, rngs
            )
        self.ctrl = Controller(
            self.layout,
            pod_rate_rps=self.pod_rate,
            slo_p95_ms=self.slo_p95_ms,
            start=market.start,
            history_rps=market.history_rps,
            feature_version=self.feature_version,
            hazard_prior=self.hazard_prior,
        )
        if self.sizing is not None:
            source = self.sizing_source
            assert source is not None
            if self.mode == "replay":
                self.sizing.begin(source.replay_forecasts(self.world, market.gaps))
            else:
                offset = self.window_start_min(market) - source.history_start_min
                self.sizing.begin(source.history_forecasts, offset)
        self.steps = 0
        self._last_load = 0.0
        if self.sizing is None:
            self.ctrl.observe(self.model.tick())
        else:
            self._observe_sized(self.model.tick())
        self.totals = {"cost_usd": 0.0, "spot_cost_usd": 0.0, "od_ref_usd": 0.0, "violations": 0}
        return self.ctrl.features(), {}

    def window_start_min(self, market: Market) -> int:
        """The history minute a train-mode window starts at (its load's first minute)."""
        workload = self.world.workload
        before_replay_s = (workload.start - market.start).total_seconds()
        return int(workload.history_rps.size) - round(before_replay_s / 60.0)

    def _observe_sized(self, tick: Tick) -> None:
        """Under predictive sizing: the controller takes in the tick, then the plan and
        the forecast features are the predictive rule's at this tick (:attr:`steps`)."""
        ctrl, sizing, model = self.ctrl, self.sizing, self.model
        assert ctrl is not None and model is not None and sizing is not None
        if tick.load_rps is not None:
            self._last_load = tick.load_rps
        ctrl.observe(tick)
        ctrl.plan_pods = float(
            sizing.target_pods(
                self.steps,
                load_rps=tick.load_rps,
                cpu=tick.cpu,
                serving_pods=model.last_serving_pods,
                last_load_rps=self._last_load,
            )
        )
        ctrl.forecast_pods = sizing.forecast_pods(self.steps)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        model, ctrl = self.model, self.ctrl
        assert model is not None and ctrl is not None, "call reset() first"
        mix = decode_action(action.tolist(), self._n_spot)
        plan = ctrl.plan_pods
        model.apply(ctrl.desired(mix))
        result = model.advance()
        self.steps += 1
        if self.sizing is None:
            ctrl.observe(model.tick())
        else:
            self._observe_sized(model.tick())
        od_ref = max(plan, 1.0) * self.od_price_per_pod / 60.0
        violation = 0 if result.ok else 1
        reward = -result.cost_usd / od_ref - self.slo_penalty * violation
        t = self.totals
        t["cost_usd"] += result.cost_usd
        t["spot_cost_usd"] += result.spot_cost_usd
        t["od_ref_usd"] += od_ref
        t["violations"] += violation
        truncated = self.steps >= self.episode_minutes
        info: dict[str, Any] = {"cost_usd": result.cost_usd, "slo_ok": result.ok}
        if truncated:
            info["totals"] = {
                **t,
                "minutes": self.steps,
                "slo_attainment": 1.0 - t["violations"] / self.steps,
                "interruptions": model.interruptions,
            }
        return ctrl.features(), float(reward), False, truncated, info
