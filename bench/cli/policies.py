"""``opsbench policies``: what a replay can run, with its parameters."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from bench.cli.common import json_option, stdout


def describe_policies() -> list[dict[str, Any]]:
    """Every registered policy: id, summary, what it needs, and its parameters (name,
    default, description)."""
    from agents.registry import POLICIES

    rows = []
    for spec in POLICIES.specs():
        model = spec.params_model()
        needs = POLICIES.make(spec.id).needs  # declared by the policy itself
        rows.append(
            {
                "name": spec.id,
                "summary": spec.summary,
                "needs": {"foresight": needs.foresight, "model": needs.model},
                "parameters": [
                    {
                        "name": name,
                        "default": None if info.is_required() else info.get_default(),
                        "description": info.description or "",
                    }
                    for name, info in (model.model_fields.items() if model else ())
                ],
            }
        )
    return rows


@click.command("policies")
@json_option
def policies(as_json: bool) -> None:
    """The policies a replay can run (--policy NAME, or control.policy in a scenario)."""
    rows = describe_policies()
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    table = Table(title="policies")
    table.add_column("name", no_wrap=True)
    table.add_column("parameters")
    table.add_column("what it does")
    for row in rows:
        params = ", ".join(p["name"] for p in row["parameters"]) or "-"
        table.add_row(row["name"], params, row["summary"])
    stdout.print(table)
