"""Evaluation of the security analyser on the shipped invictus recording.

``python -m bench.security_eval [--plot FILE.png]`` prints one JSON object with, on the
recording (2,900 events: 158 malicious, 58 suspicious, 2,684 normal):

* ``shipped``: the shipped model (trained on simulated accounts only, every technique
  of the catalogue) at its fixed threshold, plus the false positives it needs for 95%
  recall and for Sigma's recall, and per-technique detection;
* ``unseen_techniques``: the same, trained with every technique of the recording left
  out of the simulated campaigns (the detector has never seen those attacks);
* ``masked``: training and scoring with userAgent and resource names masked;
* ``time_split``: simulated accounts plus the recording's first 40% of time (labels
  included) for training, the alert threshold set on the out-of-fold benign events of
  every training account (the recording's first 40% is one of them), metrics on the
  last 60% only (behaviour state still runs over the whole recording);
* ``sigma``: the Sigma-style baseline at levels >= low / medium / high.

No reported event is ever used for training; the threshold is never chosen on the
reported events.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.security.analyser import SecurityAnalyser
from agents.security.events import mask_record, parse_time
from agents.security.metrics import detection_metrics, false_positives_at_recall
from agents.security.sigma import SigmaBaseline, load_sigma_rules
from bench.security_data import SECURITY_DATA, simulate_accounts
from bench.security_model import SHIPPED_SPEC, load_or_train
from bench.security_plot import DetectionCurve, detection_curve, plot_detection

EVENTS = SECURITY_DATA / "cloudtrail" / "invictus_stratus_events.jsonl"
LABELS = SECURITY_DATA / "cloudtrail" / "invictus_stratus_labels.csv"
SIGMA = SECURITY_DATA / "sigma_aws_cloudtrail_eventnames.csv"
SPLIT_SHARE = 0.4


def load_recording() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The recording's records and label rows (same order)."""
    records = [json.loads(line) for line in EVENTS.read_text().splitlines() if line.strip()]
    with LABELS.open(newline="") as fh:
        labels = list(csv.DictReader(fh))
    return records, labels


def scored(model: SecurityAnalyser, records: list[dict[str, Any]]) -> pd.DataFrame:
    """``model``'s assessment of every record, in the records' order."""
    frame, _ = model.analyse(records)
    return frame.sort_values("position")


def labels_of(rows: list[dict[str, str]]) -> np.ndarray:
    """The recording's labels (``malicious`` / ``suspicious`` / ``normal``) in order."""
    return np.asarray([r["label"] for r in rows], dtype=object)


def recording_metrics(model: SecurityAnalyser) -> dict[str, Any]:
    """:func:`~agents.security.metrics.detection_metrics` of ``model``'s alerts on the whole
    CloudTrail recording (never used in training)."""
    records, rows = load_recording()
    return detection_metrics(labels_of(rows), scored(model, records)["is_alert"].to_numpy())


def _block(
    model: SecurityAnalyser,
    records: list[dict[str, Any]],
    rows: list[dict[str, str]],
    keep: np.ndarray,
    sigma_levels: np.ndarray,
    curves: dict[str, DetectionCurve] | None = None,
    name: str = "",
) -> dict[str, Any]:
    frame = scored(model, records)
    risk = frame["risk_score"].to_numpy()
    alert = frame["is_alert"].to_numpy()
    y = labels_of(rows)
    if curves is not None:
        curves[name] = detection_curve(y[keep], risk[keep], model.threshold_)
    out = detection_metrics(y[keep], alert[keep])
    out["threshold"] = round(model.threshold_, 6)
    _, out["fp_at_recall_0.95"] = false_positives_at_recall(y[keep], risk[keep], 0.95)
    recall_at_1pct = 0.0
    normal_risk = np.sort(risk[keep & (y == "normal")])[::-1]
    budget = int(0.01 * len(normal_risk))
    t1 = normal_risk[budget] if budget < len(normal_risk) else 0.0
    mal = keep & (y == "malicious")
    if mal.any():
        recall_at_1pct = float((risk[mal] > t1).mean())
    out["recall_at_fpr_0.01"] = round(recall_at_1pct, 4)
    sig = detection_metrics(y[keep], sigma_levels[keep] >= 1)
    _, out["fp_at_sigma_low_recall"] = false_positives_at_recall(y[keep], risk[keep], sig["recall"])
    per: dict[str, list[int]] = {}
    for r, a, k in zip(rows, alert, keep, strict=True):
        if k and r["label"] == "malicious":
            hit = per.setdefault(r["stratus_technique"], [0, 0])
            hit[0] += int(a)
            hit[1] += 1
    out["per_technique"] = {t: f"{h}/{n}" for t, (h, n) in sorted(per.items())}
    out["techniques_detected"] = sum(1 for h, _ in per.values() if h > 0)
    out["techniques"] = len(per)
    out["top_false_positive_apis"] = Counter(
        r["eventName"]
        for r, a, k in zip(rows, alert, keep, strict=True)
        if k and a and r["label"] == "normal"
    ).most_common(5)
    return out


def evaluate(*, log: Any = None, plot: Path | None = None) -> dict[str, Any]:
    """Every figure of the module docstring; with ``plot``, the detection trade-off of
    every model and Sigma's levels is drawn to that PNG file (:mod:`bench.security_plot`)."""
    curves: dict[str, DetectionCurve] = {}
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    started = time.perf_counter()
    records, rows = load_recording()
    y = np.asarray([r["label"] for r in rows], dtype=object)
    all_rows = np.ones(len(rows), dtype=bool)
    sigma = SigmaBaseline(load_sigma_rules(SIGMA))
    levels = sigma.levels(records)
    result: dict[str, Any] = {
        "events": len(records),
        "labels": dict(Counter(y.tolist())),
        "sigma": {
            name: detection_metrics(y, levels >= lv)
            for name, lv in (("low", 1), ("medium", 2), ("high", 3))
        },
    }
    say("shipped model")
    shipped = load_or_train()
    result["shipped"] = _block(
        shipped, records, rows, all_rows, levels, curves, "shipped (sim only)"
    )
    say("unseen techniques")
    seen = {r["stratus_technique"] for r in rows if r["stratus_technique"]}
    unseen_spec = dataclasses.replace(SHIPPED_SPEC, exclude=tuple(sorted(seen)))
    result["unseen_techniques"] = _block(
        load_or_train(unseen_spec),
        records,
        rows,
        all_rows,
        levels,
        curves,
        "recording's techniques left out of training",
    )
    say("masked userAgent and resource names")
    masked = [mask_record(r) for r in records]
    result["masked"] = _block(
        load_or_train(masked=True),
        masked,
        rows,
        all_rows,
        levels,
        curves,
        "userAgent + resource names masked",
    )
    say("time-ordered split")
    times = np.asarray([parse_time(r["eventTime"]) for r in records])
    cut_s = times.min() + SPLIT_SHARE * (times.max() - times.min())
    train_part = times < cut_s
    sim_records, sim_labels = simulate_accounts(SHIPPED_SPEC)
    head = [r for r, k in zip(records, train_part, strict=True) if k]
    split_model = SecurityAnalyser().fit(
        sim_records + head, [lab.label for lab in sim_labels] + list(y[train_part])
    )
    block = _block(split_model, records, rows, ~train_part, levels)
    block["split_at"] = datetime.fromtimestamp(cut_s, tz=UTC).isoformat()
    block["train_recording_events"] = int(train_part.sum())
    block["test_events"] = int((~train_part).sum())
    block["sigma_low_on_test"] = detection_metrics(y[~train_part], levels[~train_part] >= 1)
    result["time_split"] = block
    result["wall_s"] = round(time.perf_counter() - started, 1)
    if plot is not None:
        sigma_points = {
            level: (float(m["fpr"]), float(m["recall"])) for level, m in result["sigma"].items()
        }
        result["plot"] = str(
            plot_detection(
                curves,
                sigma_points,
                plot,
                title=f"invictus recording: {len(records):,} events, "
                f"{int((y == 'malicious').sum())} malicious, {int((y == 'normal').sum()):,} normal",
            )
        )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Evaluate the security analyser.")
    parser.add_argument("--plot", type=Path, help="write the detection trade-off to this PNG")
    args = parser.parse_args()
    print(json.dumps(evaluate(plot=args.plot)))
