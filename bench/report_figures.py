"""The figures of ``report.html`` (matplotlib; :mod:`bench.report_svg` makes them SVG).

Every function takes the report's data and returns a :class:`~matplotlib.figure.Figure`;
build them under ``matplotlib.rc_context(bench.report_svg.REPORT_RC)``. Long series are
thinned to :data:`MAX_POINTS` points per line (the SVG stays small): rates and costs by
block means and block ends, the NAB example by each block's minimum and maximum (so a
spike survives).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter, PercentFormatter, StrMethodFormatter

from bench.plots import CAPACITY, OFFERED, SERVED, UNSERVED
from bench.report_data import LatencySamples, NabExample, RunSeries, SecurityCurve
from bench.report_summary import BASELINE_POLICY, BOUND_POLICY, ScenarioSavings, pareto_front
from bench.security_plot import FPR_FLOOR
from sim.errors import InputError

MAX_POINTS = 240
"""Points per plotted line at most (a panel is a few hundred pixels wide)."""
WIDTH_IN = 10.0
"""Every figure's width (inches); the page scales it to its column."""
GRID = "#e3e3e3"
WINDOW = "#f2b134"
ALERT = "#c0001a"
TRANSPORT_COLOURS = {"in-process": "#4c72b0", "http": "#dd8452"}
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_USD = FuncFormatter(lambda x, _: f"${x:,.0f}")


def policy_colours(policies: Sequence[str]) -> dict[str, str]:
    """A colour per policy (tab20, in order; repeats after twenty)."""
    palette = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]
    order = list(palette[0::2]) + list(palette[1::2])  # the strong ten first
    return {p: order[i % len(order)] for i, p in enumerate(policies)}


def block_starts(n: int, max_points: int = MAX_POINTS) -> IntArray:
    """Start indices of the blocks that thin ``n`` points to at most ``max_points``."""
    size = max(1, math.ceil(n / max_points))
    return np.arange(0, n, size)


def block_means(values: Sequence[float], max_points: int = MAX_POINTS) -> FloatArray:
    """``values`` averaged over consecutive blocks (at most ``max_points`` of them)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return array
    starts = block_starts(array.size, max_points)
    counts = np.diff(np.append(starts, array.size))
    return np.add.reduceat(array, starts) / counts


def block_ends(values: Sequence[float], max_points: int = MAX_POINTS) -> FloatArray:
    """Each block's last value (for cumulative series)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return array
    starts = block_starts(array.size, max_points)
    return array[np.append(starts[1:], array.size) - 1]


def envelope(
    values: Sequence[float], max_points: int = MAX_POINTS
) -> tuple[FloatArray, FloatArray]:
    """(rows, values): each block's minimum and maximum in row order, at most
    ``max_points`` points (every point when there are fewer)."""
    array = np.asarray(values, dtype=float)
    rows = np.arange(array.size)
    if array.size <= max_points:
        return rows.astype(float), array
    starts = block_starts(array.size, max_points // 2)
    picked: list[int] = []
    for begin, end in zip(starts, np.append(starts[1:], array.size), strict=True):
        low = begin + int(np.argmin(array[begin:end]))
        high = begin + int(np.argmax(array[begin:end]))
        picked += sorted({low, high})
    index = np.asarray(picked)
    return index.astype(float), array[index]


def _grid(n: int, ncols: int, row_height_in: float, **kwargs: object) -> tuple[Figure, list[Axes]]:
    cols = max(1, min(ncols, n))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(WIDTH_IN, 0.9 + row_height_in * rows),
        squeeze=False,
        layout="constrained",
        **kwargs,  # type: ignore[arg-type]
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    for ax in flat[:n]:
        ax.grid(True, color=GRID, lw=0.6)
    return fig, flat[:n]


def _log_x(ax: Axes) -> None:
    """A log x axis labelled in plain numbers (the report's text is never mathtext)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def load_figure(series: Sequence[RunSeries]) -> Figure:
    """One scenario's load, a panel per policy (one seed each): offered load (a line on
    top), served load (an area under it, the unserved part shaded between them) and the
    serving capacity at the target utilisation (requests/s, over hours)."""
    fig, axes = _grid(len(series), 3, 1.7, sharex=True, sharey=True)
    for ax, s in zip(axes, series, strict=True):
        hours = block_means(s.hours)
        offered = block_means(s.offered_rps)
        served = block_means(s.served_rps)
        ax.fill_between(hours, 0, served, color=SERVED, lw=0)
        ax.fill_between(
            hours, served, offered, where=offered > served, color=UNSERVED, lw=0, interpolate=True
        )
        ax.plot(hours, block_means(s.capacity_rps), color=CAPACITY, lw=1.0, ls="--", zorder=3)
        ax.plot(hours, offered, color=OFFERED, lw=0.9, zorder=4)
        ax.set_title(f"{s.policy} (seed {s.seed})", fontsize=9)
    top = max((max(max(s.offered_rps), max(s.capacity_rps)) for s in series if s.hours), default=1)
    for ax in axes:
        ax.set_ylim(0, top * 1.08)  # after drawing: the panels share it
        ax.label_outer()
    span = max((s.bin_min * math.ceil(len(s.hours) / MAX_POINTS) for s in series), default=1)
    fig.supxlabel("hours since the replay start", fontsize=9)
    fig.supylabel(f"requests/s (mean per {span} min)", fontsize=9)
    fig.legend(
        handles=[
            Line2D([], [], color=OFFERED, lw=1.2, label="offered"),
            Patch(color=SERVED, label="served"),
            Patch(color=UNSERVED, label="unserved: queued or dropped"),
            Line2D([], [], color=CAPACITY, lw=1.2, ls="--", label="capacity at target"),
        ],
        loc="outside upper center",
        ncol=4,
        fontsize=8,
    )
    return fig


def cost_figure(series: Mapping[str, Sequence[RunSeries]], colours: Mapping[str, str]) -> Figure:
    """Cumulative cost (dollars) over hours, a panel per scenario, a line per policy."""
    fig, axes = _grid(len(series), 3, 2.2)
    shown: dict[str, str] = {}
    for ax, (scenario, runs) in zip(axes, series.items(), strict=True):
        for s in runs:
            ends = np.asarray(s.hours, dtype=float) + s.bin_min / 120.0
            ax.plot(block_ends(ends), block_ends(s.cost_usd), color=colours[s.policy], lw=1.2)
            shown.setdefault(s.policy, colours[s.policy])
        ax.set_title(scenario, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(_USD)
    fig.supxlabel("hours since the replay start", fontsize=9)
    fig.supylabel("cumulative cost (USD)", fontsize=9)
    _policy_legend(fig, shown)
    return fig


def _policy_legend(
    fig: Figure, colours: Mapping[str, str], marker: str | None = None, extra: Sequence[Line2D] = ()
) -> None:
    """One legend above the panels: a line (or a ``marker``) per policy, then ``extra``."""
    handles = [
        Line2D([], [], color=c, lw=0 if marker else 1.6, marker=marker, label=p)
        for p, c in colours.items()
    ] + list(extra)
    fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 5), fontsize=8)


def savings_figure(rows: Sequence[ScenarioSavings], colours: Mapping[str, str]) -> Figure:
    """Per scenario, each cost policy's saving against :data:`BASELINE_POLICY` (share of
    its cost, bars), :data:`BOUND_POLICY`'s saving as the bound (a dashed line) and, when
    measured, what the market allowed: the cheapest spot price's saving (a dotted line,
    labelled with the share of minutes spot was on offer)."""
    fig, axes = _grid(len(rows), 2, 0.5 + 0.3 * max((len(r.savings) for r in rows), default=1))
    for ax, row in zip(axes, rows, strict=True):
        names = [s.policy for s in row.savings]
        shares = [s.share for s in row.savings]
        y = np.arange(len(names))
        ax.barh(y, shares, color=[colours[n] for n in names], height=0.7)
        for yi, s in zip(y, row.savings, strict=True):
            ax.annotate(
                f" {s.share:.1%} (${s.usd:,.2f})",
                (max(s.share, 0.0), yi),
                va="center",
                fontsize=7,
            )
        ax.set_yticks(y, names, fontsize=8)
        ax.set_ylim(len(names) - 0.4, -0.6)
        ax.axvline(0, color="#555555", lw=0.8)
        if row.bound is not None:
            ax.axvline(row.bound.share, color="#000000", lw=1.2, ls="--")
            ax.annotate(
                f"{BOUND_POLICY} bound {row.bound.share:.1%}",
                (row.bound.share, 1.0),
                xycoords=("data", "axes fraction"),
                ha="right",
                va="bottom",
                fontsize=7,
            )
        market = ""
        if row.cheapest_spot_saving is not None:
            ax.axvline(row.cheapest_spot_saving, color="#555555", lw=1.0, ls=":")
            market = f"\n(dotted) cheapest spot {row.cheapest_spot_saving:.1%}"
            if row.spot_on_offer_share is not None:
                market += f", on offer {row.spot_on_offer_share:.0%} of the time"
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_title(
            f"{row.scenario} ({BASELINE_POLICY} ${row.baseline_usd:,.2f}){market}",
            fontsize=9,
            pad=12,
        )
        marks = [
            *shares,
            *([row.bound.share] if row.bound else []),
            *([row.cheapest_spot_saving] if row.cheapest_spot_saving is not None else []),
        ]
        low, high = min([0.0, *marks]), max([0.0, *marks])
        ax.set_xlim(low - 0.05, high + 0.25 * max(high - low, 0.1))
    fig.supxlabel(f"saving against the {BASELINE_POLICY} policy (mean over seeds)", fontsize=9)
    return fig


def pareto_figure(
    points: Mapping[str, Sequence[tuple[str, int, float, float]]], colours: Mapping[str, str]
) -> Figure:
    """Per scenario, SLO attainment against cost: a point per (policy, seed) from
    ``(policy, seed, cost_usd, slo_attainment)``, the Pareto front (lower cost, higher
    attainment) as a step line through its points."""
    fig, axes = _grid(len(points), 3, 2.4)
    shown: dict[str, str] = {}
    for ax, (scenario, rows) in zip(axes, points.items(), strict=True):
        for policy, _, cost, slo in rows:
            ax.plot(cost, slo, "o", color=colours[policy], ms=4.5, alpha=0.85)
            shown.setdefault(policy, colours[policy])
        front = [rows[i] for i in pareto_front([(r[2], r[3]) for r in rows])]
        ax.step([r[2] for r in front], [r[3] for r in front], where="post", color="#333333", lw=1.0)
        ax.plot([r[2] for r in front], [r[3] for r in front], "o", mfc="none", mec="#000000", ms=8)
        ax.set_title(scenario, fontsize=9)
        ax.xaxis.set_major_formatter(_USD)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    fig.supxlabel("cost (USD, lower is better)", fontsize=9)
    fig.supylabel("SLO attainment (higher is better)", fontsize=9)
    front_handle = Line2D(
        [], [], color="#333333", lw=1.0, marker="o", mfc="none", mec="#000000", label="Pareto front"
    )
    _policy_legend(fig, shown, marker="o", extra=[front_handle])
    return fig


def latency_figure(latency: Sequence[LatencySamples]) -> Figure:
    """Per model, the histogram of its decision's wall time (milliseconds, log axis), one
    per transport (in-process, http), on shared log-spaced bins."""
    models = list(dict.fromkeys(s.model for s in latency))
    fig, axes = _grid(len(models), 2, 2.0)
    for ax, model in zip(axes, models, strict=True):
        groups = [s for s in latency if s.model == model and s.samples_ms]
        every = np.concatenate([np.asarray(s.samples_ms, dtype=float) for s in groups] or [[1.0]])
        floor = 1e-3
        low = max(float(every.min()), floor)
        high = max(float(every.max()), low * 10)
        bins = np.geomspace(low, high, 40)
        for s in groups:
            samples = np.maximum(np.asarray(s.samples_ms, dtype=float), floor)
            ax.hist(
                samples,
                bins=bins,
                histtype="stepfilled",
                alpha=0.45,
                color=TRANSPORT_COLOURS[s.transport],
                edgecolor=TRANSPORT_COLOURS[s.transport],
                label=f"{s.transport}: n={samples.size}, p50 {np.median(samples):.3g} ms, "
                f"p99 {np.quantile(samples, 0.99):.3g} ms",
            )
        _log_x(ax)
        ax.set_title(model, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    fig.supxlabel("decision wall time per call (ms, log scale)", fontsize=9)
    fig.supylabel("calls", fontsize=9)
    return fig


def nab_figure(example: NabExample) -> Figure:
    """The NAB file's values over rows, its labelled windows shaded, the probationary
    period hatched and the detector's alerts marked."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.4), layout="constrained")
    ax.grid(True, color=GRID, lw=0.6)
    if example.probation_rows > 0:
        ax.axvspan(0, example.probation_rows, color="#999999", alpha=0.18, hatch="//", lw=0)
        ax.axvline(example.probation_rows, color="#555555", lw=1.0, ls=":")
    for start, end in example.windows:
        ax.axvspan(start, end, color=WINDOW, alpha=0.35, lw=0)
    rows, values = envelope(example.values, 4 * MAX_POINTS)
    ax.plot(rows, values, color=OFFERED, lw=0.8)
    alerts = np.asarray(example.alert_rows, dtype=int)
    alerts = alerts[(alerts >= 0) & (alerts < len(example.values))]
    if alerts.size:
        alert_values = np.asarray(example.values, dtype=float)[alerts]
        ax.plot(alerts, alert_values, "v", color=ALERT, ms=6, mec="#ffffff", mew=0.5)
    ax.set_xlim(0, max(len(example.values) - 1, 1))
    ax.set_xlabel("row")
    ax.set_ylabel("value")
    ax.set_title(f"{example.file}: detector {example.detector}", fontsize=9)
    ax.legend(
        handles=[
            Line2D([], [], color=OFFERED, lw=1.0, label="value"),
            Patch(color=WINDOW, alpha=0.35, label=f"labelled window ({len(example.windows)})"),
            Patch(
                facecolor="#999999",
                alpha=0.18,
                hatch="//",
                label=f"probationary period ({example.probation_rows} rows)",
            ),
            Line2D([], [], color=ALERT, lw=0, marker="v", label=f"alert ({alerts.size} rows)"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        fontsize=8,
    )
    return fig


def security_figure(curve: SecurityCurve) -> Figure:
    """Malicious recall against the false-positive rate (log axis; a zero rate drawn at
    ``FPR_FLOOR``), the shipped threshold's operating point and the Sigma levels.
    InputError when ``recall`` and ``fpr`` differ in length."""
    if len(curve.recall) != len(curve.fpr):
        raise InputError(
            "evaluations.security_curve",
            "recall",
            f"{len(curve.recall)} values for {len(curve.fpr)} fpr values",
            "one recall per fpr value",
        )
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.8), layout="constrained")
    ax.grid(True, color=GRID, lw=0.6, which="both")
    fpr = np.maximum(np.asarray(curve.fpr, dtype=float), FPR_FLOOR)
    rows, _ = envelope(curve.recall, 4 * MAX_POINTS)
    index = rows.astype(int)
    ax.step(fpr[index], np.asarray(curve.recall)[index], where="post", color="#1f5fa6", lw=1.4,
            label=f"{curve.model}")  # fmt: skip
    op_fpr, op_recall = curve.operating_point
    ax.plot(max(op_fpr, FPR_FLOOR), op_recall, "o", color="#1f5fa6", ms=8, mec="#000000",
            label=f"shipped threshold: FPR {op_fpr:.2%}, recall {op_recall:.1%}")  # fmt: skip
    for i, (level, s_fpr, s_recall) in enumerate(curve.sigma):
        ax.plot(max(s_fpr, FPR_FLOOR), s_recall, "s", color="#d62728", ms=6,
                label="Sigma-style rules" if i == 0 else None)  # fmt: skip
        ax.annotate(f" {level}", (max(s_fpr, FPR_FLOOR), s_recall), fontsize=7, va="center")
    _log_x(ax)
    ax.set_xlim(FPR_FLOOR * 0.8, 1.05)
    ax.set_ylim(-0.02, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(f"false-positive rate on normal events (log; 0 drawn at {FPR_FLOOR:g})")
    ax.set_ylabel("recall of malicious events")
    ax.set_title(f"{curve.model} on {curve.dataset}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return fig
