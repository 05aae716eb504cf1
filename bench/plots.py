"""Plots of a replay, for people who would rather look than read.

``overview.png`` in a replay's ``--out`` folder, drawn from the folder alone (telemetry,
``summary.json`` and ``run_context.json``), minute by minute over hours since the start:

1. load (requests/s): the offered load as a line on top, the served load as an area under
   it (the unserved part, queued or dropped, shaded between them) and the serving
   capacity at the target utilisation and at saturation;
2. dropped requests per minute;
3. running nodes per pool;
4. events: spot interruption notices, node failures, failed launches, anomaly and
   security alerts, one row each, and a row per spot AZ for when it had no spot capacity;
5. p95 latency (log scale) against the SLO target;
6. cumulative cost (USD), on-demand and spot stacked (each billing line item accrued
   evenly over its period).

Every fault window (AZ outages, spot storms, telemetry gaps) is shaded across every panel
and labelled on the first; the stretches without spot capacity in an AZ (a replayed
availability trace) are bars in the events panel, a row per AZ; instants (regime changes,
attack campaigns, new principals, injected challengers) are vertical lines. Minutes inside
a telemetry gap have no metrics: their lines break there. The same run folder always gives
the same PNG bytes (no timestamps in the file).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.run_context import INSTANT_KINDS, WINDOW_KINDS, FaultSpan, RunContext, read_run_context
from sim.errors import InputError

PANELS: tuple[str, ...] = ("load", "dropped", "nodes", "events", "latency", "cost")
"""The overview's panels, top to bottom."""

OFFERED = "#1a1a1a"
SERVED = "#7fb3e0"
UNSERVED = "#e377c2"
CAPACITY = "#2ca02c"
DROPPED = "#c0001a"
P95 = "#1f5fa6"
SLO = "#d62728"
POOL_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3")
COST_COLOURS = {"on-demand": "#4c72b0", "spot": "#dd8452"}

FAULT_STYLE: dict[str, dict[str, Any]] = {
    "az_outage": {"colour": "#d62728", "alpha": 0.18, "hatch": None, "name": "AZ outage"},
    "spot_storm": {"colour": "#ff7f0e", "alpha": 0.22, "hatch": None, "name": "spot storm"},
    "spot_unavailable": {
        "colour": "#bcbd22",
        "alpha": 0.5,
        "hatch": None,
        "name": "no spot capacity (events panel)",
    },
    "telemetry_gap": {"colour": "#555555", "alpha": 0.35, "hatch": "//", "name": "telemetry gap"},
    "workload_shift": {"colour": "#9467bd", "name": "workload regime change"},
    "spot_price_shift": {"colour": "#8c564b", "name": "spot price regime change"},
    "attack_campaign": {"colour": "#000000", "name": "attack campaign starts"},
    "principal_arrival": {"colour": "#17becf", "name": "new principal arrives"},
    "injected_challenger": {"colour": "#e377c2", "name": "bad challenger injected"},
}

EVENT_ROWS: tuple[tuple[str, str, str, str], ...] = (
    # (events.event, row label, marker, colour)
    ("interruption_notice", "spot interruption", "v", "#ff7f0e"),
    ("failed", "node failure", "x", "#d62728"),
    ("launch_failed", "launch failed", "|", "#8c564b"),
    ("anomaly_alert", "anomaly alert", "o", "#9467bd"),
    ("security_alert", "security alert", "D", "#000000"),
)

BIN_MINUTES: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 240, 720, 1440)
"""Bin widths (minutes) the series are averaged over: the smallest giving at most
:data:`MAX_POINTS` points (one-minute bins up to a one-day replay, ten for a week)."""
MAX_POINTS = 1500

MAX_LABELLED = 8
"""A fault kind with more windows than this is named in the legend only, not on each one."""


@dataclass(frozen=True)
class OverviewData:
    """Everything the overview draws, read from one run folder (times in hours)."""

    summary: dict[str, Any]
    context: RunContext
    minutes: pd.DataFrame  # index: minute since start; offered/served/capacity rps, dropped/min
    nodes: pd.DataFrame  # index: minute; one column per pool (running nodes)
    events: dict[str, np.ndarray]  # events.event -> hours of each event
    cost: pd.DataFrame  # hour (period end), cumulative USD per capacity type

    @property
    def hours(self) -> float:
        """The replay's length in hours."""
        return float(self.summary["sim_days"]) * 24.0

    @property
    def bin_min(self) -> int:
        """Minutes per plotted point (see :data:`BIN_MINUTES`)."""
        n = len(self.minutes)
        return next((b for b in BIN_MINUTES if n / b <= MAX_POINTS), BIN_MINUTES[-1])

    def binned(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(series, nodes) per bin of :attr:`bin_min` minutes, indexed by the bin's middle
        (hours): rates, capacity and nodes averaged, dropped requests summed, p95 the worst
        minute's. A bin wholly inside a telemetry gap is NaN."""
        b = self.bin_min
        key = self.minutes.index // b
        m = self.minutes.groupby(key)
        series = pd.DataFrame(
            {
                "offered_rps": m.offered_rps.mean(),
                "served_rps": m.served_rps.mean(),
                "capacity_target_rps": m.capacity_target_rps.mean(),
                "capacity_max_rps": m.capacity_max_rps.mean(),
                "dropped": m.dropped_per_min.sum(min_count=1),
                "p95_ms": m.p95_ms.max(),
            }
        )
        nodes = self.nodes.groupby(key).mean()
        middle = pd.Index((series.index.to_numpy() + 0.5) * b / 60.0, name="hour")
        series.index = middle
        nodes.index = middle
        return series, nodes


def read_overview_data(run_dir: Path) -> OverviewData:
    """Read what the overview draws from ``run_dir`` (a ``replay --out`` folder)."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise InputError(run_dir, "summary.json", "missing", "a folder written by replay --out")
    return overview_data(
        json.loads(summary_path.read_text()),
        read_run_context(run_dir),
        metrics=pd.read_parquet(run_dir / "metrics.parquet"),
        events=pd.read_parquet(run_dir / "events.parquet", columns=["sim_time_s", "event"]),
        billing=pd.read_parquet(
            run_dir / "billing.parquet",
            columns=["period_start", "period_end", "capacity_type", "cost_usd"],
        ),
    )


def overview_data(
    summary: dict[str, Any],
    context: RunContext,
    *,
    metrics: pd.DataFrame,
    events: pd.DataFrame,
    billing: pd.DataFrame,
) -> OverviewData:
    """What the overview draws, from a run's summary, context and telemetry tables (the
    ``metrics``, ``events`` and ``billing`` streams, as written or held in memory)."""
    n_minutes = max(1, round(float(summary["sim_days"]) * 1440))
    metrics = metrics.assign(minute=(metrics["sim_time_s"] // 60).astype(int))
    grid = pd.RangeIndex(n_minutes, name="minute")
    per_minute = metrics.groupby("minute").agg(
        offered_rps=("request_rate_rps", "sum"),
        served_rps=("served_rps", "sum"),
        dropped_per_min=("dropped_requests", "sum"),
        pods=("pod_count", "sum"),
        p95_ms=("response_time_p95_ms", "max"),
    )
    per_minute = per_minute.reindex(grid)  # telemetry gaps become NaN: lines break there
    per_minute["capacity_target_rps"] = per_minute.pods * context.pod_rps_at_target
    per_minute["capacity_max_rps"] = per_minute.pods * context.pod_rps_max
    nodes = metrics.pivot_table(
        index="minute", columns="pool", values="node_count", aggfunc="sum"
    ).reindex(grid)
    event_hours = {
        kind: np.sort(events.loc[events.event == kind, "sim_time_s"].to_numpy()) / 3600
        for kind, *_ in EVENT_ROWS
    }
    return OverviewData(
        summary, context, per_minute, nodes, event_hours, _cumulative_cost(billing, summary)
    )


def _cumulative_cost(billing: pd.DataFrame, summary: dict[str, Any]) -> pd.DataFrame:
    """Cumulative USD per capacity type, every minute (index: hours since the start).

    Each line item's cost accrues evenly over its period (its price is the one in force
    over it), so the curve is exact at every period boundary and its end is the bill."""
    start = pd.Timestamp(summary["start"])
    grid_h = np.arange(round(float(summary["sim_days"]) * 1440) + 1) / 60.0
    columns = {}
    for kind in COST_COLOURS:
        items = billing[billing.capacity_type == kind]
        begin = (items.period_start - start).dt.total_seconds().to_numpy() / 3600.0
        end = (items.period_end - start).dt.total_seconds().to_numpy() / 3600.0
        usd = items.cost_usd.to_numpy()
        # the spend rate (USD/h) steps up at each period's start and down at its end
        rate = usd / np.maximum(end - begin, 1e-9)
        times = np.concatenate([begin, end])
        order = np.argsort(times, kind="stable")
        times = times[order]
        rates = np.cumsum(np.concatenate([rate, -rate])[order])
        spent = np.concatenate([[0.0], np.cumsum(rates[:-1] * np.diff(times))])
        columns[kind] = np.interp(grid_h, times, spent) if times.size else np.zeros_like(grid_h)
    return pd.DataFrame(columns, index=pd.Index(grid_h, name="hour"))


def render_overview(data: OverviewData) -> tuple[Figure, dict[str, Axes]]:
    """The overview figure of ``data`` and its panels by name (see :data:`PANELS`)."""
    n_spot_rows = len(spot_outage_rows(data.context.faults))
    fig, axes_list = plt.subplots(
        len(PANELS),
        1,
        figsize=(14, 15),
        sharex=True,
        gridspec_kw={"height_ratios": [3.2, 1.3, 1.6, 1.3 + 0.25 * n_spot_rows, 1.7, 1.6]},
        layout="constrained",
    )
    axes = dict(zip(PANELS, axes_list, strict=True))
    m, nodes = data.binned()
    t = m.index.to_numpy()
    per = "minute" if data.bin_min == 1 else f"{data.bin_min} min"
    _draw_load(axes["load"], t, m, per)
    _draw_dropped(axes["dropped"], t, m, per)
    _draw_nodes(axes["nodes"], t, nodes, per)
    _draw_events(axes["events"], data.events, data.context.faults)
    _draw_latency(axes["latency"], t, m, data.context.slo_p95_latency_ms, per)
    _draw_cost(axes["cost"], data.cost, data.summary)
    for ax in axes.values():
        _shade_faults(ax, data.context.faults)
        ax.grid(True, axis="both", color="#dddddd", lw=0.6)
        ax.set_xlim(0, data.hours)
        ax.xaxis.set_major_locator(matplotlib.ticker.MultipleLocator(_tick_hours(data.hours)))
    _label_faults(axes["load"], data.context.faults)
    start = data.summary["start"].replace("T", " ")
    axes["cost"].set_xlabel(f"hours since the replay start ({start} UTC)")
    s = data.summary
    fig.suptitle(
        f"{s['scenario']}  ·  policy {s['policy']}  ·  seed {s['seed']}\n"
        f"cost ${s['cost_usd']:,.2f}  ·  SLO attainment {s['slo_attainment']:.2%}  ·  "
        f"{s['dropped_requests']:,.0f} requests dropped of {s['offered_requests']:,.0f}  ·  "
        f"{s['interruptions']} interruptions, {s['node_failures']} node failures",
        fontsize=12,
    )
    handles = _fault_legend_handles(data.context.faults)
    if handles:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=min(len(handles), 5),
            fontsize=9,
            title="faults",
            title_fontsize=9,
        )
    return fig, axes


def plot_overview(run_dir: Path) -> Path:
    """Write ``run_dir/overview.png`` from the folder's telemetry; returns its path."""
    fig, _ = render_overview(read_overview_data(run_dir))
    path = run_dir / "overview.png"
    fig.savefig(path, dpi=OVERVIEW_DPI, metadata={"Software": None})
    plt.close(fig)
    return path


OVERVIEW_DPI = 100


def _tick_hours(hours: float) -> float:
    """A major tick spacing (hours) giving 6 to 14 ticks: 1, 2, 3, 6, 12 h or whole days."""
    for step in (1, 2, 3, 6, 12, 24, 48, 96, 168):
        if hours / step <= 14:
            return float(step)
    return 24.0 * 7 * max(1, round(hours / (14 * 168)))


def _legend(ax: Axes, **kwargs: Any) -> None:
    """The panel's legend, right of it (so that it never hides data or fault labels)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, borderaxespad=0, **kwargs)


def _draw_load(ax: Axes, t: np.ndarray, m: pd.DataFrame, per: str) -> None:
    ax.fill_between(t, 0, m.served_rps, color=SERVED, lw=0, label="served")
    ax.fill_between(
        t,
        m.served_rps,
        m.offered_rps,
        where=(m.offered_rps > m.served_rps).to_numpy(),
        color=UNSERVED,
        lw=0,
        interpolate=True,
        label="unserved: queued or dropped",
    )
    ax.plot(t, m.capacity_max_rps, color=CAPACITY, lw=0.9, ls=":", label="capacity at saturation")
    ax.plot(t, m.capacity_target_rps, color=CAPACITY, lw=1.3, ls="--", label="capacity at target")
    ax.plot(t, m.offered_rps, color=OFFERED, lw=1.0, label="offered")
    ax.set_ylabel(f"requests/s\n(mean per {per})")
    ax.set_ylim(
        bottom=0, top=float(np.nanmax(m[["offered_rps", "capacity_max_rps"]], initial=1)) * 1.12
    )
    _legend(ax)


def _draw_dropped(ax: Axes, t: np.ndarray, m: pd.DataFrame, per: str) -> None:
    dropped = m.dropped.fillna(0.0).to_numpy()
    total = float(dropped.sum())
    ax.set_ylabel(f"dropped requests\nper {per}")
    if total == 0:
        ax.text(0.5, 0.5, "no request dropped", transform=ax.transAxes, ha="center", va="center")
        ax.set_ylim(0, 1)
        ax.set_yticks([0])
        return
    ax.fill_between(t, 0, dropped, color=DROPPED, lw=0, step="mid")
    ax.plot(t, dropped, color=DROPPED, lw=1.2, drawstyle="steps-mid")
    ax.set_ylim(bottom=0, top=float(dropped.max()) * 1.15)
    _legend(ax, handles=[Patch(color=DROPPED, label=f"dropped\n({total:,.0f} in all)")])


def pool_colours(n: int) -> list[str]:
    """``n`` distinct colours: the house six, or matplotlib's tab20 for more pools (a pool
    that allows several instance types is one simulated pool per type)."""
    if n <= len(POOL_COLOURS):
        return list(POOL_COLOURS[:n])
    import matplotlib as mpl

    cmap = mpl.colormaps["tab20"]
    return [mpl.colors.to_hex(cmap(i % 20)) for i in range(n)]


def _draw_nodes(ax: Axes, t: np.ndarray, nodes: pd.DataFrame, per: str) -> None:
    used = [c for c in nodes.columns if (nodes[c].to_numpy(dtype=float) > 0).any()]
    columns = used or list(nodes.columns)  # pools that never ran a node are left out
    colours = pool_colours(len(columns))
    values = [nodes[c].to_numpy(dtype=float) for c in columns]
    ax.stackplot(t, *values, labels=[f"{c} pool" for c in columns], colors=colours, alpha=0.85)
    ax.set_ylabel(f"running nodes\n(mean per {per})")
    ax.set_ylim(bottom=0)
    _legend(ax)


def spot_outage_rows(faults: Sequence[FaultSpan]) -> dict[str, list[tuple[float, float]]]:
    """AZ -> its ``spot_unavailable`` windows as (start, width) in hours: drawn as bars in
    the events panel, one row per AZ (shading them across every panel would hide the
    rest: a replayed trace can lack capacity most of the time)."""
    rows: dict[str, list[tuple[float, float]]] = {}
    for f in faults:
        if f.kind == "spot_unavailable":
            rows.setdefault(f.azs[0], []).append((f.start_h, f.end_h - f.start_h))
    return dict(sorted(rows.items()))


def _draw_events(ax: Axes, events: dict[str, np.ndarray], faults: Sequence[FaultSpan]) -> None:
    labels = []
    for row, (kind, label, marker, colour) in enumerate(EVENT_ROWS):
        times = events.get(kind, np.empty(0))
        ax.plot(
            times,
            np.full(times.size, row),
            ls="none",
            marker=marker,
            color=colour,
            ms=6,
            mew=1.4,
            alpha=0.8,
        )
        labels.append(f"{label} ({times.size})")
    style = FAULT_STYLE["spot_unavailable"]
    for row, (az, bars) in enumerate(spot_outage_rows(faults).items(), start=len(EVENT_ROWS)):
        ax.broken_barh(
            bars, (row - 0.3, 0.6), facecolors=style["colour"], gid=f"spot_unavailable:{az}"
        )
        labels.append(f"no spot capacity {az}")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.4, -0.6)


def _draw_latency(ax: Axes, t: np.ndarray, m: pd.DataFrame, slo_ms: float, per: str) -> None:
    label = "p95 latency" if per == "minute" else f"p95 latency\n(worst minute per {per})"
    ax.plot(t, m.p95_ms, color=P95, lw=0.9, label=label)
    ax.axhline(slo_ms, color=SLO, lw=1.3, ls="--", label=f"SLO p95 {slo_ms:g} ms")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("p95 latency (ms)")
    _legend(ax)


def _draw_cost(ax: Axes, cost: pd.DataFrame, summary: dict[str, Any]) -> None:
    hours = cost.index.to_numpy()
    totals = {"on-demand": summary["on_demand_cost_usd"], "spot": summary["spot_cost_usd"]}
    kinds = [c for c in COST_COLOURS if totals[c] > 0] or ["on-demand"]
    ax.stackplot(
        hours,
        *(cost[c].to_numpy() for c in kinds),
        labels=[f"{c} (${totals[c]:,.2f})" for c in kinds],
        colors=[COST_COLOURS[c] for c in kinds],
        alpha=0.85,
    )
    ax.set_ylabel("cumulative\ncost (USD)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("${x:,.0f}"))
    ax.set_ylim(bottom=0)
    _legend(ax)


def _shade_faults(ax: Axes, faults: Sequence[FaultSpan]) -> None:
    for f in faults:
        style = FAULT_STYLE[f.kind]
        gid = f"fault:{f.kind}:{f.start_h:g}:{f.end_h:g}"  # tests find the shading by it
        if f.kind == "spot_unavailable":
            continue  # bars in the events panel (see spot_outage_rows)
        if f.kind in WINDOW_KINDS:
            ax.axvspan(
                f.start_h,
                f.end_h,
                gid=gid,
                facecolor=style["colour"],
                alpha=style["alpha"],
                hatch=style["hatch"],
                edgecolor=style["colour"] if style["hatch"] else "none",
                lw=0.8 if style["hatch"] else 0,
                zorder=0,
            )
        else:
            ax.axvline(f.start_h, color=style["colour"], lw=1.2, ls="-.", zorder=3, gid=gid)


def _label_faults(ax: Axes, faults: Sequence[FaultSpan]) -> None:
    """Name each fault at its start, at the top of ``ax`` (kinds with many windows skipped)."""
    counts = {kind: sum(f.kind == kind for f in faults) for kind in FAULT_STYLE}
    labelled = [f for f in faults if counts[f.kind] <= MAX_LABELLED]
    left, right = ax.get_xlim()
    for i, f in enumerate(labelled):
        late = f.start_h > left + 0.7 * (right - left)  # written leftwards, inside the panel
        ax.annotate(
            f.label,
            xy=(f.start_h, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-3 if late else 3, -12 - 11 * (i % 3)),  # staggered: neighbours apart
            textcoords="offset points",
            ha="right" if late else "left",
            fontsize=8,
            color=FAULT_STYLE[f.kind]["colour"],
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            zorder=5,
        )


def _fault_legend_handles(faults: Sequence[FaultSpan]) -> list[Patch | Line2D]:
    handles: list[Patch | Line2D] = []
    for kind in (*WINDOW_KINDS, *INSTANT_KINDS):
        n = sum(f.kind == kind for f in faults)
        if n == 0:
            continue
        style = FAULT_STYLE[kind]
        label = f"{style['name']} ({n})"
        if kind in WINDOW_KINDS:
            handles.append(
                Patch(
                    facecolor=style["colour"],
                    alpha=style["alpha"] * 2,
                    hatch=style["hatch"],
                    label=label,
                )
            )
        else:
            handles.append(Line2D([], [], color=style["colour"], ls="-.", label=label))
    return handles


if __name__ == "__main__":  # python -m bench.plots RUN_DIR: redraw a run folder's overview
    try:
        print(plot_overview(Path(sys.argv[1])))
    except InputError as exc:
        print(f"opsbench: error: {exc.one_line()}", file=sys.stderr)
        sys.exit(2)
