"""The detection trade-off on the evaluation recording, as a picture.

Recall of malicious events against the false-positive rate on normal events (log scale),
one curve per model as its alert threshold sweeps, the fixed-threshold operating point
marked on each, Sigma's levels as points, and the issue's target region (recall >= 0.95
at FPR <= 1%) shaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

FPR_FLOOR = 1e-4  # a zero false-positive rate is drawn here on the log axis


@dataclass(frozen=True, slots=True)
class DetectionCurve:
    """One model's sweep: ``fpr`` and ``recall`` per threshold, and its fixed point."""

    fpr: np.ndarray
    recall: np.ndarray
    at_threshold: tuple[float, float]  # (fpr, recall) at the shipped threshold


def detection_curve(
    labels: np.ndarray, risk: np.ndarray, threshold: float, *, every_threshold: bool = False
) -> DetectionCurve:
    """The curve of ``risk`` for malicious (positive) vs normal events; other labels
    (suspicious) are left out, as in the reported metrics. By default only the corners
    are kept; ``every_threshold`` keeps one point per distinct risk, so the operating
    point is one of them."""
    keep = (labels == "malicious") | (labels == "normal")
    y = labels[keep] == "malicious"
    fpr, tpr, _ = roc_curve(y, risk[keep], drop_intermediate=not every_threshold)
    alert = risk[keep] >= threshold
    point = (float(alert[~y].mean()), float(alert[y].mean()))
    return DetectionCurve(fpr, tpr, point)


def plot_detection(
    curves: Mapping[str, DetectionCurve],
    sigma: Mapping[str, tuple[float, float]],
    path: Path,
    *,
    title: str,
) -> Path:
    """Write the figure to ``path`` (PNG); ``sigma`` maps a level to (fpr, recall)."""
    fig, ax = plt.subplots(figsize=(9, 6), constrained_layout=True)
    ax.axvspan(FPR_FLOOR, 0.01, ymin=0.95, ymax=1.0, color="green", alpha=0.12)
    ax.text(1.2e-4, 0.955, "target: recall ≥ 0.95 at FPR ≤ 1%", fontsize=8, color="green")
    for name, c in curves.items():
        (line,) = ax.step(np.maximum(c.fpr, FPR_FLOOR), c.recall, where="post", label=name)
        fx, fy = c.at_threshold
        ax.plot(max(fx, FPR_FLOOR), fy, "o", color=line.get_color(), ms=7)
    for i, (level, (fx, fy)) in enumerate(sigma.items()):
        ax.plot(max(fx, FPR_FLOOR), fy, "kx", ms=8)
        ax.annotate(
            f"Sigma ≥ {level}",
            (max(fx, FPR_FLOOR), fy),
            fontsize=8,
            textcoords="offset points",
            xytext=(6, 4 + 11 * i),  # levels often share a point: stack the labels
        )
    ax.set_xscale("log")
    ax.set_xlim(FPR_FLOOR * 0.8, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false-positive rate on normal events (log; 0 drawn at 1e-4)")
    ax.set_ylabel("recall of malicious events")
    ax.set_title(title + "\n(dots: each model at its fixed threshold)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
