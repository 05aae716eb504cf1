"""The ``opsbench`` command line.

Every error a user can cause prints one line on stderr (file, field, what is allowed)
and exits with code 2; nothing is written to ``--out`` when the input is bad.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.registry import POLICIES
from bench import runner
from features import DEFAULT_STORE
from sim.errors import InputError, OpsbenchError
from sim.scenario import Scenario
from sim.scenario_files import list_scenarios, load_scenario_file

stdout = Console()
stderr = Console(stderr=True)

SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "cost $", "{:,.2f}"),
    ("on_demand_cost_usd", "on-demand $", "{:,.2f}"),
    ("spot_cost_usd", "spot $", "{:,.2f}"),
    ("node_hours", "node-h", "{:,.1f}"),
    ("wasted_node_hours", "wasted node-h", "{:,.1f}"),
    ("slo_attainment", "SLO attainment", "{:.4%}"),
    ("slo_violation_minutes", "SLO violation min", "{:,}"),
    ("p95_latency_ms", "p95 ms", "{:,.1f}"),
    ("dropped_requests", "dropped req", "{:,.0f}"),
    ("interruptions", "interruptions", "{:,}"),
    ("wall_s", "wall s", "{:.2f}"),
)


DEMO_POLICIES = ("static", "reactive", "predictive", "oracle")


def _status(message: str) -> None:
    """One line of progress on stderr (e.g. a model being trained)."""
    stderr.print(f"[dim]{message}[/dim]")


@contextmanager
def _progress(label: str, total_days: float, enabled: bool) -> Iterator[Callable[[float], None]]:
    if not enabled:
        yield lambda _days: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} sim-days"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total_days)
        yield lambda days: bar.update(task, completed=days)


def comparison_table(title: str, summaries: list[dict[str, Any]]) -> Table:
    """Policies side by side, one column each."""
    table = Table(title=title)
    table.add_column("metric")
    for s in summaries:
        table.add_column(s["policy"], justify="right")
    for key, label, fmt in SUMMARY_COLUMNS:
        table.add_row(label, *(fmt.format(s[key]) for s in summaries))
    return table


@click.group()
def cli() -> None:
    """opsbench: replay cloud-operations scenarios and benchmark the policies that run them."""


@cli.group()
def scenarios() -> None:
    """List, show and describe scenario files."""


@scenarios.command("list")
def scenarios_list() -> None:
    """The shipped scenarios."""
    table = Table(title="scenarios (opsbench scenarios show ID for the whole file)")
    table.add_column("id", no_wrap=True)  # ids are typed back: never truncate them
    table.add_column("days", justify="right", no_wrap=True)
    table.add_column("workload", overflow="fold")
    table.add_column("pools: type capacity min-max", overflow="fold")
    table.add_column("faults", overflow="fold")
    for sid, path in list_scenarios():
        sc = load_scenario_file(path)
        wl = sc.workload
        workload = Path(wl.path).stem if wl.kind == "trace" else "synthetic"
        pools = "\n".join(
            f"{p.instance_type} {p.capacity_type} {p.min_nodes}-{p.max_nodes}"
            for p in sc.cluster.pools
        )
        f = sc.faults
        faults = ", ".join(
            name
            for name, present in (
                ("node failures", f.node_failure_rate_per_node_day > 0),
                ("AZ outage", bool(f.az_outages)),
                ("spot storm", bool(f.spot_storms)),
                ("telemetry gap", bool(f.telemetry_gaps)),
            )
            if present
        )
        table.add_row(sid, f"{sc.duration_days:g}", workload, pools, faults or "-")
    stdout.print(table)


@scenarios.command("show")
@click.argument("scenario")
def scenarios_show(scenario: str) -> None:
    """One scenario, validated, with every default filled in."""
    sc, path = runner.load(scenario)
    click.echo(f"# {path}")
    click.echo(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False).rstrip())


@scenarios.command("schema")
def scenarios_schema() -> None:
    """JSON Schema of scenario files (for editors)."""
    click.echo(json.dumps(Scenario.model_json_schema(), indent=2))


@cli.command("policies")
def policies() -> None:
    """The policies a replay can run."""
    table = Table(title="policies")
    table.add_column("name")
    table.add_column("parameters")
    table.add_column("what it does")
    for info in POLICIES.values():
        table.add_row(info.name, ", ".join(info.params.model_fields) or "-", info.summary)
    stdout.print(table)


@cli.command("replay")
@click.argument("scenario")
@click.option("--policy", help="policy name (default: the scenario's)")
@click.option("--seed", type=click.IntRange(min=0), help="root seed (default: the scenario's)")
@click.option("--trace", type=click.Path(path_type=Path), help="replace the workload with this CSV")
@click.option("--days", type=float, help="simulated days (default: the scenario's)")
@click.option("--out", type=click.Path(path_type=Path), help="write telemetry + summary.json here")
@click.option(
    "--spot-availability",
    type=click.Path(path_type=Path),
    help="Can't-Be-Late trace JSON (or a folder of them) replacing spot availability",
)
@click.option(
    "--spot-prices",
    type=click.Path(path_type=Path),
    help="spot price history CSV (the scenario's format) replacing the spot prices",
)
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    help="stream telemetry into this DuckDB feature store while replaying",
)
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def replay(
    scenario: str,
    policy: str | None,
    seed: int | None,
    trace: Path | None,
    days: float | None,
    out: Path | None,
    spot_availability: Path | None,
    spot_prices: Path | None,
    store: Path | None,
    as_json: bool,
) -> None:
    """Replay SCENARIO (a file or a shipped id) under one policy."""
    world, built = runner.prepare_run(
        scenario,
        policy=policy,
        seed=seed,
        trace=trace,
        days=days,
        spot_availability=spot_availability,
        spot_prices=spot_prices,
    )
    runner.attach_model(world, built, progress=_status)
    days_total = world.duration_s / 86400.0
    with _progress(f"{world.scenario.id} / {built.name}", days_total, stderr.is_terminal) as tick:
        summary = runner.run(world, built, out=out, progress=tick, store=store)
    if as_json:
        click.echo(json.dumps(summary))
        return
    stdout.print(
        comparison_table(
            f"{summary['scenario']} ({summary['sim_days']:g} days, seed {summary['seed']})",
            [summary],
        )
    )
    if out is not None:
        stdout.print(f"telemetry and summary.json written to {out}")
    if store is not None:
        stdout.print(f"telemetry streamed into the feature store {store}")


@cli.command("demo")
@click.option("--scenario", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object per policy")
def demo(scenario: str, as_json: bool) -> None:
    """The main job: replay a scenario with static, reactive, predictive and oracle, side
    by side (predictive trains on the scenario's history first, once)."""
    summaries = []
    for name in DEMO_POLICIES:
        world, built = runner.prepare_run(scenario, policy=name)
        runner.attach_model(world, built, progress=_status)
        with _progress(
            f"{world.scenario.id} / {name}", world.duration_s / 86400.0, stderr.is_terminal
        ) as tick:
            summaries.append(runner.run(world, built, progress=tick))
    spot = spot_demo(as_json)  # on-demand, uniform-progress, cost-rl, hindsight
    if as_json:
        for s in summaries + spot:
            click.echo(json.dumps(s))
        return
    first = summaries[0]
    stdout.print(
        comparison_table(
            f"{first['scenario']}: {first['sim_days']:g} simulated days, seed {first['seed']}",
            summaries,
        )
    )
    stdout.print(comparison_table(f"{spot[0]['scenario']}: spot capacity policies", spot))


@cli.group()
def features() -> None:
    """The DuckDB feature store: build it from a replay, list views, cut training sets."""


STORE_OPTION = click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=DEFAULT_STORE,
    show_default=True,
    help="the DuckDB feature store",
)


@features.command("build")
@click.argument("run_dir", type=click.Path(path_type=Path))
@STORE_OPTION
def features_build(run_dir: Path, store: Path) -> None:
    """Ingest a replay's telemetry (RUN_DIR from replay --out) and materialise every view."""
    from features.offline import build_store

    run_id, counts = build_store(run_dir, store)  # checks the folder before opening the store
    table = Table(title=f"feature store {store}: run {run_id}")
    table.add_column("view")
    table.add_column("rows for this run", justify="right")
    for view, rows in counts.items():
        table.add_row(view, f"{rows:,}")
    stdout.print(table)


@features.command("list")
def features_list() -> None:
    """Feature views: entity, ttl, and every feature with its type."""
    from features.views import VIEWS

    for view in VIEWS.values():
        table = Table(
            title=f"{view.name}  (entity: {', '.join(view.entity)}; ttl {view.ttl}; "
            f"from {', '.join(view.sources)})",
            title_justify="left",
        )
        table.add_column("feature", no_wrap=True)
        table.add_column("type", no_wrap=True)
        table.add_column("meaning")
        for feature in view.features:
            table.add_row(feature.name, feature.dtype, feature.description)
        stdout.print(table)


@features.command("training-set")
@click.option("--view", required=True, help="feature view")
@click.option(
    "--labels",
    type=click.Path(path_type=Path),
    required=True,
    help="CSV: the view's entity columns, timestamp, label columns",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Parquet file")
@STORE_OPTION
def features_training_set(view: str, labels: Path, out: Path, store: Path) -> None:
    """Point-in-time correct features of VIEW for every label row."""
    from features.offline import write_training_set
    from features.store import FeatureStore
    from features.views import VIEWS

    if view not in VIEWS:
        raise InputError("--view", "", f"unknown view {view!r}", ", ".join(VIEWS))
    if not store.is_file():
        raise InputError(store, "--store", "no feature store here", "features build RUN_DIR first")
    with FeatureStore(store, views=VIEWS) as fs:
        table = write_training_set(fs, view, labels, out)
    found = int(table.filter(like=f"{view}__").notna().any(axis=1).sum())
    stdout.print(f"{len(table):,} label rows, {found:,} with features, written to {out}")


@cli.group()
def forecast() -> None:
    """Load forecasters: backtests on any trace."""


@forecast.command("eval")
@click.option(
    "--trace",
    type=click.Path(path_type=Path),
    required=True,
    help="CSV timestamp,value at a 1-30 minute step",
)
@click.option("--horizon", default="30m", show_default=True, help="forecast horizon (30m, 1h, ...)")
@click.option("--model", default=None, help="forecaster (default: the best one)")
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def forecast_eval(trace: Path, horizon: str, model: str | None, as_json: bool) -> None:
    """Train on the first 70% of TRACE, forecast the rest, score against seasonal-naive."""
    from agents.forecasting.models import DEFAULT_MODEL
    from bench.forecast_eval import evaluate, parse_horizon

    result = evaluate(trace, horizon_min=parse_horizon(horizon), model=model or DEFAULT_MODEL)
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


from bench.cli_anomaly import anomaly  # noqa: E402  (own module per command group)
from bench.cli_scaling import bench_group, train_group  # noqa: E402

cli.add_command(anomaly)
cli.add_command(train_group)
cli.add_command(bench_group)

from bench.cli_security import security  # noqa: E402  (own module per command group)

cli.add_command(security)

from bench.cli_cost import spot_demo  # noqa: E402  (registers train cost, bench cost)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr and exit 2 for any input error."""
    try:
        cli.main(args=argv, standalone_mode=False)
    except OpsbenchError as exc:
        click.echo(f"opsbench: error: {exc}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        message = " ".join(exc.format_message().split())
        click.echo(f"opsbench: error: {message}", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("opsbench: aborted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
