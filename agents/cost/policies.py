"""The cost policies as simulator policies: the five baselines and ``cost-rl``.

Each control tick: the observation becomes a :class:`~agents.cost.plan.Tick`; the shared
:class:`~agents.cost.controller.Controller` plans pods and tracks the features; the rule
(or the trained network) picks a mix; the executor places nodes per pool and AZ, which
the decision hands to the simulator as ``desired_by_az``.

``cost-rl`` also returns recommendation records (:class:`CostRecommendation`, written to
the ``events`` telemetry), one per pool every ``record_every_min`` minutes and whenever
its spot share moves by more than 10 points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.cost.controller import Controller
from agents.cost.heuristics import HindsightRule, MixRule
from agents.cost.plan import Layout, Mix, decode_action
from agents.cost.view import tick_from_observation
from sim.control import NEEDS_NOTHING, ControlContext, Decision, Observation, PolicyNeeds
from sim.errors import InputError


@dataclass(frozen=True, slots=True)
class SizedBy:
    """The sizing part of the composed controller a mix runs in."""

    name: str
    forecasts: bool
    """Whether it hands its plan-horizon forecast to the mix (``predictive``)."""
    quantile: float | None
    """The quantile it provisions for (``predictive``), else ``None``."""


class NoParams(BaseModel):
    """The baselines take no parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CostRLParams(BaseModel):
    """Parameters of ``cost-rl``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    record_every_min: int = Field(
        default=60, ge=1, description="minutes between recommendation records per pool"
    )


class CostPolicy:
    """A mix rule (or a network, in subclasses) driving the shared controller."""

    needs = NEEDS_NOTHING

    def __init__(self, name: str, rule: MixRule | None) -> None:
        self.name = name
        self.rule = rule
        self.ctrl: Controller | None = None
        self.layout: Layout | None = None
        self.sized_by: SizedBy | None = None
        """The sizing policy of the composed controller this mix runs in (set by it
        before :meth:`reset`); ``None`` alone."""

    def reset(self, context: ControlContext) -> None:
        self.layout = Layout.of(context.pools, source=context.scenario_id)
        pod_rate = context.service_rate_per_vcpu_rps * context.pod_vcpu * context.target_utilization
        self.ctrl = Controller(
            self.layout,
            pod_rate_rps=pod_rate,
            slo_p95_ms=context.slo_p95_latency_ms,
            start=context.start,
            history_rps=context.history_offered_rps,
            **self.feature_options(),
        )
        if isinstance(self.rule, HindsightRule):
            self.rule.configure(
                context.provisioning_delay_max_s + context.pod_start_delay_s + context.interval_s,
                context.interruption_notice_s,
            )
        if self.rule is not None:
            self.rule.reset(self.ctrl, context.foresight)

    def feature_options(self) -> dict[str, Any]:
        """The controller's feature version and hazard prior (the rules read version 1)."""
        return {}

    def choose(self, ctrl: Controller) -> Mix:
        assert self.rule is not None
        return self.rule.mix(ctrl)

    def decide(
        self,
        observation: Observation,
        plan_pods: float | None = None,
        forecast_pods: tuple[float, float] | None = None,
    ) -> Decision:
        """The mix's nodes for this tick; ``plan_pods`` (a composed controller's sizing)
        replaces the plan (the controller's own, or the rule's) before the mix is chosen,
        so the features and records show the plan executed; ``forecast_pods`` (a
        forecasting sizing's plan-horizon median and provisioned quantile, pods) feeds
        feature version 2."""
        ctrl, layout = self.ctrl, self.layout
        assert ctrl is not None and layout is not None
        ctrl.observe(tick_from_observation(layout, observation))
        ctrl.forecast_pods = forecast_pods
        if plan_pods is not None:
            ctrl.plan_pods = plan_pods
        mix = self.choose(ctrl)
        plan = (
            plan_pods
            if plan_pods is not None
            else self.rule.plan(ctrl)
            if self.rule is not None
            else None
        )
        desired = ctrl.desired(mix, plan)
        by_az: dict[str, dict[str, int]] = {}
        for spec, ks in zip(layout.pools, layout.pool_slots, strict=True):
            by_az[spec.name] = {layout.slots[k].az: desired[k] for k in ks}
        return Decision(
            desired_nodes={name: sum(c.values()) for name, c in by_az.items()},
            reasons=(f"{self.name}: plan {ctrl.plan_pods if plan is None else plan:.0f} pods",),
            desired_by_az=by_az,
            records=self.records(ctrl, mix, desired),
        )

    def records(self, ctrl: Controller, mix: Mix, desired: list[int]) -> tuple[Any, ...]:
        return ()


class HindsightParams(BaseModel):
    """Parameters of ``hindsight``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    foresee_load: bool = Field(
        default=True,
        description="plan from the foreseen load (the limit); false: the shared plan, "
        "only the market foreseen (a diagnostic, not a bound on the mix)",
    )


class HindsightPolicy(CostPolicy):
    needs = PolicyNeeds(foresight=True)

    def __init__(self, params: HindsightParams | None = None) -> None:
        self.params = params or HindsightParams()
        rule = HindsightRule(foresee_load=self.params.foresee_load)
        super().__init__("hindsight", rule)


def rule_policy(params: NoParams | None = None, *, rule: str) -> CostPolicy:
    """The cost baseline that mix rule ``rule`` drives (an id in ``agents.registry.MIX_RULES``)."""
    from agents.registry import MIX_RULES

    return CostPolicy(rule, MIX_RULES.make(rule, source="policy"))


# --------------------------------------------------------------------------- cost-rl

Action = Literal["scale_up", "scale_down", "maintain"]


class CostRecommendation(BaseModel):
    """One pool's cost recommendation (instance type, spot use, right-sizing, placement).

    Attributes
    ----------
    pool, instance_type, capacity_type
        The pool it is for and what it runs.
    action
        ``scale_up`` / ``scale_down`` / ``maintain``: ``recommended_nodes`` against the
        pool's active nodes.
    recommended_nodes, nodes_by_az
        Desired nodes, in total and per AZ (scheduling: where they go).
    spot_share
        Share of the planned pods the policy holds on spot (0..1).
    right_sizing_pods
        Pods the load needs (the plan) against ``active_pods`` held now.
    interruption_risk
        Per spot AZ, the share of the last hour without spot on offer (0..1).
    hourly_cost_usd, on_demand_hourly_cost_usd, savings_vs_on_demand
        The fleet's cost per hour at the recommended counts and prices in force, the
        same pods on on-demand, and the saving (fraction).
    reasoning
        One sentence on what drove it.
    model_version
        The trained model that chose the mix.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    pool: str
    instance_type: str
    capacity_type: str
    action: Action
    recommended_nodes: int = Field(ge=0)
    nodes_by_az: dict[str, int]
    spot_share: float = Field(ge=0, le=1)
    right_sizing_pods: float = Field(ge=0)
    active_pods: float = Field(ge=0)
    interruption_risk: dict[str, float]
    hourly_cost_usd: float = Field(ge=0)
    on_demand_hourly_cost_usd: float = Field(ge=0)
    savings_vs_on_demand: float = Field(le=1)
    reasoning: str = Field(min_length=1)
    model_version: str = Field(min_length=1)


class CostRLPolicy(CostPolicy):
    """The trained PPO network picks the mix; see :mod:`agents.cost.env` for its inputs."""

    needs = PolicyNeeds(model="cost")

    def __init__(self, params: CostRLParams | None = None) -> None:
        super().__init__("cost-rl", None)
        self.params = params or CostRLParams()
        self.model: Any = None
        self._last_record_s = -1e18
        self._last_share = -1.0

    def use_model(self, model: Any) -> None:
        """Set the trained model (a :class:`agents.cost.model.CostModel`)."""
        self.model = model

    def feature_options(self) -> dict[str, Any]:
        meta = self.model.metadata
        prior = meta.hazard_prior.prior() if meta.hazard_prior is not None else None
        return {"feature_version": meta.feature_version, "hazard_prior": prior}

    def reset(self, context: ControlContext) -> None:
        if self.model is None:
            raise ValueError("cost-rl needs a trained model (opsbench train cost)")
        meta = self.model.metadata
        sized_by = self.sized_by
        if meta.sizing == "predictive" and (sized_by is None or not sized_by.forecasts):
            where = "alone" if sized_by is None else f"under {sized_by.name}, which has no forecast"
            raise InputError(
                self.model.folder / "metadata.json",
                "sizing",
                f"model {self.model.version} was trained under predictive sizing and reads its "
                f"forecast; here cost-rl runs {where}",
                "--policy predictive+cost-rl, or a model trained under the controller's own "
                "sizing (opsbench train cost without --sizing)",
            )
        if meta.sizing == "predictive" and sized_by is not None:
            if sized_by.quantile != meta.sizing_quantile:
                raise InputError(
                    context.scenario_id,
                    "control.params.sizing.quantile",
                    f"{sized_by.quantile}: model {self.model.version} was trained under "
                    f"predictive sizing at {meta.sizing_quantile} and reads that forecast",
                    f"{meta.sizing_quantile}, or a model trained at {sized_by.quantile} "
                    f"(opsbench train cost --sizing predictive --sizing-quantile "
                    f"{sized_by.quantile})",
                )
        super().reset(context)
        assert self.layout is not None
        self.model.check_layout(self.layout, source=context.scenario_id)
        self._last_record_s = -1e18
        self._last_share = -1.0

    def choose(self, ctrl: Controller) -> Mix:
        action = self.model.act(ctrl.features())
        return decode_action(action, len(ctrl.layout.spot_slots))

    def records(self, ctrl: Controller, mix: Mix, desired: list[int]) -> tuple[Any, ...]:
        tick, layout = ctrl.tick, ctrl.layout
        assert tick is not None
        slots = layout.slots
        spot_pods = sum(desired[k] * slots[k].pods_per_node for k in layout.spot_slots)
        plan = max(ctrl.plan_pods, 1.0)
        share = min(1.0, spot_pods / (1.0 + mix.spot_buffer) / plan)
        due = tick.t_s - self._last_record_s >= self.params.record_every_min * 60.0
        if not due and abs(share - self._last_share) <= 0.1:
            return ()
        self._last_record_s, self._last_share = tick.t_s, share
        hourly = sum(desired[k] * tick.price[k] for k in range(len(slots)))
        od_hourly = sum(desired[k] * slots[k].on_demand_usd_per_hour for k in range(len(slots)))
        risk = {
            slots[k].az: round(float(ctrl.tracker.unavail[j]), 4)
            for j, k in enumerate(layout.spot_slots)
        }
        best = sorted(
            (k for k in layout.spot_slots if tick.launchable[k]),
            key=lambda k: -mix.weights[layout.spot_slots.index(k)],
        )
        where = ", ".join(slots[k].az for k in best[:2]) or "no AZ with spot on offer"
        out = []
        for spec, ks in zip(layout.pools, layout.pool_slots, strict=True):
            want = sum(desired[k] for k in ks)
            have = sum(tick.active[k] for k in ks)
            action: Action = (
                "scale_up" if want > have else "scale_down" if want < have else "maintain"
            )
            reasoning = (
                f"{share:.0%} of {ctrl.plan_pods:.0f} planned pods on spot (prefer {where}), "
                f"on-demand floor {mix.od_floor:.0%}, spot buffer {mix.spot_buffer:.0%}"
            )
            out.append(
                CostRecommendation(
                    pool=spec.name,
                    instance_type=spec.instance_type,
                    capacity_type=spec.capacity_type,
                    action=action,
                    recommended_nodes=want,
                    nodes_by_az={slots[k].az: desired[k] for k in ks},
                    spot_share=round(share, 4),
                    right_sizing_pods=float(ctrl.plan_pods),
                    active_pods=float(have * spec.pods_per_node),
                    interruption_risk=risk,
                    hourly_cost_usd=round(hourly, 6),
                    on_demand_hourly_cost_usd=round(od_hourly, 6),
                    savings_vs_on_demand=round(1.0 - hourly / od_hourly, 4) if od_hourly else 0.0,
                    reasoning=reasoning,
                    model_version=str(self.model.version),
                ).model_dump()
            )
        return tuple(out)


class ActionReplayPolicy(CostPolicy):
    """Replays a recorded sequence of env actions in the simulator (one per tick, the
    last one repeating): the fidelity check between the env and the simulator."""

    def __init__(self, actions: list[list[float]]) -> None:
        super().__init__("action-replay", None)
        self.actions = actions
        self.i = 0

    def reset(self, context: ControlContext) -> None:
        super().reset(context)
        self.i = 0

    def choose(self, ctrl: Controller) -> Mix:
        action = self.actions[min(self.i, len(self.actions) - 1)]
        self.i += 1
        return decode_action(action, len(ctrl.layout.spot_slots))
