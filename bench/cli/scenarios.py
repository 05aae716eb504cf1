"""``opsbench scenarios``: list, show and describe scenario files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml
from rich.table import Table

from bench import runner
from bench.cli.common import command_group, json_option, stdout
from sim.node_pools import allowed_types_text
from sim.scenario import Scenario
from sim.scenario_files import list_scenarios, load_scenario_file


scenarios = command_group(
    "scenarios",
    "List, show and describe scenario files.",
)


def _faults(sc: Scenario) -> list[str]:
    f = sc.faults
    return [
        name
        for name, present in (
            ("node failures", f.node_failure_rate_per_node_day > 0),
            ("AZ outage", bool(f.az_outages)),
            ("spot storm", bool(f.spot_storms)),
            ("telemetry gap", bool(f.telemetry_gaps)),
        )
        if present
    ]


def describe(sid: str, path: Path) -> dict[str, Any]:
    """One shipped scenario in a line: id, days, workload, pools and faults."""
    sc = load_scenario_file(path)
    wl = sc.workload
    return {
        "id": sid,
        "file": str(path),
        "days": sc.duration_days,
        "workload": Path(wl.path).stem if wl.kind == "trace" else "synthetic",
        "pools": [
            {
                "name": p.name,
                "instance_type": allowed_types_text(p),
                "capacity_type": p.capacity_type,
                "min_nodes": p.min_nodes,
                "max_nodes": p.max_nodes,
            }
            for p in sc.cluster.pools
        ],
        "faults": _faults(sc),
        "policy": sc.control.policy,
    }


@scenarios.command("list")
@json_option
def scenarios_list(as_json: bool) -> None:
    """The shipped scenarios (with --json: one JSON array of objects)."""
    rows = [describe(sid, path) for sid, path in list_scenarios()]
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table(title="scenarios (opsbench scenarios show ID for the whole file)")
    table.add_column("id", no_wrap=True)  # ids are typed back: never truncate them
    table.add_column("days", justify="right", no_wrap=True)
    table.add_column("workload", overflow="fold")
    table.add_column("pools: type capacity min-max", overflow="fold")
    table.add_column("faults", overflow="fold")
    for row in rows:
        pools = "\n".join(
            f"{p['instance_type']} {p['capacity_type']} {p['min_nodes']}-{p['max_nodes']}"
            for p in row["pools"]
        )
        table.add_row(
            row["id"], f"{row['days']:g}", row["workload"], pools, ", ".join(row["faults"]) or "-"
        )
    stdout.print(table)


@scenarios.command("show")
@click.argument("scenario")
def scenarios_show(scenario: str) -> None:
    """One scenario (a file or a shipped id), validated, with every default filled in."""
    sc, path = runner.load(scenario)
    click.echo(f"# {path}")
    click.echo(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False).rstrip())


@scenarios.command("schema")
def scenarios_schema() -> None:
    """JSON Schema of scenario files (for editors)."""
    click.echo(json.dumps(Scenario.model_json_schema(), indent=2))
