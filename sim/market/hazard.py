"""A per-AZ spot interruption hazard from the recent availability history.

The cost agent sees one boolean per AZ per control tick (every 60 s): is spot capacity
on offer. From the last ``W`` minutes of those booleans this module gives, per AZ, the
probability of at least one **drop** (capacity going from available to unavailable)
within the next ``HAZARD_HORIZON_MIN`` up-minutes.

The model
---------
Drops are a Poisson process in *up time* with a rate ``lambda`` (drops per up-hour)
that differs between AZs and drifts over time. A priori ``lambda ~ Gamma(a, b)`` (shape
``a``, rate ``b`` in up-hours: mean ``a / b`` drops per up-hour). An AZ that showed ``d``
drops in ``u`` up-minutes over the last ``W`` minutes has the posterior
``Gamma(a + d, b + u / 60)``, and the posterior-predictive probability of at least one
drop within the next ``h`` up-hours is::

    1 - ((b + u/60) / (b + u/60 + h)) ** (a + d)

(one minus the negative-binomial probability of no drop). :func:`fit_drop_rate_prior`
fits ``(a, b)`` by empirical Bayes: it maximises the Poisson-Gamma (negative binomial)
marginal likelihood of ``(d, u)`` over the non-overlapping ``W``-minute windows of the
training traces. ``W`` (:data:`HAZARD_WINDOW_MIN`) was chosen by leave-one-trace-out
cross-validation (:mod:`bench.hazard_cv`), on availability alone.

Minutes, drops and up-minutes
-----------------------------
Availability is sampled at minute ticks ``0, 1, 2, ...`` (:func:`minute_availability`:
the state in force at each tick, as :meth:`AvailabilitySeries.available_at` gives it).
**Minute** ``k`` is the interval from tick ``k - 1`` to tick ``k``:

- it is an **up-minute** if the AZ was available at tick ``k - 1`` (it was exposed to a
  drop for that minute);
- it ends in a **drop** if the AZ was available at tick ``k - 1`` and is unavailable at
  tick ``k``: the drop is counted at the tick the AZ is first seen unavailable.

So a drop always falls in an up-minute (``d <= u`` in any window). Minute 0 (before the
first tick) is known only when the state before it is (``initial``); otherwise it is
neither an up-minute nor a drop, so before any tick ``d = u = 0`` (the prior alone) and
the first tick can never be a drop. After tick ``k`` the window is minutes
``k - W + 1 .. k`` (fewer at the start). :class:`DropHazard` (online, O(1) per tick per
AZ: a ring buffer of the last ``W`` minutes' integer flags and running counts) and
:func:`hazard_series` (batch, cumulative sums) count the same integers exactly and apply the
same formula, the online one in Python scalars (a per-tick update of a few AZs is ~40%
faster in the cost environment than numpy on 3-element arrays), so the probabilities agree
to the last bits (numpy's vectorised ``log1p``/``expm1`` against the C library's; tested to
1e-12 relative).

The probability is about up-time: while an AZ is unavailable it is the probability of a
drop within the first ``HAZARD_HORIZON_MIN`` minutes after capacity comes back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from sim.market.availability import AvailabilitySeries

HAZARD_HORIZON_MIN: int = 30
"""The hazard's horizon ``h``: P(>= 1 drop within the next 30 up-minutes)."""

HAZARD_WINDOWS_MIN: tuple[int, ...] = (60, 180, 360, 720, 1440)
"""The windows ``W`` (minutes) :mod:`bench.hazard_cv` chooses among."""

HAZARD_WINDOW_MIN: int = 360
"""The window ``W`` (minutes) of recent history the hazard counts drops and up-minutes
over, chosen by ``python -m bench.hazard_cv`` (leave-one-trace-out over the 16 dev
traces: the prior fitted on 15, the held-out trace's mean Bernoulli log-likelihood of
">= 1 drop within 30 min" at its up-ticks; mean ± sd over the 16 held-out traces, nats
per tick; paired differences against the constant-rate baseline and the pick)::

    W (min)   held-out loglik      vs constant          vs 360 min          a, b (all 16)
      60      -0.43167 ± 0.19876   +0.03880 ± 0.03616   -0.02470 ± 0.05316  0.3279, 0.7380
     180      -0.41224 ± 0.17464   +0.05823 ± 0.06475   -0.00527 ± 0.01998  0.3762, 0.7024
     360      -0.40697 ± 0.16245   +0.06350 ± 0.08055    0                  0.4361, 0.7668
     720      -0.42766 ± 0.17456   +0.04281 ± 0.08880   -0.02069 ± 0.03435  0.5129, 0.8585
    1440      -0.41702 ± 0.16731   +0.05345 ± 0.08819   -0.01005 ± 0.03122  0.6826, 1.2586
    constant  -0.47047 ± 0.21302   (0.3238 drops per up-hour pooled over all 16)

At 360 min, fitted on all 16 traces: ``a = 0.4361``, ``b = 0.7668`` up-hours (prior mean
0.569 drops per up-hour). The margins between windows are small beside their spread over
traces (180 min is within 0.005 nats)."""

MINUTE_S = 60.0
"""Seconds between two availability ticks."""

LOG_PARAMETER_BOUNDS = (math.log(1e-6), math.log(1e6))
"""Bounds of the optimiser on ``log a`` and ``log b``: with no over-dispersion between
windows the marginal likelihood keeps rising as ``a, b -> inf`` at fixed ``a / b`` (a
constant rate), so the fit stops at ``1e6``."""


def _check_window(window_min: object, name: str = "window_min") -> None:
    """ValueError unless ``window_min`` is an integer >= 1 (minutes)."""
    if isinstance(window_min, bool) or not isinstance(window_min, int | np.integer):
        raise ValueError(f"{name}(={window_min!r}) must be an integer >= 1")
    if window_min < 1:
        raise ValueError(f"{name}(={window_min}) must be an integer >= 1")


@dataclass(frozen=True, slots=True)
class DropRatePrior:
    """The Gamma prior on an AZ's drop rate and the window it is updated over.

    Attributes
    ----------
    shape
        ``a > 0`` (dimensionless).
    rate_up_hours
        ``b > 0`` in up-hours: the prior is worth ``b`` up-hours of history showing
        ``a`` drops; its mean is ``a / b`` drops per up-hour.
    window_min
        ``W``: the minutes of recent history the posterior is taken over (>= 1).
    """

    shape: float
    rate_up_hours: float
    window_min: int

    def __post_init__(self) -> None:
        for name in ("shape", "rate_up_hours"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"DropRatePrior.{name}(={value!r}) must be finite and > 0")
        _check_window(self.window_min, "DropRatePrior.window_min")

    @property
    def mean_drops_per_up_hour(self) -> float:
        """The prior mean rate ``a / b`` (drops per up-hour)."""
        return self.shape / self.rate_up_hours

    def drop_probability(
        self,
        drops: int | np.ndarray,
        up_minutes: int | np.ndarray,
        horizon_min: float = HAZARD_HORIZON_MIN,
    ) -> float | np.ndarray:
        """P(>= 1 drop within the next ``horizon_min`` up-minutes) after ``drops`` drops in
        ``up_minutes`` up-minutes: ``1 - (B / (B + h)) ** (a + d)`` with
        ``B = b + u / 60`` and ``h = horizon_min / 60`` (up-hours).

        ``drops`` and ``up_minutes`` are counts (>= 0; arrays broadcast together); a float
        for scalar input, else a float64 array of the broadcast shape.
        """
        d = np.asarray(drops)
        u = np.asarray(up_minutes)
        if np.any(d < 0) or np.any(u < 0):
            raise ValueError("drops and up_minutes must be >= 0")
        if not (math.isfinite(horizon_min) and horizon_min >= 0):
            raise ValueError(f"horizon_min(={horizon_min}) must be finite and >= 0")
        exposure = self.rate_up_hours + u / 60.0
        p = -np.expm1(-(self.shape + d) * np.log1p((horizon_min / 60.0) / exposure))
        return float(p) if p.ndim == 0 else p


def minute_availability(series: AvailabilitySeries, offset_s: float, n_minutes: int) -> np.ndarray:
    """Whether capacity is on offer at each minute tick ``offset_s + 60 k`` (s),
    ``k = 0 .. n_minutes - 1``: bool, shape ``(n_minutes,)``. A change exactly at a tick
    is seen at that tick (as :meth:`AvailabilitySeries.available_at`)."""
    if not math.isfinite(offset_s):
        raise ValueError(f"offset_s(={offset_s}) must be finite")
    if isinstance(n_minutes, bool) or not isinstance(n_minutes, int | np.integer) or n_minutes < 0:
        raise ValueError(f"n_minutes(={n_minutes!r}) must be an integer >= 0")
    return series.available_at_many(
        offset_s + np.arange(int(n_minutes), dtype=np.float64) * MINUTE_S
    )


def observed_minutes(series: AvailabilitySeries, duration_s: float | None = None) -> np.ndarray:
    """The minute ticks of a trace observed on ``[0, duration_s]`` (default: up to its last
    change, ``times_s[-1]``): :func:`minute_availability` from 0 for
    ``floor(duration_s / 60) + 1`` ticks."""
    end_s = float(series.times_s[-1]) if duration_s is None else float(duration_s)
    if not (math.isfinite(end_s) and end_s >= 0):
        raise ValueError(f"duration_s(={duration_s}) of {series.source} must be finite and >= 0")
    return minute_availability(series, 0.0, math.floor(end_s / MINUTE_S) + 1)


def _minute_flags(
    available: np.ndarray, initial: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per minute (axis -2): was it an up-minute, did it end in a drop (see the module)."""
    before = np.zeros_like(available[..., :1, :]) if initial is None else initial[..., None, :]
    previous = np.concatenate((before, available[..., :-1, :]), axis=-2)
    return previous, previous & ~available


def window_counts(
    available: np.ndarray, window_min: int, initial: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(drops, up_minutes)`` over the last ``window_min`` minutes after each tick.

    Parameters
    ----------
    available
        bool, shape ``(..., n_minutes, n_az)``: the state at each minute tick (axis -2 is
        time; any leading axes, e.g. environments).
    window_min
        ``W`` (>= 1).
    initial
        bool, shape ``(..., n_az)``: the state just before the first tick, or None (not
        known: the first minute is neither an up-minute nor a drop).

    Returns
    -------
    Two int64 arrays shaped like ``available``.
    """
    avail, init = _check_batch(available, initial)
    _check_window(window_min)
    up, dropped = _minute_flags(avail, init)
    n = avail.shape[-2]
    hi = np.arange(1, n + 1)
    lo = np.maximum(hi - int(window_min), 0)
    out = []
    for flags in (dropped, up):
        zero = np.zeros_like(flags[..., :1, :], dtype=np.int64)
        total = np.concatenate((zero, np.cumsum(flags, axis=-2, dtype=np.int64)), axis=-2)
        out.append(total[..., hi, :] - total[..., lo, :])
    return out[0], out[1]


def _check_batch(
    available: np.ndarray, initial: np.ndarray | Sequence[bool] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``available`` as bool ``(..., n_minutes, n_az)`` and ``initial`` as bool
    ``(..., n_az)`` (or None)."""
    avail = np.asarray(available)
    if avail.dtype != np.bool_ or avail.ndim < 2:
        raise ValueError(
            f"available must be a bool array (..., n_minutes, n_az), got {avail.dtype} "
            f"of shape {avail.shape}"
        )
    if initial is None:
        return avail, None
    init = np.asarray(initial)
    expected = avail.shape[:-2] + avail.shape[-1:]
    if init.dtype != np.bool_ or init.shape != expected:
        raise ValueError(
            f"initial must be a bool array of shape {expected} (..., n_az), got {init.dtype} "
            f"of shape {init.shape}"
        )
    return avail, init


def hazard_series(
    prior: DropRatePrior, available: np.ndarray, *, initial: np.ndarray | None = None
) -> np.ndarray:
    """The batch twin of :class:`DropHazard`: P(>= 1 drop within
    ``HAZARD_HORIZON_MIN`` up-minutes) after each tick, per AZ.

    ``available`` is bool ``(..., n_minutes, n_az)`` (axis -2 is time, e.g.
    ``(n_minutes, n_az)`` or ``(n_envs, n_minutes, n_az)``); ``initial`` bool
    ``(..., n_az)`` or None, as for :class:`DropHazard`. Returns float64 shaped like
    ``available``: entry ``[..., k, z]`` equals ``DropHazard.probabilities()[z]`` after
    the ``k + 1``-th update (cumulative sums, no loop over minutes).
    """
    drops, up_minutes = window_counts(available, prior.window_min, initial)
    return np.asarray(prior.drop_probability(drops, up_minutes), dtype=np.float64)


class DropHazard:
    """Online, per AZ: feed one bool per AZ per minute tick; read the probabilities.

    Parameters
    ----------
    prior
        The drop-rate prior and its window ``W`` (:func:`agents.cost.env.training_prior`).
    n_az
        Number of AZs (>= 1).
    initial
        The state of each AZ just before the first tick, if known (then a first tick
        that is False after an initial True is a drop); None: no history, the prior alone
        until the second tick.

    Each :meth:`update` costs O(1) per AZ: a ring buffer holds the last ``W`` minutes'
    up-minute and drop flags (integers) beside their running sums.
    """

    def __init__(
        self, prior: DropRatePrior, n_az: int, initial: Sequence[bool] | None = None
    ) -> None:
        if isinstance(n_az, bool) or not isinstance(n_az, int | np.integer) or n_az < 1:
            raise ValueError(f"n_az(={n_az!r}) must be an integer >= 1")
        self.prior = prior
        self.n_az = int(n_az)
        window = prior.window_min
        # plain Python integers: a per-tick update of a few AZs is several times faster
        # than numpy on arrays this small (the cost environment updates every step)
        self._up_flags = [[0] * self.n_az for _ in range(window)]
        self._drop_flags = [[0] * self.n_az for _ in range(window)]
        self._slot = 0
        self._up_minutes = [0] * self.n_az
        self._drops = [0] * self.n_az
        self._last: list[bool] | None = None
        if initial is not None:
            self._last = self._states(initial, "initial")
        self._h_up_hours = HAZARD_HORIZON_MIN / 60.0

    def _states(self, values: Sequence[bool], name: str) -> list[bool]:
        states = list(values)
        if len(states) != self.n_az or not all(isinstance(v, bool | np.bool_) for v in states):
            raise ValueError(f"{name} must be {self.n_az} bools (one per AZ), got {values!r}")
        return [bool(v) for v in states]

    def update(self, available: Sequence[bool]) -> None:
        """Take in one minute tick: whether each AZ's spot capacity is on offer now."""
        now = self._states(available, "available")
        slot = self._slot
        up_row, drop_row = self._up_flags[slot], self._drop_flags[slot]
        last, ups, drops = self._last, self._up_minutes, self._drops
        for j in range(self.n_az):
            up = 0 if last is None else int(last[j])
            dropped = 1 if (last is not None and last[j] and not now[j]) else 0
            ups[j] += up - up_row[j]
            drops[j] += dropped - drop_row[j]
            up_row[j] = up
            drop_row[j] = dropped
        self._slot = (slot + 1) % self.prior.window_min
        self._last = now

    def counts(self) -> tuple[list[int], list[int]]:
        """``(drops, up_minutes)`` per AZ over the last ``W`` minutes."""
        return list(self._drops), list(self._up_minutes)

    def probabilities(self) -> list[float]:
        """Per AZ, P(>= 1 drop within ``HAZARD_HORIZON_MIN`` up-minutes) (the arithmetic
        of :meth:`DropRatePrior.drop_probability`, in scalars)."""
        a, b, h = self.prior.shape, self.prior.rate_up_hours, self._h_up_hours
        return [
            -math.expm1(-(a + d) * math.log1p(h / (b + u / 60.0)))
            for d, u in zip(self._drops, self._up_minutes, strict=True)
        ]


def _window_totals(minutes: np.ndarray, window_min: int) -> tuple[np.ndarray, np.ndarray]:
    """``(drops, up_minutes)`` of each non-overlapping ``window_min``-minute window of a
    trace's minute ticks (minutes 1, 2, ...: minute 0 has no history; the last window may
    be shorter)."""
    up, dropped = _minute_flags(minutes[:, None], None)
    up, dropped = up[1:, 0].astype(np.int64), dropped[1:, 0].astype(np.int64)
    starts = np.arange(0, up.size, window_min)
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.add.reduceat(dropped, starts), np.add.reduceat(up, starts)


def _negative_log_marginal(
    theta: np.ndarray, drops: np.ndarray, up_hours: np.ndarray, weight: np.ndarray
) -> tuple[float, np.ndarray]:
    """Minus the Poisson-Gamma marginal log-likelihood of the windows (without the terms
    free of ``a`` and ``b``) and its gradient in ``(log a, log b)``."""
    a, b = math.exp(theta[0]), math.exp(theta[1])
    log_ratio = np.log(b) - np.log(b + up_hours)
    loglik = special.gammaln(a + drops) - special.gammaln(a) + a * log_ratio
    loglik -= drops * np.log(b + up_hours)
    d_a = special.digamma(a + drops) - special.digamma(a) + log_ratio
    d_b = a / b - (a + drops) / (b + up_hours)
    grad = np.array([a * np.dot(weight, d_a), b * np.dot(weight, d_b)])
    return -float(np.dot(weight, loglik)), -grad


def fit_drop_rate_prior(
    traces: Sequence[AvailabilitySeries],
    window_min: int = HAZARD_WINDOW_MIN,
    *,
    durations_s: Sequence[float] | None = None,
) -> DropRatePrior:
    """The empirical-Bayes Gamma prior of the drop rate over ``window_min``-minute windows.

    Parameters
    ----------
    traces
        Availability series, each read from ``t = 0`` and sampled at minute ticks
        (:func:`observed_minutes`).
    window_min
        ``W`` (>= 1): each trace is cut into non-overlapping ``W``-minute windows (the
        last may be shorter); a window with ``d`` drops in ``u`` up-minutes contributes
        its negative-binomial marginal likelihood; windows with ``u = 0`` contribute
        nothing.
    durations_s
        Seconds each trace covers (default: up to its last change, ``times_s[-1]``).

    Raises
    ------
    ValueError
        No trace, a bad ``window_min`` or ``durations_s``, no up-minute in any trace (all
        unavailable throughout, or shorter than a minute), or no drop in any trace (a
        rate of zero: no prior to fit).
    """
    if not traces:
        raise ValueError("fit_drop_rate_prior needs at least one availability trace, got none")
    _check_window(window_min)
    if durations_s is not None and len(durations_s) != len(traces):
        raise ValueError(f"{len(traces)} traces but {len(durations_s)} durations_s")
    ends: Sequence[float | None] = [None] * len(traces) if durations_s is None else durations_s
    per_trace = [
        _window_totals(observed_minutes(series, end), int(window_min))
        for series, end in zip(traces, ends, strict=True)
    ]
    drops = np.concatenate([d for d, _ in per_trace])
    up = np.concatenate([u for _, u in per_trace])
    keep = up > 0
    if not np.any(keep):
        raise ValueError(
            f"no up-minute in any of the {len(traces)} traces (each is unavailable "
            "throughout or shorter than a minute): nothing to fit a drop rate on"
        )
    if not np.any(drops[keep] > 0):
        raise ValueError(
            f"no drop (available -> unavailable) in any of the {len(traces)} traces: "
            "the drop rate's prior cannot be fitted"
        )
    pairs, weight = np.unique(np.stack((drops[keep], up[keep]), axis=1), axis=0, return_counts=True)
    pair_drops = pairs[:, 0].astype(np.float64)
    pair_hours = pairs[:, 1] / 60.0
    mean_rate = float(np.dot(weight, pair_drops) / np.dot(weight, pair_hours))
    start = np.array([0.0, -math.log(mean_rate)])  # a = 1, a / b = the pooled rate
    result = optimize.minimize(
        _negative_log_marginal,
        start,
        args=(pair_drops, pair_hours, weight.astype(np.float64)),
        jac=True,
        method="L-BFGS-B",
        bounds=[LOG_PARAMETER_BOUNDS, LOG_PARAMETER_BOUNDS],
    )
    if not result.success:
        raise RuntimeError(f"the drop-rate prior's fit did not converge: {result.message}")
    return DropRatePrior(
        shape=math.exp(float(result.x[0])),
        rate_up_hours=math.exp(float(result.x[1])),
        window_min=int(window_min),
    )
