"""``opsbench train scaling`` and ``opsbench bench scaling``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bench import runner
from features import DEFAULT_STORE
from sim.errors import InputError

stdout = Console()
stderr = Console(stderr=True)


def _status(message: str) -> None:
    stderr.print(f"[dim]{message}[/dim]")


MODELS_OPTION = click.option(
    "--models",
    "models_dir",
    type=click.Path(path_type=Path),
    default=runner.MODELS_DIR,
    show_default=True,
    help="folder of trained models",
)
STORE_OPTION = click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=DEFAULT_STORE,
    show_default=True,
    help="feature store training sets are cut from",
)


@click.group("train")
def train_group() -> None:
    """Train the agents' models offline (saved under .opsbench/models/)."""


@train_group.command("scaling")
@click.option("--scenario", required=True, help="scenario id or file: trains on its history")
@click.option("--trace", type=click.Path(path_type=Path), help="train on this CSV's first 70%")
@click.option("--model", default=None, help="forecaster (default: gbm-quantile)")
@MODELS_OPTION
@STORE_OPTION
@click.option("--json", "as_json", is_flag=True, help="print the model's metadata as JSON")
def train_scaling(
    scenario: str,
    trace: Path | None,
    model: str | None,
    models_dir: Path,
    store: Path,
    as_json: bool,
) -> None:
    """Train the predictive scaling model on the load before SCENARIO's replay window."""
    from agents.artifacts import check_models_dir

    check_models_dir(models_dir)
    params = {} if model is None else {"model": model}
    world, policy = runner.prepare_run(scenario, policy="predictive", trace=trace)
    if params:
        from agents.forecasting.models import FORECASTERS

        if model not in FORECASTERS:
            raise InputError("--model", "", f"unknown forecaster {model!r}", ", ".join(FORECASTERS))
        policy.params = policy.params.model_copy(update=params)
    folder = runner.attach_model(
        world, policy, models_dir=models_dir, store=store, retrain=True, progress=_status
    )
    meta = policy.model.metadata
    if as_json:
        click.echo(json.dumps({"folder": str(folder), **meta.model_dump(mode="json")}))
        return
    stdout.print(f"model {meta.model_version} ({meta.forecaster}) saved to {folder}")
    stdout.print(
        f"trained on {meta.training.source}, {meta.training.first_bucket} to "
        f"{meta.training.end}; samples {meta.training.n_samples}"
    )


@click.group("bench")
def bench_group() -> None:
    """Benchmarks of decision quality."""


@bench_group.command("scaling")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="scenario id or file (repeatable; default: the four dev-trace scenarios)",
)
@MODELS_OPTION
@STORE_OPTION
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def bench_scaling(scenarios: tuple[str, ...], models_dir: Path, store: Path, as_json: bool) -> None:
    """static, reactive, predictive and oracle on every dev-trace scenario, with targets."""
    from bench.scaling import DEV_SCENARIOS, run_scenario

    results = [
        run_scenario(s, models_dir=models_dir, store=store, progress=_status)
        for s in (scenarios or DEV_SCENARIOS)
    ]
    if as_json:
        click.echo(json.dumps({"scenarios": results}))
        return
    for result in results:
        stdout.print(_table(result))
    stdout.print(_targets_table(results))


ROWS: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "cost $", "{:,.2f}"),
    ("slo_attainment", "SLO attainment", "{:.4%}"),
    ("slo_violation_minutes", "SLO violation min", "{:,}"),
    ("wasted_node_hours", "wasted node-h", "{:,.1f}"),
    ("idle_node_hours", "idle node-h", "{:,.1f}"),
    ("time_to_capacity_min", "time to capacity (mean min)", "{:.2f}"),
    ("time_to_capacity_max_min", "time to capacity (max min)", "{:,}"),
)


def _table(result: dict[str, Any]) -> Table:
    policies = result["policies"]
    first = next(iter(policies.values()))
    table = Table(title=f"{result['scenario']} ({first['sim_days']:g} days from {first['start']})")
    table.add_column("metric")
    for name in policies:
        table.add_column(name, justify="right")
    for key, label, fmt in ROWS:
        table.add_row(label, *(fmt.format(s[key]) for s in policies.values()))
    forecast = result.get("forecast")
    if forecast:
        ets = forecast.get("autoets")
        table.caption = (
            f"forecast {forecast['horizon_min']} min: MASE {forecast['mase']}, "
            f"WAPE {forecast['wape']}, p90 coverage {forecast['coverage_p90']} "
            f"(seasonal naive MASE {forecast['seasonal_naive_1d_mase']}; AutoETS "
            + (f"MASE {ets['mase']}, WAPE {ets['wape']})" if ets else "not installed)")
        )
    return table


def _targets_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="predictive: targets")
    for column in ("scenario", "SLO viol <= 20% reactive, cost <= reactive", "waste <= 40%",
                   "cost <= 1.10 oracle", "MASE <= 0.7"):  # fmt: skip
        table.add_column(column)
    for result in results:
        t = result.get("targets")
        if t is None:
            continue

        def mark(ok: bool) -> str:
            return "[green]met[/green]" if ok else "[red]missed[/red]"

        slo, waste, cost, mase = t["slo"], t["waste"], t["cost_vs_oracle"], t["mase"]
        table.add_row(
            result["scenario"],
            f"{mark(slo['met'])} {slo['violation_minutes']} <= {slo['limit']}, "
            f"${slo['cost_usd']:,.0f} <= ${slo['cost_limit_usd']:,.0f}",
            f"{mark(waste['met'])} {waste['wasted_node_hours']:,.0f} <= {waste['limit']:,.0f}",
            f"{mark(cost['met'])} x{cost['ratio']}",
            f"{mark(mase['met'])} {mase['value']}",
        )
    return table
