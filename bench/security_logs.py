"""HDFS log sessions: the shipped next-key model and its documented split.

Split (fixed, no shuffling): the first 70% of ``hdfs_train_normal.txt`` (DeepLog's
4,855 normal training sessions, in file order) train the model; the last 30% are the
normal test sessions; every session of ``hdfs_test_abnormal.txt`` is an abnormal test
session. Hyper-parameters are DeepLog's (h = 10, g = 9), not tuned on the test part.
The model trains in a few seconds, so it is rebuilt at each use (nothing cached).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Any

from agents.security.sessions import NextKeyModel, parse_sessions
from bench.security_data import SECURITY_DATA
from sim.atomic import writing_file
from sim.errors import InputError

HDFS_DIR = SECURITY_DATA / "logs" / "hdfs_sessions"
TRAIN_SHARE = 0.7


def split_sessions() -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """(train normal, test normal, test abnormal) sessions of the documented split."""
    normal, _ = parse_sessions((HDFS_DIR / "hdfs_train_normal.txt").read_text().splitlines())
    abnormal, _ = parse_sessions((HDFS_DIR / "hdfs_test_abnormal.txt").read_text().splitlines())
    cut = int(len(normal) * TRAIN_SHARE)
    return normal[:cut], normal[cut:], abnormal


@lru_cache(maxsize=1)
def shipped_model() -> NextKeyModel:
    """The next-key model fitted on the split's training sessions."""
    train, _, _ = split_sessions()
    return NextKeyModel(history=10, top_k=9).fit(train)


def evaluate_split() -> dict[str, Any]:
    """Precision, recall, F1 (abnormal = positive) and FPR on the documented split."""
    train, normal, abnormal = split_sessions()
    model = shipped_model()
    fp = int(model.predict(normal).sum())
    tp = int(model.predict(abnormal).sum())
    fn = len(abnormal) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / len(abnormal) if abnormal else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "train_sessions": len(train),
        "test_normal": len(normal),
        "test_abnormal": len(abnormal),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "fpr": round(fp / len(normal), 4) if normal else 0.0,
    }


def score_sessions_file(
    path: Path, *, out: Path | None = None, label: str | None = None
) -> dict[str, Any]:
    """Flag the sessions of ``path``; with ``label``, detection figures for the file."""
    if out is not None and out.is_dir():
        raise InputError(out, "--out", "is a folder", "a CSV file path")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(path, "--sessions", "no such file", "one session per line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, "--sessions", f"cannot read: {exc}", "UTF-8 text") from None
    sessions, bad = parse_sessions(lines)
    if not sessions:
        raise InputError(
            path,
            "--sessions",
            f"no readable session ({len(bad)} malformed lines)",
            "space-separated non-negative integer log keys, one session per line",
        )
    model = shipped_model()
    surprises = model.decision_function(sessions)
    flagged = surprises > 0
    if out is not None:
        with writing_file(out) as tmp, tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["session", "surprising_keys", "is_anomalous"])
            for i, (s, f) in enumerate(zip(surprises, flagged, strict=True)):
                w.writerow([i, int(s), bool(f)])
    result: dict[str, Any] = {
        "sessions": len(sessions),
        "anomalous": int(flagged.sum()),
        "malformed": len(bad),
        "malformed_lines": [{"line": n, "error": m} for n, m in bad],
        "model": {
            "history": model.history,
            "top_k": model.top_k,
            "train_sessions": model.n_sessions_,
        },
        "split": evaluate_split(),
    }
    if label is not None:
        hit = int(flagged.sum())
        result["metrics"] = (
            {"label": label, "recall": round(hit / len(sessions), 4), "detected": hit}
            if label == "abnormal"
            else {"label": label, "fpr": round(hit / len(sessions), 4), "false_alarms": hit}
        )
    return result
