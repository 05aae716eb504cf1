"""A seeded generator of spot availability calibrated on real availability traces.

:func:`fit_availability` turns a set of :class:`~sim.market.availability.AvailabilitySeries`
(e.g. the dev Can't-Be-Late traces) into an :class:`AvailabilityModel`;
:meth:`AvailabilityModel.sample` draws a new series from it. :func:`spell_statistics`
measures a series (share of time available, drops per day, mean spell lengths), to
compare generated and real ones. Times are seconds from ``t = 0``.

The model
---------
An **alternating renewal process** (up spell, down spell, up spell, ...: independent
spell lengths) whose spell-length distributions are those of one real trace, the
trace's **regime**:

1. ``sample`` first draws a regime uniformly (one per fitted trace), so a generated AZ
   behaves like one real AZ. The dev traces differ too much to pool: the share of time
   available runs from 17% to 94% and the drops from 2 to 20 a day; a pooled
   distribution would be an "average AZ" that no trace resembles.
2. Per regime and state, the spell lengths are the trace's own (the **empirical**
   distribution), weighted by the Kaplan-Meier estimator: a trace's first and last spells
   are cut by the observation window (right-censored), so they only say that the spell
   lasted at least that long (their mass goes to the longer spells; mass left beyond the
   longest spell stays on it, a lower bound). A lognormal fit was rejected: on the
   195-s traces the spells sit on the ~10.5-minute probing lattice (3, 6-7, 10, 13... ticks;
   Kolmogorov-Smirnov distance 0.11-0.22 on 93-343 spells), and on the 6-7-day preemption
   traces the fitted mean overshoots the observed mean by up to 77% (04-19 us-east-1d's up
   spells), which would bias the share of time available.
3. Each drawn length is multiplied by ``exp(h z - h^2 / 2)``, ``z ~ N(0, 1)``: a
   log-normal kernel (a smoothed bootstrap) that makes new lengths between the observed
   ones while keeping the mean spell length, hence the share of time available and the
   drops per day. ``h`` is Silverman's rule of thumb on the log lengths of that state's
   spells (``0.9 min(sd, IQR / 1.34) n^(-1/5)``, 0 with fewer than 2 spells).
4. The series starts in equilibrium: available with probability
   ``mean_up / (mean_up + mean_down)``, then the rest of a length-biased spell (a spell
   drawn with probability proportional to its length, jittered as above, times a
   uniform fraction), as when a real trace is cut at a random offset.

Successive spells are independent: on the dev traces the rank correlation between a
spell and the next one of the same state is small (-0.40 to +0.30, mostly +0.1 to
+0.2), so this leaves out a little clustering of flapping. A regime with only up (down)
spells stays up (down) for ever.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sim.market.availability import AvailabilitySeries
from sim.market.steps import check_duration, frozen_array

SILVERMAN_FACTOR = 0.9
"""Silverman's rule of thumb: ``h = 0.9 min(sd, IQR / 1.34) n^(-1/5)``."""


@dataclass(frozen=True, slots=True, eq=False)
class SpellLengths:
    """The distribution of one state's spell lengths in one regime.

    Attributes
    ----------
    lengths_s
        float64, sorted, > 0: the distinct observed spell lengths (seconds).
    weights
        float64, same length, sum 1: Kaplan-Meier probability of each length.
    bandwidth
        Standard deviation of the log-normal kernel (dimensionless, on log length).
    """

    lengths_s: np.ndarray
    weights: np.ndarray
    bandwidth: float
    _cumulative: np.ndarray = field(init=False, repr=False)
    _cumulative_biased: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lengths = frozen_array(self.lengths_s, np.float64)
        weights = frozen_array(self.weights, np.float64)
        if lengths.shape != weights.shape or not np.all(lengths > 0):
            raise ValueError("lengths_s must be > 0 and as long as weights")
        if not (np.all(weights >= 0) and math.isclose(float(weights.sum()), 1.0, abs_tol=1e-9)):
            raise ValueError("weights must be >= 0 and sum to 1")
        if not (math.isfinite(self.bandwidth) and self.bandwidth >= 0):
            raise ValueError(f"bandwidth(={self.bandwidth}) must be finite and >= 0")
        object.__setattr__(self, "lengths_s", lengths)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "_cumulative", np.cumsum(weights))
        object.__setattr__(self, "_cumulative_biased", np.cumsum(weights * lengths))

    @property
    def mean_s(self) -> float:
        """Mean spell length (seconds); the kernel keeps it."""
        return float(np.dot(self.weights, self.lengths_s))

    def draw_s(self, rng: np.random.Generator, *, length_biased: bool = False) -> float:
        """One spell length (seconds); ``length_biased``: with probability proportional to
        its length (the spell a random instant falls in)."""
        cumulative = self._cumulative_biased if length_biased else self._cumulative
        k = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        length = float(self.lengths_s[min(k, len(self.lengths_s) - 1)])
        h = self.bandwidth
        # length-biasing the kernel exp(h z - h^2/2) shifts z by h: exp(h z + h^2/2)
        shift = h * h / 2.0 if length_biased else -h * h / 2.0
        return length * math.exp(h * float(rng.standard_normal()) + shift)


@dataclass(frozen=True, slots=True)
class AvailabilityRegime:
    """The spell lengths of one fitted trace. ``up`` / ``down`` is None when the trace has
    no spell in that state."""

    source: str
    up: SpellLengths | None
    down: SpellLengths | None

    @property
    def up_share(self) -> float:
        """Long-run share of time available (0..1)."""
        if self.down is None:
            return 1.0
        if self.up is None:
            return 0.0
        return self.up.mean_s / (self.up.mean_s + self.down.mean_s)


@dataclass(frozen=True, slots=True)
class AvailabilityModel:
    """Regimes fitted by :func:`fit_availability` (see the module for the model)."""

    regimes: tuple[AvailabilityRegime, ...]

    def __post_init__(self) -> None:
        if not self.regimes:
            raise ValueError("an AvailabilityModel needs at least one regime")

    @property
    def sources(self) -> tuple[str, ...]:
        """Where each regime's trace came from (``AvailabilitySeries.source``)."""
        return tuple(r.source for r in self.regimes)

    def sample(self, duration_s: float, rng: np.random.Generator) -> AvailabilitySeries:
        """A new availability series over ``[0, duration_s]`` (seconds) drawn with ``rng``
        only (the same generator state gives the same series): a regime, the state at
        ``t = 0`` and the spells until ``duration_s``."""
        check_duration(duration_s)
        regime = self.regimes[int(rng.integers(len(self.regimes)))]
        source = f"generated:{regime.source}"
        up = bool(rng.random() < regime.up_share)
        current = regime.up if up else regime.down
        other = regime.down if up else regime.up
        if current is None or other is None:  # a one-state regime
            return AvailabilitySeries(np.array([0.0]), np.array([up]), source)
        times, states = [0.0], [up]
        t = rng.random() * current.draw_s(rng, length_biased=True)
        while t < duration_s:
            up = not up
            times.append(t)
            states.append(up)
            t += (regime.up if up else regime.down).draw_s(rng)  # type: ignore[union-attr]
        return AvailabilitySeries(np.array(times), np.array(states), source)


def fit_availability(
    traces: Sequence[AvailabilitySeries], observed_s: Sequence[float]
) -> AvailabilityModel:
    """Fit one regime per trace (see the module).

    Parameters
    ----------
    traces
        Real availability series, each read from ``t = 0`` (the start of observation).
    observed_s
        Seconds each trace covers (``observed_s[i]`` >= its last change): its last
        spell is cut there (censored), as its first is at ``t = 0``.
    """
    if len(traces) != len(observed_s):
        raise ValueError(f"{len(traces)} traces but {len(observed_s)} observed_s")
    if not traces:
        raise ValueError("fit_availability needs at least one trace")
    return AvailabilityModel(
        tuple(_regime(series, float(end)) for series, end in zip(traces, observed_s, strict=True))
    )


def _regime(series: AvailabilitySeries, observed_s: float) -> AvailabilityRegime:
    """The trace's spells by state, the first and last censored."""
    if not observed_s > float(series.times_s[-1]):
        raise ValueError(
            f"observed_s(={observed_s}) of {series.source} must be after its last change "
            f"({float(series.times_s[-1])} s)"
        )
    lengths = np.diff(np.append(series.times_s, observed_s))
    censored = np.zeros(len(lengths), dtype=bool)
    censored[[0, -1]] = True
    by_state = [
        _spell_lengths(lengths[series.available == state], censored[series.available == state])
        for state in (True, False)
    ]
    return AvailabilityRegime(series.source, by_state[0], by_state[1])


def _spell_lengths(lengths_s: np.ndarray, censored: np.ndarray) -> SpellLengths | None:
    """Kaplan-Meier weights of the distinct lengths and the kernel bandwidth."""
    if lengths_s.size == 0:
        return None
    support, weights = kaplan_meier(lengths_s, censored)
    return SpellLengths(support, weights, silverman_bandwidth(np.log(lengths_s)))


def kaplan_meier(lengths_s: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier probability of each distinct length in ``lengths_s`` (> 0; ``censored``:
    the spell lasted at least that long). The survival left after the longest length (when
    it is censored) is put on it. Returns ``(distinct lengths, probabilities)``."""
    support = np.unique(lengths_s)
    weights = np.zeros(len(support))
    survival = 1.0
    for i, length in enumerate(support):
        at_risk = int(np.sum(lengths_s >= length))
        ended = int(np.sum((lengths_s == length) & ~censored))
        weights[i] = survival * ended / at_risk
        survival -= weights[i]
    weights[-1] += survival
    return support, weights


def silverman_bandwidth(values: np.ndarray) -> float:
    """Silverman's rule of thumb for a Gaussian kernel on ``values`` (0 if fewer than 2 or
    no spread)."""
    if values.size < 2:
        return 0.0
    sd = float(np.std(values, ddof=1))
    q75, q25 = np.percentile(values, [75, 25])
    spread = min(sd, float(q75 - q25) / 1.34) or sd
    return SILVERMAN_FACTOR * spread * values.size ** (-0.2)


@dataclass(frozen=True, slots=True)
class SpellStatistics:
    """What :func:`spell_statistics` measures, pooled over several series.

    Attributes
    ----------
    observed_s
        Total time observed (seconds).
    up_share
        Share of that time available (0..1).
    drops_per_day
        Changes from available to unavailable per 86,400 s observed.
    mean_up_s, mean_down_s
        Time in the state / number of spells in it (seconds; a spell cut by the end of
        a window counts as one; NaN if none).
    """

    observed_s: float
    up_share: float
    drops_per_day: float
    mean_up_s: float
    mean_down_s: float


def spell_statistics(
    series: Sequence[AvailabilitySeries], durations_s: Sequence[float]
) -> SpellStatistics:
    """Share available, drops per day and mean spell lengths of ``series[i]`` on
    ``[0, durations_s[i]]`` (seconds), pooled over the series."""
    if len(series) != len(durations_s) or not series:
        raise ValueError("spell_statistics needs as many durations_s as series (>= 1)")
    up_s = down_s = 0.0
    n_up = n_down = drops = 0
    for one, duration_s in zip(series, durations_s, strict=True):
        check_duration(duration_s)
        keep = one.times_s < duration_s
        times, states = one.times_s[keep], one.available[keep]
        lengths = np.diff(np.append(times, duration_s))
        drops += int(np.sum(states[:-1] & ~states[1:]))
        up_s += float(lengths[states].sum())
        down_s += float(lengths[~states].sum())
        n_up += int(states.sum())
        n_down += int((~states).sum())
    observed_s = float(sum(durations_s))
    return SpellStatistics(
        observed_s=observed_s,
        up_share=up_s / observed_s,
        drops_per_day=drops * 86400.0 / observed_s,
        mean_up_s=up_s / n_up if n_up else math.nan,
        mean_down_s=down_s / n_down if n_down else math.nan,
    )
