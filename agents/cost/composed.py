"""Composed controllers: a sizing policy decides *how much*, a mix policy decides *where*.

``--policy SIZING+MIX`` (e.g. ``predictive+cost-rl``, ``reactive+spot-greedy``,
``oracle+hindsight``) is one :class:`~sim.control.Policy`. Every control tick:

1. the sizing policy (``reactive``, ``predictive`` or ``oracle``) decides as it would on
   its own, so its state (HPA stabilisation, forecasts, foresight window) moves on; its
   node placement is *not* applied, only its pod target (:attr:`SizingPolicy.last_target_pods`);
2. the cost controller of the mix policy (``on-demand``, ``spot-greedy``,
   ``price-capacity``, ``uniform-progress``, ``cost-rl``, ``hindsight``) takes in the tick,
   its plan is replaced by the sizing's target (so ``cost-rl``'s observation and
   recommendations see the plan that is executed), the mix is chosen and executed
   (:meth:`~agents.cost.controller.Controller.desired` with ``plan_pods``), making before
   breaking.

Before the sizing policy has a target (``reactive`` before its first metrics) the cost
controller's own plan holds (the pods running, until load is seen).

Records: the sizing's records (``part: sizing``; its own node counts, not applied), the
mix's records (``part: mix``), and per pool a ``part: composed`` record naming both parts
whenever the plan or the nodes per pool change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agents.cost.policies import CostPolicy, SizedBy
from agents.registry import MIX_POLICIES, POLICIES, SIZING_POLICIES
from sim.control import (
    ControlContext,
    Decision,
    ModelPolicy,
    Observation,
    Policy,
    PolicyNeeds,
)
from sim.errors import InputError

if TYPE_CHECKING:
    from agents.scaling.policy import PredictiveParams

SEPARATOR = "+"


@runtime_checkable
class SizingPolicy(Policy, Protocol):
    """A policy whose last decision's pod target can be read (pods at the target
    utilisation; ``None`` before it has one)."""

    @property
    def last_target_pods(self) -> float | None: ...


@runtime_checkable
class ForecastingSizing(SizingPolicy, Protocol):
    """A sizing policy that also exposes its plan-horizon forecast (``predictive``): the
    median and the quantile it provisions for (``params.quantile``), in pods (``None``
    before its first)."""

    params: PredictiveParams

    @property
    def plan_forecast_pods(self) -> tuple[float, float] | None: ...


class ComposedParams(BaseModel):
    """Parameters of a composed controller: each part's own ``control.params``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sizing: dict[str, Any] = Field(
        default_factory=dict, description="parameters of the sizing policy (opsbench policies)"
    )
    mix: dict[str, Any] = Field(
        default_factory=dict, description="parameters of the mix policy (opsbench policies)"
    )


def composed_name(sizing: str, mix: str) -> str:
    """The registry id of ``sizing`` x ``mix``."""
    return f"{sizing}{SEPARATOR}{mix}"


def split_name(name: str, *, source: str, field: str) -> tuple[str, str]:
    """The (sizing, mix) parts of a composed policy id; an unknown part raises InputError
    naming what is allowed for that part."""
    sizing, _, mix = name.partition(SEPARATOR)
    if sizing not in SIZING_POLICIES:
        raise InputError(
            source, field, f"unknown sizing policy {sizing!r} in {name!r}",
            "SIZING+MIX with SIZING one of " + ", ".join(SIZING_POLICIES),
        )  # fmt: skip
    if mix not in MIX_POLICIES:
        raise InputError(
            source, field, f"unknown mix policy {mix!r} in {name!r}",
            "SIZING+MIX with MIX one of " + ", ".join(MIX_POLICIES),
        )  # fmt: skip
    return sizing, mix


def composed_policy(
    params: ComposedParams | None = None,
    *,
    sizing: str,
    mix: str,
    source: str = "",
    field: str = "control.params",
) -> ComposedPolicy:
    """``sizing`` x ``mix`` with each part built from its own parameters (bad ones raise
    InputError naming ``<field>.sizing.<key>`` or ``<field>.mix.<key>``)."""
    params = params or ComposedParams()
    if mix == "hindsight" and "foresee_load" in params.mix:
        raise InputError(
            source or "--policy", f"{field}.mix.foresee_load",
            "in a composed controller the sizing policy plans the load",
            "no foresee_load (use the policy hindsight alone for its own plan)",
        )  # fmt: skip
    parts = {}
    for role, name, given in (("sizing", sizing, params.sizing), ("mix", mix, params.mix)):
        parts[role] = POLICIES.make(name, given, source=source, params_field=f"{field}.{role}")
    return ComposedPolicy(parts["sizing"], parts["mix"], params)  # type: ignore[arg-type]


class ComposedPolicy:
    """A sizing policy's pod target held by a cost policy's mix (see the module).

    ``parts`` (sizing, mix) are whole policies; the composition root hands each the
    model it declares it needs (:func:`bench.runner.attach_model`), and the context
    carries foresight when either part declares it.
    """

    def __init__(self, sizing: SizingPolicy, mix: CostPolicy, params: ComposedParams) -> None:
        self.sizing = sizing
        self.mix = mix
        self.params = params
        self.name = composed_name(sizing.name, mix.name)
        self.needs = PolicyNeeds(
            foresight=sizing.needs.foresight or mix.needs.foresight,
            model=sizing.needs.model or mix.needs.model,
        )
        self._last: tuple[float, dict[str, int]] | None = None

    @property
    def parts(self) -> tuple[Policy, ...]:
        """The sizing and the mix policy, in that order."""
        return (self.sizing, self.mix)

    def replace_part(self, old: Policy, new: Policy) -> None:
        """Put ``new`` in place of part ``old`` (e.g. the sizing under a lifecycle loop)."""
        if old is self.sizing:
            self.sizing = new  # type: ignore[assignment]
        elif old is self.mix:
            self.mix = new  # type: ignore[assignment]
        else:
            raise ValueError(f"{old!r} is not a part of {self.name}")

    def use_model(self, model: object) -> None:
        """Hand ``model`` to the part whose need ``needs.model`` names (the sizing's first);
        the composition root gives every part its own model."""
        part: Policy = self.sizing if self.sizing.needs.model is not None else self.mix
        if not isinstance(part, ModelPolicy):
            raise TypeError(f"{self.name}: no part decides with a model")
        part.use_model(model)

    def reset(self, context: ControlContext) -> None:
        self.sizing.reset(context)
        sizing = self.sizing
        if isinstance(sizing, ForecastingSizing):
            self.mix.sized_by = SizedBy(sizing.name, True, sizing.params.quantile)
        else:
            self.mix.sized_by = SizedBy(sizing.name, False, None)
        self.mix.reset(context)
        self._last = None

    def decide(self, observation: Observation) -> Decision:
        sized = self.sizing.decide(observation)
        target = self.sizing.last_target_pods
        mix = self.mix
        forecast = (
            self.sizing.plan_forecast_pods if isinstance(self.sizing, ForecastingSizing) else None
        )
        mixed = mix.decide(
            observation,
            plan_pods=None if target is None else float(target),
            forecast_pods=forecast,
        )
        ctrl = mix.ctrl
        assert ctrl is not None
        plan = ctrl.plan_pods
        reasons = (
            f"sizing {self.sizing.name}: " + "; ".join(sized.reasons),
            f"mix {mix.name}: " + "; ".join(mixed.reasons),
        )
        return Decision(
            desired_nodes=mixed.desired_nodes,
            reasons=reasons,
            desired_by_az=mixed.desired_by_az,
            records=(
                *_tagged(sized.records, "sizing", self.sizing.name),
                *_tagged(mixed.records, "mix", mix.name),
                *self._composed_record(plan, target, mixed, reasons),
            ),
        )

    def _composed_record(
        self, plan: float, target: float | None, mixed: Decision, reasons: tuple[str, ...]
    ) -> tuple[dict[str, object], ...]:
        """One record per pool naming both parts, whenever the plan or the nodes change."""
        nodes = {name: int(n) for name, n in mixed.desired_nodes.items()}
        if self._last == (plan, nodes):
            return ()
        self._last = (plan, nodes)
        return tuple(
            {
                "pool": pool,
                "part": "composed",
                "policy": self.name,
                "sizing": self.sizing.name,
                "mix": self.mix.name,
                "plan_pods": plan,
                "plan_from": "sizing" if target is not None else "mix (no sizing target yet)",
                "target_nodes": n,
                "nodes_by_az": dict(mixed.desired_by_az.get(pool, {})),
                "reasoning": " | ".join(reasons),
            }
            for pool, n in nodes.items()
        )


def _tagged(
    records: tuple[Mapping[str, object], ...], part: str, policy: str
) -> tuple[dict[str, object], ...]:
    """``records`` marked with the part that wrote them; the sizing's node counts are its
    own proposal, not what is applied (``nodes_applied``)."""
    applied = part == "mix"
    return tuple(
        {**r, "part": part, "part_policy": policy, "nodes_applied": applied} for r in records
    )
