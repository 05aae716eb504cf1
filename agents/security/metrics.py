"""Detection metrics: malicious is the positive class, normal the negative one, and
suspicious events are reported on their own (neither a miss nor a false alarm)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def detection_metrics(
    labels: Sequence[str] | np.ndarray, alerts: Sequence[bool] | np.ndarray
) -> dict[str, Any]:
    """Precision, recall, F1 and false-positive rate of ``alerts`` for malicious vs
    normal, plus the alert rate on suspicious events.

    Examples
    --------
    >>> m = detection_metrics(["malicious", "normal", "normal", "suspicious"],
    ...                       [True, True, False, True])
    >>> m["tp"], m["fp"], m["precision"], m["recall"], m["fpr"], m["suspicious_alerted"]
    (1, 1, 0.5, 1.0, 0.5, 1)
    """
    y = np.asarray(labels, dtype=object)
    a = np.asarray(alerts, dtype=bool)
    if len(y) != len(a):
        raise ValueError(f"{len(y)} labels but {len(a)} alerts")
    mal = y == "malicious"
    nor = y == "normal"
    sus = y == "suspicious"
    tp = int((a & mal).sum())
    fn = int((~a & mal).sum())
    fp = int((a & nor).sum())
    tn = int((~a & nor).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "malicious": int(mal.sum()),
        "normal": int(nor.sum()),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "fpr": round(fp / (fp + tn), 4) if fp + tn else 0.0,
        "suspicious": int(sus.sum()),
        "suspicious_alerted": int((a & sus).sum()),
    }


def false_positives_at_recall(
    labels: Sequence[str] | np.ndarray, scores: Sequence[float] | np.ndarray, recall: float
) -> tuple[float, int]:
    """(threshold, false positives on normal) of the highest threshold on ``scores``
    whose malicious recall is at least ``recall``.

    Examples
    --------
    >>> false_positives_at_recall(["malicious", "malicious", "normal", "normal"],
    ...                           [0.9, 0.5, 0.6, 0.1], 1.0)
    (0.5, 1)
    """
    y = np.asarray(labels, dtype=object)
    s = np.asarray(scores, dtype=np.float64)
    pos = np.sort(s[y == "malicious"])[::-1]
    if len(pos) == 0:
        return float("inf"), 0
    need = max(1, int(np.ceil(recall * len(pos) - 1e-9)))
    threshold = float(pos[need - 1])
    return threshold, int((s[y == "normal"] >= threshold).sum())
