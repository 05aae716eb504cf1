"""``opsbench security``: score CloudTrail events and HDFS log sessions.

``score`` reads CloudTrail records (JSON lines, or one ``{"Records": [...]}`` object),
scores them in event-time order with the shipped model (behaviour state from earlier
events only), writes ``eventID,risk_score,threat_category,is_alert,reasons`` and, with
``--labels``, prints precision / recall / F1 / FPR for malicious vs normal (suspicious
apart) beside the Sigma-style baseline. Malformed lines are reported with their line
numbers and counted; the rest is still scored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from scenarios import data_path
from bench.cli.common import command_group
from sim.atomic import writing_file
from sim.errors import InputError

stdout = Console()
stderr = Console(stderr=True)
LABELS = ("normal", "suspicious", "malicious")
SIGMA_CSV = data_path("security", "sigma_aws_cloudtrail_eventnames.csv")
SIGMA_LEVELS = (("sigma>=low", 1), ("sigma>=medium", 2), ("sigma>=high", 3))


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Records of an events file, their line numbers, and the malformed lines."""

    records: list[dict[str, Any]]
    lines: list[int]
    malformed: list[tuple[int, str]]


def _check_record(rec: Any) -> str:
    if not isinstance(rec, dict):
        return f"not a JSON object ({type(rec).__name__})"
    for key in ("eventTime", "eventName"):
        if not isinstance(rec.get(key), str) or not rec.get(key):
            return f"{key} is missing or not a string"
    return ""


def read_events(path: Path) -> ReadResult:
    """Read CloudTrail records from JSON lines or a ``{"Records": [...]}`` file.

    Raises
    ------
    InputError
        If the file cannot be read or holds no readable record.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "--events", "no such file", "a JSON-lines or Records file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, "--events", f"cannot read: {exc}", "UTF-8 JSON") from None
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    malformed: list[tuple[int, str]] = []
    stripped = text.lstrip()
    whole: Any = None
    if stripped.startswith("{") and '"Records"' in stripped[:10_000]:
        try:
            whole = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            whole = None
    if isinstance(whole, dict) and isinstance(whole.get("Records"), list):
        for i, rec in enumerate(whole["Records"]):
            problem = _check_record(rec)
            if problem:
                malformed.append((i, f"Records[{i}]: {problem}"))
            else:
                records.append(rec)
                lines.append(i)
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                malformed.append((number, f"line {number}: invalid JSON ({exc.msg})"))
                continue
            except RecursionError:
                malformed.append((number, f"line {number}: JSON nested too deeply"))
                continue
            problem = _check_record(rec)
            if problem:
                malformed.append((number, f"line {number}: {problem}"))
            else:
                records.append(rec)
                lines.append(number)
    if not records:
        raise InputError(
            path,
            "--events",
            f"no readable CloudTrail record ({len(malformed)} malformed)",
            'JSON lines of records with eventTime and eventName, or {"Records": [...]}',
        )
    return ReadResult(records, lines, malformed)


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
) -> dict[str, Any]:
    """Score ``events`` with the shipped model; the result the CLI prints."""
    from agents.security.events import mask_record
    from agents.security.metrics import detection_metrics, false_positives_at_recall
    from agents.security.sigma import SigmaBaseline, load_sigma_rules
    from bench.security_model import load_or_train

    read = read_events(events)
    truth = read_labels(labels) if labels is not None else None
    if out is not None and out.exists() and out.is_dir():
        raise InputError(out, "--out", "is a directory", "a CSV file path")
    if model is None:
        model = load_or_train(masked=mask, progress=lambda m: stderr.print(m))
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
        "alerts": int(frame["is_alert"].sum()),
        "threshold": round(float(model.threshold_), 6),
        "masked": mask,
        "out": str(out) if out is not None else None,
    }
    if truth is not None:
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
        result["labelled"] = int(keep.sum())
        result["unlabelled"] = int((~keep).sum())
        result["labels_without_event"] = len(set(truth) - set(ids))
        result["metrics"] = ours
        result["sigma"] = baselines
    return result


def _print_result(result: Mapping[str, Any]) -> None:
    stdout.print(
        f"{result['scored']:,} events scored, {result['alerts']:,} alerts "
        f"(threshold {result['threshold']}), {result['malformed']} malformed"
        + (f", written to {result['out']}" if result.get("out") else "")
    )
    if "metrics" not in result:
        return
    table = Table(
        title=f"{result['events']}: malicious vs normal ({result['labelled']:,} labelled)"
    )
    cols = ("precision", "recall", "f1", "fpr", "tp", "fp", "fn", "suspicious_alerted")
    table.add_column("detector")
    for c in cols:
        table.add_column(c, justify="right")
    rows: list[tuple[str, Mapping[str, Any]]] = [("ours", result["metrics"])]
    rows += list(result["sigma"].items())
    for name, m in rows:
        table.add_row(name, *(str(m[c]) for c in cols))
    stdout.print(table)
    for name, m in result["sigma"].items():
        stdout.print(
            f"at {name}'s recall {m['recall']}: ours {m['our_fp_at_equal_recall']} false "
            f"positives, {name} {m['fp']}"
        )


security = command_group(
    "security",
    "Security analysis: CloudTrail risk scoring and log-session anomalies.",
)


@security.command("score")
@click.option(
    "--events",
    type=click.Path(path_type=Path),
    required=True,
    help='CloudTrail JSON lines or a {"Records": [...]} file',
)
@click.option(
    "--labels",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV eventID,label (normal / suspicious / malicious)",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="CSV to write")
@click.option("--mask", is_flag=True, help="ablation: mask userAgent and resource names")
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def score_cmd(events: Path, labels: Path | None, out: Path, mask: bool, as_json: bool) -> None:
    """Score EVENTS in event-time order; with --labels, metrics beside the Sigma baseline."""
    result = score_events(events, labels, out, mask=mask)
    for item in result["malformed_lines"][:20]:
        click.echo(f"opsbench: warning: {events}: {item['error']}", err=True)
    if result["malformed"] > 20:
        click.echo(
            f"opsbench: warning: ... {result['malformed'] - 20} more malformed lines", err=True
        )
    if result["malformed"]:
        click.echo(
            f"opsbench: warning: {events}: {result['malformed']} malformed records not scored",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(result))
    else:
        _print_result(result)


def _sessions_main(sessions: Path, out: Path | None, as_json: bool, label: str | None) -> None:
    from bench.security_logs import score_sessions_file

    result = score_sessions_file(sessions, out=out, label=label)
    if as_json:
        click.echo(json.dumps(result))
        return
    stdout.print(
        f"{result['sessions']:,} sessions, {result['anomalous']:,} anomalous "
        f"({result['malformed']} malformed lines)"
    )
    if "metrics" in result:
        stdout.print(json.dumps(result["metrics"]))


@security.command("logs")
@click.option(
    "--sessions",
    type=click.Path(path_type=Path),
    required=True,
    help="one session per line: space-separated log-key ids",
)
@click.option(
    "--label",
    type=click.Choice(["normal", "abnormal"]),
    default=None,
    help="every session of the file has this label: print detection figures",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="CSV per session")
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def logs_cmd(sessions: Path, label: str | None, out: Path | None, as_json: bool) -> None:
    """Flag anomalous log sessions with the next-key model (trained on the shipped split)."""
    _sessions_main(sessions, out, as_json, label)
