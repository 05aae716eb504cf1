"""The detection-trade-off figure: the curve's numbers and the PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.security_plot import detection_curve, plot_detection


def test_detection_curve_by_hand() -> None:
    labels = np.asarray(["normal", "malicious", "normal", "suspicious", "malicious", "normal"])
    risk = np.asarray([0.1, 0.9, 0.6, 0.99, 0.4, 0.2])
    curve = detection_curve(labels, risk, threshold=0.5)
    # at 0.5: 1 of 2 malicious alerted, 1 of 3 normal; the suspicious event is left out
    assert curve.at_threshold == (1 / 3, 0.5)
    assert curve.fpr[0] == 0.0 and curve.recall[-1] == 1.0 and curve.fpr[-1] == 1.0
    assert (np.diff(curve.fpr) >= 0).all() and (np.diff(curve.recall) >= 0).all()
    # all malicious found only once every normal event above 0.4 is alerted too
    assert curve.fpr[np.argmax(curve.recall == 1.0)] == 1 / 3


def test_plot_detection_writes_a_png(tmp_path: Path) -> None:
    labels = np.asarray(["normal"] * 50 + ["malicious"] * 10)
    risk = np.r_[np.linspace(0.0, 0.5, 50), np.linspace(0.3, 1.0, 10)]
    curves = {"model": detection_curve(labels, risk, threshold=0.45)}
    path = plot_detection(curves, {"low": (0.02, 0.1)}, tmp_path / "d.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
