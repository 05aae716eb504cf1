"""Plots of a replay, for people who would rather look than read.

``overview.png`` in a replay's ``--out`` folder: offered load against serving
capacity at the target utilisation, nodes per pool and capacity type, and p95
latency against the SLO target, minute by minute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import pandas as pd


def plot_overview(run_dir: Path, summary: dict[str, Any], *, slo_p95_ms: float) -> Path:
    """Write ``run_dir/overview.png`` from the run's metrics; returns its path."""
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    by_minute = metrics.groupby("timestamp").agg(
        offered=("request_rate_rps", "sum"),
        served=("served_rps", "sum"),
        p95=("response_time_p95_ms", "max"),
    )
    nodes = metrics.pivot_table(index="timestamp", columns="pool", values="node_count")
    fig, axes = plt.subplots(3, 1, figsize=(12, 9), sharex=True, constrained_layout=True)
    load, fleet, latency = axes
    load.plot(by_minute.index, by_minute.offered, lw=0.8, label="offered")
    load.plot(by_minute.index, by_minute.served, lw=0.8, label="served", alpha=0.8)
    load.set_ylabel("requests/s")
    load.legend(loc="upper left")
    load.set_title(
        f"{summary['scenario']} / {summary['policy']} (seed {summary['seed']}): "
        f"${summary['cost_usd']:,.2f}, SLO attainment {summary['slo_attainment']:.2%}, "
        f"{summary['wasted_node_hours']:,.0f} wasted node-h"
    )
    fleet.stackplot(
        nodes.index,
        *(nodes[c].fillna(0).to_numpy() for c in nodes.columns),
        labels=list(nodes.columns),
        alpha=0.8,
    )
    fleet.set_ylabel("running nodes")
    fleet.legend(loc="upper left")
    latency.plot(by_minute.index, by_minute.p95, lw=0.6, label="p95")
    latency.axhline(slo_p95_ms, color="red", lw=1, ls="--", label=f"SLO {slo_p95_ms:g} ms")
    latency.set_yscale("log")
    latency.set_ylabel("ms")
    latency.legend(loc="upper left")
    path = run_dir / "overview.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
