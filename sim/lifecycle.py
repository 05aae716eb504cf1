"""A scenario's ``lifecycle:`` section: how the models deciding in a replay are watched,
retrained and rolled out while it runs (the model lifecycle of issue 14).

Without the section a replay's models decide unchanged from start to end. With it, each
model named here is run by a lifecycle loop (:mod:`agents.lifecycle.loop` for the
scaling forecaster, :mod:`agents.lifecycle.audit_loop` for the security analyser):
monitors on what a real deployment can see, a trigger, a retrain on a recent window read
point-in-time from the feature store, validation against the champion, registration as
the challenger, and a rollout (shadow → canary → promote or roll back).

Units are in the field names (``_min`` simulated minutes, ``_h`` hours, ``_days`` days).
Every default is documented where it is declared; :mod:`agents.lifecycle.drift` says how
the drift monitor's were chosen.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.lifecycle_security import SecurityLifecycle


class Model(BaseModel):
    """Base of every user-written model: frozen, unknown keys and NaN/inf rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class DriftSettings(Model):
    """Feature drift against the champion's training reference (PSI and KS per feature,
    :mod:`agents.lifecycle.drift`), judged once per forecast origin (5 minutes). The
    defaults are the drift monitor's, chosen by leave-one-trace-out cross-validation over
    the shipped traces (``python -m bench.drift_cv``; a test holds the two equal)."""

    window_rows: int = Field(default=12, ge=12, le=2016, description="origins per window")
    psi_threshold: float = Field(default=0.75, gt=0, le=10)
    ks_alpha: float = Field(default=1e-8, gt=0, lt=1)
    agreement: Literal["all", "any"] = Field(
        default="all", description="all: every feature with a verdict must drift; any: one"
    )
    confirm_rows: int = Field(
        default=1, ge=1, le=100, description="consecutive drifted windows before an alarm"
    )


class QualitySettings(Model):
    """Forecast quality once the truth arrives: rolling MASE and p90 coverage."""

    window_rows: int = Field(default=288, ge=12, le=20_160, description="scored origins")
    min_p90_coverage: float = Field(
        default=0.6, ge=0, le=1, description="a window's p90 coverage below this triggers"
    )


class RetrainSettings(Model):
    """What a trigger retrains on and what the candidate must show to become challenger."""

    window_days: float = Field(
        default=7.0, ge=1, le=60, description="recent days of origins trained on"
    )
    settle_min: float = Field(
        default=360.0,
        ge=0,
        le=10_080,
        description="wait after the trigger so the window holds this much of the new regime",
    )
    cooldown_h: float = Field(
        default=12.0,
        ge=0,
        le=720,
        description="no new trigger this long after a retrain whose candidate became "
        "challenger (a refused candidate starts no cooldown: the next trigger retrains "
        "settle_min later, on a window holding more of the new regime)",
    )
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="latest share of the window held back to validate"
    )


class RolloutSettings(Model):
    """Shadow → canary → promote or roll back, judged by a sequential test (see
    :mod:`agents.lifecycle.sequential`) on the paired per-origin loss of the two models'
    capacity targets against the load that then arrived."""

    shadow_min: float = Field(default=120.0, ge=0, le=10_080)
    canary_share: float = Field(
        default=0.1, gt=0, le=0.5, description="share of control decisions the challenger makes"
    )
    canary_min: float = Field(default=120.0, ge=0, le=10_080)
    evaluation_window_min: float = Field(
        default=1440.0,
        gt=0,
        le=20_160,
        description="a challenger not promoted this long after it arrives is rolled back",
    )
    block_min: float = Field(
        default=60.0, ge=5, le=1440, description="losses are averaged per block (autocorrelation)"
    )
    min_blocks: int = Field(
        default=4, ge=2, le=1000, description="no verdict (and no canary) on fewer blocks"
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="the test's false-verdict rate")
    error_budget_share: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="the canary may burn canary_share * this * the SLO's error budget",
    )


class InjectedChallenger(Model):
    """A challenger that arrives from outside the loop at a known time (as if registered by
    hand): ``shuffled-targets`` is trained on the same window with its targets shuffled."""

    at_h: float = Field(ge=0, description="hours after the replay start")
    training: Literal["shuffled-targets"] = "shuffled-targets"


class ScalingLifecycle(Model):
    """The predictive policy's forecaster under the lifecycle loop."""

    drift: DriftSettings = DriftSettings()
    quality: QualitySettings = QualitySettings()
    retrain: RetrainSettings = RetrainSettings()
    rollout: RolloutSettings = RolloutSettings()
    retrain_on_drift: bool = Field(
        default=True, description="false: monitor only (the 'never retrain' baseline)"
    )
    injected_challengers: list[InjectedChallenger] = Field(default_factory=list, max_length=100)


class AnomalyLifecycle(Model):
    """The metric anomaly detector's alert-rate monitor (``detection:``). The detectors
    learn online every minute, so there is nothing to retrain: the monitor tells the
    operator when the paging rate leaves its reference (an alert storm), and reports it."""

    reference_h: float = Field(
        default=24.0, gt=0, le=720, description="the replay's first hours that set the reference"
    )
    alert_window_h: float = Field(default=6.0, gt=0, le=168, description="the monitor's window")
    alert_rate_factor: float = Field(
        default=3.0, gt=1, le=100, description="a window's paging rate this many times the "
        "reference is a detection"
    )  # fmt: skip
    min_reference_per_h: float = Field(
        default=0.5, gt=0, le=60, description="floor of the reference rate (pages/h)"
    )


class Lifecycle(Model):
    """Which models run under the lifecycle loop in this replay, and how."""

    scaling: ScalingLifecycle | None = None
    security: SecurityLifecycle | None = None
    anomaly: AnomalyLifecycle | None = None

    @model_validator(mode="after")
    def _something(self) -> Lifecycle:
        if self.scaling is None and self.security is None and self.anomaly is None:
            raise ValueError("name at least one model (scaling, security, anomaly)")
        return self
