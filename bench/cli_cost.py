"""``opsbench train cost`` and ``opsbench bench cost`` (and the spot table of the demo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.cost.model import FIND_RULE, MAX_TIMESTEPS, MIN_TIMESTEPS
from bench import runner
from bench.cli_scaling import bench_group, train_group
from sim.errors import InputError

stdout = Console()
stderr = Console(stderr=True)

SPOT_DEMO_POLICIES = ("on-demand", "uniform-progress", "cost-rl", "hindsight")
SPOT_DEMO_SCENARIO = "default"


def _status(message: str) -> None:
    stderr.print(f"[dim]{message}[/dim]")


TRAIN_COST_HELP = (
    "Train the cost-rl policy (PPO) on SCENARIO's history and sampled spot markets; the "
    "best policy on separate evaluation episodes is saved, with its training logs, to "
    "MODELS/cost/<scenario>/.\n\nWhich model a replay uses: {rule}."
)


def _check_tensorboard(folder: Path) -> None:
    """InputError unless TensorBoard logs can be written to ``folder``."""
    if folder.exists() and not folder.is_dir():
        raise InputError("--tensorboard", "", f"{folder} is an existing file", "a folder")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise InputError(
            "--tensorboard",
            "",
            "needs the tensorboard package, which is not installed",
            "pip install tensorboard (in the project's test extra)",
        ) from None


@train_group.command("cost", help=TRAIN_COST_HELP.format(rule=FIND_RULE))
@click.option("--scenario", required=True, help="scenario id or file (spot + on-demand pools)")
@click.option(
    "--timesteps",
    type=click.IntRange(MIN_TIMESTEPS, MAX_TIMESTEPS),
    default=None,
    help=f"PPO timesteps, at least one rollout ({MIN_TIMESTEPS:,}) and at most "
    f"{MAX_TIMESTEPS:,} (about 80 minutes); default 300,000: about 80 s on 2 cores",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--models",
    "models_dir",
    type=click.Path(path_type=Path),
    default=runner.MODELS_DIR,
    show_default=True,
    help="folder of trained models (the model goes to MODELS/cost/<scenario>/)",
)
@click.option(
    "--tensorboard",
    type=click.Path(path_type=Path),
    default=None,
    help="also write TensorBoard logs to this folder (needs the tensorboard package)",
)
@click.option("--json", "as_json", is_flag=True, help="print the model's metadata as JSON")
def train_cost(
    scenario: str,
    timesteps: int | None,
    seed: int,
    models_dir: Path,
    tensorboard: Path | None,
    as_json: bool,
) -> None:
    from agents.artifacts import check_models_dir
    from agents.cost.env import SpotFleetEnv
    from agents.cost.training import DEFAULT_TIMESTEPS, evaluate_in_env, train

    check_models_dir(models_dir)
    if tensorboard is not None:
        _check_tensorboard(tensorboard)
    steps = DEFAULT_TIMESTEPS if timesteps is None else timesteps
    world, _ = runner.prepare_run(scenario, policy="on-demand")
    SpotFleetEnv(world, mode="train")  # bad fleet shape: exit 2 before any training
    folder = models_dir / "cost" / world.scenario.id
    with Progress(
        TextColumn("training cost-rl (PPO)"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    ) as bar:
        task = bar.add_task("train", total=steps)
        model = train(
            world,
            folder,
            timesteps=steps,
            seed=seed,
            tensorboard=tensorboard,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    check = evaluate_in_env(world, model.act)
    meta = model.metadata
    if as_json:
        click.echo(
            json.dumps({"folder": str(folder), **meta.model_dump(mode="json"), "replay": check})
        )
        return
    stdout.print(
        f"model {meta.model_version} saved to {folder} ({meta.timesteps:,} steps, "
        f"{meta.train_seconds:.0f} s; the {meta.selected} policy, evaluation reward "
        f"{meta.eval_mean_reward} at {meta.eval_at_timesteps:,} steps); "
        f"sha256 {meta.model_sha256}"
    )
    stdout.print(
        f"fast-model check on {world.scenario.id}'s replay: ${check['cost_usd']:,.2f}, "
        f"SLO attainment {check['slo_attainment']:.4%}"
    )


@bench_group.command("cost")
@click.option(
    "--set",
    "sets",
    multiple=True,
    help="dev trace set (repeatable; default: all): "
    "avail-us-east-1, avail-us-east-1a-2, avail-us-west-2, preempt-r5, preempt-p3",
)
@click.option("--days", type=float, default=None, help="simulated days (default 6)")
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def bench_cost(sets: tuple[str, ...], days: float | None, as_json: bool) -> None:
    """Cost policies on the dev spot traces: savings, SLO, interruptions, gap to hindsight."""
    from bench.cost import DAYS, TRACE_SETS, run_set, targets

    for name in sets:
        if name not in TRACE_SETS:
            raise InputError("--set", "", f"unknown trace set {name!r}", ", ".join(TRACE_SETS))
    results = []
    for name in sets or tuple(TRACE_SETS):
        result = run_set(name, days=DAYS if days is None else days, progress=_status)
        result["targets"] = targets(result)
        results.append(result)
    if as_json:
        click.echo(json.dumps({"trace_sets": results}))
        return
    for result in results:
        stdout.print(_table(result))


COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "cost $", "{:,.2f}"),
    ("savings_vs_on_demand", "saving", "{:.1%}"),
    ("slo_attainment", "SLO", "{:.3%}"),
    ("slo_violation_minutes", "viol min", "{:,}"),
    ("interruptions", "interr", "{:,}"),
    ("gap_to_hindsight_mix", "vs hindsight-mix", "{:+.1%}"),
    ("gap_to_hindsight", "vs limit", "{:+.1%}"),
)
"""Saving against ``on-demand``; the gaps against ``hindsight-mix`` (a diagnostic) and
``hindsight`` (the limit)."""


def _table(result: dict[str, Any]) -> Table:
    m = result["market"]
    table = Table(
        title=f"{result['trace_set']}: spot on offer {m['spot_on_offer_share']:.0%} of minutes, "
        f"market-bound saving {m['market_bound_savings']:.0%}"
    )
    table.add_column("policy", no_wrap=True)
    for _, label, _ in COLUMNS:
        table.add_column(label, justify="right")
    for name, row in result["policies"].items():
        table.add_row(name, *(fmt.format(row[k]) if k in row else "-" for k, _, fmt in COLUMNS))
    t = result.get("targets") or {}
    if t:
        table.caption = "cost-rl targets: " + ", ".join(
            f"{k} {'met' if v['met'] else 'MISSED'}" for k, v in t.items()
        )
    return table


def spot_demo(as_json: bool) -> list[dict[str, Any]]:
    """The demo's second table: the spot policies on the default scenario (cost-rl uses
    the model shipped in ``agents/cost/shipped/`` unless one was trained for it)."""
    summaries = []
    for name in SPOT_DEMO_POLICIES:
        world, built = runner.prepare_run(SPOT_DEMO_SCENARIO, policy=name)
        runner.attach_model(world, built, progress=_status)
        summaries.append(runner.run(world, built))
    return summaries
