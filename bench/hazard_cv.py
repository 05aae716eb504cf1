"""The spot interruption hazard's window, chosen by leave-one-trace-out cross-validation:
``python -m bench.hazard_cv [--json]``.

The hazard (:mod:`sim.market.hazard`) counts an AZ's drops and up-minutes over the last
``W`` minutes and turns them into P(>= 1 drop within the next
:data:`~sim.market.hazard.HAZARD_HORIZON_MIN` up-minutes) through a Gamma prior fitted by
empirical Bayes. ``W`` is chosen among :data:`~sim.market.hazard.HAZARD_WINDOWS_MIN` on
the 16 dev availability and preemption traces the cost agent trains on
(:func:`agents.cost.env.training_observations`, each over its whole length, sampled at
minute ticks), on availability alone:

- for each held-out trace and each ``W``, the prior is fitted on the other 15 traces
  (:func:`~sim.market.hazard.fit_drop_rate_prior`);
- the held-out trace is replayed from its first tick with no history
  (:func:`~sim.market.hazard.hazard_series`), and at every tick where the AZ is up and
  the next ``h`` = 30 ticks are in the trace, the probability is scored against the
  event "the AZ is unavailable at one of the next 30 ticks" (>= 1 drop within 30
  minutes: while the AZ stays up, its up-time is the wall time, so this is the event the
  formula predicts) by the Bernoulli log-likelihood ``y log p + (1 - y) log(1 - p)``;
- the trace's score is the mean over its scored ticks; ``W``'s score the mean (± sd)
  over the 16 held-out traces. The best mean wins.

Baseline: a constant drop rate (total drops / total up-hours of the other 15 traces),
``p = 1 - exp(-rate h)`` at every tick, scored the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import fmean, stdev

import numpy as np

from agents.cost.env import training_observations
from sim.market.availability import AvailabilitySeries
from sim.market.hazard import (
    HAZARD_HORIZON_MIN,
    HAZARD_WINDOW_MIN,
    HAZARD_WINDOWS_MIN,
    DropRatePrior,
    fit_drop_rate_prior,
    hazard_series,
    observed_minutes,
)


@dataclass(frozen=True, slots=True)
class Trace:
    """One dev trace as the cross-validation sees it."""

    name: str
    series: AvailabilitySeries
    duration_s: float
    minutes: np.ndarray  # bool (n_ticks,): available at each minute tick


@dataclass(frozen=True, slots=True)
class WindowScore:
    """One window's cross-validation: the held-out mean log-likelihood of each trace
    (nats per scored tick), the prior fitted on all traces."""

    window_min: int
    per_trace: tuple[float, ...]
    shape: float
    rate_up_hours: float

    @property
    def mean(self) -> float:
        return fmean(self.per_trace)

    @property
    def sd(self) -> float:
        return stdev(self.per_trace)


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Every window's score, the baseline's, and the pick."""

    names: tuple[str, ...]
    scored_ticks: tuple[int, ...]
    windows: tuple[WindowScore, ...]
    baseline: tuple[float, ...]
    baseline_rate_per_up_hour: float
    chosen_window_min: int


def scored_events(minutes: np.ndarray, horizon_min: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ticks, events)``: the ticks where the AZ is up and the next ``horizon_min``
    ticks are observed, and whether the AZ is unavailable at one of them."""
    n = minutes.size
    down_before = np.concatenate(([0], np.cumsum(~minutes)))  # down ticks among 0..i-1
    ticks = np.flatnonzero(minutes[: max(n - horizon_min, 0)])
    events = down_before[ticks + horizon_min + 1] - down_before[ticks + 1] > 0
    return ticks, events


def mean_log_likelihood(p: np.ndarray, events: np.ndarray) -> float:
    """Mean Bernoulli log-likelihood (nats) of ``events`` under probabilities ``p``."""
    return float(np.mean(np.where(events, np.log(p), np.log1p(-p))))


def fit_on(traces: Sequence[Trace], window_min: int) -> DropRatePrior:
    """The prior fitted on ``traces`` over ``window_min``-minute windows."""
    return fit_drop_rate_prior(
        [t.series for t in traces], window_min, durations_s=[t.duration_s for t in traces]
    )


def constant_rate(traces: Sequence[Trace]) -> float:
    """Drops per up-hour pooled over ``traces`` (same minutes as the hazard's)."""
    drops = sum(int(np.sum(t.minutes[:-1] & ~t.minutes[1:])) for t in traces)
    up_hours = sum(int(np.sum(t.minutes[:-1])) for t in traces) / 60.0
    return drops / up_hours


def held_out_score(prior: DropRatePrior, trace: Trace, horizon_min: int) -> float:
    """The held-out trace's mean log-likelihood under the hazard with ``prior``."""
    ticks, events = scored_events(trace.minutes, horizon_min)
    p = hazard_series(prior, trace.minutes[:, None])[:, 0]
    return mean_log_likelihood(p[ticks], events)


def baseline_score(rate_per_up_hour: float, trace: Trace, horizon_min: int) -> float:
    """The held-out trace's mean log-likelihood under a constant rate."""
    ticks, events = scored_events(trace.minutes, horizon_min)
    p = np.full(ticks.size, -math.expm1(-rate_per_up_hour * horizon_min / 60.0))
    return mean_log_likelihood(p, events)


def cross_validate(
    traces: Sequence[Trace],
    windows: Sequence[int] = HAZARD_WINDOWS_MIN,
    horizon_min: int = HAZARD_HORIZON_MIN,
) -> CrossValidation:
    """Leave-one-trace-out over ``traces`` for every window (see the module)."""
    scores = []
    for window in windows:
        per_trace = []
        for i, held in enumerate(traces):
            others = [t for j, t in enumerate(traces) if j != i]
            per_trace.append(held_out_score(fit_on(others, window), held, horizon_min))
        whole = fit_on(traces, window)
        scores.append(WindowScore(window, tuple(per_trace), whole.shape, whole.rate_up_hours))
    baseline = tuple(
        baseline_score(constant_rate([t for t in traces if t is not held]), held, horizon_min)
        for held in traces
    )
    best = max(scores, key=lambda s: (s.mean, -s.window_min))
    return CrossValidation(
        names=tuple(t.name for t in traces),
        scored_ticks=tuple(scored_events(t.minutes, horizon_min)[0].size for t in traces),
        windows=tuple(scores),
        baseline=baseline,
        baseline_rate_per_up_hour=constant_rate(traces),
        chosen_window_min=best.window_min,
    )


def load_traces() -> list[Trace]:
    """The dev traces the cost agent trains on, each over its whole length."""
    return [
        Trace(name, series, duration_s, observed_minutes(series, duration_s))
        for name, series, duration_s in training_observations()
    ]


def print_report(cv: CrossValidation) -> None:
    n = len(cv.names)
    print(
        f"leave-one-trace-out over {n} dev traces ({sum(cv.scored_ticks):,} scored up-ticks), "
        f"horizon {HAZARD_HORIZON_MIN} min; mean held-out log-likelihood per scored tick "
        "(nats, higher is better), mean ± sd over traces"
    )
    base_mean, base_sd = fmean(cv.baseline), stdev(cv.baseline)
    chosen = next(s for s in cv.windows if s.window_min == cv.chosen_window_min)
    print(
        f"{'W (min)':>8} {'loglik':>20} {'vs constant':>20} {'vs chosen':>20} "
        f"{'a (all)':>9} {'b up-h':>9}"
    )
    for s in cv.windows:
        gain = [m - b for m, b in zip(s.per_trace, cv.baseline, strict=True)]
        versus = [m - c for m, c in zip(s.per_trace, chosen.per_trace, strict=True)]
        mark = "  <- chosen" if s is chosen else ""
        print(
            f"{s.window_min:>8} {s.mean:>10.5f} ± {s.sd:<7.5f} {fmean(gain):>+10.5f} ± "
            f"{stdev(gain):<7.5f} {fmean(versus):>+10.5f} ± {stdev(versus):<7.5f} "
            f"{s.shape:>9.4f} {s.rate_up_hours:>9.4f}{mark}"
        )
    print(
        f"{'constant':>8} {base_mean:>10.5f} ± {base_sd:<7.5f} (rate on all traces "
        f"{cv.baseline_rate_per_up_hour:.4f} drops/up-hour)"
    )
    print(
        f"chosen W = {chosen.window_min} min; fitted on all {n} traces: a = "
        f"{chosen.shape:.4f}, b = {chosen.rate_up_hours:.4f} up-hours (prior mean "
        f"{chosen.shape / chosen.rate_up_hours:.4f} drops/up-hour)"
    )
    if chosen.window_min != HAZARD_WINDOW_MIN:
        print(f"NOTE: sim.market.hazard.HAZARD_WINDOW_MIN is {HAZARD_WINDOW_MIN}, not the pick")
    print(f"\nper held-out trace (W = {chosen.window_min} vs constant):")
    for name, ticks, model, base in zip(
        cv.names, cv.scored_ticks, chosen.per_trace, cv.baseline, strict=True
    ):
        print(f"  {name:<58} {ticks:>7,} ticks {model:>9.5f} {base:>9.5f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hazard_cv", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    cv = cross_validate(load_traces())
    if args.json:
        out = asdict(cv)
        for row, score in zip(out["windows"], cv.windows, strict=True):
            row.update(mean=score.mean, sd=score.sd)
        print(json.dumps(out, indent=2))
    else:
        print_report(cv)
        print(f"\n({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
