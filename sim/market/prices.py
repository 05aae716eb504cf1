"""Spot prices: a step function of simulated time, and its replay from a price history.

Simulated time is seconds from ``t = 0`` (the start of the run). Prices are US
dollars per hour; costs are US dollars.

A :class:`PriceSeries` is a right-continuous step function: ``prices_usd_per_hour[i]``
is in force on ``[times_s[i], times_s[i + 1])``; the last price holds for ever and the
first one is also used for (never expected) negative times. Costs are exact
integrals of the step function, computed in O(log n) from a prefix sum of the
piece costs kept in double-double precision, so tiny intervals late in a long series
keep full relative accuracy.

:func:`replay_spot_prices` replays a DescribeSpotPriceHistory-shaped CSV (each row a
price *change* event for one (instance type, AZ), read by :func:`load_history`). A
row's AZ is its ``az`` name, or its ``az_id`` when the name is empty (a row having both
can be asked for by either). ``t = 0`` is the first record of the source instance type,
plus ``offset_h``. Decision: "first record" is taken over the AZs of the same data
``source`` (the ``source`` column) as the replayed AZ, because the bundled file mixes a
33-day series with a 5-hour cross-section 18 months older; anchoring on the older one
would push every change of the long series out of any run. With ``shift`` (a price
regime change), another series of the same file takes over at ``shift.at_h``
(:func:`spliced_prices`). The seeded price model
calibrated on such a CSV is :mod:`sim.market.price_model`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sim.csv_rows import csv_rows
from sim.errors import InputError
from sim.market.steps import check_duration, check_step_times, frozen_array
from sim.scenario import ReplayedSpotPrices

HISTORY_COLUMNS: tuple[str, ...] = ("timestamp", "instance_type", "az", "az_id", "spot_price")
"""Columns a spot price history CSV must have (others are ignored)."""


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
        times = frozen_array(self.times_s, np.float64)
        prices = frozen_array(self.prices_usd_per_hour, np.float64)
        check_step_times(times, "PriceSeries.times_s")
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


def constant_price(usd_per_hour: float) -> PriceSeries:
    """A price of ``usd_per_hour`` (USD/hour, > 0) for ever (e.g. on-demand)."""
    return PriceSeries(np.array([0.0]), np.array([float(usd_per_hour)]))


# --------------------------------------------------------------------------- history


@dataclass(frozen=True, slots=True)
class HistorySeries:
    """The change records of one (instance type, AZ): epoch seconds, USD/hour."""

    times_epoch_s: np.ndarray
    prices_usd_per_hour: np.ndarray
    sources: frozenset[str]


@dataclass(frozen=True, slots=True)
class PriceHistory:
    """A parsed price history CSV.

    ``series`` is keyed by (type, canonical AZ) where the canonical AZ is the ``az``
    name, else the ``az_id``; ``alias`` maps every (type, az or az_id) to it.
    ``first_epoch_s`` is the earliest record per (type, source); ``rows`` counts rows
    per type.
    """

    path: Path
    series: dict[tuple[str, str], HistorySeries]
    alias: dict[tuple[str, str], str]
    first_epoch_s: dict[tuple[str, str], float]
    rows: dict[str, int]

    def find(self, instance_type: str, az: str) -> HistorySeries | None:
        """The series of ``instance_type`` in ``az`` (name or ID), if any."""
        key = self.alias.get((instance_type, az))
        return None if key is None else self.series[(instance_type, key)]

    def azs_of(self, instance_type: str) -> list[str]:
        """Every AZ name / ID that has rows for ``instance_type``, sorted."""
        return sorted(az for (t, az) in self.alias if t == instance_type)

    def canonical(self, instance_type: str) -> list[HistorySeries]:
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


def load_history(path: Path, field_name: str) -> PriceHistory:
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
    return PriceHistory(path=path, series=series, alias=alias, first_epoch_s=first, rows=rows)


def _to_series(records: list[tuple[float, int, float]], sources: frozenset[str]) -> HistorySeries:
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
    return HistorySeries(np.array(times), np.array(prices), sources)


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

    With ``cfg.shift`` the price from ``shift.at_h`` on follows ``shift.instance_type``
    (default: the replayed type) in ``shift.az_map.get(az, az)``, anchored the same way
    with ``shift.offset_h`` at ``shift.at_h`` (see :func:`spliced_prices`).

    Raises
    ------
    InputError
        Bad CSV (with line number), or a (type, AZ) without any rows (field
        ``pricing.spot_prices``; for the new series ``pricing.spot_prices.shift``
        ``.instance_type`` if the type has no rows at all, else ``.az_map``).
    """
    check_duration(duration_s)
    history = load_history(Path(base_dir) / cfg.path, "pricing.spot_prices.path")
    out: dict[tuple[str, str], PriceSeries] = {}
    ratios: dict[str, float] = {}
    shift = cfg.shift
    for pool_type, az in pools:
        src_type = cfg.instance_type or pool_type
        series = _require_series(history, src_type, cfg.az_map.get(az, az))
        replayed = _replayed_steps(
            series, _origin(history, src_type, series, cfg.offset_h), duration_s
        )
        if shift is not None:
            at_s = shift.at_h * 3600.0
            new_type = shift.instance_type or src_type
            known = bool(history.azs_of(new_type))
            new_series = _require_series(
                history,
                new_type,
                shift.az_map.get(az, az),
                f"pricing.spot_prices.shift.{'az_map' if known else 'instance_type'}",
            )
            new_origin = _origin(history, new_type, new_series, shift.offset_h) - at_s
            replayed = spliced_prices(
                replayed, _replayed_steps(new_series, new_origin, duration_s), at_s
            )
        if cfg.type_ratio == "cross-section" and pool_type != src_type:
            if pool_type not in ratios:  # one ratio per type, whatever its AZs
                ratios[pool_type] = type_price_ratio(history, pool_type, src_type)
            replayed = scaled_prices(replayed, ratios[pool_type])
        out[(pool_type, az)] = replayed
    return out


def type_price_ratio(history: PriceHistory, instance_type: str, reference: str) -> float:
    """How much ``instance_type``'s spot price is of ``reference``'s (> 0).

    For every AZ (name or ID) where both types have records of a common data source, the
    ratio of their median record prices; the median of those ratios (the shipped history:
    its cross-section of 2022-05-31 over AZ IDs of us-east-1 and us-west-2; the long
    series of the reference comes from another source and does not count).

    Raises
    ------
    InputError
        ``instance_type`` has no rows, or no AZ holds both types in a common source.
    """
    field = "pricing.spot_prices.type_ratio"
    own = {az: s for (t, az), s in history.series.items() if t == instance_type}
    ref = {az: s for (t, az), s in history.series.items() if t == reference}
    if not own:
        raise InputError(
            history.path, field, f"no spot price history for {instance_type}",
            "a type with rows in the history, or type_ratio: none",
        )  # fmt: skip
    ratios = [
        float(np.median(s.prices_usd_per_hour) / np.median(ref[az].prices_usd_per_hour))
        for az, s in sorted(own.items())
        if az in ref and s.sources & ref[az].sources
    ]
    if not ratios:
        raise InputError(
            history.path, field,
            f"no AZ has records of both {instance_type} and {reference} from one source",
            "types recorded side by side in some AZ",
        )  # fmt: skip
    return float(np.median(ratios))


def scaled_prices(series: PriceSeries, factor: float) -> PriceSeries:
    """``series`` with every price times ``factor`` (> 0)."""
    return PriceSeries(series.times_s, series.prices_usd_per_hour * factor)


def _origin(
    history: PriceHistory, instance_type: str, series: HistorySeries, offset_h: float
) -> float:
    """Epoch seconds replayed at ``t = 0``: the type's first record over the AZs of the
    series' data sources, plus ``offset_h`` hours."""
    first = min(history.first_epoch_s[(instance_type, s)] for s in series.sources)
    return first + offset_h * 3600.0


def spliced_prices(before: PriceSeries, after: PriceSeries, at_s: float) -> PriceSeries:
    """``before`` on ``[0, at_s)``, ``after`` from ``at_s`` (s, > 0) on."""
    if not at_s > 0:
        raise ValueError(f"at_s(={at_s}) must be > 0")
    early = before.times_s < at_s
    late = after.times_s > at_s
    times = np.concatenate((before.times_s[early], [at_s], after.times_s[late]))
    prices = np.concatenate(
        (
            before.prices_usd_per_hour[early],
            [after.price_at(at_s)],
            after.prices_usd_per_hour[late],
        )
    )
    return collapsed_series(times, prices)


def _require_series(
    history: PriceHistory, instance_type: str, az: str, field: str = "pricing.spot_prices"
) -> HistorySeries:
    """The (type, AZ) series, or an InputError (naming ``field``) listing the AZs with rows."""
    series = history.find(instance_type, az)
    if series is not None:
        return series
    azs = history.azs_of(instance_type)
    allowed = ", ".join(azs) if azs else f"no AZ has rows for {instance_type}"
    raise InputError(
        history.path,
        field,
        f"no spot price history for {instance_type} in {az}",
        allowed=allowed,
    )


def _replayed_steps(series: HistorySeries, origin_epoch_s: float, duration_s: float) -> PriceSeries:
    """Cut one AZ's records to ``[0, duration_s]`` relative to ``origin_epoch_s``."""
    rel = series.times_epoch_s - origin_epoch_s
    prices = series.prices_usd_per_hour
    before = int(np.searchsorted(rel, 0.0, side="right")) - 1
    start_price = prices[max(before, 0)]
    keep = (rel > 0.0) & (rel <= duration_s)
    times = np.concatenate(([0.0], rel[keep]))
    values = np.concatenate(([start_price], prices[keep]))
    return collapsed_series(times, values)


def collapsed_series(times: np.ndarray, prices: np.ndarray) -> PriceSeries:
    """A :class:`PriceSeries` without changes that repeat the previous price."""
    keep = np.ones(len(prices), dtype=bool)
    keep[1:] = prices[1:] != prices[:-1]
    return PriceSeries(times[keep], prices[keep])


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
