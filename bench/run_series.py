"""A replay's time series, binned for the report (:class:`~bench.report_data.RunSeries`).

Built from the same per-minute frame as ``replay --out``'s overview
(:func:`bench.plots.overview_data`), held in memory instead of read from Parquet: offered
and served requests/s and the capacity at the target utilisation averaged per bin, and the
cumulative spend (USD, all capacity types) at each bin's end. Bins are the smallest of
:data:`bench.plots.BIN_MINUTES` that keep a series within :data:`MAX_POINTS` points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.plots import BIN_MINUTES, overview_data
from bench.report_data import RunSeries
from bench.run_context import run_context
from sim.telemetry import MemorySink

MAX_POINTS = 300
"""At most this many points per series (a one-day replay in 5-minute bins)."""


def _rounded(values: np.ndarray, digits: int) -> tuple[float, ...]:
    """Finite values rounded (the series only feed plots); a gap stays NaN."""
    return tuple(float(v) for v in np.round(values.astype(float), digits))


def series_from_memory(sink: MemorySink, summary: dict[str, Any], world: Any) -> RunSeries:
    """The binned series of a finished replay whose telemetry ``sink`` holds."""
    data = overview_data(
        summary,
        run_context(world),
        metrics=sink.table("metrics").to_pandas(),
        events=sink.table("events").select(["sim_time_s", "event"]).to_pandas(),
        billing=sink.table("billing")
        .select(["period_start", "period_end", "capacity_type", "cost_usd"])
        .to_pandas(),
    )
    n = len(data.minutes)
    bin_min = next((b for b in BIN_MINUTES if n / b <= MAX_POINTS), BIN_MINUTES[-1])
    key = data.minutes.index // bin_min
    grouped = data.minutes.groupby(key)
    n_bins = int(key.max()) + 1
    ends_h = np.minimum((np.arange(n_bins) + 1) * bin_min, n) / 60.0
    spent = data.cost.sum(axis=1)
    cost = np.interp(ends_h, spent.index.to_numpy(), spent.to_numpy())
    return RunSeries(
        scenario=summary["scenario"],
        policy=summary["policy"],
        seed=summary["seed"],
        bin_min=bin_min,
        hours=_rounded((np.arange(n_bins) + 0.5) * bin_min / 60.0, 4),
        offered_rps=_rounded(grouped.offered_rps.mean().to_numpy(), 3),
        served_rps=_rounded(grouped.served_rps.mean().to_numpy(), 3),
        capacity_rps=_rounded(grouped.capacity_target_rps.mean().to_numpy(), 3),
        cost_usd=_rounded(cost, 4),
    )
