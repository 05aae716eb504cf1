"""``opsbench replay`` and ``opsbench demo``: one replay, or the main job side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bench import runner
from bench.cli.common import (
    path_option,
    comparison_table,
    json_option,
    models_option,
    sim_days_progress,
    status,
    stderr,
    stdout,
)

DEMO_POLICIES = ("static", "reactive", "predictive", "oracle")
"""The demo's first table: the scaling policies."""
SPOT_DEMO_POLICIES = ("on-demand", "uniform-progress", "cost-rl", "hindsight")
"""The demo's second table: the spot-capacity policies on the same scenario."""
COMPOSED_DEMO_POLICIES = ("predictive+spot-greedy", "predictive+cost-rl")
"""The demo's third table, beside reactive and predictive from the first: the composed
controllers (predictive sizes, the cost policy places)."""


def replay_one(
    prepared: runner.PreparedRun,
    *,
    out: Path | None = None,
    store: Path | None = None,
    model: str | None = None,
    models_dir: str | Path = runner.MODELS_DIR,
) -> dict[str, Any]:
    """Attach the policy's model (training it first if needed), then replay with progress."""
    runner.attach_model(prepared, models_dir=models_dir, model=model, progress=status)
    world = prepared.world
    label = f"{world.scenario.id} / {prepared.policy.name}"
    with sim_days_progress(label, world.duration_s / 86400.0, stderr.is_terminal) as tick:
        return runner.run(prepared, out=out, progress=tick, store=store)


@click.command("replay")
@click.argument("scenario")
@click.option("--policy", help="policy name (default: the scenario's)")
@click.option("--seed", type=click.IntRange(min=0), help="root seed (default: the scenario's)")
@path_option("--trace", help="replace the workload with this CSV")
@click.option("--days", type=float, help="simulated days (default: the scenario's)")
@path_option("--out", help="write telemetry + summary.json here")
@path_option(
    "--spot-availability",
    help="Can't-Be-Late trace JSON (or a folder of them) replacing spot availability",
)
@path_option(
    "--spot-prices",
    help="spot price history CSV (the scenario's format) replacing the spot prices",
)
@path_option(
    "--store",
    help="stream telemetry into this DuckDB feature store while replaying",
)
@click.option(
    "--model",
    help="the registered model the policy decides with: NAME, NAME@ALIAS or NAME/VERSION "
    "(default: <agent>-<scenario>@champion, trained and registered first if needed)",
)
@click.option(
    "--lifecycle",
    type=click.Choice(["on", "monitor", "off"]),
    default="on",
    show_default=True,
    help="the scenario's lifecycle: section as written, its monitors only (never retrain), "
    "or ignored",
)
@models_option
@json_option
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
    model: str | None,
    lifecycle: runner.LifecycleMode,
    models_dir: str,
    as_json: bool,
) -> None:
    """Replay SCENARIO (a scenario file or a shipped id) under one policy."""
    prepared = runner.prepare_run(
        scenario,
        policy=policy,
        seed=seed,
        trace=trace,
        days=days,
        spot_availability=spot_availability,
        spot_prices=spot_prices,
        lifecycle=lifecycle,
    )
    summary = replay_one(prepared, out=out, store=store, model=model, models_dir=models_dir)
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


DEMO_REPORT = Path(".opsbench") / "report"
"""Where ``opsbench demo`` writes the quick report (``bench all --quick``)."""


@click.command("demo")
@click.option("--scenario", default="default", show_default=True, help="scenario id or file")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object per policy")
@path_option(
    "--report",
    "report_dir",
    default=DEMO_REPORT,
    show_default=True,
    help="then write the quick report (opsbench bench all --quick) here",
)
@click.option("--no-report", is_flag=True, help="skip the quick report")
def demo(scenario: str, as_json: bool, report_dir: Path, no_report: bool) -> None:
    """The main job: the scaling policies static, reactive, predictive and oracle side by side
    (predictive trains on the scenario's history first, once), then the spot-capacity
    policies on-demand, uniform-progress, cost-rl and hindsight, and the composed
    controllers predictive+spot-greedy and predictive+cost-rl (predictive sizes, the cost
    policy places); then the quick report (every agent measured, the seed's two tables)."""
    if not no_report:
        from bench.sweep_results import check_out

        check_out(report_dir, "--report")  # before the replays, not after
    scaling = [replay_one(runner.prepare_run(scenario, policy=name)) for name in DEMO_POLICIES]
    kinds = {p.capacity_type for p in runner.load(scenario)[0].cluster.pools}
    spot = (
        [
            replay_one(runner.prepare_run(scenario, policy=name))
            for name in SPOT_DEMO_POLICIES + COMPOSED_DEMO_POLICIES
        ]
        if kinds == {"spot", "on-demand"}
        else []
    )
    if as_json:
        for s in scaling + spot:
            click.echo(json.dumps(s))
        return
    first = scaling[0]
    stdout.print(
        comparison_table(
            f"{first['scenario']}: {first['sim_days']:g} simulated days, seed {first['seed']}",
            scaling,
        )
    )
    if spot:
        mixes, composed = spot[: len(SPOT_DEMO_POLICIES)], spot[len(SPOT_DEMO_POLICIES) :]
        stdout.print(comparison_table(f"{spot[0]['scenario']}: spot capacity policies", mixes))
        sizing = [s for s in scaling if s["policy"] in ("reactive", "predictive")]
        stdout.print(
            comparison_table(
                f"{spot[0]['scenario']}: composed controllers (sizing+mix)", sizing + composed
            )
        )
    else:
        stdout.print(f"{first['scenario']} has no spot and on-demand pools: no spot table")
    if not no_report:
        write_quick_report(report_dir)


def write_quick_report(out: Path) -> None:
    """``opsbench bench all --quick --out OUT`` (every model measured, the seed's two tables,
    report.html), then print where the report is."""
    from bench.bench_all import SweepSettings
    from bench.cli.bench import run_all_with_progress
    from features import DEFAULT_STORE

    settings = SweepSettings.from_options(
        quick=True, seeds=None, executor="process", address=None, workers=None,
        scenarios=(), policies=(), days=None,
    )  # fmt: skip
    stdout.print(f"writing the quick report (opsbench bench all --quick --out {out}) ...")
    run_all_with_progress(settings, out=out, models_dir=str(runner.MODELS_DIR), store=DEFAULT_STORE)
    stdout.print(f"report: {(out / 'report.html').resolve()}  (text: {out / 'REPORT.md'})")
