"""The observation of a cost policy: the same features from the simulator and the env.

:class:`FeatureTracker` is fed one :class:`~agents.cost.plan.Tick` per control interval
(from a simulator :class:`~sim.control.Observation` by :func:`tick_from_observation`, or
from the fast fleet model) and keeps the little history the features need. Every
feature is bounded and normalised to ``[-1, 1]`` (most to ``[0, 1]``):

===  ======================================================================
idx  global features
===  ======================================================================
0    load now / the on-demand pool's capacity at the target utilisation
1    planned pods / the same capacity in pods
2    seasonal forecast: load 1 day ago + 30 min over load 1 day ago, / 2
3    CPU utilisation of serving pods (/ 1.5)
4    p95 latency / SLO target (/ 2)
5    SLO headroom: (allowed - used violation minutes) / allowed, allowed =
     0.1% of elapsed minutes + 1 (the 99.9% target as a uniform line)
6    on-demand pods active / planned pods (/ 2)
7    spot pods active / planned pods (/ 2)
8-9  time of day (sin, cos)
10   spot interruption notices since the last tick (/ 5)
===  ======================================================================

and per spot slot (spot pool x AZ), 5 each: spot price / on-demand price, spot on offer
now (0/1), unavailable share of the last hour (EWMA, 60 min), availability drops seen in
the last 6 hours (/ 6), the slot's active pods / planned pods (/ 2).

Feature version 2 (a policy trained under the ``predictive`` sizing it runs with) appends,
after those:

=====  ===================================================================
idx    sizing and hazard features (v2)
=====  ===================================================================
+0     the sizing's plan-horizon forecast, median, in pods / planned pods (/ 2)
+1     the same at the quantile the sizing provisions for (/ 2)
+2...  per spot slot: the probability of at least one availability drop in its
       AZ within the next 30 up-minutes, from the AZ's recent history under a
       Gamma prior fitted on the training traces (:mod:`sim.market.hazard`)
=====  ===================================================================
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime

import numpy as np

from agents.cost.plan import Layout, Tick
from sim.control import Observation
from sim.market.hazard import DropHazard, DropRatePrior

N_GLOBAL = 11
PER_SLOT = 5
FEATURE_VERSIONS = (1, 2)
N_SIZING = 2
"""Version 2's global sizing features (the forecast's median and provisioned quantile)."""
PER_SLOT_HAZARD = 1
"""Version 2's per-slot feature (the drop probability)."""
SLO_TARGET = 0.999
DROP_WINDOW_S = 6 * 3600.0
DAY_MIN = 1440
FORECAST_AHEAD_MIN = 30


def n_features(layout: Layout, version: int = 1) -> int:
    """Length of the observation vector for ``layout`` at feature ``version``."""
    return features_for(len(layout.spot_slots), version)


def features_for(n_spot: int, version: int) -> int:
    """Length of the observation vector with ``n_spot`` spot slots at feature ``version``."""
    if version not in FEATURE_VERSIONS:
        raise ValueError(f"feature version {version}: one of {FEATURE_VERSIONS}")
    extra = N_SIZING + PER_SLOT_HAZARD * n_spot if version == 2 else 0
    return N_GLOBAL + PER_SLOT * n_spot + extra


def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


class FeatureTracker:
    """Keeps the state behind the features and builds the vector (see the module).

    Parameters
    ----------
    layout
        The fleet's slots.
    pod_rate_rps
        Requests/s one pod carries at the target utilisation.
    slo_p95_ms
        The SLO's p95 latency target (ms).
    start
        Wall-clock time of simulated t = 0 (for the time of day).
    history_rps
        Offered load (requests/s) of each minute before t = 0, oldest first.
    version
        The feature version (see the module).
    hazard_prior
        Version 2: the drop-rate prior behind the per-slot drop probabilities.
    """

    def __init__(
        self,
        layout: Layout,
        *,
        pod_rate_rps: float,
        slo_p95_ms: float,
        start: datetime,
        history_rps: np.ndarray,
        version: int = 1,
        hazard_prior: DropRatePrior | None = None,
    ) -> None:
        if version not in FEATURE_VERSIONS:
            raise ValueError(f"feature version {version}: one of {FEATURE_VERSIONS}")
        if version == 2 and hazard_prior is None:
            raise ValueError("feature version 2 needs a hazard prior")
        self.layout = layout
        self.version = version
        self.hazard = (
            DropHazard(hazard_prior, len(layout.spot_slots))
            if version == 2 and hazard_prior is not None
            else None
        )
        self.slo_p95_ms = slo_p95_ms
        od = next(p for p in layout.pools if p.capacity_type == "on-demand")
        self.cap_pods = max(1.0, float(od.max_nodes * od.pods_per_node))
        self.cap_rps = self.cap_pods * pod_rate_rps
        self.day_s0 = start.hour * 3600.0 + start.minute * 60.0 + start.second
        recent = np.asarray(history_rps[-(DAY_MIN + 1) :], dtype=np.float64).tolist()
        self.loads: deque[float] = deque(recent, maxlen=DAY_MIN + 1)
        self.last_load = self.loads[-1] if self.loads else None
        self.cpu = 0.0
        self.p95 = 0.0
        self.minutes = 0
        self.violations = 0
        n = len(layout.spot_slots)
        self.unavail = [0.0] * n
        self.prev_avail: list[bool | None] = [None] * n
        self.drops: list[deque[float]] = [deque() for _ in range(n)]
        self.od_price = [layout.slots[k].on_demand_usd_per_hour for k in layout.spot_slots]
        self.ppn = [s.pods_per_node for s in layout.slots]

    def update(self, tick: Tick) -> None:
        """Take in one tick (call once per control interval, before :meth:`vector`)."""
        if tick.load_rps is not None:
            self.last_load = tick.load_rps
            self.minutes += 1
            if (tick.p95_ms is not None and tick.p95_ms > self.slo_p95_ms) or (
                tick.error_rate is not None and tick.error_rate > 0.0
            ):
                self.violations += 1
        if tick.cpu is not None:
            self.cpu = tick.cpu
        if tick.p95_ms is not None and math.isfinite(tick.p95_ms):
            self.p95 = tick.p95_ms
        if self.last_load is not None and tick.t_s > 0:
            self.loads.append(self.last_load)
        t_s, available, unavail, prev_avail = (
            tick.t_s,
            tick.available,
            self.unavail,
            self.prev_avail,
        )
        oldest_s = t_s - DROP_WINDOW_S
        for j, k in enumerate(self.layout.spot_slots):
            up = available[k]
            unavail[j] += ((0.0 if up else 1.0) - unavail[j]) / 60.0
            q = self.drops[j]
            if prev_avail[j] is True and not up:
                q.append(t_s)
            prev_avail[j] = up
            while q and q[0] < oldest_s:
                q.popleft()
        if self.hazard is not None:
            self.hazard.update([available[k] for k in self.layout.spot_slots])

    def vector(
        self,
        tick: Tick,
        plan_pods: float,
        forecast_pods: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """The observation (float32, in ``[-1, 1]``) after :meth:`update` with ``tick``;
        ``forecast_pods`` (version 2, required there): the sizing's plan-horizon forecast,
        median and provisioned quantile, in pods."""
        plan = max(1.0, plan_pods)
        load = self.last_load or 0.0
        forecast = 0.5
        if len(self.loads) > DAY_MIN:
            base = self.loads[-DAY_MIN - 1]
            if base > 0:
                forecast = _clip01(self.loads[-DAY_MIN - 1 + FORECAST_AHEAD_MIN] / base / 2.0)
        allowed = (1.0 - SLO_TARGET) * self.minutes + 1.0
        headroom = max(-1.0, min(1.0, (allowed - self.violations) / allowed))
        active, ppn = tick.active, self.ppn
        od_pods = spot_pods = 0
        for k in self.layout.od_slots:
            od_pods += active[k] * ppn[k]
        for k in self.layout.spot_slots:
            spot_pods += active[k] * ppn[k]
        angle = 2.0 * math.pi * ((self.day_s0 + tick.t_s) % 86400.0) / 86400.0
        out = [
            _clip01(load / self.cap_rps),
            _clip01(plan_pods / self.cap_pods),
            forecast,
            _clip01(self.cpu / 1.5),
            _clip01(self.p95 / self.slo_p95_ms / 2.0),
            headroom,
            _clip01(od_pods / plan / 2.0),
            _clip01(spot_pods / plan / 2.0),
            math.sin(angle),
            math.cos(angle),
            _clip01(tick.interruptions / 5.0),
        ]
        for j, k in enumerate(self.layout.spot_slots):
            out.extend(
                (
                    _clip01(tick.price[k] / self.od_price[j]),
                    1.0 if tick.available[k] else 0.0,
                    _clip01(self.unavail[j]),
                    _clip01(len(self.drops[j]) / 6.0),
                    _clip01(active[k] * ppn[k] / plan / 2.0),
                )
            )
        if self.hazard is not None:
            if forecast_pods is None:
                raise ValueError("feature version 2 needs the sizing's forecast (forecast_pods)")
            median, upper = forecast_pods
            out.append(_clip01(median / plan / 2.0))
            out.append(_clip01(upper / plan / 2.0))
            out.extend(self.hazard.probabilities())
        return np.array(out, dtype=np.float32)


def tick_from_observation(layout: Layout, obs: Observation) -> Tick:
    """A :class:`Tick` from a simulator observation (metrics summed over pools)."""
    metrics = obs.metrics
    load = cpu = p95 = err = None
    if metrics is not None:
        load = sum(m.request_rate_rps for m in metrics.values())
        serving = [m for m in metrics.values() if m.pod_count > 0]
        cpu = max((m.cpu_utilization for m in serving), default=0.0)
        p95s = [m.response_time_p95_ms for m in serving if math.isfinite(m.response_time_p95_ms)]
        p95 = max(p95s) if p95s else None
        err = max((m.error_rate for m in metrics.values()), default=0.0)
    active: list[int] = []
    pending: list[int] = []
    price: list[float] = []
    available: list[bool] = []
    launchable: list[bool] = []
    interruptions = 0
    for spec, ks in zip(layout.pools, layout.pool_slots, strict=True):
        state = obs.pools[spec.name]
        interruptions += state.interruptions_last_interval
        for k in ks:
            az = layout.slots[k].az
            active.append(state.nodes_by_az[az])
            pending.append(state.pending_by_az[az])
            price.append(state.price_usd_per_hour[az])
            available.append(bool(state.spot_available[az]))
            launchable.append(az in state.launchable_azs)
    return Tick(
        t_s=obs.sim_time_s,
        load_rps=load,
        cpu=cpu,
        p95_ms=p95,
        error_rate=err,
        active=active,
        pending=pending,
        price=price,
        available=available,
        launchable=launchable,
        interruptions=interruptions,
    )
