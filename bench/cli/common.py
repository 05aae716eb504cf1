"""What every command group shares: the two consoles, progress, tables and common options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.executors import EXECUTOR_NAMES
from bench.runner import MODELS_DIR
from features import DEFAULT_STORE

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


def path_option(*decls: str, help: str, required: bool = False, **extra: Any) -> Any:
    """``click.option(*decls, type=Path, ...)``: a file or folder argument."""
    return click.option(
        *decls, type=click.Path(path_type=Path), required=required, help=help, **extra
    )


def executor_options(what: str) -> Callable[[Any], Any]:
    """``--executor`` (serial, process or ray; default process), ``--address`` and
    ``--workers`` for a command that fans ``what`` out (e.g. "replays")."""

    def apply(command: Any) -> Any:
        for option in reversed(
            (
                click.option(
                    "--executor", "executor_name", type=click.Choice(EXECUTOR_NAMES),
                    default="process", show_default=True,
                    help=f"where the {what} run: this process, a pool of processes, or Ray "
                    "tasks",
                ),
                click.option(
                    "--address",
                    help="with --executor ray: join the Ray cluster at this address "
                    "(default: start a local Ray on 127.0.0.1)",
                ),
                click.option(
                    "--workers", type=click.IntRange(min=1), default=None,
                    help=f"{what} at once (default: the CPU count)",
                ),
            )
        ):  # fmt: skip
            command = option(command)
        return command

    return apply


json_option = click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")

store_option = path_option(
    "--store", default=DEFAULT_STORE, show_default=True, help="the DuckDB feature store"
)

models_option = click.option(
    "--registry",
    "--models",
    "models_dir",
    default=str(MODELS_DIR),
    show_default=True,
    help="the model registry: a folder (MLflow on SQLite in it), sqlite:///PATH/mlflow.db or "
    "sagemaker://BUCKET/PREFIX",
)


def check_registry_location(location: str) -> None:
    """A local registry folder must be a folder or creatable as one: checked before
    anything is trained or written (a URI is checked when it is opened)."""
    from agents.artifacts import check_models_dir

    if "://" not in location:
        check_models_dir(Path(location), option="--registry/--models")


def command_group(name: str, help: str) -> click.Group:
    """A command group that, given no subcommand, prints its help on stdout and exits 0."""

    @click.group(name, help=help, invoke_without_command=True)
    @click.pass_context
    def group(ctx: click.Context) -> None:
        if ctx.invoked_subcommand is None:
            click.echo(ctx.get_help())

    return group


def status(message: str) -> None:
    """One line of progress on stderr (e.g. a model being trained)."""
    stderr.print(f"[dim]{message}[/dim]")


@contextmanager
def progress_bar(
    description: str, count: str, total: float, enabled: bool
) -> Iterator[Callable[[float], None]]:
    """A transient progress bar on stderr; yields ``update(done)`` (a no-op when disabled).
    ``count`` formats the progress, e.g. ``"{task.completed:,.0f}/{task.total:,.0f} steps"``."""
    if not enabled:
        yield lambda _done: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn(count),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


def sim_days_progress(
    label: str, total_days: float, enabled: bool
) -> AbstractContextManager[Callable[[float], None]]:
    """A progress bar over simulated days."""
    return progress_bar(
        label, "{task.completed:.0f}/{task.total:.0f} sim-days", total_days, enabled
    )


def comparison_table(title: str, summaries: list[dict[str, Any]]) -> Table:
    """Replay summaries side by side, one column per policy."""
    table = Table(title=title)
    table.add_column("metric")
    for s in summaries:
        table.add_column(s["policy"], justify="right")
    for key, label, fmt in SUMMARY_COLUMNS:
        table.add_row(label, *(fmt.format(s[key]) for s in summaries))
    return table


@contextmanager
def fanned_out(
    executor_name: str, workers: int | None, address: str | None, what: str, total: int
) -> Iterator[tuple[Any, Callable[[int, object], None]]]:
    """The executor named by ``--executor`` (``workers`` default: the CPU count) and an
    ``on_done(index, result)`` that advances a progress bar over ``total`` ``what``."""
    import os

    from bench.executors import executor

    with (
        executor(executor_name, workers=workers or os.cpu_count() or 1, address=address) as ex,  # type: ignore[arg-type]
        progress_bar(
            what, "{task.completed:.0f}/{task.total:.0f}", total, stderr.is_terminal
        ) as update,
    ):
        done = [0]

        def one_done(_index: int, _result: object) -> None:
            done[0] += 1
            update(done[0])

        yield ex, one_done


def check_vector_envs(vector_envs: int | None) -> None:
    """``--vector-envs`` must divide one PPO rollout (InputError naming the option)."""
    from agents.cost.model import MIN_TIMESTEPS
    from sim.errors import InputError

    if vector_envs is not None and MIN_TIMESTEPS % vector_envs:
        raise InputError(
            "--vector-envs", "", f"{vector_envs} does not divide one rollout ({MIN_TIMESTEPS:,})",
            "a power of two up to 4,096, e.g. 32",
        )  # fmt: skip
