"""The security analyser's part of a scenario's ``lifecycle:`` section (see
:mod:`sim.lifecycle`): its alert-rate monitor, the retrain it triggers and the rollout
(:mod:`agents.lifecycle.audit_loop`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SecurityLifecycle(BaseModel):
    """The replay's security analyser under the lifecycle loop.

    The champion's **reference rate** is its alerts per hour over the replay's first
    ``reference_h`` hours (at least ``min_reference_per_h``); the monitor compares the
    alerts per hour of the last ``alert_window_h`` with it, and the risk scores of that
    window with the reference's (PSI, reported beside the rate)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    alert_window_h: float = Field(
        default=6.0, gt=0, le=168, description="the alert-rate monitor's window"
    )
    alert_rate_factor: float = Field(
        default=3.0,
        gt=1,
        le=100,
        description="a window's alert rate this many times the "
        "reference rate triggers a retrain",
    )
    retrain_window_days: float = Field(
        default=7.0, gt=0, le=60, description="recent days of audit records retrained on"
    )
    reference_h: float = Field(
        default=24.0, gt=0, le=720, description="the replay's first hours that set the reference"
    )
    min_reference_per_h: float = Field(
        default=0.5, gt=0, le=1000, description="floor of the reference rate (alerts/h)"
    )
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="latest share of the window held back to validate"
    )
    shadow_h: float = Field(
        default=6.0, gt=0, le=168, description="how long the challenger scores in shadow"
    )
    cooldown_h: float = Field(
        default=12.0, ge=0, le=720, description="no new trigger this long after a retrain"
    )
    threat_accounts: int = Field(
        default=2,
        ge=1,
        le=12,
        description="simulated accounts (1 day each, labelled) that give the retrain its "
        "attack examples",
    )
    retrain: bool = Field(
        default=True, description="false: monitor only (the 'never retrain' baseline)"
    )
