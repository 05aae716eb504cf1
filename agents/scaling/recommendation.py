"""The recommendation record the predictive scaling agent returns for every decision.

Field names follow the seed's scaling recommendation; every value is checked, so a
record that leaves the agent is always valid.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["scale_up", "scale_down", "maintain"]
Urgency = Literal["low", "medium", "high", "critical"]


class Recommendation(BaseModel):
    """One pool's scaling recommendation at one control tick.

    Attributes
    ----------
    pool
        The node pool it is for.
    action
        ``scale_up`` / ``scale_down`` / ``maintain``: ``target_nodes`` against the
        pool's active (pending + running) nodes.
    target_nodes
        Desired node count for the pool.
    urgency
        ``critical`` when the load seen now already exceeds the serving capacity,
        ``high`` when the forecast within the provisioning lead time does, ``medium``
        when the forecast at ``time_horizon`` does, ``low`` otherwise.
    reasoning
        One sentence: what drove the target.
    predicted_cpu_utilization
        Median forecast load at ``time_horizon`` over the capacity of ``target_nodes``
        (cluster-wide), as a fraction of pod CPU (may exceed 1 under overload).
    confidence
        ``1 - (p90 - p50) / p90`` of the forecast at ``time_horizon``, in ``[0, 1]``:
        1 when the upper quantile equals the median.
    time_horizon
        Forecast horizon in minutes.
    model_version
        Version of the trained model that made the forecast.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    pool: str
    action: Action
    target_nodes: int = Field(ge=0)
    urgency: Urgency
    reasoning: str = Field(min_length=1)
    predicted_cpu_utilization: float = Field(ge=0)
    confidence: float = Field(ge=0, le=1)
    time_horizon: int = Field(gt=0)
    model_version: str = Field(min_length=1)
