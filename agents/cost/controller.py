"""One control step of a cost policy, identical in the simulator and the environment.

:class:`Controller` takes a :class:`~agents.cost.plan.Tick`, updates the load planner
and the feature tracker, and turns a :class:`~agents.cost.plan.Mix` into desired nodes
per slot. The simulator policies (:mod:`agents.cost.policies`) and the gymnasium
environment (:mod:`agents.cost.env`) both drive this class, so a decision depends only
on what the tick shows.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from agents.cost.plan import Layout, LoadPlanner, Mix, Tick, execute
from agents.cost.view import FeatureTracker
from sim.market.hazard import DropRatePrior

PLAN_WINDOW_MIN = 30
PLAN_MARGIN = 0.2
"""The shared plan: the highest load of the last 30 minutes + 20%. Chosen on the
default scenario's replay (NASA HTTP, whose load jumps up to ~1.9x within a minute) as
the leanest (window, margin) of those tried — (60, 0.3), (30, 0.3), (60, 0.2), (30, 0.2),
(45, 0.2), (20, 0.25), (60, 0.1) — with at most 3 SLO-violation minutes a week on
on-demand (99.97%); (20, 0.25) and (60, 0.1) had 7."""


class Controller:
    """Planner + features + executor for one fleet.

    Parameters
    ----------
    layout
        The fleet's slots.
    pod_rate_rps
        Requests/s one pod carries at the target utilisation.
    slo_p95_ms
        The SLO's p95 target (ms).
    start
        Wall-clock time of simulated t = 0.
    history_rps
        Offered load of each minute before t = 0 (requests/s).
    feature_version, hazard_prior
        The observation's version and (version 2) its drop-rate prior
        (:class:`~agents.cost.view.FeatureTracker`); version 2 also needs
        :attr:`forecast_pods` set by the sizing before :meth:`features`.
    """

    def __init__(
        self,
        layout: Layout,
        *,
        pod_rate_rps: float,
        slo_p95_ms: float,
        start: datetime,
        history_rps: np.ndarray,
        feature_version: int = 1,
        hazard_prior: DropRatePrior | None = None,
    ) -> None:
        self.layout = layout
        self.pod_rate_rps = pod_rate_rps
        self.planner = LoadPlanner(pod_rate_rps, PLAN_WINDOW_MIN, PLAN_MARGIN)
        self.tracker = FeatureTracker(
            layout,
            pod_rate_rps=pod_rate_rps,
            slo_p95_ms=slo_p95_ms,
            start=start,
            history_rps=history_rps,
            version=feature_version,
            hazard_prior=hazard_prior,
        )
        self.forecast_pods: tuple[float, float] | None = None
        """The sizing's plan-horizon forecast (median, provisioned quantile) in pods."""
        self.tick: Tick | None = None
        self.plan_pods = 0.0
        self.pods_now = 0.0

    def observe(self, tick: Tick) -> None:
        """Take in the tick: planner and features move on."""
        self.tick = tick
        self.tracker.update(tick)
        if tick.t_s > 0:
            self.planner.observe(tick.load_rps)
        pods = 0
        for a, n in zip(tick.active, self.layout.ppn, strict=True):
            pods += a * n
        active_pods = float(pods)
        self.plan_pods = self.planner.pods(active_pods)
        self.pods_now = self.planner.pods_now(active_pods)

    def features(self) -> np.ndarray:
        """The observation vector of the last tick."""
        assert self.tick is not None
        return self.tracker.vector(self.tick, self.plan_pods, self.forecast_pods)

    def desired(self, mix: Mix, plan_pods: float | None = None) -> list[int]:
        """Desired nodes per slot for ``mix`` (``plan_pods`` overrides the plan).

        Make-before-break protects the whole plan: running nodes are released only
        while the running pods stay at or above it (a one-minute dip in the load never
        releases capacity that replacements still booting would have to cover)."""
        assert self.tick is not None
        plan = self.plan_pods if plan_pods is None else plan_pods
        return execute(self.layout, self.tick, mix, plan, plan)
