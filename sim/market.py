"""The spot market: spot prices and spot availability as step functions of time.

Simulated time is seconds from ``t = 0`` (the start of the run). Prices are US
dollars per hour; costs are US dollars.

Prices
------
A :class:`PriceSeries` is a right-continuous step function: ``prices_usd_per_hour[i]``
is in force on ``[times_s[i], times_s[i + 1])``; the last price holds for ever and the
first one is also used for (never expected) negative times. Costs are exact
integrals of the step function, computed in O(log n) from a prefix sum of the
piece costs kept in double-double precision, so tiny intervals late in a long series
keep full relative accuracy.

Spot prices come from one of two sources:

* :func:`replay_spot_prices` replays a DescribeSpotPriceHistory-shaped CSV (each row
  a price *change* event for one (instance type, AZ)). A row's AZ is its ``az`` name,
  or its ``az_id`` when the name is empty (a row having both can be asked for by
  either). ``t = 0`` is the first record of the source instance type, plus
  ``offset_h``. Decision: "first record" is taken over the AZs of the same data
  ``source`` (the ``source`` column) as the replayed AZ, because the bundled file
  mixes a 33-day series with a 5-hour cross-section 18 months older; anchoring on
  the older one would push every change of the long series out of any run.
* :func:`modelled_spot_prices` calibrates a seeded mean-reverting step process on
  such a CSV (see that function for the model).

Availability
------------
An :class:`AvailabilitySeries` says whether spot capacity can be had in one AZ, as a
step function built from Can't-Be-Late traces (``{"metadata": {"gap_seconds": N},
"data": [v0, v1, ...]}``; ``v > 0`` means a spot instance was available/running
during that tick). Tick ``i`` covers ``[i * gap - offset_s, (i + 1) * gap - offset_s)``.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sim.csv_rows import csv_rows
from sim.errors import InputError
from sim.scenario import (
    AlwaysAvailable,
    ModelledSpotPrices,
    ReplayedAvailability,
    ReplayedSpotPrices,
)

HISTORY_COLUMNS: tuple[str, ...] = ("timestamp", "instance_type", "az", "az_id", "spot_price")
"""Columns a spot price history CSV must have (others are ignored)."""

MIN_CALIBRATION_ROWS = 10
"""A type with fewer history rows is calibrated on the type with the most rows."""

MEAN_REVERSION_PER_STEP = 0.95
"""AR(1) coefficient of the log price per change event (modelled prices)."""

MIN_PRICE_FRACTION = 1e-6
"""Modelled prices are floored at this fraction of on-demand (keeps them > 0)."""

DURATION_TOLERANCE_S = 1e-6
"""Slack when checking that a trace covers offset + duration (float rounding)."""


# =========================================================================== prices


@dataclass(frozen=True, slots=True, eq=False)
class PriceSeries:
    """Step function of price in USD/hour over simulated time (seconds from t=0).

    Attributes
    ----------
    times_s
        float64, strictly increasing, ``times_s[0] == 0.0`` (the price in force at
        t=0); later elements are the change times in seconds.
    prices_usd_per_hour
        float64, finite and > 0, same length; ``prices_usd_per_hour[i]`` holds on
        ``[times_s[i], times_s[i + 1])`` and the last one holds for ever.

    Notes
    -----
    Both arrays are copied and made read-only. Equality is identity (``eq=False``);
    compare the arrays to compare series.
    """

    times_s: np.ndarray
    prices_usd_per_hour: np.ndarray
    _cum_hi: np.ndarray = field(init=False, repr=False)
    _cum_lo: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        times = _frozen_array(self.times_s, np.float64)
        prices = _frozen_array(self.prices_usd_per_hour, np.float64)
        _check_step_times(times, "PriceSeries.times_s")
        if prices.shape != times.shape:
            raise ValueError(f"prices shape {prices.shape} != times shape {times.shape}")
        if not (np.all(np.isfinite(prices)) and np.all(prices > 0)):
            raise ValueError("PriceSeries prices must be finite and > 0")
        pieces = prices[:-1] * np.diff(times)  # USD*s/h of each closed piece
        hi, lo = _double_double_prefix(pieces)
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "prices_usd_per_hour", prices)
        object.__setattr__(self, "_cum_hi", hi)
        object.__setattr__(self, "_cum_lo", lo)

    def price_at(self, t_s: float) -> float:
        """Price in USD/hour in force at time ``t_s`` (s); a change applies from its time on."""
        return float(self.prices_usd_per_hour[self._piece(t_s)])

    def cost_usd(self, t0_s: float, t1_s: float) -> float:
        """Cost in USD of one unit (instance) held from ``t0_s`` to ``t1_s`` seconds.

        The exact integral of the step function over ``[t0_s, t1_s]`` divided by 3600,
        in O(log n). Requires ``t1_s >= t0_s``.
        """
        if not t1_s >= t0_s:
            raise ValueError(f"t1_s(={t1_s}) must be >= t0_s(={t0_s})")
        p = self.prices_usd_per_hour
        k0, k1 = self._piece(t0_s), self._piece(t1_s)
        if k0 == k1:
            return float(p[k0] * (t1_s - t0_s)) / 3600.0
        head = p[k0] * (self.times_s[k0 + 1] - t0_s)
        mid = (self._cum_hi[k1] - self._cum_hi[k0 + 1]) + (self._cum_lo[k1] - self._cum_lo[k0 + 1])
        tail = p[k1] * (t1_s - self.times_s[k1])
        return float(head + mid + tail) / 3600.0

    def cost_usd_many(self, t0_s: np.ndarray, t1_s: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`cost_usd`: USD for each interval ``[t0_s[i], t1_s[i]]``.

        Parameters
        ----------
        t0_s, t1_s
            Broadcastable arrays of start and end times in seconds, ``t1_s >= t0_s``.

        Returns
        -------
        numpy.ndarray
            float64 costs in USD, of the broadcast shape.
        """
        t0, t1 = np.broadcast_arrays(np.asarray(t0_s, np.float64), np.asarray(t1_s, np.float64))
        if np.any(~(t1 >= t0)):
            raise ValueError("cost_usd_many needs t1_s >= t0_s element-wise")
        p, times, n = self.prices_usd_per_hour, self.times_s, len(self.times_s)
        k0, k1 = self._pieces(t0), self._pieces(t1)
        j = np.minimum(k0 + 1, n - 1)
        same = p[k0] * (t1 - t0)
        head = p[k0] * (times[j] - t0)
        mid = (self._cum_hi[k1] - self._cum_hi[j]) + (self._cum_lo[k1] - self._cum_lo[j])
        tail = p[k1] * (t1 - times[k1])
        result: np.ndarray = np.where(k0 == k1, same, head + mid + tail) / 3600.0
        return result

    def changes_between(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Change times (s) in ``(t0_s, t1_s]``, sorted (``t = 0`` is never a change)."""
        changes = self.times_s[1:]
        lo = int(np.searchsorted(changes, t0_s, side="right"))
        hi = int(np.searchsorted(changes, t1_s, side="right"))
        return changes[lo : max(lo, hi)].copy()

    def _piece(self, t_s: float) -> int:
        """Index of the piece in force at ``t_s`` (0 for t < 0)."""
        return max(int(np.searchsorted(self.times_s, t_s, side="right")) - 1, 0)

    def _pieces(self, t_s: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`_piece`."""
        idx: np.ndarray = np.searchsorted(self.times_s, t_s, side="right") - 1
        pieces: np.ndarray = np.maximum(idx, 0)
        return pieces


def reclaimed_indices(n_nodes: int, fraction: float, rng: np.random.Generator) -> list[int]:
    """Which of ``n_nodes`` spot nodes a reclaim of ``fraction`` of them hits (sorted
    indices): ``ceil(fraction * n_nodes)`` drawn without replacement from ``rng``, all of
    them (no draw) when that is every node. The simulator and the cost environment both
    call this, so the same stream picks the same nodes."""
    k = math.ceil(fraction * n_nodes - 1e-9)
    if k >= n_nodes:
        return list(range(n_nodes))
    return sorted(rng.choice(n_nodes, size=k, replace=False).tolist())


def constant_price(usd_per_hour: float) -> PriceSeries:
    """A price of ``usd_per_hour`` (USD/hour, > 0) for ever (e.g. on-demand)."""
    return PriceSeries(np.array([0.0]), np.array([float(usd_per_hour)]))


# --------------------------------------------------------------------------- history


@dataclass(frozen=True, slots=True)
class _Series:
    """The change records of one (instance type, AZ): epoch seconds, USD/hour."""

    times_epoch_s: np.ndarray
    prices_usd_per_hour: np.ndarray
    sources: frozenset[str]


@dataclass(frozen=True, slots=True)
class _History:
    """A parsed price history CSV.

    ``series`` is keyed by (type, canonical AZ) where the canonical AZ is the ``az``
    name, else the ``az_id``; ``alias`` maps every (type, az or az_id) to it.
    ``first_epoch_s`` is the earliest record per (type, source); ``rows`` counts rows
    per type.
    """

    path: Path
    series: dict[tuple[str, str], _Series]
    alias: dict[tuple[str, str], str]
    first_epoch_s: dict[tuple[str, str], float]
    rows: dict[str, int]

    def find(self, instance_type: str, az: str) -> _Series | None:
        """The series of ``instance_type`` in ``az`` (name or ID), if any."""
        key = self.alias.get((instance_type, az))
        return None if key is None else self.series[(instance_type, key)]

    def azs_of(self, instance_type: str) -> list[str]:
        """Every AZ name / ID that has rows for ``instance_type``, sorted."""
        return sorted(az for (t, az) in self.alias if t == instance_type)

    def canonical(self, instance_type: str) -> list[_Series]:
        """The series of ``instance_type``, one per AZ (no alias duplicates)."""
        return [s for (t, _), s in sorted(self.series.items()) if t == instance_type]


@dataclass(frozen=True, slots=True)
class _Record:
    """One parsed row of a price history CSV."""

    epoch_s: float
    instance_type: str
    az: str
    az_id: str
    price: float
    source: str


def _load_history(path: Path, field_name: str) -> _History:
    """Parse and validate a spot price history CSV into per-(type, AZ) series.

    Parameters
    ----------
    path
        The CSV (columns :data:`HISTORY_COLUMNS`, optionally ``source``).
    field_name
        The scenario field that named the file (for a missing-file error).
    """
    grouped: dict[tuple[str, str], list[tuple[float, int, float]]] = {}
    sources: dict[tuple[str, str], set[str]] = {}
    alias: dict[tuple[str, str], str] = {}
    first: dict[tuple[str, str], float] = {}
    rows: dict[str, int] = {}
    for order, rec in enumerate(_history_records(path, field_name)):
        key = rec.az or rec.az_id
        grouped.setdefault((rec.instance_type, key), []).append((rec.epoch_s, order, rec.price))
        sources.setdefault((rec.instance_type, key), set()).add(rec.source)
        for name in (rec.az, rec.az_id):
            if name:
                alias.setdefault((rec.instance_type, name), key)
        fkey = (rec.instance_type, rec.source)
        first[fkey] = min(first.get(fkey, math.inf), rec.epoch_s)
        rows[rec.instance_type] = rows.get(rec.instance_type, 0) + 1
    series = {k: _to_series(v, frozenset(sources[k])) for k, v in grouped.items()}
    return _History(path=path, series=series, alias=alias, first_epoch_s=first, rows=rows)


def _to_series(records: list[tuple[float, int, float]], sources: frozenset[str]) -> _Series:
    """Sort records by time; of several at the same time keep the last in the file."""
    records.sort()
    times: list[float] = []
    prices: list[float] = []
    for t, _, price in records:
        if times and times[-1] == t:
            prices[-1] = price
        else:
            times.append(t)
            prices.append(price)
    return _Series(np.array(times), np.array(prices), sources)


def _history_records(path: Path, field_name: str) -> Iterator[_Record]:
    """Yield validated rows of a price history CSV (errors name the line)."""
    for line, row in csv_rows(path, HISTORY_COLUMNS, what="spot price history", field=field_name):
        yield _parse_history_row(path, line, row)


def _parse_history_row(path: Path, line: int, row: dict[str, str]) -> _Record:
    """Validate one price history row."""
    where = f"line {line}"
    itype = (row.get("instance_type") or "").strip()
    az, az_id = (row.get("az") or "").strip(), (row.get("az_id") or "").strip()
    if not itype:
        raise InputError(path, where, "empty instance_type", allowed="e.g. c5a.2xlarge")
    if not (az or az_id):
        raise InputError(
            path,
            where,
            "both az and az_id are empty",
            allowed="an AZ name (us-east-1c) or ID (use1-az2)",
        )
    text = (row.get("spot_price") or "").strip()
    try:
        price = float(text)
    except ValueError:
        price = math.nan
    if not (math.isfinite(price) and price > 0):
        raise InputError(
            path,
            where,
            f"spot_price {text!r} is not a positive number",
            allowed="a price in USD/hour > 0",
        )
    epoch = _parse_timestamp(path, where, (row.get("timestamp") or "").strip())
    return _Record(epoch, itype, az, az_id, price, (row.get("source") or "").strip())


def _parse_timestamp(path: Path, where: str, text: str) -> float:
    """ISO 8601 timestamp -> epoch seconds (naive timestamps are taken as UTC)."""
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            path, where, f"timestamp {text!r} is not ISO 8601", allowed="e.g. 2023-11-11T18:17:00Z"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


# --------------------------------------------------------------------------- replay


def replay_spot_prices(
    cfg: ReplayedSpotPrices,
    *,
    base_dir: Path,
    pools: list[tuple[str, str]],
    duration_s: float,
) -> dict[tuple[str, str], PriceSeries]:
    """Spot prices replayed from a price history CSV, one step function per pool.

    Parameters
    ----------
    cfg
        ``pricing.spot_prices`` (``kind: replay``); ``cfg.path`` is relative to
        ``base_dir``.
    base_dir
        Directory relative paths are resolved against (the scenario's directory).
    pools
        ``(instance_type, scenario_az)`` pairs that need a spot price. The replayed
        series is ``cfg.instance_type`` (or the pool's type) in
        ``cfg.az_map.get(az, az)``.
    duration_s
        Run length in seconds; changes after it are dropped (the last price holds).

    Returns
    -------
    dict[tuple[str, str], PriceSeries]
        ``(instance_type, scenario_az)`` -> price in USD/hour over simulated time.

    Notes
    -----
    ``t = 0`` is the first record of the source instance type (over all its AZs of
    the same data source, see the module docstring) plus ``cfg.offset_h`` hours. The
    price at ``t = 0`` is the AZ's last record at or before that instant, else its
    first record. Records that repeat the previous price are not kept as changes.

    Raises
    ------
    InputError
        Bad CSV (with line number), or a (type, AZ) without any rows.
    """
    _check_duration(duration_s)
    history = _load_history(Path(base_dir) / cfg.path, "pricing.spot_prices.path")
    out: dict[tuple[str, str], PriceSeries] = {}
    for pool_type, az in pools:
        src_type = cfg.instance_type or pool_type
        src_az = cfg.az_map.get(az, az)
        series = _require_series(history, src_type, src_az)
        origin = min(history.first_epoch_s[(src_type, s)] for s in series.sources)
        origin += cfg.offset_h * 3600.0
        out[(pool_type, az)] = _replayed_steps(series, origin, duration_s)
    return out


def _require_series(history: _History, instance_type: str, az: str) -> _Series:
    """The (type, AZ) series, or an InputError listing the AZs that have rows."""
    series = history.find(instance_type, az)
    if series is not None:
        return series
    azs = history.azs_of(instance_type)
    allowed = ", ".join(azs) if azs else f"no AZ has rows for {instance_type}"
    raise InputError(
        history.path,
        "pricing.spot_prices",
        f"no spot price history for {instance_type} in {az}",
        allowed=allowed,
    )


def _replayed_steps(series: _Series, origin_epoch_s: float, duration_s: float) -> PriceSeries:
    """Cut one AZ's records to ``[0, duration_s]`` relative to ``origin_epoch_s``."""
    rel = series.times_epoch_s - origin_epoch_s
    prices = series.prices_usd_per_hour
    before = int(np.searchsorted(rel, 0.0, side="right")) - 1
    start_price = prices[max(before, 0)]
    keep = (rel > 0.0) & (rel <= duration_s)
    times = np.concatenate(([0.0], rel[keep]))
    values = np.concatenate(([start_price], prices[keep]))
    return _collapsed_series(times, values)


def _collapsed_series(times: np.ndarray, prices: np.ndarray) -> PriceSeries:
    """A :class:`PriceSeries` without changes that repeat the previous price."""
    keep = np.ones(len(prices), dtype=bool)
    keep[1:] = prices[1:] != prices[:-1]
    return PriceSeries(times[keep], prices[keep])


# --------------------------------------------------------------------------- model


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
    history = _load_history(Path(history_path), "pricing.spot_prices.calibrate_on")
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
    _check_duration(duration_s)
    history = _load_history(Path(base_dir) / cfg.calibrate_on, "pricing.spot_prices.calibrate_on")
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
    history: _History, instance_type: str, on_demand: dict[str, float]
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


def _most_rows_type(history: _History, on_demand: dict[str, float]) -> str:
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
    return _collapsed_series(np.concatenate(([0.0], changes)), prices)


# =========================================================================== availability


@dataclass(frozen=True, slots=True, eq=False)
class AvailabilitySeries:
    """Whether spot capacity can be had in one AZ, as a step function of simulated time.

    Attributes
    ----------
    times_s
        float64, strictly increasing, first element 0.0; the state ``available[i]``
        holds on ``[times_s[i], times_s[i + 1])`` (seconds), the last one for ever.
    available
        bool, same length. Equal consecutive states are merged on construction, so
        every later element of ``times_s`` is a real transition.
    source
        Where the series came from (a file path, or ``"always"``).
    """

    times_s: np.ndarray
    available: np.ndarray
    source: str

    def __post_init__(self) -> None:
        times = np.array(self.times_s, dtype=np.float64)
        states = np.array(self.available, dtype=bool)
        _check_step_times(times, "AvailabilitySeries.times_s")
        if states.shape != times.shape:
            raise ValueError(f"available shape {states.shape} != times shape {times.shape}")
        keep = np.ones(len(states), dtype=bool)
        keep[1:] = states[1:] != states[:-1]
        object.__setattr__(self, "times_s", _frozen_array(times[keep], np.float64))
        object.__setattr__(self, "available", _frozen_array(states[keep], np.bool_))

    def available_at(self, t_s: float) -> bool:
        """Whether spot capacity is available at time ``t_s`` (s)."""
        k = max(int(np.searchsorted(self.times_s, t_s, side="right")) - 1, 0)
        return bool(self.available[k])

    def transitions(self) -> list[tuple[float, bool]]:
        """``(time_s, new_state)`` for every change after t=0, in time order."""
        return [
            (float(t), bool(a)) for t, a in zip(self.times_s[1:], self.available[1:], strict=True)
        ]

    def unavailable_fraction(self, t0_s: float, t1_s: float) -> float:
        """Fraction (0..1) of ``[t0_s, t1_s]`` (s) during which capacity is unavailable.

        For ``t0_s == t1_s`` this is 1.0 if unavailable at that instant, else 0.0.
        """
        if not t1_s >= t0_s:
            raise ValueError(f"t1_s(={t1_s}) must be >= t0_s(={t0_s})")
        if t1_s == t0_s:
            return 0.0 if self.available_at(t0_s) else 1.0
        starts = self.times_s.copy()
        starts[0] = -math.inf
        ends = np.append(self.times_s[1:], math.inf)
        overlap = np.clip(ends, t0_s, t1_s) - np.clip(starts, t0_s, t1_s)
        return float(np.sum(overlap[~self.available]) / (t1_s - t0_s))


def always_available() -> AvailabilitySeries:
    """Spot capacity that never runs out."""
    return AvailabilitySeries(np.array([0.0]), np.array([True]), "always")


def load_availability_trace(
    path: Path, *, offset_s: float, duration_s: float
) -> AvailabilitySeries:
    """Read a Can't-Be-Late trace JSON into an availability step function.

    Parameters
    ----------
    path
        ``{"metadata": {"gap_seconds": N}, "data": [v0, v1, ...]}``; ``N > 0``
        seconds per tick, each ``v`` a non-negative number. ``v > 0`` means
        available (for N-node traces: at least one instance).
    offset_s
        Seconds into the trace at simulated ``t = 0`` (>= 0).
    duration_s
        Run length in seconds; ``offset_s + duration_s`` must fit in the trace.

    Raises
    ------
    InputError
        Missing file, invalid JSON, a bad ``metadata.gap_seconds`` or ``data[i]``,
        or a trace shorter than ``offset_s + duration_s`` (field ``duration_days``).
    """
    path = Path(path)
    if offset_s < 0:
        raise ValueError(f"offset_s(={offset_s}) must be >= 0")
    _check_duration(duration_s)
    gap, values = _read_trace(path)
    _check_covers(path, gap * len(values), offset_s, duration_s)
    first = min(int(offset_s // gap), len(values) - 1)
    last = min(int((offset_s + duration_s) // gap), len(values) - 1)
    ticks = np.arange(first + 1, last + 1)
    up = values > 0
    changed = ticks[up[ticks] != up[ticks - 1]]
    times = changed * gap - offset_s
    keep = (times > 0.0) & (times <= duration_s)
    return AvailabilitySeries(
        np.concatenate(([0.0], times[keep])),
        np.concatenate(([up[first]], up[changed[keep]])),
        str(path),
    )


def _read_trace(path: Path) -> tuple[float, np.ndarray]:
    """Validated ``(gap_seconds, values)`` of a trace JSON file."""
    if not path.is_file():
        raise InputError(path, "", "availability trace not found", allowed="an existing JSON file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, "", f"cannot read availability trace: {exc}") from None
    except RecursionError:
        raise InputError(path, "", "JSON nested too deeply", "a trace JSON object") from None
    if not isinstance(doc, dict):
        raise InputError(
            path,
            "",
            f"top level is a {type(doc).__name__}",
            allowed='{"metadata": {"gap_seconds": N}, "data": [...]}',
        )
    return _trace_gap(path, doc), _trace_values(path, doc)


def _is_number(value: object) -> bool:
    """A finite JSON number (not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _trace_gap(path: Path, doc: dict[str, object]) -> float:
    """``metadata.gap_seconds`` as a positive float."""
    meta = doc.get("metadata")
    gap = meta.get("gap_seconds") if isinstance(meta, dict) else None
    if not (_is_number(gap) and float(gap) > 0):  # type: ignore[arg-type]
        raise InputError(
            path, "metadata.gap_seconds", f"got {gap!r}", allowed="a number of seconds > 0"
        )
    return float(gap)  # type: ignore[arg-type]


def _trace_values(path: Path, doc: dict[str, object]) -> np.ndarray:
    """``data`` as a float array of non-negative values."""
    data = doc.get("data")
    if not isinstance(data, list) or not data:
        raise InputError(
            path,
            "data",
            f"got {type(data).__name__}" + (" (empty)" if isinstance(data, list) else ""),
            allowed="a non-empty list of numbers >= 0",
        )
    for i, value in enumerate(data):
        if not (_is_number(value) and value >= 0):
            raise InputError(path, f"data[{i}]", f"got {value!r}", allowed="a number >= 0")
    return np.asarray(data, dtype=np.float64)


def _check_covers(path: Path, length_s: float, offset_s: float, duration_s: float) -> None:
    """InputError unless the trace covers ``[offset_s, offset_s + duration_s]``."""
    if offset_s + duration_s <= length_s + DURATION_TOLERANCE_S:
        return
    raise InputError(
        path,
        "duration_days",
        f"offset {offset_s / 3600:g} h + duration {duration_s / 3600:g} h runs past the end: "
        f"the trace covers only {length_s / 3600:.1f} h",
        allowed=f"duration_days <= {max(length_s - offset_s, 0.0) / 86400:.2f} at this offset",
    )


def replay_availability(
    cfg: ReplayedAvailability | AlwaysAvailable,
    *,
    base_dir: Path,
    azs: list[str],
    duration_s: float,
) -> dict[str, AvailabilitySeries]:
    """Spot availability per scenario AZ from ``pricing.spot_availability``.

    Parameters
    ----------
    cfg
        ``kind: always`` -> :func:`always_available` everywhere; ``kind: replay`` ->
        ``cfg.files[az]`` (relative to ``base_dir``) read from ``cfg.offset_h`` hours.
    base_dir
        Directory relative paths are resolved against.
    azs
        Scenario AZs that need a series; each must be a key of ``cfg.files``.
    duration_s
        Run length in seconds.
    """
    if isinstance(cfg, AlwaysAvailable):
        return {az: always_available() for az in azs}
    missing = [az for az in azs if az not in cfg.files]
    if missing:
        raise InputError(
            "scenario",
            "pricing.spot_availability.files",
            f"no trace for AZ {missing[0]}",
            allowed=f"one entry per pool AZ {sorted(set(azs))}; files has {sorted(cfg.files)}",
        )
    loaded: dict[Path, AvailabilitySeries] = {}
    out: dict[str, AvailabilitySeries] = {}
    for az in azs:
        path = Path(base_dir) / cfg.files[az]
        if path not in loaded:
            loaded[path] = load_availability_trace(
                path, offset_s=cfg.offset_h * 3600.0, duration_s=duration_s
            )
        out[az] = loaded[path]
    return out


def availability_from_path(
    path: Path, *, azs: list[str], duration_s: float
) -> dict[str, AvailabilitySeries]:
    """Availability for ``--spot-availability PATH`` (a file or a directory), offset 0.

    Parameters
    ----------
    path
        A trace JSON file (used for every AZ) or a directory of ``*.json`` traces
        (not recursive).
    azs
        Scenario AZs that need a series.
    duration_s
        Run length in seconds.

    Notes
    -----
    In a directory, a file whose name starts with the AZ name followed by a
    non-alphanumeric character (``us-east-1c_v100_1.json`` for ``us-east-1c``) is
    that AZ's trace (the first such in sorted order). AZs without a file of their
    own take, round-robin in the order of ``azs``, the files not claimed by any
    requested AZ in sorted name order, or all files if every file is claimed. Thus
    two unmatched AZs get different traces whenever the directory has enough.
    """
    path = Path(path)
    if path.is_file():
        series = load_availability_trace(path, offset_s=0.0, duration_s=duration_s)
        return {az: series for az in azs}
    if not path.is_dir():
        raise InputError(
            "--spot-availability",
            "",
            f"{path} does not exist",
            allowed="a trace JSON file or a directory of them",
        )
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".json")
    if not files:
        raise InputError(
            "--spot-availability",
            "",
            f"{path} has no *.json trace files",
            allowed="a directory of Can't-Be-Late trace JSON files",
        )
    chosen = _assign_files(files, azs)
    loaded: dict[Path, AvailabilitySeries] = {}
    for file in dict.fromkeys(chosen.values()):
        loaded[file] = load_availability_trace(file, offset_s=0.0, duration_s=duration_s)
    return {az: loaded[chosen[az]] for az in azs}


def _assign_files(files: list[Path], azs: list[str]) -> dict[str, Path]:
    """Map each AZ to its own file, else round-robin over the unclaimed files."""
    own = {az: next((f for f in files if _names_az(f.name, az)), None) for az in azs}
    claimed = {f for f in own.values() if f is not None}
    spare = [f for f in files if f not in claimed] or files
    out: dict[str, Path] = {}
    k = 0
    for az in azs:
        match = own[az]
        if match is None:
            match, k = spare[k % len(spare)], k + 1
        out[az] = match
    return out


def _names_az(filename: str, az: str) -> bool:
    """``filename`` starts with ``az`` followed by a non-alphanumeric character."""
    if not filename.startswith(az):
        return False
    rest = filename[len(az) :]
    return not rest or not rest[0].isalnum()


# =========================================================================== helpers


def _frozen_array(values: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """A read-only 1-D copy of ``values`` as ``dtype``."""
    arr = np.array(values, dtype=dtype, copy=True)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"expected a non-empty 1-D array, got shape {arr.shape}")
    arr.flags.writeable = False
    return arr


def _check_step_times(times: np.ndarray, name: str) -> None:
    """``times`` starts at 0.0, is finite and strictly increasing."""
    if times.ndim != 1 or times.size == 0 or times[0] != 0.0:
        raise ValueError(f"{name} must be 1-D, non-empty and start at 0.0")
    if not (np.all(np.isfinite(times)) and np.all(np.diff(times) > 0)):
        raise ValueError(f"{name} must be finite and strictly increasing")


def _check_duration(duration_s: float) -> None:
    """``duration_s`` is a finite number of seconds > 0."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s(={duration_s}) must be finite and > 0")


def _double_double_prefix(pieces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums of ``pieces`` as ``hi + lo`` pairs (double-double precision).

    ``hi[j] + lo[j]`` is ``sum(pieces[:j])`` to about 1e-32 relative, so a
    difference of two prefix sums keeps full double precision.
    """
    hi = np.zeros(len(pieces) + 1)
    lo = np.zeros(len(pieces) + 1)
    s_hi, s_lo = 0.0, 0.0
    for j, a in enumerate(pieces.tolist(), start=1):
        total = s_hi + a
        back = total - s_hi
        err = (s_hi - (total - back)) + (a - back)  # TwoSum error term
        s_lo += err
        s_hi = total + s_lo
        s_lo -= s_hi - total  # FastTwoSum renormalisation
        hi[j], lo[j] = s_hi, s_lo
    hi.flags.writeable = False
    lo.flags.writeable = False
    return hi, lo
