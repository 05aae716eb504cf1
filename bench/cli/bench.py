"""``opsbench bench``: benchmarks of decision quality (scaling, cost)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
from rich.table import Table

from agents.cost.model import MAX_TIMESTEPS, MIN_TIMESTEPS
from bench.cli.common import (
    check_vector_envs,
    executor_options,
    fanned_out,
    command_group,
    json_option,
    models_option,
    path_option,
    progress_bar,
    status,
    stderr,
    stdout,
    store_option,
)
from sim.errors import InputError

if TYPE_CHECKING:
    from bench.bench_all import SweepSettings


bench = command_group(
    "bench",
    "Benchmarks of decision quality.",
)


# --------------------------------------------------------------------------- all


@bench.command("all")
@click.option("--quick", is_flag=True, help="a small set: two scenarios, one simulated day each")
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="seeds per scenario and policy: its own and the next ones (default 1 with --quick, "
    "else 3)",
)
@executor_options("replays")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="scenario id or file (repeatable; default: every shipped scenario without a "
    "lifecycle section, or the quick set)",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    help="policy name (repeatable; default: the scaling and cost policies)",
)
@click.option("--days", type=float, help="simulated days (default: the scenario's; 1 with --quick)")
@click.option(
    "--evaluations",
    default="all",
    show_default=True,
    help="models measured outside the replay: all, none, or a comma-separated list of "
    "forecast, nab, security, hdfs, latency",
)
@path_option(
    "--out",
    required=True,
    help="write results.parquet, results.json, REPORT.md and report.html here",
)
@models_option
@store_option
@json_option
def bench_all(
    quick: bool,
    seeds: int | None,
    executor_name: str,
    address: str | None,
    workers: int | None,
    scenarios: tuple[str, ...],
    policies: tuple[str, ...],
    days: float | None,
    evaluations: str,
    out: Path,
    models_dir: str,
    store: Path,
    as_json: bool,
) -> None:
    """Every policy on every scenario and seed (replays in parallel) and every model outside
    the replay, measured in one run; the seed's two tables regenerated; a report."""
    from bench.bench_all import SweepSettings

    settings = SweepSettings.from_options(
        quick=quick, seeds=seeds, executor=executor_name, address=address, workers=workers,
        scenarios=scenarios, policies=policies, days=days, evaluations=evaluations,
    )  # fmt: skip
    document = run_all_with_progress(settings, out=out, models_dir=models_dir, store=store)
    if as_json:
        click.echo(json.dumps(document))
        return
    evaluated = document["evaluations"]
    sections = (
        ", ".join(f"{k} {v:.0f} s" for k, v in evaluated["wall_s"].items()) if evaluated else ""
    )
    stdout.print(
        f"{len(document['runs'])} replays in {document['wall_s']:.1f} s "
        f"({settings.executor}, {settings.workers} worker{'s' * (settings.workers != 1)})"
        + (f"; evaluations: {sections}" if sections else "")
    )
    stdout.print(f"report: {out / 'report.html'} (and {out / 'REPORT.md'})")


def run_all_with_progress(
    settings: SweepSettings, *, out: Path, models_dir: str, store: Path
) -> dict[str, Any]:
    """:func:`bench.bench_all.run_all` with status lines and a bar over the replays on
    stderr (``bench all`` and ``demo``'s quick report); returns results.json's content."""
    from bench.bench_all import run_all

    return run_all(
        settings, out=out, models_dir=models_dir, store=store, progress=status,
        bar=lambda total: progress_bar(
            "replays", "{task.completed:.0f}/{task.total:.0f} runs", total, stderr.is_terminal
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------- scaling


@bench.command("scaling")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="scenario id or file (repeatable; default: the four dev-trace scenarios)",
)
@models_option
@store_option
@json_option
def bench_scaling(scenarios: tuple[str, ...], models_dir: Path, store: Path, as_json: bool) -> None:
    """static, reactive, predictive and oracle on every dev-trace scenario, with targets."""
    from bench.scaling import DEV_SCENARIOS, run_scenario

    results = [
        run_scenario(s, models_dir=models_dir, store=store, progress=status)
        for s in (scenarios or DEV_SCENARIOS)
    ]
    if as_json:
        click.echo(json.dumps({"scenarios": results}))
        return
    for result in results:
        stdout.print(_scaling_table(result))
    stdout.print(_targets_table(results))


SCALING_ROWS: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "cost $", "{:,.2f}"),
    ("slo_attainment", "SLO attainment", "{:.4%}"),
    ("slo_violation_minutes", "SLO violation min", "{:,}"),
    ("wasted_node_hours", "wasted node-h", "{:,.1f}"),
    ("idle_node_hours", "idle node-h", "{:,.1f}"),
    ("time_to_capacity_min", "time to capacity (mean min)", "{:.2f}"),
    ("time_to_capacity_max_min", "time to capacity (max min)", "{:,}"),
)


def _scaling_table(result: dict[str, Any]) -> Table:
    policies = result["policies"]
    first = next(iter(policies.values()))
    table = Table(title=f"{result['scenario']} ({first['sim_days']:g} days from {first['start']})")
    table.add_column("metric")
    for name in policies:
        table.add_column(name, justify="right")
    for key, label, fmt in SCALING_ROWS:
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


# --------------------------------------------------------------------------- lifecycle


@bench.command("lifecycle")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="scenario id or file (repeatable; default: regime-shift, bad-model, new-service-account)",
)
@models_option
@store_option
@json_option
def bench_lifecycle(
    scenarios: tuple[str, ...], models_dir: Path, store: Path, as_json: bool
) -> None:
    """Each lifecycle scenario as written, with its monitors only (never retrain) and, for
    scaling, under reactive: SLO and cost over the whole replay and after the promotion."""
    from bench.lifecycle_eval import SCENARIOS, evaluate_all

    results = evaluate_all(
        scenarios or SCENARIOS, models_dir=models_dir, store=store, progress=status
    )
    if as_json:
        click.echo(json.dumps({"scenarios": results}))
        return
    for result in results:
        stdout.print(_lifecycle_table(result))


def _lifecycle_table(result: dict[str, Any]) -> Table:
    start = result["after_from_hour"]
    table = Table(
        title=f"{result['scenario']}: drift detected "
        + (
            f"{result['drift_detection_delay_min']:g} min after the shift"
            if result["drift_detection_delay_min"] is not None
            else "(no shift, or not detected)"
        )
    )
    for column in ("run", "SLO", "cost $", f"SLO from hour {start}", f"cost $ from hour {start}",
                   "wall s"):  # fmt: skip
        table.add_column(column, justify="right")
    for label, run in result["runs"].items():
        after = run["after"] or {}
        slo_after, cost_after = after.get("slo_attainment"), after.get("cost_usd")
        table.add_row(
            label,
            f"{run['slo_attainment']:.4%}",
            f"{run['cost_usd']:,.2f}",
            "-" if slo_after is None else f"{slo_after:.4%}",
            "-" if cost_after is None else f"{cost_after:,.2f}",
            f"{run['replay_wall_s']:.1f}",
        )
    notes = []
    for model in result["models"]:
        outcomes = ", ".join(
            f"{r['outcome']} after {r['minutes_from_arrival']} min "
            f"(share {r['challenger_share']:.1%})"
            for r in model["rollouts"]
        )
        notes.append(
            f"{model['name']}: {model['drift_detections']} detections, {model['retrains']} "
            f"retrains (longest {model['retrain_wall_s_max']} s), rollouts: {outcomes or 'none'}"
        )
    table.caption = "\n".join(notes)
    return table


# --------------------------------------------------------------------------- cost


@bench.command("cost")
@click.option(
    "--set",
    "sets",
    multiple=True,
    help="dev trace set (repeatable; default: all): "
    "avail-us-east-1, avail-us-east-1a-2, avail-us-west-2, preempt-r5, preempt-p3",
)
@click.option("--days", type=float, default=None, help="simulated days (default 6)")
@json_option
def bench_cost(sets: tuple[str, ...], days: float | None, as_json: bool) -> None:
    """Cost policies on the dev spot traces: savings, SLO, interruptions, gap to hindsight."""
    from bench.cost import DAYS, TRACE_SETS, run_set, targets

    for name in sets:
        if name not in TRACE_SETS:
            raise InputError("--set", "", f"unknown trace set {name!r}", ", ".join(TRACE_SETS))
    results = []
    for name in sets or tuple(TRACE_SETS):
        result = run_set(name, days=DAYS if days is None else days, progress=status)
        result["targets"] = targets(result)
        results.append(result)
    if as_json:
        click.echo(json.dumps({"trace_sets": results}))
        return
    for result in results:
        stdout.print(_cost_table(result))


def replay_study_options(days_help: str) -> Callable[[Any], Any]:
    """``--days`` (with ``days_help``), the executor options for replays, ``--models``,
    ``--store`` and ``--json``: the options of a study made of many replays."""

    def apply(command: Any) -> Any:
        for option in (json_option, store_option, models_option, executor_options("replays")):
            command = option(command)
        return click.option(
            "--days", type=click.FloatRange(min=0, min_open=True), default=None, help=days_help
        )(command)

    return apply


def _run_study(
    study: Callable[..., dict[str, Any]],
    total: int,
    what: str,
    days: float | None,
    executor_name: str,
    workers: int | None,
    address: str | None,
    models_dir: str,
    store: Path,
) -> dict[str, Any]:
    """``study(...)`` fanned out on the chosen executor, with a bar over its ``total``
    ``what`` and status lines."""
    with fanned_out(executor_name, workers, address, what, total) as (ex, one_done):
        return study(
            days=days, executor=ex, models_dir=models_dir, store=str(store), progress=status,
            on_cell=one_done,
        )  # fmt: skip


@bench.command("sizing-cv")
@replay_study_options("simulated days per replay (default: each trace's whole held-back 30%)")
def bench_sizing_cv(
    days: float | None,
    executor_name: str,
    address: str | None,
    workers: int | None,
    models_dir: str,
    store: Path,
    as_json: bool,
) -> None:
    """The composed controller's sizing (quantile, budget quantile) chosen
    leave-one-trace-out, each load trace scored at the setting chosen on the other three,
    against reactive."""
    from bench.sizing_cv import SETTINGS, TRACES, sizing_cv, specs

    total = len(specs(tuple(TRACES), SETTINGS, days, models_dir, str(store)))
    result = _run_study(sizing_cv, total, "replays", days, executor_name, workers, address,
                        models_dir, store)  # fmt: skip
    if as_json:
        click.echo(json.dumps(result))
        return
    stdout.print(_sizing_table(result))
    stdout.print(
        f"met on {result['met']} of {len(result['folds'])} held-out traces; the same rule on "
        f"all four picks {result['whole_split_sizing']}"
    )


@bench.command("right-sizing")
@replay_study_options("simulated days per replay (default: the scenarios' whole week)")
def bench_right_sizing(
    days: float | None,
    executor_name: str,
    address: str | None,
    workers: int | None,
    models_dir: str,
    store: Path,
    as_json: bool,
) -> None:
    """What choosing among instance types saves: every cost policy on the default week
    with c5a.2xlarge only and with the right-sizing scenario's seven c5a/c5 types, beside
    each world's episode optimum."""
    from bench.right_sizing import right_sizing, specs

    total = len(specs(days, models_dir, str(store)))
    result = _run_study(right_sizing, total, "cells", days, executor_name, workers, address,
                        models_dir, store)  # fmt: skip
    if as_json:
        click.echo(json.dumps(result))
        return
    stdout.print(_right_sizing_table(result))
    one, many = result["scenarios"]
    for name in (one, many):
        o = result["optimum"][name]
        stdout.print(
            f"{name}: episode optimum ${o['cost_usd']:,.2f} ({o['kind']}, {o['solve_s']:.0f} s); "
            f"spot on offer {o['spot_on_offer_share']:.1%} of minutes, cheapest spot pod "
            f"{o['cheapest_spot_saving']:.1%} below the cheapest on-demand pod"
        )


def _right_sizing_table(result: dict[str, Any]) -> Table:
    """Policies in rows, fitting 80 columns (costs in whole dollars)."""
    one, many = result["scenarios"]
    table = Table(title=f"{one} (c5a.2xlarge) vs {many} (7 types)", box=None,
                  pad_edge=False, collapse_padding=True)  # fmt: skip
    table.add_column("policy", no_wrap=True)
    for column in ("1 type $", "SLO", "7 types $", "SLO", "saving", "gap", "gap"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in result["policies"]:
        table.add_row(
            r["policy"], f"{r['one_type_usd']:,.0f}", f"{r['one_type_slo']:.2%}",
            f"{r['right_sized_usd']:,.0f}", f"{r['right_sized_slo']:.2%}",
            f"{r['saving']:+.1%}", f"{r['one_type_gap_to_optimum']:+.0%}",
            f"{r['right_sized_gap_to_optimum']:+.0%}",
        )  # fmt: skip
    return table


def _sizing_table(result: dict[str, Any]) -> Table:
    """Held-out traces in rows, fitting 80 columns (costs in whole dollars)."""
    table = Table(title=f"{result['policy']}: sizing chosen on the other traces",
                  box=None, pad_edge=False, collapse_padding=True)  # fmt: skip
    names = max(len(f["held_out"]) for f in result["folds"])
    table.add_column("held out", no_wrap=True, min_width=names)
    for column in ("sizing", "$", "SLO", "react $", "SLO", "Δ $", "oracle", "SLO", "met"):
        width = 7 if column == "SLO" else None  # 100.00%
        table.add_column(column, justify="right", no_wrap=True, min_width=width)
    for f in result["folds"]:
        table.add_row(
            f["held_out"], f["sizing"], f"{f['cost_usd']:,.0f}", f"{f['slo_attainment']:.2%}",
            f"{f['reactive_usd']:,.0f}", f"{f['reactive_slo_attainment']:.2%}",
            f"{f['cost_vs_reactive']:+.1%}", f"{f['foresight_usd']:,.0f}",
            f"{f['foresight_slo_attainment']:.2%}", "yes" if f["met"] else "no",
        )  # fmt: skip
    return table


def check_three_spot_azs(scenario: str) -> None:
    """The trace sets hold three traces: ``scenario`` needs on-demand and spot pools with
    three spot AZs (one line naming ``--scenario`` otherwise)."""
    from bench import runner

    world = runner.prepare_run(scenario, policy="on-demand", days=0.1).world
    kinds = {p.capacity_type for p in world.pools}
    spot_azs = {az for p in world.pools if p.capacity_type == "spot" for az in p.azs}
    if kinds != {"on-demand", "spot"} or len(spot_azs) != 3:
        raise InputError(
            "--scenario", "", f"{scenario} has {sorted(kinds)} pools and {len(spot_azs)} spot AZs",
            "a scenario with on-demand and spot pools over three spot AZs",
        )  # fmt: skip


@bench.command("cost-rl-cv")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True,
              help="PPO seeds per held-out trace set")  # fmt: skip
@click.option("--timesteps", type=click.IntRange(MIN_TIMESTEPS, MAX_TIMESTEPS), default=300_000,
              show_default=True, help="PPO steps per training")  # fmt: skip
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="simulated days per replay (default 6)")  # fmt: skip
@click.option(
    "--set",
    "sets",
    multiple=True,
    help="hold out only these trace sets (repeatable; default: all five)",
)
@click.option("--vector-envs", type=click.IntRange(min=1), default=None,
              help="train on this many sub-environments of the vectorised env (a divisor "
              "of 4,096, e.g. 32)")  # fmt: skip
@click.option("--availability", type=click.Choice(["traces", "generated"]), default="traces",
              show_default=True, help="train on windows of the other dev traces, or on "
              "availability generated by the model fitted on them (sim.market."
              "availability_model); the replays use the held-out traces either way")  # fmt: skip
@click.option("--scenario", default="default", show_default=True,
              help="a shipped scenario id or file with on-demand and spot pools over three "
              "spot AZs (e.g. right-sizing)")  # fmt: skip
@click.option("--sizing", type=click.Choice(["controller", "predictive"]), default="controller",
              show_default=True, help="the plan every policy holds: the cost controller's own, "
              "or the predictive scaling policy's (predictive+MIX; cost-rl trained under it, "
              "with its forecast and each AZ's drop hazard in the observation)")  # fmt: skip
@click.option("--sizing-quantile", type=click.Choice(["0.5", "0.75", "0.9"]), default="0.9",
              show_default=True,
              help="--sizing predictive: the quantile provisioned for")  # fmt: skip
@executor_options("trainings and replays")
@json_option
def bench_cost_rl_cv(
    seeds: int,
    timesteps: int,
    days: float | None,
    sets: tuple[str, ...],
    vector_envs: int | None,
    availability: Literal["traces", "generated"],
    scenario: str,
    sizing: Literal["controller", "predictive"],
    sizing_quantile: str,
    executor_name: str,
    address: str | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """cost-rl trained with each dev trace set held out, replayed on it beside the
    heuristics: its saving against the best heuristic, mean and sd over seeds."""
    from bench.cost import DAYS, TRACE_SETS
    from bench.cost_rl_cv import cost_rl_cv, tasks

    for name in sets:
        if name not in TRACE_SETS:
            raise InputError("--set", "", f"unknown trace set {name!r}", ", ".join(TRACE_SETS))
    check_vector_envs(vector_envs)
    check_three_spot_azs(scenario)
    if sizing == "predictive" and vector_envs is not None:
        raise InputError(
            "--vector-envs", "", "given with --sizing predictive",
            "no --vector-envs: predictive sizing trains on the scalar environment",
        )  # fmt: skip
    chosen = sets or tuple(TRACE_SETS)
    days = DAYS if days is None else days
    q = float(sizing_quantile)
    total = len(tasks(chosen, seeds, timesteps, days, vector_envs, availability, scenario,
                      sizing, q))  # fmt: skip
    with fanned_out(executor_name, workers, address, "jobs", total) as (ex, one_done):
        result = cost_rl_cv(sets=chosen, seeds=seeds, timesteps=timesteps, days=days,
                            vector_envs=vector_envs, availability=availability,
                            scenario=scenario, sizing=sizing, sizing_quantile=q,
                            executor=ex, on_done=one_done)  # fmt: skip
    if as_json:
        click.echo(json.dumps(result))
        return
    trained_on = "" if availability == "traces" else ", on generated availability"
    if sizing == "predictive":
        trained_on += f", under predictive sizing at q{q:g}"
    table = Table(title=f"cost-rl trained without the set ({seeds} seeds{trained_on}) vs the "
                  "best heuristic", box=None, pad_edge=False, collapse_padding=True)  # fmt: skip
    table.add_column("held-out set", no_wrap=True)
    for column in ("best heuristic", "$", "SLO", "cost-rl $", "saving", "± sd", "min SLO"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in result["sets"]:
        costs = row["cost_rl_usd"]
        table.add_row(
            row["trace_set"], row["best_heuristic"], f"{row['best_heuristic_usd']:,.2f}",
            f"{row['best_heuristic_slo']:.3%}", f"{sum(costs) / len(costs):,.2f}",
            f"{row['saving_mean']:+.2%}", f"{row['saving_sd']:.2%}", f"{row['min_slo']:.3%}",
        )  # fmt: skip
    stdout.print(table)
    stdout.print(
        f"over all sets and seeds: saving {result['saving_mean']:+.2%} ± "
        f"{result['saving_sd']:.2%} (target >= {result['target']:.0%} at SLO >= 99.9%): "
        + ("met" if result["met"] else "not met")
    )


COST_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "cost $", "{:,.2f}"),
    ("savings_vs_on_demand", "saving", "{:.1%}"),
    ("slo_attainment", "SLO", "{:.3%}"),
    ("slo_violation_minutes", "viol min", "{:,}"),
    ("interruptions", "interr", "{:,}"),
    ("gap_to_hindsight_mix", "vs hindsight-mix", "{:+.1%}"),
    ("gap_to_hindsight", "vs hindsight", "{:+.1%}"),
    ("gap_to_optimum", "vs optimum", "{:+.1%}"),
)
"""Saving against ``on-demand``; the gaps against ``hindsight-mix`` (a diagnostic),
``hindsight`` (the foresight rule) and the episode-level optimum (a lower bound)."""


def _cost_table(result: dict[str, Any]) -> Table:
    m = result["market"]
    table = Table(
        title=f"{result['trace_set']}: spot on offer {m['spot_on_offer_share']:.0%} of minutes, "
        f"market-bound saving {m['market_bound_savings']:.0%}"
    )
    table.add_column("policy", no_wrap=True)
    for _, label, _ in COST_COLUMNS:
        table.add_column(label, justify="right")
    for name, row in result["policies"].items():
        table.add_row(
            name, *(fmt.format(row[k]) if k in row else "-" for k, _, fmt in COST_COLUMNS)
        )
    t = result.get("targets") or {}
    if t:
        table.caption = "targets (cost-rl; composed: best SIZING+MIX vs reactive): " + ", ".join(
            f"{k} {'met' if v['met'] else 'MISSED'}" for k, v in t.items()
        )
    return table
