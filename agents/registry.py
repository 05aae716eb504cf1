"""Every policy by name, with its parameters validated like a scenario file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from agents.baselines.oracle import OracleParams, OraclePolicy
from agents.baselines.reactive import ReactiveParams, ReactivePolicy
from agents.baselines.static import StaticParams, StaticPolicy
from agents.cost.registry import COST_POLICIES
from agents.scaling.policy import PredictiveParams, PredictivePolicy
from sim.control import Policy
from sim.errors import InputError


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """A registered policy: how to build it and what it is."""

    name: str
    summary: str
    params: type[BaseModel]
    build: Callable[[Any], Policy]


POLICIES: Mapping[str, PolicyInfo] = {
    info.name: info
    for info in (
        PolicyInfo(
            "static",
            "a fixed fleet sized for the replay's peak load (or given counts)",
            StaticParams,
            StaticPolicy,
        ),
        PolicyInfo(
            "reactive",
            "Kubernetes HPA rule (10% tolerance, 300 s scale-down stabilisation) "
            "+ Cluster Autoscaler",
            ReactiveParams,
            ReactivePolicy,
        ),
        PolicyInfo(
            "oracle",
            "perfect foresight of the workload, cheapest feasible capacity one lead time ahead",
            OracleParams,
            OraclePolicy,
        ),
        PolicyInfo(
            "predictive",
            "p90 load forecast one lead time ahead (trained on the history before the "
            "replay), reactive rule as a floor, stabilised scale-in",
            PredictiveParams,
            PredictivePolicy,
        ),
        *(PolicyInfo(*entry) for entry in COST_POLICIES),
    )
}


def make_policy(name: str, params: Mapping[str, Any], *, source: str, field: str) -> Policy:
    """Build policy ``name`` with ``params``; bad names or parameters raise InputError."""
    info = POLICIES.get(name)
    if info is None:
        raise InputError(source, field, f"unknown policy {name!r}", ", ".join(sorted(POLICIES)))
    try:
        validated = info.params.model_validate(dict(params))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(
            source,
            f"control.params.{where}" if where else "control.params",
            err["msg"],
            f"parameters of {name}: {', '.join(info.params.model_fields)}",
        ) from None
    return info.build(validated)
