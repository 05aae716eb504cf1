"""The seeded spot price model: a mean-reverting step process calibrated on a history.

:func:`calibrate` reads the statistics of one instance type's price history (change
rate, log-step spread, mean spot / on-demand ratio; :class:`SpotCalibration`);
:func:`modelled_spot_prices` draws one price step function per pool from them (see
that function for the model). Prices are US dollars per hour; times are seconds from
``t = 0``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.market.prices import PriceHistory, PriceSeries, collapsed_series, load_history
from sim.market.steps import check_duration
from sim.scenario import ModelledSpotPrices

MIN_CALIBRATION_ROWS = 10
"""A type with fewer history rows is calibrated on the type with the most rows."""

MEAN_REVERSION_PER_STEP = 0.95
"""AR(1) coefficient of the log price per change event (modelled prices)."""

MIN_PRICE_FRACTION = 1e-6
"""Modelled prices are floored at this fraction of on-demand (keeps them > 0)."""


@dataclass(frozen=True, slots=True)
class SpotCalibration:
    """Statistics of a price history that drive :func:`modelled_spot_prices`.

    Attributes
    ----------
    instance_type
        The type whose history was used.
    change_rate_per_hour
        Change events per hour in one AZ (pooled over AZs: events / observed hours).
    log_step_sd
        Standard deviation of ``log(p[k+1] / p[k])`` between consecutive records.
    mean_ratio
        Mean of spot price / on-demand price over all records of the type.
    """

    instance_type: str
    change_rate_per_hour: float
    log_step_sd: float
    mean_ratio: float


def calibrate(
    history_path: Path, instance_type: str, on_demand: dict[str, float]
) -> SpotCalibration:
    """Calibrate the price model on ``instance_type`` in the CSV at ``history_path``.

    If the type has fewer than :data:`MIN_CALIBRATION_ROWS` rows, the type with the
    most rows that has an on-demand price is used instead.

    Parameters
    ----------
    history_path
        Spot price history CSV.
    instance_type
        Preferred calibration type.
    on_demand
        On-demand USD/hour per instance type (for the spot/on-demand ratio).
    """
    history = load_history(Path(history_path), "pricing.spot_prices.calibrate_on")
    return _calibrate(history, instance_type, on_demand)


def modelled_spot_prices(
    cfg: ModelledSpotPrices,
    *,
    base_dir: Path,
    pools: list[tuple[str, str]],
    on_demand: dict[str, float],
    duration_s: float,
    rng: np.random.Generator,
) -> dict[tuple[str, str], PriceSeries]:
    """Seeded synthetic spot prices calibrated on a price history CSV.

    Parameters
    ----------
    cfg
        ``pricing.spot_prices`` (``kind: model``); ``cfg.calibrate_on`` is relative
        to ``base_dir``.
    base_dir
        Directory relative paths are resolved against.
    pools
        ``(instance_type, scenario_az)`` pairs that need a spot price.
    on_demand
        On-demand USD/hour per instance type. Must hold every pool type and the
        calibration type (pass the whole regional catalogue).
    duration_s
        Run length in seconds; change events are drawn on ``(0, duration_s)``.
    rng
        The spot-market generator. One integer is drawn from it; each pool then gets
        its own child stream keyed by ``"type|az"``, so adding a pool does not change
        the prices of the others.

    Returns
    -------
    dict[tuple[str, str], PriceSeries]
        ``(instance_type, scenario_az)`` -> price in USD/hour.

    Notes
    -----
    The model, per pool: calibrate (:class:`SpotCalibration`) on ``cfg.instance_type``
    or the pool's type (falling back to the type with most rows if it has fewer than
    :data:`MIN_CALIBRATION_ROWS`); target price ``m = mean_ratio * on_demand[type]``.
    Change times are a Poisson process with the calibrated rate. The log price
    follows ``x[k+1] = log m + phi (x[k] - log m) + sd * N(0, 1)`` at each change,
    with ``phi = MEAN_REVERSION_PER_STEP`` and ``sd = log_step_sd``; ``x[0]`` is drawn
    from the stationary distribution. Prices are clipped to
    ``[MIN_PRICE_FRACTION * on_demand, on_demand]``, so they stay in (0, on-demand].
    """
    check_duration(duration_s)
    history = load_history(Path(base_dir) / cfg.calibrate_on, "pricing.spot_prices.calibrate_on")
    base_seed = int(rng.integers(0, 2**63 - 1))
    calibrations: dict[str, SpotCalibration] = {}
    out: dict[tuple[str, str], PriceSeries] = {}
    for pool_type, az in pools:
        cal_type = cfg.instance_type or pool_type
        if cal_type not in calibrations:
            calibrations[cal_type] = _calibrate(history, cal_type, on_demand)
        od = _on_demand(on_demand, pool_type)
        child = _child_rng(base_seed, f"{pool_type}|{az}")
        out[(pool_type, az)] = _simulate(calibrations[cal_type], od, duration_s, child)
    return out


def _calibrate(
    history: PriceHistory, instance_type: str, on_demand: dict[str, float]
) -> SpotCalibration:
    """Change rate, log-step sd and mean spot/on-demand ratio of one type."""
    cal_type = instance_type
    if history.rows.get(cal_type, 0) < MIN_CALIBRATION_ROWS:
        cal_type = _most_rows_type(history, on_demand)
    series = history.canonical(cal_type)
    events = sum(len(s.times_epoch_s) - 1 for s in series)
    span_h = sum(float(s.times_epoch_s[-1] - s.times_epoch_s[0]) / 3600.0 for s in series)
    steps = np.concatenate([np.diff(np.log(s.prices_usd_per_hour)) for s in series])
    prices = np.concatenate([s.prices_usd_per_hour for s in series])
    return SpotCalibration(
        instance_type=cal_type,
        change_rate_per_hour=events / span_h if span_h > 0 else 0.0,
        log_step_sd=float(np.std(steps, ddof=1)) if len(steps) >= 2 else 0.0,
        mean_ratio=float(np.mean(prices)) / _on_demand(on_demand, cal_type),
    )


def _most_rows_type(history: PriceHistory, on_demand: dict[str, float]) -> str:
    """The type with the most rows among those with an on-demand price (ties: name)."""
    candidates = [(n, t) for t, n in history.rows.items() if t in on_demand]
    if not candidates:
        raise InputError(
            history.path,
            "pricing.spot_prices.calibrate_on",
            "no instance type in the history has an on-demand price",
            allowed="a history with rows for a catalogue type",
        )
    return min(candidates, key=lambda c: (-c[0], c[1]))[1]


def _on_demand(on_demand: dict[str, float], instance_type: str) -> float:
    """On-demand USD/hour of ``instance_type`` or an InputError."""
    price = on_demand.get(instance_type)
    if price is None or not price > 0:
        raise InputError(
            "on-demand catalogue",
            "pricing.spot_prices",
            f"no on-demand price for instance type {instance_type!r}",
            allowed="a type listed in pricing.catalogue",
        )
    return float(price)


def _child_rng(base_seed: int, key: str) -> np.random.Generator:
    """An independent PCG64 stream for ``key`` derived from ``base_seed``."""
    seq = np.random.SeedSequence(entropy=base_seed, spawn_key=(zlib.crc32(key.encode()),))
    return np.random.Generator(np.random.PCG64(seq))


def _simulate(
    cal: SpotCalibration, on_demand_usd_per_hour: float, duration_s: float, rng: np.random.Generator
) -> PriceSeries:
    """One mean-reverting log-price step process (see :func:`modelled_spot_prices`)."""
    phi, sd = MEAN_REVERSION_PER_STEP, cal.log_step_sd
    mu = math.log(cal.mean_ratio * on_demand_usd_per_hour)
    n = int(rng.poisson(cal.change_rate_per_hour * duration_s / 3600.0))
    changes = np.unique(rng.uniform(0.0, duration_s, size=n))
    changes = changes[changes > 0.0]
    shocks = rng.standard_normal(len(changes) + 1)
    x = np.empty(len(changes) + 1)
    x[0] = mu + sd / math.sqrt(1.0 - phi * phi) * shocks[0]
    for k in range(1, len(x)):
        x[k] = mu + phi * (x[k - 1] - mu) + sd * shocks[k]
    prices = np.clip(np.exp(x), MIN_PRICE_FRACTION * on_demand_usd_per_hour, on_demand_usd_per_hour)
    return collapsed_series(np.concatenate(([0.0], changes)), prices)
