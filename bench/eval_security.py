"""The ``security`` and ``hdfs`` sections of :func:`bench.evaluations.run_evaluations`.

``security``: the shipped CloudTrail analyser, the registered version of
``security-shipped`` this code trains (as the replays' audit watcher gets it:
:func:`bench.security_model.shipped_version`, registered from the cached training at
first use), scored on the shipped invictus recording (never used in training;
:mod:`bench.security_eval`), malicious the positive class and normal the negative one.
Rows (subject ``security-shipped``, dataset ``invictus``):

``precision``, ``recall``, ``f1``, ``fpr`` (share)
    at the shipped threshold (fixed when the model was fitted);
``accuracy`` (share)
    share of the malicious and normal events classified right at that threshold,
    ``(tp + tn) / (malicious + normal)``;
``suspicious_alert_share`` (share)
    share of the suspicious events alerted on (neither a hit nor a false alarm);
``fp_at_sigma_recall`` (count)
    false positives on normal events at the highest threshold of the model's risk score
    whose malicious recall reaches Sigma's (the baseline at level >= low);
``sigma_fp`` (count)
    Sigma's own false positives at level >= low;
``fp_vs_sigma`` (ratio)
    the first over the second (no row when Sigma has no false positive).

Sigma-style baseline rows (subject ``sigma>=low|medium|high``): ``recall``, ``fpr``,
``precision`` (share) of the rules at that level or above. The
:class:`~bench.report_data.SecurityCurve` holds recall against FPR at every distinct
risk score (so the operating point at the shipped threshold is one of its points) and
Sigma's three points. The retraining ablations of :func:`bench.security_eval.evaluate`
are not run here.

``hdfs``: the next-key model on its documented split
(:func:`bench.security_logs.evaluate_split`): ``precision``, ``recall``, ``f1`` (share)
of abnormal sessions, subject ``next-key``, dataset ``hdfs``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agents.lifecycle.registry import ModelRegistry, fetch_and_load
from agents.security.analyser import SecurityAnalyser
from agents.security.artefact import load_folder
from agents.security.metrics import detection_metrics, false_positives_at_recall
from agents.security.sigma import SigmaBaseline, load_sigma_rules
from bench.report_data import EvalRow, SecurityCurve, Unit
from bench.security_eval import SIGMA, labels_of, load_recording, scored
from bench.security_model import SECURITY_MODEL_NAME, default_model_dir, shipped_version
from bench.security_plot import detection_curve

DATASET = "invictus"
SIGMA_LEVELS = (("low", 1), ("medium", 2), ("high", 3))
"""Sigma rule levels, lowest first, and the level number :meth:`SigmaBaseline.levels`
gives them."""
CURVE_DIGITS = 6


def security_registry(models_dir: str | Path) -> ModelRegistry:
    """The registry the replays' audit watcher takes the shipped analyser from:
    ``models_dir``'s, or for the CLI's default the security model's default registry
    (``$OPSBENCH_MODEL_DIR`` if set; :func:`bench.runner.audit_registry`)."""
    from agents.lifecycle.open import open_registry
    from bench import runner

    return runner.audit_registry(models_dir) or open_registry(default_model_dir())


def shipped_analyser(
    models_dir: str | Path, progress: Callable[[str], None] | None = None
) -> SecurityAnalyser:
    """The registered shipped analyser (registered first if the registry lacks it)."""
    registry = security_registry(models_dir)
    version = shipped_version(registry, progress=progress)
    analyser: SecurityAnalyser = fetch_and_load(registry, version, load_folder)
    return analyser


def _row(subject: str, metric: str, value: float, unit: Unit) -> EvalRow:
    return EvalRow(
        section="security", subject=subject, dataset=DATASET, metric=metric,
        value=float(value), unit=unit,
    )  # fmt: skip


def security_evaluation(
    analyser: SecurityAnalyser,
    records: list[dict[str, Any]],
    labels: np.ndarray,
    *,
    model: str = SECURITY_MODEL_NAME,
) -> tuple[list[EvalRow], SecurityCurve]:
    """The rows and curve of the module docstring for ``analyser`` on ``records`` (labels
    ``malicious`` / ``suspicious`` / ``normal``, same order)."""
    frame = scored(analyser, records)
    risk = frame["risk_score"].to_numpy(dtype=np.float64)
    alert = frame["is_alert"].to_numpy(dtype=bool)
    found = detection_metrics(labels, alert)
    levels = SigmaBaseline(load_sigma_rules(SIGMA)).levels(records)
    sigma = {name: detection_metrics(labels, levels >= lv) for name, lv in SIGMA_LEVELS}
    _, fp_at_sigma = false_positives_at_recall(labels, risk, sigma["low"]["recall"])
    judged = found["malicious"] + found["normal"]
    rows = [_row(model, k, found[k], "share") for k in ("precision", "recall", "f1", "fpr")]
    rows.append(_row(model, "accuracy", (found["tp"] + found["tn"]) / judged, "share"))
    if found["suspicious"]:
        share = found["suspicious_alerted"] / found["suspicious"]
        rows.append(_row(model, "suspicious_alert_share", share, "share"))
    rows.append(_row(model, "fp_at_sigma_recall", fp_at_sigma, "count"))
    rows.append(_row(model, "sigma_fp", sigma["low"]["fp"], "count"))
    if sigma["low"]["fp"]:
        rows.append(_row(model, "fp_vs_sigma", fp_at_sigma / sigma["low"]["fp"], "ratio"))
    for name, m in sigma.items():
        rows += [_row(f"sigma>={name}", k, m[k], "share") for k in ("recall", "fpr", "precision")]
    curve = detection_curve(labels, risk, analyser.threshold_, every_threshold=True)
    return rows, SecurityCurve(
        model=model,
        dataset=DATASET,
        fpr=tuple(round(float(x), CURVE_DIGITS) for x in curve.fpr),
        recall=tuple(round(float(x), CURVE_DIGITS) for x in curve.recall),
        operating_point=(
            round(curve.at_threshold[0], CURVE_DIGITS),
            round(curve.at_threshold[1], CURVE_DIGITS),
        ),
        sigma=tuple((name, float(m["fpr"]), float(m["recall"])) for name, m in sigma.items()),
    )


def recording_evaluation(
    models_dir: str | Path, progress: Callable[[str], None] | None = None
) -> tuple[list[EvalRow], SecurityCurve]:
    """:func:`security_evaluation` of the registered shipped analyser on the recording."""
    analyser = shipped_analyser(models_dir, progress)
    records, label_rows = load_recording()
    return security_evaluation(analyser, records, labels_of(label_rows))


def hdfs_rows() -> list[EvalRow]:
    """The next-key model's precision, recall and F1 on the documented HDFS split."""
    from bench.security_logs import evaluate_split

    found = evaluate_split()
    return [
        EvalRow(section="hdfs", subject="next-key", dataset="hdfs", metric=k,
                value=float(found[k]), unit="share")
        for k in ("precision", "recall", "f1")
    ]  # fmt: skip
