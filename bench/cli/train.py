"""``opsbench train``: train the agents' models offline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from agents.cost.model import FIND_RULE, MAX_TIMESTEPS, MIN_TIMESTEPS
from bench import runner
from bench.cli.common import (
    path_option,
    progress_bar,
    command_group,
    models_option,
    status,
    stderr,
    stdout,
    store_option,
)
from sim.errors import InputError


train = command_group(
    "train",
    "Train the agents' models offline (saved under .opsbench/models/).",
)


@train.command("scaling")
@click.option("--scenario", required=True, help="scenario id or file: trains on its history")
@path_option("--trace", help="train on this CSV's first 70%")
@click.option("--model", default=None, help="forecaster (default: gbm-quantile)")
@models_option
@store_option
@click.option("--json", "as_json", is_flag=True, help="print the model's metadata as JSON")
def train_scaling(
    scenario: str,
    trace: Path | None,
    model: str | None,
    models_dir: Path,
    store: Path,
    as_json: bool,
) -> None:
    """Train the predictive scaling model on the load before the --scenario's replay window
    (or on the first 70% of the --trace CSV)."""
    from agents.artifacts import check_models_dir
    from agents.registry import FORECASTERS

    check_models_dir(models_dir)
    if model is not None:
        FORECASTERS.spec(model, source="--model")  # before anything is loaded or written
    params = {} if model is None else {"model": model}
    prepared = runner.prepare_run(scenario, policy="predictive", trace=trace, params=params)
    folder = runner.attach_model(
        prepared, models_dir=models_dir, store=store, retrain=True, progress=status
    )
    meta = prepared.policy.model.metadata  # type: ignore[attr-defined]
    if as_json:
        click.echo(json.dumps({"folder": str(folder), **meta.model_dump(mode="json")}))
        return
    stdout.print(f"model {meta.model_version} ({meta.forecaster}) saved to {folder}")
    stdout.print(
        f"trained on {meta.training.source}, {meta.training.first_bucket} to "
        f"{meta.training.end}; samples {meta.training.n_samples}"
    )


TRAIN_COST_HELP = (
    "Train the cost-rl policy (PPO) on the --scenario's history and sampled spot markets; the "
    "best policy on separate evaluation episodes is saved, with its training logs, to "
    "cost/<scenario>/ in the --models folder.\n\nWhich model a replay uses: {rule}."
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


@train.command("cost", help=TRAIN_COST_HELP.format(rule=FIND_RULE))
@click.option("--scenario", required=True, help="scenario id or file (spot + on-demand pools)")
@click.option(
    "--timesteps",
    type=click.IntRange(MIN_TIMESTEPS, MAX_TIMESTEPS),
    default=None,
    help=f"PPO timesteps, at least one rollout ({MIN_TIMESTEPS:,}) and at most "
    f"{MAX_TIMESTEPS:,} (about 80 minutes); default 300,000: about 80 s on 2 cores",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@path_option(
    "--models",
    "models_dir",
    default=runner.MODELS_DIR,
    show_default=True,
    help="folder of trained models (the model goes to cost/<scenario>/ in it)",
)
@path_option(
    "--tensorboard",
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
    world = runner.prepare_run(scenario, policy="on-demand").world
    SpotFleetEnv(world, mode="train")  # bad fleet shape: exit 2 before any training
    folder = models_dir / "cost" / world.scenario.id
    with progress_bar(
        "training cost-rl (PPO)",
        "{task.completed:,.0f}/{task.total:,.0f} steps",
        steps,
        stderr.is_terminal,
    ) as update:
        model = train(
            world,
            folder,
            timesteps=steps,
            seed=seed,
            tensorboard=tensorboard,
            progress=lambda done, _total: update(done),
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
