"""The security analyser's part of a scenario's ``lifecycle:`` section (see
:mod:`sim.lifecycle`): its alert-rate monitor, the retrain it triggers and the rollout."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SecurityLifecycle(BaseModel):
    """The replay's security analyser under the lifecycle loop."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    alert_window_h: float = Field(
        default=6.0, gt=0, le=168, description="the alert-rate monitor's window"
    )
    alert_rate_factor: float = Field(
        default=3.0,
        gt=1,
        le=100,
        description="a window's alert rate this many times the "
        "training reference's triggers a retrain",
    )
    retrain_window_days: float = Field(default=7.0, gt=0, le=60)
    retrain: bool = Field(
        default=True, description="false: monitor only (the 'never retrain' baseline)"
    )
