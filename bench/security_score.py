"""Scoring a CloudTrail events file with the security analyser: what ``security score`` does.

:func:`read_events` reads CloudTrail records in every form
:mod:`agents.security.cloudtrail_input` accepts (JSON lines or one document, gzipped or
not: plain records, trail files, ``LookupEvents`` pages, EventBridge events, CloudTrail
Lake rows, log-pipeline exports), keeping the line number of each, counting the records of
each form and listing the malformed items (they are counted and reported, the rest is
still scored; a file with no readable record is refused); :func:`read_labels` reads an
``eventID,label`` CSV. :func:`score_events` scores the records with the shipped model in
event-time order (the events of one second by ``eventID``, so the order of the file does
not change any score; behaviour state from earlier events only), writes
``eventID,risk_score,threat_category,is_alert,reasons`` (one row per scored record, in
the file's order) and, with labels, computes
precision / recall / F1 / FPR for malicious vs normal (suspicious apart) beside the
Sigma-style baseline.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.security.cloudtrail_input import (
    ACCEPTED,
    FORMS,
    NotCloudTrail,
    outcomes_of_text,
    text_of_bytes,
)
from scenarios import data_path
from sim.atomic import writing_file
from sim.errors import InputError

LABELS = ("normal", "suspicious", "malicious")
SIGMA_CSV = data_path("security", "sigma_aws_cloudtrail_eventnames.csv")
SIGMA_LEVELS = (("sigma>=low", 1), ("sigma>=medium", 2), ("sigma>=high", 3))


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Records of an events file, their line numbers (index in a one-document file), the
    malformed items (number, ``where: reason``) and how many records came in each form
    (:data:`agents.security.cloudtrail_input.FORMS`, zeros included)."""

    records: list[dict[str, Any]]
    lines: list[int]
    malformed: list[tuple[int, str]]
    forms: dict[str, int]


def read_events(path: Path) -> ReadResult:
    """Read CloudTrail records from ``path`` in any form
    :mod:`agents.security.cloudtrail_input` accepts (JSON lines or one JSON document,
    gzipped or not), normalised to plain records.

    Raises
    ------
    InputError
        If the file cannot be read or holds no readable record.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "--events", "no such file", ACCEPTED) from None
    except OSError as exc:
        raise InputError(path, "--events", f"cannot read: {exc}", ACCEPTED) from None
    try:
        text = text_of_bytes(data)
    except NotCloudTrail as exc:
        raise InputError(path, "--events", str(exc), ACCEPTED) from None
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    malformed: list[tuple[int, str]] = []
    forms = dict.fromkeys(FORMS, 0)
    for out in outcomes_of_text(text):
        if out.record is None:
            malformed.append((out.number, f"{out.where}: {out.problem}"))
        else:
            records.append(out.record)
            lines.append(out.number)
            forms[out.form] += 1
    if not records:
        first = f"; {malformed[0][1]}" if malformed else ""
        raise InputError(
            path,
            "--events",
            f"no readable CloudTrail record ({len(malformed)} malformed{first})",
            ACCEPTED,
        )
    return ReadResult(records, lines, malformed, forms)


def read_labels(path: Path) -> dict[str, str]:
    """``eventID -> label`` from a CSV with columns ``eventID,label``."""
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(path, "--labels", f"cannot read: {exc.strerror or exc}", "a CSV") from None
    with fh:
        try:
            return _label_rows(path, csv.DictReader(fh))
        except UnicodeDecodeError as exc:
            raise InputError(
                path, "--labels", f"not UTF-8 text (byte {exc.start})", "a UTF-8 CSV"
            ) from None


def _label_rows(path: Path, reader: csv.DictReader[str]) -> dict[str, str]:
    """``eventID -> label`` of every row of ``reader`` (the labels file ``path``)."""
    cols = reader.fieldnames or []
    if "eventID" not in cols or "label" not in cols:
        raise InputError(path, "header", f"columns {cols}", "columns eventID,label")
    out: dict[str, str] = {}
    for number, row in enumerate(reader, start=2):
        label = (row.get("label") or "").strip()
        if label not in LABELS:
            raise InputError(path, f"line {number}", f"label {label!r}", ", ".join(LABELS))
        out[(row.get("eventID") or "").strip()] = label
    return out


def _write_csv(out: Path, frame: Any) -> None:
    cols = ["eventID", "risk_score", "threat_category", "is_alert", "reasons"]
    with writing_file(out) as tmp:
        frame[cols].to_csv(tmp, index=False, float_format="%.6f")


def score_events(
    events: Path,
    labels: Path | None,
    out: Path | None,
    *,
    mask: bool = False,
    model: Any = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score ``events`` with ``model`` (default: the shipped one, trained at first use with
    ``progress`` told) and write the scores to ``out``; with ``labels``, detection figures
    beside the Sigma baseline. Returns what ``opsbench security score`` prints.

    Raises
    ------
    InputError
        An unreadable events or labels file, or ``out`` a folder (nothing written).
    """
    from agents.security.events import mask_record
    from bench.security_model import load_or_train

    read = read_events(events)
    truth = read_labels(labels) if labels is not None else None
    if out is not None and out.exists() and out.is_dir():
        raise InputError(out, "--out", "is a directory", "a CSV file path")
    if model is None:
        model = load_or_train(masked=mask, progress=progress)
    records = [mask_record(r) for r in read.records] if mask else read.records
    frame, bad = model.analyse(records)
    malformed = list(read.malformed)
    for pos, msg in bad:  # readable JSON but not a usable record (e.g. bad eventTime)
        malformed.append((read.lines[pos], f"line {read.lines[pos]}: {msg}"))
    malformed.sort()
    if out is not None:
        _write_csv(out, frame)
    result: dict[str, Any] = {
        "events": events.name,
        "records": len(read.records) + len(read.malformed),
        "scored": len(frame),
        "malformed": len(malformed),
        "malformed_lines": [{"line": n, "error": m} for n, m in malformed],
        "input_forms": dict(read.forms),
        "alerts": int(frame["is_alert"].sum()),
        "threshold": round(float(model.threshold_), 6),
        "masked": mask,
        "out": str(out) if out is not None else None,
    }
    if truth is not None:
        result.update(detection_figures(frame, records, truth))
    return result


def detection_figures(
    frame: Any, records: list[dict[str, Any]], truth: dict[str, str]
) -> dict[str, Any]:
    """Malicious-vs-normal figures of the scored ``frame`` (:meth:`SecurityAnalyser.analyse`
    of ``records``) against ``truth`` (eventID -> label), beside the Sigma baseline at each
    level (and our false positives at its recall)."""
    from agents.security.metrics import detection_metrics, false_positives_at_recall
    from agents.security.sigma import SigmaBaseline, load_sigma_rules

    ids = frame["eventID"].tolist()
    have = [truth.get(i) for i in ids]
    keep = np.asarray([h is not None for h in have])
    y = [h for h in have if h is not None]
    scores = frame["risk_score"].to_numpy()[keep]
    ours = detection_metrics(y, frame["is_alert"].to_numpy()[keep])
    sigma = SigmaBaseline(load_sigma_rules(SIGMA_CSV))
    scored_records = [records[int(p)] for p in frame["position"].to_numpy()[keep]]
    levels = sigma.levels(scored_records)
    baselines = {}
    for name, level in SIGMA_LEVELS:
        m = detection_metrics(y, levels >= level)
        _, fp_ours = (
            false_positives_at_recall(y, scores, m["recall"]) if m["recall"] > 0 else (0, 0)
        )
        m["our_fp_at_equal_recall"] = fp_ours
        baselines[name] = m
    _, fp95 = false_positives_at_recall(y, scores, 0.95)
    ours["fp_at_recall_0.95"] = fp95
    return {
        "labelled": int(keep.sum()),
        "unlabelled": int((~keep).sum()),
        "labels_without_event": len(set(truth) - set(ids)),
        "metrics": ours,
        "sigma": baselines,
    }
