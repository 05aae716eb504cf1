"""A batch of market windows (:class:`~agents.cost.fleet.Market`) as per-minute arrays, and
everything about an episode that does not depend on the fleet, computed once per reset.

The market's timed events (availability changes, spot storms, AZ outages) become, per
fleet, whether spot is on offer in each AZ and each slot is launchable at every control
tick, and a time-ordered table of the reclaims (minute, second, AZ, share of its spot
nodes) and outage starts, indexed by fleet and minute. The observation features that depend only on
the market and the load (:mod:`agents.cost.view`: load now, the seasonal forecast,
time of day, each spot AZ's price ratio, availability, unavailable share of the last
hour and recent drops) and the shared load plan (:class:`~agents.cost.plan.LoadPlanner`
with the controller's window and margin) are computed here for every tick, exactly as
:class:`~agents.cost.view.FeatureTracker` and the planner compute them tick by tick.

Shapes: ``E`` fleets, ``n`` minutes (``n + 1`` ticks, tick ``i`` at ``60 i`` s), ``K``
slots, ``S`` spot slots, ``Z`` AZs, ``N`` events. Times are
seconds, prices USD/hour, loads requests/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from agents.cost.controller import PLAN_MARGIN, PLAN_WINDOW_MIN
from agents.cost.fleet import Market
from agents.cost.plan import Layout
from agents.cost.view import DAY_MIN, DROP_WINDOW_S, FORECAST_AHEAD_MIN

EWMA_MIN = 60.0


@dataclass(frozen=True, slots=True)
class MarketConstants:
    """What the arrays need from the layout and the scenario."""

    azs: tuple[str, ...]
    slot_az: np.ndarray  # (K,) AZ index of each slot
    spot: np.ndarray  # (S,) spot slot indices
    is_spot: np.ndarray  # (K,) bool
    od_price_spot: np.ndarray  # (S,) on-demand USD/hour of each spot slot
    pod_rate_rps: float
    cap_rps: float
    n_minutes: int

    @classmethod
    def of(cls, layout: Layout, pod_rate_rps: float, n_minutes: int) -> MarketConstants:
        azs = tuple(sorted({s.az for s in layout.slots}))
        od = next(p for p in layout.pools if p.capacity_type == "on-demand")
        cap_pods = max(1.0, float(od.max_nodes * od.pods_per_node))
        return cls(
            azs=azs,
            slot_az=np.array([azs.index(s.az) for s in layout.slots], dtype=np.int64),
            spot=np.array(layout.spot_slots, dtype=np.int64),
            is_spot=np.array([s.spot for s in layout.slots], dtype=bool),
            od_price_spot=np.array(
                [layout.slots[k].on_demand_usd_per_hour for k in layout.spot_slots]
            ),
            pod_rate_rps=pod_rate_rps,
            cap_rps=cap_pods * pod_rate_rps,
            n_minutes=n_minutes,
        )


@dataclass(slots=True)
class MarketArrays:
    """Per-fleet episode arrays (see the module docstring for the shapes)."""

    offered: np.ndarray  # (E, n) requests/s of each minute
    price: np.ndarray  # (E, n + 1, K) USD/hour in force from each tick
    gap: np.ndarray  # (E, n + 1) bool: the tick shows no metrics
    avail: np.ndarray  # (E, n + 1, Z) bool: spot on offer at the tick
    launchable: np.ndarray  # (E, n + 1, K) bool: a launch would succeed at the tick
    failure_p: np.ndarray  # (E,) failure probability per node-minute
    load_feature: np.ndarray  # (E, n + 1) feature 0
    forecast: np.ndarray  # (E, n + 1) feature 2
    day_sin: np.ndarray  # (E, n + 1) feature 8
    day_cos: np.ndarray  # (E, n + 1) feature 9
    plan: np.ndarray  # (E, n + 1) planned pods; nan before any load was seen
    spot_features: np.ndarray  # (E, n + 1, S, 4) float32: price ratio, on offer, unavailable, drops
    events: list[np.ndarray]  # per fleet (N, 4): minute, seconds into it, AZ, share (nan: outage)
    event_first: np.ndarray = field(init=False)  # (E, n + 1) index of a minute's first event
    event_at: np.ndarray = field(init=False)  # (N,) all fleets' events, fleet by fleet
    event_az: np.ndarray = field(init=False)
    event_share: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self._index()

    def _index(self) -> None:
        """The events of all fleets in one table; fleet ``e``'s events of minute ``m``
        are rows ``event_first[e, m]`` to ``event_first[e, m + 1]``."""
        ticks = np.arange(self.gap.shape[1])
        sizes = np.array([len(ev) for ev in self.events])
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self.event_first = np.stack(
            [
                off + np.searchsorted(ev[:, 0], ticks)
                for ev, off in zip(self.events, offsets, strict=True)
            ]
        )
        table = np.concatenate(self.events) if sizes.sum() else np.zeros((0, 4))
        self.event_at, self.event_az = table[:, 1], table[:, 2].astype(np.int64)
        self.event_share = table[:, 3]

    def assign(self, rows: np.ndarray, other: MarketArrays) -> None:
        """Replace fleets ``rows`` with ``other``'s (same ``n``)."""
        for f in fields(self):
            if f.init and f.name != "events":
                getattr(self, f.name)[rows] = getattr(other, f.name)
        for row, ev in zip(rows.tolist(), other.events, strict=True):
            self.events[row] = ev
        self._index()


def _clip01(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0.0), 1.0)


def _forward_fill(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Each row of ``values`` ``(E, n)`` prefixed with ``first`` ``(E,)``, every nan
    replaced by the last number before it in its row: ``(E, n + 1)``."""
    seq = np.concatenate((first[:, None], values), axis=1)
    idx = np.where(np.isnan(seq), 0, np.arange(seq.shape[1]))
    np.maximum.accumulate(idx, axis=1, out=idx)
    return np.take_along_axis(seq, idx, axis=1)


def _market_events(market: Market, c: MarketConstants) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Availability at every tick, and the reclaims and outages in time order (rows:
    minute, seconds into it, AZ, share of the AZ's spot nodes or nan for an outage), as
    :meth:`agents.cost.fleet.FleetModel._run_until` processes the market's events."""
    n, z_of = c.n_minutes, {az: i for i, az in enumerate(c.azs)}
    events: list[tuple[float, int, str, tuple[int, ...], float]] = []
    for t, az, up in market.transitions:
        events.append((t, len(events), "up" if up else "drop", (z_of[az],), 0.0))
    for t0, dur, storm_azs, frac in market.storms:
        if t0 + dur > 0 and t0 < n * 60.0:
            zs = tuple(z_of[a] for a in storm_azs if a in z_of)
            events.append((max(0.0, t0), len(events), "storm_on", zs, frac))
            events.append((t0 + dur, len(events), "storm_off", zs, 0.0))
    for t0, dur, az in market.outages:
        if t0 + dur > 0 and t0 < n * 60.0 and az in z_of:
            events.append((max(0.0, t0), len(events), "down", (z_of[az],), 0.0))
            events.append((t0 + dur, len(events), "az_up", (z_of[az],), 0.0))
    events.sort(key=lambda e: (e[0], e[1]))
    nz = len(c.azs)
    spot_up = np.array([market.available0.get(az, True) for az in c.azs])
    storm = np.zeros(nz, dtype=np.int64)
    down = np.zeros(nz, dtype=np.int64)
    hits: list[tuple[float, float, float, float]] = []
    times = [-1.0]
    states = [(spot_up & (storm == 0), down == 0)]
    for t, _, kind, zs, frac in events:
        if t >= n * 60.0:
            break
        m = int(t // 60.0)
        for z in zs:
            if kind in ("drop", "storm_on"):
                if kind == "drop":
                    spot_up[z] = False
                else:
                    storm[z] += 1
                share = market.reclaim_fraction if kind == "drop" else frac
                hits.append((m, t - 60.0 * m, z, share))
            elif kind == "up":
                spot_up[z] = True
            elif kind == "storm_off":
                storm[z] -= 1
            elif kind == "down":
                down[z] += 1
                hits.append((m, t - 60.0 * m, z, math.nan))
            else:
                down[z] -= 1
        times.append(t)
        states.append((spot_up & (storm == 0), down == 0))
    ticks = np.arange(n + 1) * 60.0
    which = np.searchsorted(np.array(times), ticks, side="left") - 1
    offer = np.array([s[0] for s in states])[which]
    az_up = np.array([s[1] for s in states])[which]
    launchable = az_up[:, c.slot_az] & (~c.is_spot | offer[:, c.slot_az])
    return offer, launchable, np.array(hits, dtype=np.float64).reshape(-1, 4)


def _load_arrays(markets: list[Market], c: MarketConstants) -> dict[str, np.ndarray]:
    """Everything that depends on the load alone, for all fleets at once."""
    n, deque_len = c.n_minutes, DAY_MIN + 1
    offered = np.array([m.offered_rps for m in markets], dtype=np.float64).reshape(-1, n)
    gaps = np.array([m.gaps for m in markets], dtype=bool).reshape(-1, n)
    hist_len = np.array([m.history_rps.size for m in markets])
    tail = np.full((len(markets), deque_len), np.nan)  # the history's last day, nan-padded
    for row, m in enumerate(markets):
        if m.history_rps.size:
            part = np.asarray(m.history_rps[-deque_len:], dtype=np.float64)
            tail[row, deque_len - part.size :] = part
    seen = np.where(gaps, np.nan, offered)
    # the feature tracker's last load (from the history on) and its load deque: the
    # history's tail, then the last load of every tick once one is known
    last = _forward_fill(seen, tail[:, -1])
    known = ~np.isnan(last[:, 1:])
    appended = np.concatenate(
        (np.zeros((len(markets), 1), dtype=np.int64), known.cumsum(axis=1)), 1
    )
    unknown = n - known.sum(axis=1)  # ticks before any load was known (a prefix)
    pick = np.minimum(1 + unknown[:, None] + np.arange(n), n)
    loads = np.concatenate((tail, np.take_along_axis(last, pick, axis=1)), axis=1)
    valid = (hist_len[:, None] + appended) >= deque_len
    base = np.take_along_axis(loads, appended, axis=1)  # the deque's oldest: 1 day ago
    ahead = np.take_along_axis(loads, appended + FORECAST_AHEAD_MIN, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        forecast = np.where(valid & (base > 0), _clip01(ahead / base / 2.0), 0.5)
    # the planner's window (its own last load starts unset, not from the history)
    planner = _forward_fill(seen, np.full(len(markets), np.nan))
    planner = np.where(np.isnan(planner), -np.inf, planner)
    padded = np.concatenate((np.full((len(markets), PLAN_WINDOW_MIN - 1), -np.inf), planner), 1)
    window_max = sliding_window_view(padded, PLAN_WINDOW_MIN, axis=1).max(axis=2)
    with np.errstate(invalid="ignore"):
        plan = np.ceil(window_max * (1.0 + PLAN_MARGIN) / c.pod_rate_rps - 1e-9)
    plan[~np.isfinite(window_max)] = np.nan
    plan[:, 0] = np.nan  # the planner observes nothing at t = 0
    day_s0 = np.array(
        [m.start.hour * 3600.0 + m.start.minute * 60.0 + m.start.second for m in markets]
    )
    angle = 2.0 * math.pi * ((day_s0[:, None] + np.arange(n + 1) * 60.0) % 86400.0) / 86400.0
    return {
        "offered": offered,
        "gap": np.concatenate((np.ones((len(markets), 1), dtype=bool), gaps), axis=1),
        "load_feature": _clip01(np.nan_to_num(last, nan=0.0) / c.cap_rps),
        "forecast": forecast,
        "day_sin": np.sin(angle),
        "day_cos": np.cos(angle),
        "plan": plan,
    }


def market_arrays(markets: list[Market], c: MarketConstants) -> MarketArrays:
    """The arrays of ``markets`` (one per fleet, each ``c.n_minutes`` long)."""
    for m in markets:
        if m.n_minutes != c.n_minutes:
            raise ValueError(f"market window of {m.n_minutes} minutes, expected {c.n_minutes}")
    stacked = _load_arrays(markets, c)
    timed = [_market_events(m, c) for m in markets]
    stacked["avail"] = np.stack([t[0] for t in timed])
    stacked["launchable"] = np.stack([t[1] for t in timed])
    events = [t[2] for t in timed]
    stacked["price"] = np.array([m.prices for m in markets], dtype=np.float64).transpose(0, 2, 1)
    stacked["failure_p"] = np.array([m.failure_rate_per_node_day / 86400.0 * 60.0 for m in markets])
    avail_spot = stacked["avail"][:, :, c.slot_az[c.spot]]  # (E, n + 1, S)
    unavailable = np.empty(avail_spot.shape)
    u = np.zeros(avail_spot[:, 0].shape)
    down = (~avail_spot).astype(np.float64)
    for i in range(avail_spot.shape[1]):
        u = u + (down[:, i] - u) / EWMA_MIN
        unavailable[:, i] = u
    drops = np.zeros(avail_spot.shape, dtype=np.int64)
    drops[:, 1:] = avail_spot[:, :-1] & ~avail_spot[:, 1:]
    window = int(DROP_WINDOW_S // 60.0)
    total = np.cumsum(drops, axis=1)
    recent = total.copy()
    recent[:, window + 1 :] -= total[:, : -window - 1]
    price_ratio = _clip01(stacked["price"][:, :, c.spot] / c.od_price_spot)
    spot_features = np.stack(
        (price_ratio, avail_spot.astype(np.float64), _clip01(unavailable), _clip01(recent / 6.0)),
        axis=-1,
    ).astype(np.float32)
    return MarketArrays(**stacked, spot_features=spot_features, events=events)
