"""``predictive``: capacity planned from a quantile forecast of the load, one lead time
ahead, with the reactive rule as a floor.

Every control tick:

1. The streaming pipeline (:mod:`.pipeline`) adds the minute's offered load; the
   feature rows of the origin ending now (5-minute means of the minutes before it) are
   pushed to the in-process online store (:mod:`features.online`) and read back from
   it, and the model forecasts the busiest minute of the plan window (the minutes a
   node launched now serves before the next plan's nodes do) and the mean load at the
   reported horizon ``H`` (30 min).
2. Pods wanted = the most of: the plan horizon's upper quantile (p90) at the target
   utilisation, the pods the load seen now needs, and the HPA rule's proposal (the
   reactive guard, for surprises the forecast missed).
3. Scale-in is stabilised: the target is the highest of the raw targets over the last
   ``scale_in_stabilization_s``; scale-out is immediate.
4. Pods become nodes as the Cluster Autoscaler would place them
   (:func:`agents.capacity.adjust_by_az`): new nodes on the cheapest pod slot that can
   launch now, surplus nodes removed most expensive first, nothing moved otherwise;
   running nodes are removed only when the nodes already serving cover the load
   (make-before-break).
5. One :class:`~agents.scaling.recommendation.Recommendation` per pool is returned with
   the decision (and written to the ``events`` telemetry).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.baselines.reactive import hpa_proposal
from agents.capacity import adjust_by_az, clamp_by_az, make_before_break_by_az
from agents.registry import DEFAULT_FORECASTER, FORECASTERS
from agents.scaling.model import ScalingModel
from agents.scaling.pipeline import LoadPipeline
from agents.scaling.recommendation import Action, Recommendation, Urgency
from agents.scaling.history import VIEW, history_series
from features.online import MemoryOnlineStore
from features.views import VIEWS
from sim.control import ControlContext, Decision, Observation, PolicyNeeds, PoolMetrics

MINUTE_S = 60
EPOCH = datetime(1970, 1, 1)


class PredictiveParams(BaseModel):
    """Parameters of ``predictive`` (``control.params`` in a scenario)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str = Field(
        default=DEFAULT_FORECASTER, description="forecaster: " + ", ".join(FORECASTERS)
    )

    @field_validator("model")
    @classmethod
    def _known_forecaster(cls, value: str) -> str:
        if value not in FORECASTERS:
            raise ValueError(f"unknown forecaster {value!r} (allowed: {FORECASTERS.allowed()})")
        return value

    quantile: float = Field(
        default=0.75, description="quantile of the plan forecast provisioned for: 0.5, 0.75, 0.9"
    )
    budget_quantile: float | None = Field(
        default=None,
        description="while the SLO-violation minutes seen exceed the error budget's share of "
        "the minutes elapsed ((1 - slo_target) x minutes: Uniform Progress on the error "
        "budget), plan at this higher quantile instead; none: always quantile",
    )
    slo_target: float = Field(
        default=0.999, gt=0, lt=1, description="share of minutes within the SLO the budget allows"
    )
    scale_in_stabilization_s: float = Field(default=300.0, ge=0)
    tolerance: float = Field(default=0.1, ge=0, lt=1, description="reactive guard's tolerance")
    min_replicas: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _budget_above_quantile(self) -> PredictiveParams:
        if self.budget_quantile is not None and self.budget_quantile <= self.quantile:
            raise ValueError(
                f"budget_quantile {self.budget_quantile} must be above quantile {self.quantile}"
            )
        return self


class PredictivePolicy:
    """Plans nodes from the forecast, never below the reactive rule."""

    name = "predictive"
    needs = PolicyNeeds(model="scaling")

    def __init__(self, params: PredictiveParams | None = None) -> None:
        self.params = params or PredictiveParams()
        self.model: ScalingModel | None = None
        self.forecast: dict[str, np.ndarray] = {}

    def use_model(self, model: ScalingModel) -> None:
        """Set the trained model (before :meth:`reset`)."""
        for field, q in (("quantile", self.params.quantile),
                         ("budget_quantile", self.params.budget_quantile)):  # fmt: skip
            if q is not None and q not in model.metadata.quantiles:
                raise ValueError(f"{field} {q} is not among the model's {model.metadata.quantiles}")
        self.model = model

    def reset(self, context: ControlContext) -> None:
        if self.model is None:
            raise ValueError("the predictive policy needs a trained model (use_model)")
        self.ctx = context
        meta = self.model.metadata
        self.pod_rate = (
            context.service_rate_per_vcpu_rps * context.pod_vcpu * context.target_utilization
        )
        self.pod_capacity_rps = context.service_rate_per_vcpu_rps * context.pod_vcpu
        self.max_pods = sum(p.max_nodes * p.pods_per_node for p in context.pools)
        history_series(  # the same minimum-history check as training
            context.history_offered_rps,
            context.history_gap,
            context.start,
            source=context.scenario_id,
        )
        self.pipeline = LoadPipeline(
            context.history_offered_rps,
            context.history_gap,
            context.start,
            step_s=meta.step_s,
        )
        self.start_s = int(np.datetime64(context.start, "s").astype(np.int64))
        self.online = MemoryOnlineStore({VIEW: VIEWS[VIEW]})
        entity = f"replay:{context.scenario_id}:{context.seed}"
        self.roles = {"plan": meta.plan_horizon_min, "forecast": meta.forecast_horizon_min}
        self.entities = {role: f"{entity}:{role}:h{h}" for role, h in self.roles.items()}
        self.base_index = meta.quantiles.index(self.params.quantile)
        budget = self.params.budget_quantile
        self.budget_index = None if budget is None else meta.quantiles.index(budget)
        self.q_index = self.base_index
        self.minutes_seen = 0  # minutes with metrics
        self.violation_minutes = 0  # of those, minutes over the SLO (p95 or errors)
        self.median_index = meta.quantiles.index(0.5)
        self.forecast: dict[str, np.ndarray] = {}
        self.replicas: int | None = None
        self.last_offered = 0.0
        self.last_target_pods = 0  # the latest decision's target (pods, stabilised)
        self.raw_targets: deque[tuple[float, int]] = deque()
        self._forecast_origin(context.start)

    def _forecast_origin(self, now: datetime) -> None:
        """Push this origin's feature rows, read them back online, forecast."""
        event_time = EPOCH + timedelta(seconds=self.pipeline.origin_end_s)
        for role, horizon in self.roles.items():
            self.online.push(
                VIEW, (self.entities[role],), event_time, self.pipeline.features(horizon)
            )
        rows = {}
        for role in self.roles:
            row = self.online.get_online_row(VIEW, (self.entities[role],), now=now)
            if row is not None:  # stale features (not in a replay): no forecast for the role
                rows[role] = row
        self.forecast_from(rows)

    def forecast_from(self, rows: dict[str, np.ndarray]) -> None:
        """Forecast from feature rows by role (``plan``, ``forecast``); a missing role
        has no forecast until the next origin."""
        assert self.model is not None
        self.forecast = {role: self.model.predict_row(role, row) for role, row in rows.items()}

    @property
    def plan_forecast_pods(self) -> tuple[float, float] | None:
        """The plan horizon's forecast in pods at the target utilisation: the median and
        the quantile provisioned for now (``None`` before the first plan forecast)."""
        plan = self.forecast.get("plan")
        if plan is None:
            return None
        return (
            float(plan[self.median_index]) / self.pod_rate,
            float(plan[self.q_index]) / self.pod_rate,
        )

    def recommend(self, rows: dict[str, np.ndarray], observation: Observation) -> Decision:
        """Features in, decision and records out (what the latency benchmark times)."""
        self.forecast_from(rows)
        return self.plan(observation)

    def decide(self, observation: Observation) -> Decision:
        now = observation.sim_time_s
        metrics = observation.metrics
        if metrics is not None:
            offered = sum(m.request_rate_rps for m in metrics.values())
            minute_start = self.start_s + (int(now // MINUTE_S) - 1) * MINUTE_S
            if self.pipeline.observe(minute_start, offered):
                self._forecast_origin(observation.now)
            self.last_offered = offered
            self._spend_budget(metrics)
            self.replicas = hpa_proposal(
                metrics,
                self.replicas,
                target=self.ctx.target_utilization,
                tolerance=self.params.tolerance,
                min_replicas=self.params.min_replicas,
                pod_rate_rps=self.pod_rate,
            )
        return self.plan(observation)

    def _spend_budget(self, metrics: Mapping[str, PoolMetrics]) -> None:
        """Count the minute against the error budget; with ``budget_quantile``, plan at it
        while the violation minutes exceed the budget's share of the minutes so far
        (nothing to count without a budget quantile)."""
        if self.budget_index is None:
            return
        self.minutes_seen += 1
        serving = [m for m in metrics.values() if m.pod_count > 0]
        p95 = max((m.response_time_p95_ms for m in serving), default=0.0)
        errors = max((m.error_rate for m in metrics.values()), default=0.0)
        if p95 > self.ctx.slo_p95_latency_ms or errors > 0.0:
            self.violation_minutes += 1
        allowed = (1.0 - self.params.slo_target) * self.minutes_seen
        behind = self.violation_minutes > allowed
        self.q_index = self.budget_index if behind else self.base_index

    def plan(self, observation: Observation) -> Decision:
        """The decision for the current forecasts (the part timed by the latency bench)."""
        now = observation.sim_time_s
        states = observation.pools
        now_pods = self.last_offered / self.pod_rate
        guard = self.replicas or 0
        plan = self.forecast.get("plan")
        plan_pods = float(plan[self.q_index]) / self.pod_rate if plan is not None else 0.0
        raw, driver = pods_target(plan_pods, now_pods, float(guard), self.max_pods)
        self.raw_targets.append((now, raw))
        horizon = now - self.params.scale_in_stabilization_s
        while self.raw_targets and self.raw_targets[0][0] < horizon:
            self.raw_targets.popleft()
        target = max(r for _, r in self.raw_targets)
        self.last_target_pods = target
        specs = self.ctx.pools
        wanted = adjust_by_az(float(target), specs, states)
        by_az = clamp_by_az(make_before_break_by_az(wanted, now_pods, specs, states), specs)
        desired = {name: sum(counts.values()) for name, counts in by_az.items()}
        records = self._records(observation, desired, target, driver, now_pods, plan_pods)
        return Decision(
            desired_nodes=desired,
            reasons=(f"pods {target} ({driver})",),
            desired_by_az=by_az,
            records=records,
        )

    def _records(
        self,
        observation: Observation,
        desired: dict[str, int],
        target_pods: int,
        driver: str,
        now_pods: float,
        plan_pods: float,
    ) -> tuple[dict[str, object], ...]:
        assert self.model is not None
        report = self.forecast.get("forecast")
        p50 = float(report[self.median_index]) if report is not None else self.last_offered
        upper = float(report[self.q_index]) if report is not None else self.last_offered
        serving_pods = sum(
            observation.pools[s.name].nodes_running * s.pods_per_node for s in self.ctx.pools
        )
        total_pods = sum(desired[s.name] * s.pods_per_node for s in self.ctx.pools)
        found = assess(
            target_pods=target_pods,
            driver=driver,
            plan_pods=plan_pods,
            now_pods=now_pods,
            upper_pods=upper / self.pod_rate,
            serving_pods=serving_pods,
            p50_rps=p50,
            upper_rps=upper,
            total_pods=total_pods,
            pod_capacity_rps=self.pod_capacity_rps,
        )
        return tuple(
            recommendation(
                found,
                pool=spec.name,
                active_nodes=observation.pools[spec.name].nodes_active,
                target_nodes=desired[spec.name],
                quantile=self.model.metadata.quantiles[self.q_index],
                time_horizon=self.roles["forecast"],
                model_version=self.model.version,
            ).model_dump()
            for spec in self.ctx.pools
        )


def pods_target(
    plan_pods: float, now_pods: float, guard_pods: float, max_pods: int
) -> tuple[int, str]:
    """The raw target (pods, before scale-in stabilisation) and what drove it: the most
    of the plan forecast, the load now and the reactive guard (all in pods), at most
    ``max_pods``."""
    raw = min(max_pods, math.ceil(max(plan_pods, now_pods, guard_pods)))
    drivers = {"forecast": plan_pods, "load now": now_pods, "reactive guard": guard_pods}
    return raw, max(drivers, key=lambda k: drivers[k])


@dataclass(frozen=True, slots=True)
class Assessment:
    """What one decision found, shared by the records of every pool (pods, requests/s)."""

    target_pods: int
    driver: str
    plan_pods: float
    now_pods: float
    urgency: Urgency
    utilization: float
    confidence: float


def assess(
    *,
    target_pods: int,
    driver: str,
    plan_pods: float,
    now_pods: float,
    upper_pods: float,
    serving_pods: float,
    p50_rps: float,
    upper_rps: float,
    total_pods: int,
    pod_capacity_rps: float,
) -> Assessment:
    """Urgency, predicted utilisation and confidence of a decision (see
    :class:`~agents.scaling.recommendation.Recommendation`): ``upper_pods`` is the
    reported horizon's upper quantile in pods, ``p50_rps`` / ``upper_rps`` its median and
    upper quantile (requests/s), ``total_pods`` the pods of the target nodes and
    ``pod_capacity_rps`` what one pod serves at full CPU."""
    urgency: Urgency
    if now_pods > serving_pods:
        urgency = "critical"
    elif plan_pods > serving_pods:
        urgency = "high"
    elif upper_pods > serving_pods:
        urgency = "medium"
    else:
        urgency = "low"
    utilization = p50_rps / (total_pods * pod_capacity_rps) if total_pods else 0.0
    confidence = 1.0 - (upper_rps - p50_rps) / upper_rps if upper_rps > 0 else 1.0
    return Assessment(target_pods, driver, plan_pods, now_pods, urgency, utilization, confidence)


def recommendation(
    found: Assessment,
    *,
    pool: str,
    active_nodes: int,
    target_nodes: int,
    quantile: float,
    time_horizon: int,
    model_version: str,
    unit: str = "pods",
) -> Recommendation:
    """One pool's record of a decision: ``target_nodes`` against its ``active_nodes``
    (``unit``: what ``found`` counts, named in the reasoning)."""
    action: Action = (
        "scale_up"
        if target_nodes > active_nodes
        else "scale_down"
        if target_nodes < active_nodes
        else "maintain"
    )
    return Recommendation(
        pool=pool,
        action=action,
        target_nodes=target_nodes,
        urgency=found.urgency,
        reasoning=(
            f"{found.target_pods} {unit} wanted, driven by the {found.driver} "
            f"(p{quantile * 100:.0f} forecast {found.plan_pods:.1f} {unit}, "
            f"load now {found.now_pods:.1f} {unit})"
        ),
        predicted_cpu_utilization=round(max(0.0, found.utilization), 6),
        confidence=round(min(1.0, max(0.0, found.confidence)), 6),
        time_horizon=time_horizon,
        model_version=model_version,
    )
