"""``opsbench security``: score CloudTrail events and HDFS log sessions.

``score`` scores a CloudTrail events file with the shipped model
(:func:`bench.security_score.score_events`) and prints the counts (also of the forms
the records came in) and, with ``--labels``, the detection figures beside the Sigma-style
baseline; ``logs`` flags anomalous HDFS log sessions (:mod:`bench.security_logs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bench.cli.common import path_option, command_group, json_option, status, stdout
from bench.security_score import score_events


def _print_result(result: Mapping[str, Any]) -> None:
    stdout.print(
        f"{result['scored']:,} events scored, {result['alerts']:,} alerts "
        f"(threshold {result['threshold']}), {result['malformed']} malformed"
        + (f", written to {result['out']}" if result.get("out") else "")
    )
    forms = {k: n for k, n in result["input_forms"].items() if n}
    stdout.print("read as: " + ", ".join(f"{n:,} {k}" for k, n in forms.items()))
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
@path_option(
    "--events",
    required=True,
    help="CloudTrail records: JSON lines or one JSON document (gzipped or not) of records, "
    'trail files {"Records": [...]}, LookupEvents pages, EventBridge events, CloudTrail '
    "Lake rows or log exports (@timestamp, _source, @message, message)",
)
@path_option(
    "--labels",
    default=None,
    help="CSV eventID,label (normal / suspicious / malicious)",
)
@path_option("--out", required=True, help="CSV to write")
@click.option("--mask", is_flag=True, help="ablation: mask userAgent and resource names")
@json_option
def score_cmd(events: Path, labels: Path | None, out: Path, mask: bool, as_json: bool) -> None:
    """Score EVENTS in event-time order; with --labels, metrics beside the Sigma baseline."""
    result = score_events(events, labels, out, mask=mask, progress=status)
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
@path_option(
    "--sessions",
    required=True,
    help="one session per line: space-separated log-key ids",
)
@click.option(
    "--label",
    type=click.Choice(["normal", "abnormal"]),
    default=None,
    help="every session of the file has this label: print detection figures",
)
@path_option("--out", default=None, help="CSV per session")
@json_option
def logs_cmd(sessions: Path, label: str | None, out: Path | None, as_json: bool) -> None:
    """Flag anomalous log sessions with the next-key model (trained on the shipped split)."""
    _sessions_main(sessions, out, as_json, label)
