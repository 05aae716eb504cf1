"""``opsbench anomaly``: streaming anomaly detectors scored on the Numenta Anomaly Benchmark
(:mod:`bench.nab_run` runs them, :mod:`bench.nab` scores them)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from agents.registry import DEFAULT_DETECTOR, DETECTORS
from bench.cli.common import path_option, command_group, json_option, stderr, stdout
from bench.nab_run import evaluate


anomaly = command_group(
    "anomaly",
    "Streaming metric anomaly detectors and the NAB benchmark.",
)


@anomaly.command("nab")
@path_option(
    "--data",
    required=True,
    help="folder in NAB layout: <category>/<file>.csv with columns timestamp,value",
)
@path_option(
    "--windows",
    required=True,
    help="NAB windows JSON (combined_windows.json)",
)
@path_option("--out", required=True, help="results folder")
@click.option(
    "--detector",
    default=DEFAULT_DETECTOR,
    show_default=True,
    help=f"one of: {', '.join(sorted(DETECTORS))}",
)
@json_option
def anomaly_nab(data: Path, windows: Path, out: Path, detector: str, as_json: bool) -> None:
    """Run a detector over a NAB corpus, write NAB-format results, print the three scores."""
    bar = stderr if stderr.is_terminal and not as_json else None
    result = evaluate(data, windows, out, detector, progress=bar)
    if as_json:
        click.echo(json.dumps(result))
        return
    table = Table(
        title=f"NAB: {detector} on {result['files']} files, {result['rows']:,} rows, "
        f"{result['windows']} windows"
    )
    for col in ("profile", "score", "threshold", "tp", "fp", "fn"):
        table.add_column(col, justify="left" if col == "profile" else "right")
    for name, r in result["profiles"].items():
        table.add_row(
            name,
            f"{r['score']:.2f}",
            f"{r['threshold']:.4g}",
            str(r["tp"]),
            str(r["fp"]),
            str(r["fn"]),
        )
    stdout.print(table)
    stdout.print(
        f"results in {result['results_dir']} "
        f"({result['run_points_per_s']:,} points/s incl. writing)"
        + (
            f"; {result['window_keys_without_data']} window keys had no data file here"
            if result["window_keys_without_data"]
            else ""
        )
    )
