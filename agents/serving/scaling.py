"""The predictive scaling agent as a stateless endpoint: one pool's recommendation per record.

A request carries what a live controller sends at a control tick: the pool's active
nodes and its ``[min_nodes, max_nodes]``, what one node serves at full CPU
(``node_capacity_rps``, requests/s), the utilisation capacity is planned for, the load
seen now, and the two feature rows the model reads (``plan_features`` for the plan
model, ``forecast_features`` for the reported horizon; each named exactly as the
model's ``metadata.feature_columns``, read by the client from the online feature store,
``null`` for a value the store does not have, e.g. one week back on a young series).
Two rows, not one: the calendar and seasonal columns describe the *target* time, which
differs between the two horizons.

The decision is the predictive policy's own (:func:`agents.scaling.policy.pods_target`,
:func:`~agents.scaling.policy.assess`, :func:`~agents.scaling.policy.recommendation`),
counted in nodes of this pool: the most of the plan forecast's configured quantile and
the load now at the target utilisation, within ``[min_nodes, max_nodes]``. What the
replay adds around it needs state the endpoint does not keep, so the caller owns it:
the reactive guard, scale-in stabilisation (hold the highest target of the last 5
minutes), make-before-break and the spread over AZs. ``urgency`` compares against
``active_nodes`` (the replay compares running nodes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field, create_model, model_validator

from agents.forecasting.features import origin_features
from agents.scaling.model import ScalingModel
from agents.scaling.policy import PredictiveParams, assess, pods_target, recommendation
from agents.serving.protocol import RequestModel

MINUTE_S = 60


class PoolRequest(RequestModel):
    """The pool and load part of a scaling request (the feature rows are added per model)."""

    pool: str = Field(default="default", min_length=1, description="the node pool's name")
    active_nodes: int = Field(ge=0, description="pending + running nodes now")
    min_nodes: int = Field(ge=0)
    max_nodes: int = Field(ge=1)
    node_capacity_rps: float = Field(gt=0, description="requests/s one node serves at full CPU")
    target_utilization: float = Field(
        default=0.6, gt=0, le=1, description="CPU utilisation capacity is planned for"
    )
    load_rps: float = Field(ge=0, description="offered load now (last minute), requests/s")

    @model_validator(mode="after")
    def _bounds(self) -> PoolRequest:
        if self.min_nodes > self.max_nodes:
            raise ValueError(f"min_nodes ({self.min_nodes}) must not exceed max_nodes")
        return self


class ScalingPredictor:
    """Recommendations of a :class:`~agents.scaling.model.ScalingModel` (see the module).

    Parameters
    ----------
    model
        The loaded model.
    quantile
        Quantile of the plan forecast provisioned for (one of the model's quantiles).
    """

    agent = "scaling"

    def __init__(self, model: ScalingModel, *, quantile: float | None = None) -> None:
        meta = model.metadata
        self.quantile = PredictiveParams().quantile if quantile is None else float(quantile)
        if self.quantile not in meta.quantiles:
            raise ValueError(f"quantile {self.quantile} is not among the model's {meta.quantiles}")
        self.model = model
        self.model_version = model.version
        self.columns = meta.feature_columns
        self.q_index = meta.quantiles.index(self.quantile)
        self.median_index = meta.quantiles.index(0.5)
        row: Any = create_model(
            "FeatureRow",
            __base__=RequestModel,
            __doc__="One feature row (requests/s, calendar columns in hours / weekday).",
            **{c: (float | None, ...) for c in self.columns},  # type: ignore[call-overload]
        )
        self.request_model = create_model(
            "ScalingRequest",
            __base__=PoolRequest,
            __doc__="One pool's control tick: load, bounds and the two feature rows.",
            plan_features=(row, ...),
            forecast_features=(row, ...),
        )
        scalars = tuple(n for n in PoolRequest.model_fields)
        self.csv_columns = (
            *scalars,
            *(f"plan_features.{c}" for c in self.columns),
            *(f"forecast_features.{c}" for c in self.columns),
        )

    def _row(self, features: RequestModel) -> np.ndarray:
        values = features.__dict__
        return np.asarray(
            [np.nan if (v := values[c]) is None else v for c in self.columns], dtype=np.float64
        )

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        return [self._one(r) for r in records]

    def _one(self, r: Any) -> dict[str, Any]:
        meta = self.model.metadata
        plan = self.model.predict_row("plan", self._row(r.plan_features))
        report = self.model.predict_row("forecast", self._row(r.forecast_features))
        node_rate = r.node_capacity_rps * r.target_utilization
        now_nodes = r.load_rps / node_rate
        plan_nodes = float(plan[self.q_index]) / node_rate
        raw, driver = pods_target(plan_nodes, now_nodes, 0.0, r.max_nodes)
        target = max(r.min_nodes, raw)
        p50, upper = float(report[self.median_index]), float(report[self.q_index])
        found = assess(
            target_pods=target,
            driver=driver,
            plan_pods=plan_nodes,
            now_pods=now_nodes,
            upper_pods=upper / node_rate,
            serving_pods=r.active_nodes,
            p50_rps=p50,
            upper_rps=upper,
            total_pods=target,
            pod_capacity_rps=r.node_capacity_rps,
        )
        return recommendation(
            found,
            pool=r.pool,
            active_nodes=r.active_nodes,
            target_nodes=target,
            quantile=self.quantile,
            time_horizon=meta.forecast_horizon_min,
            model_version=self.model_version,
            unit="nodes",
        ).model_dump()

    def example_request(self) -> dict[str, Any]:
        """A pool of 3 nodes at 300 requests/s each, the load a daily cycle around
        1,000 requests/s, features computed by the agent's own feature code."""
        meta = self.model.metadata
        step = meta.step_s
        n = 8 * 86_400 // step
        t = np.arange(n) * step
        values = 1000.0 + 400.0 * np.sin(2 * np.pi * t / 86_400)
        origin = int(np.datetime64("2024-01-15T00:00:00", "s").astype(np.int64)) - step
        rows = {}
        for role, horizon in (
            ("plan_features", meta.plan_horizon_min),
            ("forecast_features", meta.forecast_horizon_min),
        ):
            row = origin_features(
                values, origin, step_s=step, horizon_steps=horizon * MINUTE_S // step
            )
            rows[role] = {
                c: None if np.isnan(v) else round(float(v), 6)
                for c, v in zip(self.columns, row.tolist(), strict=True)
            }
        return {
            "pool": "on-demand",
            "active_nodes": 3,
            "min_nodes": 1,
            "max_nodes": 20,
            "node_capacity_rps": 300.0,
            "target_utilization": 0.6,
            "load_rps": round(float(values[-1]), 3),
            **rows,
        }
