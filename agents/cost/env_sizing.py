"""The ``predictive`` sizing inside the cost environment: the plan a composed
``predictive+cost-rl`` controller would hold, tick by tick, in the fast fleet model.

In the simulator the composed controller asks :class:`~agents.scaling.policy.PredictivePolicy`
for its pod target every tick (:mod:`agents.cost.composed`). The environment cannot run
the policy's streaming pipeline and online store thousands of times an episode, so it
reads the policy's forecasts from :func:`agents.scaling.plan_forecast.plan_forecasts`,
the batch twin that gives, for a whole load series at once, exactly the plan-horizon
quantiles the policy holds at each tick (tested equal), and applies the policy's own
rule (:func:`agents.scaling.policy.pods_target`): the most of the provisioned quantile,
the load seen now and the HPA's proposal, at most the fleet's pods, then the highest raw
target of the scale-in stabilisation window.

What differs from the simulator: the HPA proposal is computed from the fast model's
minute (its served pods and CPU utilisation) rather than the simulator's metrics, and in
``train`` mode the forecasts over the scenario's history are in-sample for the scaling
model (it was trained on that history), so they are better than the forecasts the
controller will run with on new load.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from agents.baselines.reactive import hpa_proposal
from agents.scaling.history import MIN_HISTORY_DAYS
from agents.scaling.model import ScalingModel
from agents.scaling.plan_forecast import plan_forecasts
from agents.scaling.policy import PredictiveParams, pods_target
from sim.control import PoolMetrics

if TYPE_CHECKING:
    from sim.world import World

MINUTE_S = 60.0
DAY_MIN = 1440


@dataclass(frozen=True)
class SizingSource:
    """The predictive sizing's model, parameters and forecasts over one world's history,
    built once (:meth:`for_world`) and shared by the environments of a training run.

    ``history_forecasts[j]`` is what the policy holds after deciding at history minute
    ``history_start_min + j`` (row 0: its reset at that minute), so a window starting at
    history minute ``s`` reads rows from ``s - history_start_min``."""

    model: ScalingModel
    params: PredictiveParams
    history_forecasts: np.ndarray
    history_start_min: int

    @classmethod
    def for_world(cls, world: World, model: ScalingModel, params: PredictiveParams) -> SizingSource:
        """Forecast ``world``'s whole history from its first
        :data:`~agents.scaling.history.MIN_HISTORY_DAYS` on (ValueError if the history
        is too short for a one-day window after that)."""
        w = world.workload
        first = int(MIN_HISTORY_DAYS * DAY_MIN)
        if w.history_rps.size < first + DAY_MIN:
            raise ValueError(
                f"predictive sizing trains on windows of the history after its first "
                f"{MIN_HISTORY_DAYS:g} days; {world.scenario.id} has "
                f"{w.history_rps.size / DAY_MIN:.1f} days of history"
            )
        _check_quantiles(model, params)
        start = w.start - timedelta(minutes=int(w.history_rps.size) - first)
        forecasts = plan_forecasts(
            model,
            history_rps=w.history_rps[:first],
            history_gap=w.history_filled[:first],
            start=start,
            offered_rps=w.history_rps[first:],
        )
        return cls(model, params, forecasts, first)

    def replay_forecasts(self, world: World, gaps: list[bool]) -> np.ndarray:
        """The forecasts at every tick of ``world``'s replay (``gaps``: minutes without
        metrics)."""
        w = world.workload
        return plan_forecasts(
            self.model,
            history_rps=w.history_rps,
            history_gap=w.history_filled,
            start=w.start,
            offered_rps=w.offered_rps[: len(gaps)],
            observed=~np.asarray(gaps, dtype=bool),
        )

    def sizing(
        self, *, pod_rate_rps: float, target_utilization: float, max_pods: int
    ) -> PredictiveSizing:
        """A fresh rule state for one environment."""
        return PredictiveSizing(
            self.model.metadata.quantiles,
            self.params,
            pod_rate_rps=pod_rate_rps,
            target_utilization=target_utilization,
            max_pods=max_pods,
        )


def _check_quantiles(model: ScalingModel, params: PredictiveParams) -> None:
    quantiles = model.metadata.quantiles
    if params.quantile not in quantiles:
        raise ValueError(f"quantile {params.quantile} is not among the model's {quantiles}")
    if params.budget_quantile is not None:
        raise ValueError("the environment's predictive sizing has no error-budget quantile")


class PredictiveSizing:
    """The predictive rule over precomputed forecasts, for one environment.

    Parameters
    ----------
    quantiles
        The scaling model's quantiles (the forecasts' columns).
    params
        The predictive policy's parameters (quantile, stabilisation, HPA guard).
    pod_rate_rps
        Requests/s one pod carries at the target utilisation.
    target_utilization
        The HPA's CPU target.
    max_pods
        The fleet's most pods (every pool's ``max_nodes`` x pods per node).
    """

    def __init__(
        self,
        quantiles: tuple[float, ...],
        params: PredictiveParams,
        *,
        pod_rate_rps: float,
        target_utilization: float,
        max_pods: int,
    ) -> None:
        self.params = params
        self.pod_rate_rps = pod_rate_rps
        self.target_utilization = target_utilization
        self.max_pods = max_pods
        self.q_index = quantiles.index(params.quantile)
        self.median_index = quantiles.index(0.5)
        self.forecasts = np.zeros((1, len(quantiles)))
        self.offset = 0
        self.window: deque[tuple[float, int]] = deque()
        self.replicas: int | None = None

    def begin(self, forecasts: np.ndarray, offset: int = 0) -> None:
        """Start an episode whose tick ``k`` reads ``forecasts[offset + k]``."""
        self.forecasts = forecasts
        self.offset = offset
        self.window.clear()
        self.replicas = None

    def forecast_pods(self, k: int) -> tuple[float, float]:
        """Tick ``k``'s plan-horizon median and provisioned quantile, in pods."""
        row = self.forecasts[self.offset + k]
        return (
            float(row[self.median_index]) / self.pod_rate_rps,
            float(row[self.q_index]) / self.pod_rate_rps,
        )

    def target_pods(
        self,
        k: int,
        *,
        load_rps: float | None,
        cpu: float | None,
        serving_pods: float,
        last_load_rps: float,
    ) -> int:
        """The stabilised pod target at tick ``k`` (sim time ``60 k`` s). ``load_rps``
        and ``cpu``: the last minute's, ``None`` in a telemetry gap (the HPA then keeps
        its proposal); ``serving_pods``: pods that served it; ``last_load_rps``: the
        latest load seen."""
        p = self.params
        if load_rps is not None and cpu is not None:
            metrics = {"fleet": PoolMetrics(load_rps, cpu, 0.0, 0.0, 0.0, serving_pods)}
            self.replicas = hpa_proposal(
                metrics,
                self.replicas,
                target=self.target_utilization,
                tolerance=p.tolerance,
                min_replicas=p.min_replicas,
                pod_rate_rps=self.pod_rate_rps,
            )
        _, upper = self.forecast_pods(k)
        raw, _ = pods_target(
            upper, last_load_rps / self.pod_rate_rps, float(self.replicas or 0), self.max_pods
        )
        now_s = k * MINUTE_S
        window = self.window
        window.append((now_s, raw))
        horizon = now_s - p.scale_in_stabilization_s
        while window[0][0] < horizon:
            window.popleft()
        return max(r for _, r in window)
