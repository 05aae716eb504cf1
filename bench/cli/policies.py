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
        built = POLICIES.make(spec.id)
        needs = built.needs  # declared by the policy itself
        parts = getattr(built, "parts", (built,))  # a composed controller: both parts
        rows.append(
            {
                "name": spec.id,
                "summary": spec.summary,
                "needs": {"foresight": needs.foresight, "model": needs.model},
                "models": [p.needs.model for p in parts if p.needs.model is not None],
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
    from agents.registry import MIX_POLICIES, SIZING_POLICIES

    table = Table(title="policies")
    table.add_column("name", no_wrap=True)
    table.add_column("parameters")
    table.add_column("what it does")
    composed = [row for row in rows if "+" in row["name"]]
    for row in rows:
        if row in composed:
            continue
        params = ", ".join(p["name"] for p in row["parameters"]) or "-"
        table.add_row(row["name"], params, row["summary"])
    if composed:
        table.add_row(
            "SIZING+MIX",
            "sizing: {..}, mix: {..}",
            f"composed ({len(composed)} pairs; --json lists each): SIZING "
            f"({', '.join(SIZING_POLICIES)}) sizes the capacity, MIX "
            f"({', '.join(MIX_POLICIES)}) places it; each part takes its own parameters "
            "and gets its own model and foresight",
        )
    stdout.print(table)
