"""``opsbench train``: train the agents' models offline."""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import click

from agents.cost.model import FIND_RULE, MAX_TIMESTEPS, MIN_TIMESTEPS
from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelVersion
from agents.registry import DEFAULT_DETECTOR, DETECTORS
from bench import runner
from bench.cli.models import version_record
from bench.cli.common import (
    check_vector_envs,
    executor_options,
    check_registry_location,
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
    "Train the agents' models offline and register them in the model registry "
    "(default .opsbench/models/: MLflow on SQLite; `opsbench models list` shows them).",
)

promote_option = click.option(
    "--promote/--challenger",
    default=True,
    show_default=True,
    help="make the new version the champion (the old one stays the rollback target), or "
    "register it as the challenger",
)


def _echo_version(version: ModelVersion, as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        click.echo(json.dumps({**version_record(version), **extra}))
        return
    stdout.print(
        f"registered {version.ref} ({', '.join(version.aliases) or 'no alias'}); "
        f"artefact sha256 {version.card.artefact_sha256[:12]}"
    )


@train.command("scaling")
@click.option("--scenario", required=True, help="scenario id or file: trains on its history")
@path_option("--trace", help="train on this CSV's first 70%")
@click.option("--model", default=None, help="forecaster (default: gbm-quantile)")
@models_option
@store_option
@promote_option
@click.option("--json", "as_json", is_flag=True, help="print the registered version as JSON")
def train_scaling(
    scenario: str,
    trace: Path | None,
    model: str | None,
    models_dir: str,
    store: Path,
    promote: bool,
    as_json: bool,
) -> None:
    """Train the predictive scaling model on the load before the --scenario's replay window
    (or on the first 70% of the --trace CSV), validate it on its latest 20% and register it
    as scaling-<scenario>."""
    from agents.registry import FORECASTERS

    check_registry_location(models_dir)
    if model is not None:
        FORECASTERS.spec(model, source="--model")  # before anything is loaded or written
    params = {} if model is None else {"model": model}
    prepared = runner.prepare_run(scenario, policy="predictive", trace=trace, params=params)
    version = runner.attach_model(
        prepared, models_dir=models_dir, store=store, retrain=True, promote=promote,
        progress=status,
    )  # fmt: skip
    assert version is not None
    meta = prepared.policy.model.metadata  # type: ignore[attr-defined]
    _echo_version(version, as_json, {"model_version": meta.model_version})
    if not as_json:
        stdout.print(
            f"trained {meta.forecaster} on {meta.training.source}, {meta.training.first_bucket} "
            f"to {meta.training.end}; samples {meta.training.n_samples}; validation "
            + ", ".join(f"{k} {v:.3f}" for k, v in version.card.metrics.items())
        )


TRAIN_COST_HELP = (
    "Train the cost-rl policy (PPO) on the --scenario's history and sampled spot markets; the "
    "best policy on separate evaluation episodes is registered, with its training logs, as "
    "cost-rl-<scenario>.\n\nWhich model a replay uses: {rule}."
)


def _search_cost(
    scenario: str,
    world: Any,
    folder: Path,
    *,
    seeds: list[int],
    timesteps: int,
    executor_name: str,
    address: str | None,
    workers: int,
    vector_envs: int | None,
) -> tuple[Any, dict[str, Any]]:
    """Train a candidate per seed on the executor (:mod:`bench.cost_search`), lay the best
    one's files out in ``folder`` and load it; returns it and what the search did."""
    from agents.cost.model import load_model
    from bench.cost_search import best_of, search, write_files

    started = time.perf_counter()
    with progress_bar(
        f"training {len(seeds)} cost-rl candidates ({executor_name})",
        "{task.completed:.0f}/{task.total:.0f} candidates",
        len(seeds),
        stderr.is_terminal,
    ) as update:
        done = 0

        def one_done(_index: int, _candidate: Any) -> None:
            nonlocal done
            done += 1
            update(done)

        candidates = search(
            scenario, seeds=seeds, timesteps=timesteps, executor_name=executor_name,  # type: ignore[arg-type]
            workers=min(workers, len(seeds)), address=address, on_done=one_done,
            vector_envs=vector_envs,
        )  # fmt: skip
    best = best_of(candidates)
    write_files(best, folder)
    model = load_model(folder, roots=(folder.parent.resolve(),))
    return model, {
        "executor": executor_name,
        "wall_s": round(time.perf_counter() - started, 2),
        "validation_rewards": {str(c.seed): round(c.validation_reward, 4) for c in candidates},
        "chosen_seed": best.seed,
    }


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
@click.option(
    "--candidates",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="train this many policies (seeds SEED, SEED+1, ...) in parallel and keep the one "
    "with the best reward on validation episodes (never the scenario's replay)",
)
@click.option(
    "--vector-envs",
    type=click.IntRange(min=1),
    default=None,
    help="step this many sub-environments of the vectorised environment (a divisor of "
    f"{MIN_TIMESTEPS:,}, e.g. 32: about 2.7x faster) instead of 4 scalar ones",
)
@click.option(
    "--availability",
    type=click.Choice(["traces", "generated"]),
    default="traces",
    show_default=True,
    help="the training episodes' spot availability: windows of the dev traces, or series "
    "from the generator fitted on them (sim.market.availability_model)",
)
@click.option(
    "--sizing",
    type=click.Choice(["controller", "predictive"]),
    default="controller",
    show_default=True,
    help="the plan the mix learns to hold: the cost controller's own, or the predictive "
    "scaling policy's (the scenario's scaling model, trained first if needed; the model "
    "then runs as predictive+cost-rl, with the forecast and each AZ's drop hazard in its "
    "observation)",
)
@click.option(
    "--sizing-quantile",
    type=click.Choice(["0.5", "0.75", "0.9"]),
    default="0.9",
    show_default=True,
    help="--sizing predictive: the quantile the sizing provisions for (run the model with "
    "control.params.sizing.quantile set to it)",
)
@executor_options("candidates")
@models_option
@promote_option
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
    candidates: int,
    vector_envs: int | None,
    availability: Literal["traces", "generated"],
    sizing: Literal["controller", "predictive"],
    sizing_quantile: str,
    executor_name: str,
    address: str | None,
    workers: int | None,
    models_dir: str,
    promote: bool,
    tensorboard: Path | None,
    as_json: bool,
) -> None:
    from agents.cost.env import SpotFleetEnv
    from agents.cost.training import DEFAULT_TIMESTEPS, evaluate_in_env, train
    from bench import registered_models as rm
    from bench.cost_rl_cv import predictive_source

    from bench.executors import check_executor

    check_registry_location(models_dir)
    check_executor(executor_name, address)  # type: ignore[arg-type]
    if candidates > 1 and tensorboard is not None:
        raise InputError("--tensorboard", "", "given with --candidates > 1", "one candidate")
    if candidates > 1 and availability != "traces":
        raise InputError(
            "--availability", "", f"{availability} given with --candidates > 1", "one candidate"
        )
    if sizing == "predictive" and (candidates > 1 or vector_envs is not None):
        given = "--candidates > 1" if candidates > 1 else "--vector-envs"
        raise InputError(
            given.split()[0], "", f"{given} given with --sizing predictive",
            "one candidate on the scalar environment",
        )  # fmt: skip
    registry = open_registry(models_dir)
    if tensorboard is not None:
        _check_tensorboard(tensorboard)
    steps = DEFAULT_TIMESTEPS if timesteps is None else timesteps
    check_vector_envs(vector_envs)
    world = runner.prepare_run(scenario, policy="on-demand").world
    SpotFleetEnv(world, mode="train")  # bad fleet shape: exit 2 before any training
    source = (
        predictive_source(scenario, world, float(sizing_quantile), models_dir)
        if sizing == "predictive"
        else None
    )
    scratch = tempfile.TemporaryDirectory(prefix="opsbench-train-")
    folder = Path(scratch.name) / "model"
    search_card: dict[str, Any] = {}
    with scratch:
        if candidates == 1:
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
                    vector_envs=vector_envs,
                    availability=availability,
                    sizing_source=source,
                )
        else:
            model, search_card = _search_cost(
                scenario, world, folder, seeds=list(range(seed, seed + candidates)),
                timesteps=steps, executor_name=executor_name, address=address,
                workers=workers or os.cpu_count() or 1, vector_envs=vector_envs,
            )  # fmt: skip
            seed = search_card["chosen_seed"]
        check = evaluate_in_env(world, model.act, sizing_source=source)
        meta = model.metadata
        history_s = world.workload.history_rps.size * 60
        version = rm.register(
            registry,
            rm.default_name("cost-rl", world.scenario.id),
            folder.resolve(),
            {
                "agent": "cost-rl",
                "description": "PPO spot/on-demand mix for the cost-rl policy",
                "scenario": world.scenario.id,
                "trace": Path(world.workload.source).name,
                "data_start": (world.workload.start - timedelta(seconds=history_s)).isoformat(),
                "data_end": world.workload.start.isoformat(),
                "seed": seed,
                "params": rm.cost_params(meta),
                "metrics": {
                    **rm.cost_metrics(meta),
                    **(
                        {"validation_reward": search_card["validation_rewards"][str(seed)]}
                        if search_card
                        else {}
                    ),
                    "replay_cost_usd": float(check["cost_usd"]),
                    "replay_slo_attainment": float(check["slo_attainment"]),
                },
                "libraries": dict(meta.libraries),
            },
            promote=promote,
        )
    _echo_version(
        version,
        as_json,
        {
            "model_version": meta.model_version,
            "replay": check,
            **({"search": search_card} if search_card else {}),
        },
    )
    if as_json:
        return
    if search_card:
        rewards = search_card["validation_rewards"]
        stdout.print(
            f"{len(rewards)} candidates ({search_card['executor']}, "
            f"{search_card['wall_s']:.0f} s): validation reward per seed "
            + ", ".join(f"{s} {r:.2f}" for s, r in rewards.items())
            + f"; kept seed {search_card['chosen_seed']}"
        )
    stdout.print(
        f"model {meta.model_version} ({meta.timesteps:,} steps, "
        f"{meta.train_seconds:.0f} s; the {meta.selected} policy, evaluation reward "
        f"{meta.eval_mean_reward} at {meta.eval_at_timesteps:,} steps)"
    )
    stdout.print(
        f"fast-model check on {world.scenario.id}'s replay: ${check['cost_usd']:,.2f}, "
        f"SLO attainment {check['slo_attainment']:.4%}"
    )


@train.command("anomaly")
@click.option(
    "--detector",
    default=None,
    help=f"a streaming detector (one of: {', '.join(sorted(DETECTORS))}; "
    f"default: {DEFAULT_DETECTOR})",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="alert when the score >= this; default: NAB's standard-profile threshold on "
    "--data if given, else 0.5",
)
@path_option("--data", help="a NAB-layout corpus to choose the threshold on and score")
@path_option("--windows", help="its NAB windows JSON (with --data)")
@models_option
@promote_option
@click.option("--json", "as_json", is_flag=True, help="print the registered version as JSON")
def train_anomaly(
    detector: str | None,
    threshold: float | None,
    data: Path | None,
    windows: Path | None,
    models_dir: str,
    promote: bool,
    as_json: bool,
) -> None:
    """Register a streaming anomaly detector with its alert threshold as
    anomaly-<detector>; with --data/--windows, the threshold is the one NAB's scorer picks for
    the standard profile on that corpus and the version records the three NAB scores there
    (score it on files it was not chosen on with `opsbench anomaly nab`)."""
    from agents.anomaly.artefact import DetectorArtefact, save_detector
    from bench import registered_models as rm

    name = detector or DEFAULT_DETECTOR
    DETECTORS.spec(name, source="--detector")
    if (data is None) != (windows is None):
        problem = "needs --windows (and --windows needs --data)"
        raise InputError("--data", "", problem, "both or neither")
    check_registry_location(models_dir)
    registry = open_registry(models_dir)
    metrics: dict[str, float] = {}
    chosen_on = "given" if threshold is not None else "default"
    with tempfile.TemporaryDirectory(prefix="opsbench-train-") as scratch:
        if data is not None and windows is not None:
            from bench.nab_run import evaluate

            bar = stderr if stderr.is_terminal and not as_json else None
            result = evaluate(data, windows, Path(scratch) / "nab", name, progress=bar)
            for profile, scored in result["profiles"].items():
                metrics[f"nab_{profile}"] = float(scored["score"])
            if threshold is None:
                threshold = float(result["profiles"]["standard"]["threshold"])
                chosen_on = f"NAB standard profile on {data}"
            metrics["nab_files"] = float(result["files"])
        artefact = DetectorArtefact(
            detector=name, threshold=0.5 if threshold is None else threshold
        )
        folder = save_detector(artefact, Path(scratch) / "model")
        version = rm.register(
            registry,
            rm.default_name("anomaly", name),
            folder,
            {
                "agent": "anomaly",
                "description": f"streaming detector {name}, alerting at {artefact.threshold:g}",
                "trace": None if data is None else str(data),
                "params": {
                    "detector": name,
                    "threshold": artefact.threshold,
                    "threshold_chosen": chosen_on,
                },
                "metrics": metrics,
            },
            promote=promote,
        )
    _echo_version(version, as_json, {})


@train.command("security")
@models_option
@promote_option
@click.option("--json", "as_json", is_flag=True, help="print the registered version as JSON")
def train_security(models_dir: str, promote: bool, as_json: bool) -> None:
    """Train the shipped security analyser (simulated accounts, fixed seed and
    hyper-parameters; reused from its cache when already trained) and register it as
    security-shipped, with its detection figures on the real CloudTrail attack recording
    (never used in training) as the version's metrics."""
    from bench.security_model import register_shipped

    check_registry_location(models_dir)
    version = register_shipped(open_registry(models_dir), promote=promote, progress=status)
    _echo_version(version, as_json, {})
