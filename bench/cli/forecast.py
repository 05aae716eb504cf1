"""``opsbench forecast``: load forecasters backtested on any trace."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from bench.cli.common import path_option, command_group, json_option, stdout


forecast = command_group(
    "forecast",
    "Load forecasters: backtests on any trace.",
)


@forecast.command("eval")
@path_option(
    "--trace",
    required=True,
    help="CSV timestamp,value at a 1-30 minute step",
)
@click.option("--horizon", default="30m", show_default=True, help="forecast horizon (30m, 1h, ...)")
@click.option("--model", default=None, help="forecaster (default: the best one)")
@json_option
def forecast_eval(trace: Path, horizon: str, model: str | None, as_json: bool) -> None:
    """Train on the first 70% of the --trace CSV, forecast the rest, score against
    seasonal-naive."""
    from agents.registry import DEFAULT_FORECASTER
    from bench.forecast_eval import evaluate, parse_horizon

    result = evaluate(trace, horizon_min=parse_horizon(horizon), model=model or DEFAULT_FORECASTER)
    if as_json:
        click.echo(json.dumps(result))
        return
    table = Table(
        title=f"{trace.name}: {result['horizon_min']} min ahead, step {result['step_min']} min"
    )
    table.add_column("model")
    for key in ("mase", "wape", "coverage_p90", "n_points"):
        table.add_column(key, justify="right")
    for row in (
        result,
        {**result["baseline"], "model": result["baseline"].get("model", "seasonal-naive-1d")},
    ):
        table.add_row(
            str(row["model"]), *(f"{row[k]}" for k in ("mase", "wape", "coverage_p90", "n_points"))
        )
    stdout.print(table)
    split = result["split"]
    stdout.print(split["text"] if isinstance(split, dict) else str(split))
