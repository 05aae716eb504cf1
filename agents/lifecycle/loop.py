"""The predictive policy's forecaster under the lifecycle loop, inside a replay.

:class:`ManagedPredictive` is a :class:`~sim.control.Policy`: it runs the champion's
predictive policy and, while a rollout is on, a challenger's beside it, and every control
tick:

1. **Monitors** what a deployment can see: the offered load of the minute just ended
   (from the metrics; a telemetry gap is a missing minute); every working step (5 min)
   the drift features of the origin ending now against the champion's training
   reference (:class:`~agents.lifecycle.drift.DriftMonitor`), and the reported forecast's
   rolling MASE and p90 coverage once its truth has arrived
   (:class:`~agents.lifecycle.quality.ForecastQuality`).
2. **Triggers**: a drift detection (or the p90 coverage of a full quality window below
   ``quality.min_p90_coverage``) schedules a retrain ``retrain.settle_min`` later (so the
   window holds some of the new regime), unless a rollout is on or the last retrain whose
   candidate became challenger was less than ``retrain.cooldown_h`` ago. A refused
   candidate starts no cooldown and leaves the trigger open: it retrains again every
   ``settle_min`` (each window holding more of the new regime) until a candidate is
   accepted or ``retrain.window_days`` have passed since the trigger (by then the window
   is all new regime, and a candidate that still loses says the champion is fine).
3. **Retrains** through the :class:`Retrainer` (the composition root's: it trains from
   the feature store point-in-time on the last ``retrain.window_days`` of origins, all
   before now, validates the candidate against the champion on the latest held-back
   slice, and registers it as ``challenger`` when it does at least as well there).
   Injected challengers (``injected_challengers``) arrive the same way at their hour but
   skip the validation gate, as a model registered by hand would.
4. **Rolls out**: *shadow* (both decide every tick; only the champion's decision is
   applied; both are recorded) for ``rollout.shadow_min``, then *canary* (the challenger's
   decision is applied on ``rollout.canary_share`` of the ticks, spread evenly from a
   seeded phase) for at least ``rollout.canary_min``. A challenger reaches the canary
   only once the test has its minimum sample (``rollout.min_blocks``) and no verdict
   against it: nothing is exposed on less evidence. Throughout, every decision of both
   is scored when its plan window has passed: the pinball loss, at the policy's quantile,
   of its pod target against the pods the load then needed (load is exogenous: what one
   would have needed does not depend on which one decided). Per ``rollout.block_min``
   block the paired difference, relative to the need, goes to a sequential test
   (:mod:`.sequential`): ``better`` → promote (once the canary has run its minimum);
   ``worse`` → roll back; no verdict by ``rollout.evaluation_window_min`` after the
   challenger arrived → roll back (the champion stays unless the evidence says
   otherwise). **Guard**: a minute the monitoring shows out of SLO (p95 over the target
   or requests failing) is charged to whoever decided the tick whose capacity then
   served (``plan window`` minutes before); when the challenger's charged minutes exceed
   ``canary_share * error_budget_share * slo.error_budget * evaluation_window_min`` it is
   rolled back at once.

Everything the loop does is booked in the replay's :class:`~sim.lifecycle_events.LifecycleLog`
and summarised by :meth:`ManagedPredictive.report`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd

from agents.forecasting.features import feature_names
from agents.forecasting.series import DAY_S
from agents.lifecycle.drift import DriftMonitor, DriftReference, load_drift_features
from agents.lifecycle.quality import ForecastQuality
from agents.lifecycle.sequential import SequentialTest
from agents.scaling.model import ScalingModel
from agents.scaling.policy import PredictivePolicy
from sim.control import ControlContext, Decision, Observation
from sim.lifecycle import ScalingLifecycle
from sim.lifecycle_events import LifecycleLog
from sim.seeding import component_rng

MINUTE_S = 60


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    """What a retrain may read: the offered load per minute (requests/s) up to ``end``
    (history before the replay, then what monitoring delivered; ``gap`` where nothing
    was), the first origin time to train on, and the champion to validate against."""

    minutes_rps: np.ndarray
    gap: np.ndarray
    end: datetime
    origins_from: datetime
    trigger: str
    champion: ScalingModel
    champion_ref: str
    shuffle_seed: int | None = None
    validate: bool = True


@dataclass(frozen=True, slots=True)
class Retrained:
    """A retrain's outcome: the candidate's reference and validation metrics, whether it
    passed validation and so was saved (``model``, ``artefact_sha256``: the saved
    folder's digest) and registered as challenger (``ref``); a refused candidate is
    neither saved nor registered (None)."""

    model: ScalingModel | None
    reference: DriftReference
    metrics: Mapping[str, float]
    accepted: bool
    reason: str
    artefact_sha256: str | None
    data_start: str
    data_end: str
    wall_s: float
    ref: str | None = None


class Retrainer(Protocol):
    """Trains, registers and moves aliases for the loop (the composition root's)."""

    def retrain(self, request: RetrainRequest) -> Retrained:
        """Train a candidate point-in-time from the feature store; register it as
        challenger if it is accepted (always, when ``request.validate`` is False)."""

    def promote(self, ref: str) -> None:
        """Make the registered version ``ref`` the champion."""

    def roll_back(self, ref: str) -> None:
        """Withdraw the challenger ``ref`` (the champion is untouched)."""


@dataclass(slots=True)
class _Pending:
    """One tick's targets (pods), scored once its plan window has passed."""

    minute: int  # the tick's time in minutes since the start
    champion_pods: float
    challenger_pods: float | None
    rollout: int | None  # the rollout it belongs to (its id), if any


@dataclass(slots=True)
class _Rollout:
    """A challenger's way through shadow and canary."""

    ident: int
    policy: PredictivePolicy
    ref: str
    sha256: str
    reference: DriftReference
    scale: float
    trigger: str
    arrived_min: int
    test: SequentialTest
    phase: float
    stage: str = "shadow"
    canary_from_min: int | None = None
    canary_ticks: int = 0
    canary_applied: int = 0
    charged_minutes: int = 0
    block_start: int = -1
    block_loss_diff: float = 0.0
    block_need: float = 0.0
    stages: list[dict[str, Any]] = field(default_factory=list)


class ManagedPredictive:
    """The predictive policy with its forecaster under the lifecycle loop (module doc)."""

    def __init__(
        self,
        champion: PredictivePolicy,
        *,
        champion_ref: str,
        champion_sha256: str,
        reference: DriftReference,
        make_policy: Callable[[ScalingModel], PredictivePolicy],
        settings: ScalingLifecycle,
        log: LifecycleLog,
        retrainer: Retrainer,
        slo_error_budget: float,
        model_name: str,
    ) -> None:
        self.champion = champion
        self.champion_ref = champion_ref
        self.champion_sha256 = champion_sha256
        self.reference = reference
        self.make_policy = make_policy
        self.settings = settings
        self.log = log
        self.retrainer = retrainer
        self.slo_error_budget = slo_error_budget
        self.model_name = model_name
        self.name = champion.name
        self.needs = champion.needs
        self.params = champion.params
        self.applied: PredictivePolicy = champion
        """The policy whose decision was applied last."""

    # ------------------------------------------------------------------ Policy
    def use_model(self, model: ScalingModel) -> None:
        self.champion.use_model(model)

    def reset(self, context: ControlContext) -> None:
        self.ctx = context
        self.champion.reset(context)
        assert self.champion.model is not None
        meta = self.champion.model.metadata
        self.step_s = meta.step_s
        self.per_step = meta.step_s // MINUTE_S
        self.window = tuple(meta.plan_window_min)
        self.forecast_h_min = meta.forecast_horizon_min
        self.quantile = self.champion.params.quantile
        self.pod_rate = (
            context.service_rate_per_vcpu_rps * context.pod_vcpu * context.target_utilization
        )
        self.start_s = int(np.datetime64(context.start, "s").astype(np.int64))
        self.history = np.asarray(context.history_offered_rps, dtype=np.float64)
        self.history_gap = np.asarray(context.history_gap, dtype=bool)
        self.minutes: list[float] = []
        self.minute_gap: list[bool] = []
        self.bad_minutes: dict[int, bool] = {}
        self.applied_by: dict[int, int] = {}  # canary tick minute -> rollout id
        self.pending: deque[_Pending] = deque()
        self.forecasts: deque[tuple[int, float, float]] = deque()  # (due minute, p50, p90)
        self.names = feature_names()
        self.drifting = False
        self.drift_monitor = self._drift_monitor(self.reference)
        self.scale = self._scale()
        self.quality = ForecastQuality(self.settings.quality.window_rows, self.scale)
        self.retrain_due: tuple[int, str] | None = None
        self.last_retrain_min: int | None = None
        self.open_trigger_min: int | None = None  # first trigger not yet answered
        self.rollout: _Rollout | None = None
        self.rollouts: list[_Rollout] = []
        self.injected = sorted(self.settings.injected_challengers, key=lambda c: c.at_h)
        self.injected_done = 0
        self.n_rollouts = 0
        self.promotions = 0
        self.rollbacks = 0
        self.retrains: list[dict[str, Any]] = []
        self.detections: list[dict[str, Any]] = []
        self.phase_marks: list[tuple[int, str, str]] = [(0, "champion", self.champion_ref)]
        self.rng = component_rng(context.seed, "lifecycle-canary")
        self.last_target_pods: int | None = None
        """The pod target of the decision applied last (a composed controller's sizing)."""
        self.applied = self.champion

    def decide(self, observation: Observation) -> Decision:
        now_min = int(observation.sim_time_s // MINUTE_S)
        self._observe(observation, now_min)
        first = self.champion.decide(observation)
        first_pods = self.champion.last_target_pods
        rollout = self.rollout
        second = rollout.policy.decide(observation) if rollout is not None else None
        second_pods = rollout.policy.last_target_pods if rollout is not None else None
        self._score(now_min)
        if now_min % self.per_step == 0 and now_min > 0:
            self._monitor(now_min)
        self._maybe_retrain(now_min)
        rollout = self.rollout  # may have changed (promotion, rollback, new challenger)
        if rollout is None or second is None:
            self.pending.append(_Pending(now_min, self.champion.last_target_pods, None, None))
            self.last_target_pods = first_pods
            self.applied = self.champion
            return first
        self.pending.append(
            _Pending(
                now_min,
                self.champion.last_target_pods,
                rollout.policy.last_target_pods,
                rollout.ident,
            )
        )
        use_challenger = rollout.stage == "canary" and self._canary_tick(rollout, now_min)
        self.last_target_pods = second_pods if use_challenger else first_pods
        self.applied = rollout.policy if use_challenger else self.champion
        return _combined(first, second, use_challenger)

    @property
    def plan_forecast_pods(self) -> tuple[float, float] | None:
        """The plan-horizon forecast (median, provisioned quantile; pods) of the policy
        whose decision was applied last (a composed controller hands it to its mix)."""
        return self.applied.plan_forecast_pods

    # ------------------------------------------------------------------ monitoring
    def _observe(self, observation: Observation, now_min: int) -> None:
        """Record the minute just ended (load, and whether it was out of SLO)."""
        while len(self.minutes) < now_min:
            self.minutes.append(self.minutes[-1] if self.minutes else float(self.history[-1]))
            self.minute_gap.append(True)
        metrics = observation.metrics
        if metrics is None or now_min == 0:
            return
        minute = now_min - 1
        self.minutes[minute] = float(sum(m.request_rate_rps for m in metrics.values()))
        self.minute_gap[minute] = False
        slo_ms = self.ctx.slo_p95_latency_ms
        bad = any(
            (m.response_time_p95_ms > slo_ms) or (m.error_rate > 0.0)
            for m in metrics.values()
            if m.pod_count > 0 or m.error_rate > 0.0
        )
        self.bad_minutes[minute] = bad
        self._charge(minute, bad)

    def _charge(self, minute: int, bad: bool) -> None:
        """The guard: a bad minute is charged to whoever decided its capacity."""
        rollout = self.rollout
        if not bad or rollout is None or rollout.stage != "canary":
            return
        if self.applied_by.get(minute - self.window[0]) != rollout.ident:
            return
        rollout.charged_minutes += 1
        s = self.settings.rollout
        allowance = (
            s.canary_share * s.error_budget_share * self.slo_error_budget * s.evaluation_window_min
        )
        if rollout.charged_minutes > allowance:
            self._roll_back(
                minute + 1,
                f"guard: {rollout.charged_minutes} out-of-SLO minute(s) charged to the canary "
                f"(allowance {allowance:.3g})",
            )

    def _drift_monitor(self, reference: DriftReference) -> DriftMonitor:
        d = self.settings.drift
        return DriftMonitor(
            reference, window_rows=d.window_rows, psi_threshold=d.psi_threshold,
            ks_alpha=d.ks_alpha, agreement=d.agreement, confirm_rows=d.confirm_rows,
        )  # fmt: skip

    def _scale(self) -> float:
        """MASE's scale: the seasonal-naive MAE of the history's working series."""
        per = self.per_step
        n = (self.history.size // per) * per
        values = self.history[self.history.size - n :].reshape(-1, per).mean(axis=1)
        day = DAY_S // self.step_s
        if values.size <= day:
            return 1.0
        mae = float(np.mean(np.abs(values[day:] - values[:-day])))
        return mae if mae > 0 else 1.0

    def _monitor(self, now_min: int) -> None:
        """Every working step: drift of the origin ending now, forecast quality."""
        pipeline = self.champion.pipeline
        row = pd.DataFrame([pipeline.features(self.forecast_h_min)], columns=list(self.names))
        report = self.drift_monitor.add(load_drift_features(row).iloc[0].to_dict())
        drifted = report.drifted if report is not None else ()
        if drifted and report is not None:
            worst = max((f for f in report.features if f.drifted), key=lambda f: f.psi or 0.0)
            if not self.drifting:  # a new episode: book the detection
                detection = {
                    "t_min": now_min,
                    "time": self._iso(now_min),
                    "feature": worst.name,
                    "statistic": "psi",
                    "psi": round(float(worst.psi or 0.0), 6),
                    "ks_pvalue": float(worst.ks_pvalue or 0.0),
                }
                self.detections.append(detection)
                self.log.book(self.model_name, "drift", detection)
            self._trigger(now_min, f"drift {worst.name} psi={worst.psi or 0.0:.3f}")
        self.drifting = bool(drifted)
        forecast = self.champion.forecast.get("forecast")
        if forecast is not None:
            meta = self.champion.model.metadata  # type: ignore[union-attr]
            p50 = float(forecast[meta.quantiles.index(0.5)])
            p90 = float(forecast[meta.quantiles.index(0.9)])
            due = now_min + self.forecast_h_min
            self.forecasts.append((due, p50, p90))
        while self.forecasts and self.forecasts[0][0] <= now_min:
            due, p50, p90 = self.forecasts.popleft()
            lo = due - self.per_step
            if lo < 0 or any(self.minute_gap[lo:due]):
                continue
            actual = float(np.mean(self.minutes[lo:due]))
            self.quality.add(actual, p50, p90)
        q = self.settings.quality
        if self.quality.full and self.quality.coverage < q.min_p90_coverage:
            self._trigger(now_min, f"p90 coverage {self.quality.coverage:.3f}")

    def _trigger(self, now_min: int, why: str) -> None:
        if not self.settings.retrain_on_drift or self.rollout is not None:
            return
        if self.retrain_due is not None:
            return
        cooldown = self.settings.retrain.cooldown_h * 60
        if self.last_retrain_min is not None and now_min - self.last_retrain_min < cooldown:
            return
        due = now_min + math.ceil(self.settings.retrain.settle_min)
        self.retrain_due = (due, why)
        if self.open_trigger_min is None:
            self.open_trigger_min = now_min

    # ------------------------------------------------------------------ retraining
    def _maybe_retrain(self, now_min: int) -> None:
        if self.rollout is not None:
            return
        if self.injected_done < len(self.injected):
            arrival = self.injected[self.injected_done]
            if now_min >= arrival.at_h * 60:
                self.injected_done += 1
                seed = int(self.rng.integers(2**31))
                self._retrain(now_min, f"injected ({arrival.training})", seed, validate=False)
                return
        if self.retrain_due is not None and now_min >= self.retrain_due[0]:
            why = self.retrain_due[1]
            self.retrain_due = None
            self._retrain(now_min, why, None, validate=True)

    def _retrain(self, now_min: int, trigger: str, shuffle: int | None, *, validate: bool) -> None:
        minutes = np.concatenate([self.history, np.asarray(self.minutes[:now_min])])
        gap = np.concatenate([self.history_gap, np.asarray(self.minute_gap[:now_min], bool)])
        end = self.ctx.start + timedelta(minutes=now_min)
        window = timedelta(days=self.settings.retrain.window_days)
        # features reach a week and a day back from the first origin trained on
        keep = int((window + timedelta(days=8)).total_seconds() // MINUTE_S)
        assert self.champion.model is not None
        request = RetrainRequest(
            minutes_rps=minutes[-keep:],
            gap=gap[-keep:],
            end=end,
            origins_from=end - window,
            trigger=trigger,
            champion=self.champion.model,
            champion_ref=self.champion_ref,
            shuffle_seed=shuffle,
            validate=validate,
        )
        done = self.retrainer.retrain(request)
        record = {
            "t_min": now_min,
            "time": self._iso(now_min),
            "trigger": trigger,
            "data_start": done.data_start,
            "data_end": done.data_end,
            "accepted": done.accepted,
            "reason": done.reason,
            "artefact_sha256": done.artefact_sha256,
            "metrics": {k: round(float(v), 6) for k, v in done.metrics.items()},
        }
        wall = {"wall_s": round(done.wall_s, 3), "version": done.ref}
        self.retrains.append({**record, **wall})
        self.log.book(self.model_name, "retrain", record, wall=wall)
        if (
            not done.accepted
            or done.ref is None
            or done.model is None
            or done.artefact_sha256 is None
        ):
            if validate:
                self._retry(now_min, trigger)
            return
        self.last_retrain_min = now_min
        self.open_trigger_min = None
        policy = self.make_policy(done.model)
        policy.reset(self.ctx)  # its own pipeline starts from the history...
        for i, value in enumerate(self.minutes[:now_min]):  # ...and catches up
            start_s = self.start_s + i * MINUTE_S
            if policy.pipeline.observe(start_s, None if self.minute_gap[i] else value):
                pass
        policy._forecast_origin(end)
        self.n_rollouts += 1
        s = self.settings.rollout
        rollout = _Rollout(
            ident=self.n_rollouts,
            policy=policy,
            ref=done.ref,
            sha256=done.artefact_sha256,
            reference=done.reference,
            scale=self.scale,
            trigger=trigger,
            arrived_min=now_min,
            test=SequentialTest(s.alpha, s.min_blocks),
            phase=float(self.rng.random()),
            block_start=now_min,
        )
        self.rollout = rollout
        self.rollouts.append(rollout)
        self._stage(rollout, "shadow", now_min)

    def _retry(self, now_min: int, trigger: str) -> None:
        """After a refused candidate: retrain again ``settle_min`` later while the trigger
        is open (see the module)."""
        opened = self.open_trigger_min if self.open_trigger_min is not None else now_min
        due = now_min + math.ceil(self.settings.retrain.settle_min)
        if due > opened + self.settings.retrain.window_days * 1440:
            self.open_trigger_min = None
            return
        self.open_trigger_min = opened
        cause = trigger.removeprefix("retry after a refused candidate: ")
        self.retrain_due = (due, f"retry after a refused candidate: {cause}")

    # ------------------------------------------------------------------ rollout
    def _stage(self, rollout: _Rollout, stage: str, now_min: int, **detail: Any) -> None:
        rollout.stage = stage
        entry = {"stage": stage, "t_min": now_min, "time": self._iso(now_min), **detail}
        rollout.stages.append(entry)
        self.log.book(
            self.model_name,
            "stage",
            {**entry, "challenger_sha256": rollout.sha256},
            wall={"challenger": rollout.ref},
        )
        if stage in ("shadow", "canary"):
            self.phase_marks.append((now_min, stage, rollout.ref))

    def _canary_tick(self, rollout: _Rollout, now_min: int) -> bool:
        """Whether the challenger decides this tick: ``canary_share`` of the ticks, spread
        evenly from the rollout's seeded phase (never more than the share plus one tick)."""
        share = self.settings.rollout.canary_share
        i = rollout.canary_ticks
        rollout.canary_ticks += 1
        mine = math.floor((i + 1) * share + rollout.phase) > math.floor(i * share + rollout.phase)
        if mine:
            rollout.canary_applied += 1
            self.applied_by[now_min] = rollout.ident
        return mine

    def _score(self, now_min: int) -> None:
        """Score every tick whose plan window has passed; feed the test per block."""
        lo, hi = self.window
        q = self.quantile
        while self.pending and self.pending[0].minute + hi <= now_min:
            item = self.pending.popleft()
            a, b = item.minute + lo, item.minute + hi
            if a >= len(self.minutes) or any(self.minute_gap[a:b]):
                continue
            need = max(self.minutes[a:b]) / self.pod_rate
            rollout = self.rollout
            if item.challenger_pods is None or rollout is None or item.rollout != rollout.ident:
                continue
            loss_a = _pinball(need, item.champion_pods, q)
            loss_b = _pinball(need, item.challenger_pods, q)
            block = int(self.settings.rollout.block_min)
            if item.minute >= rollout.block_start + block:
                self._close_block(rollout, now_min)
                rollout.block_start = item.minute
            rollout.block_loss_diff += loss_a - loss_b
            rollout.block_need += need
        rollout = self.rollout
        if rollout is not None:
            self._advance(rollout, now_min)

    def _close_block(self, rollout: _Rollout, now_min: int) -> None:
        if rollout.block_need <= 0:
            return
        verdict = rollout.test.add(rollout.block_loss_diff / rollout.block_need)
        rollout.block_loss_diff = rollout.block_need = 0.0
        if verdict == "worse":
            self._roll_back(now_min, self._test_text(rollout))
        elif verdict == "better":
            self._better(rollout, now_min)

    def _better(self, rollout: _Rollout, now_min: int) -> None:
        s = self.settings.rollout
        if rollout.stage == "canary" and rollout.canary_from_min is not None:
            if now_min - rollout.canary_from_min >= s.canary_min:
                self._promote(now_min)

    def _advance(self, rollout: _Rollout, now_min: int) -> None:
        s = self.settings.rollout
        if self.rollout is not rollout:
            return
        if (
            rollout.stage == "shadow"
            and now_min - rollout.arrived_min >= s.shadow_min
            and rollout.test.n >= rollout.test.min_samples
        ):
            rollout.canary_from_min = now_min
            self._stage(rollout, "canary", now_min, share=s.canary_share)
        elif rollout.stage == "canary" and rollout.test.verdict == "better":
            self._better(rollout, now_min)
        if self.rollout is rollout and now_min - rollout.arrived_min >= s.evaluation_window_min:
            self._roll_back(now_min, "no verdict within the evaluation window; "
                            + self._test_text(rollout))  # fmt: skip

    def _test_text(self, rollout: _Rollout) -> str:
        t = rollout.test
        return f"sequential test: {t.n} blocks, mean gain {t.mean:+.4f}, p={t.p_value:.3g}"

    def _promote(self, now_min: int) -> None:
        rollout = self.rollout
        assert rollout is not None
        self.retrainer.promote(rollout.ref)
        self.promotions += 1
        self._stage(rollout, "promoted", now_min, reason=self._test_text(rollout))
        self.log.book(
            self.model_name,
            "promotion",
            {"t_min": now_min, "champion_sha256": rollout.sha256,
             "previous_sha256": self.champion_sha256},
            wall={"champion": rollout.ref, "previous": self.champion_ref},
        )  # fmt: skip
        self.champion = rollout.policy
        self.champion_ref, self.champion_sha256 = rollout.ref, rollout.sha256
        self.reference = rollout.reference
        self.drift_monitor = self._drift_monitor(rollout.reference)
        self.drifting = False
        self.quality = ForecastQuality(self.settings.quality.window_rows, self.scale)
        self.forecasts.clear()
        self.rollout = None
        self.last_retrain_min = now_min
        self.phase_marks.append((now_min, "champion", rollout.ref))

    def _roll_back(self, now_min: int, reason: str) -> None:
        rollout = self.rollout
        if rollout is None:
            return
        self.retrainer.roll_back(rollout.ref)
        self.rollbacks += 1
        self._stage(rollout, "rolled back", now_min, reason=reason)
        self.log.book(
            self.model_name,
            "rollback",
            {"t_min": now_min, "reason": reason, "challenger_sha256": rollout.sha256,
             "champion_sha256": self.champion_sha256},
            wall={"challenger": rollout.ref, "champion": self.champion_ref},
        )  # fmt: skip
        self.rollout = None
        self.phase_marks.append((now_min, "champion", self.champion_ref))

    # ------------------------------------------------------------------ report
    def _iso(self, minute: int) -> str:
        return (self.ctx.start + timedelta(minutes=minute)).isoformat()

    def report(self) -> dict[str, Any]:
        """This model's block of the summary's ``lifecycle`` (see the module)."""
        shares = [r.canary_applied / r.canary_ticks for r in self.rollouts if r.canary_ticks]
        return {
            "name": self.model_name,
            "champion": self.champion_ref,
            "drift_detections": list(self.detections),
            "retrains": list(self.retrains),
            "rollouts": [
                {
                    "challenger": r.ref,
                    "trigger": r.trigger,
                    "stages": list(r.stages),
                    "canary_ticks": r.canary_ticks,
                    "challenger_ticks": r.canary_applied,
                    "test": {
                        "blocks": r.test.n,
                        "mean_gain": _finite(r.test.mean),
                        "p_value": r.test.p_value,
                    },
                    "charged_minutes": r.charged_minutes,
                }
                for r in self.rollouts
            ],
            "promotions": self.promotions,
            "rollbacks": self.rollbacks,
            "max_challenger_share": round(max(shares), 6) if shares else 0.0,
        }


def _finite(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def _pinball(need: float, target: float, level: float) -> float:
    """Pinball loss of a pod target against the pods needed (``level``: the quantile)."""
    diff = need - target
    return max(level * diff, (level - 1.0) * diff)


def _combined(champion: Decision, challenger: Decision, use_challenger: bool) -> Decision:
    """The decision applied, with both models' records marked (role, applied)."""
    applied, other = (challenger, champion) if use_challenger else (champion, challenger)
    records = tuple(
        {**r, "role": role, "applied": flag}
        for decision, role, flag in (
            (champion, "champion", not use_challenger),
            (challenger, "challenger", use_challenger),
        )
        for r in decision.records
    )
    del other
    return Decision(
        desired_nodes=applied.desired_nodes,
        reasons=applied.reasons,
        desired_by_az=applied.desired_by_az,
        records=records,
    )


def phase_windows(marks: list[tuple[int, str, str]], end_min: int) -> list[dict[str, Any]]:
    """``[(minute, stage, model)]`` marks → phases with their minute ranges."""
    out = []
    for i, (start, stage, model) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else end_min
        if stop > start:
            out.append({"stage": stage, "model": model, "from_min": start, "to_min": stop})
    return out
