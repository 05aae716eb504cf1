"""``opsbench models``: list, inspect, promote, roll back and compare registered models."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from agents.lifecycle.registry import (
    ModelRef,
    ModelRegistry,
    ModelVersion,
    champion_of,
    check_name,
)
from bench.cli.common import command_group, json_option, models_option, stdout
from sim.errors import InputError

models = command_group(
    "models",
    "The model registry: every version `opsbench train` registered, its lineage and aliases "
    "(champion, challenger). The local registry is MLflow's: `mlflow ui --backend-store-uri "
    "sqlite:///.opsbench/models/mlflow.db` opens the same store.",
)


def _open(location: str) -> ModelRegistry:
    from agents.lifecycle.open import open_registry

    return open_registry(location)


def version_record(version: ModelVersion) -> dict[str, Any]:
    """One version as ``list --json`` prints it."""
    card = version.card
    return {
        "name": version.name,
        "version": version.version,
        "ref": version.ref,
        "aliases": list(version.aliases),
        "agent": card.agent,
        "created": version.created,
        "scenario": card.scenario,
        "data_start": card.data_start,
        "data_end": card.data_end,
        "metrics": dict(card.metrics),
        "artefact_sha256": card.artefact_sha256,
        "parent": card.parent,
    }


def lineage(registry: ModelRegistry, version: ModelVersion) -> list[str]:
    """``version``'s ancestors, parent first (a parent no longer in the registry ends it)."""
    chain: list[str] = []
    parent = version.card.parent
    while parent is not None and parent not in chain and len(chain) < 1000:
        chain.append(parent)
        try:
            parent = registry.resolve(ModelRef.parse(parent, source="parent")).card.parent
        except InputError:
            break
    return chain


def example_request(registry: ModelRegistry, version: ModelVersion) -> Any:
    """A valid ``/invocations`` body for ``version`` (its predictor's own example, as
    MLflow keeps an input example)."""
    from agents.serving.loading import load_version_predictor

    return load_version_predictor(registry, version).example_request()


def _show_record(registry: ModelRegistry, version: ModelVersion) -> dict[str, Any]:
    card = version.card
    return {
        **version_record(version),
        "description": card.description,
        "trace": card.trace,
        "feature_store": card.feature_store,
        "seed": card.seed,
        "params": dict(card.params),
        "libraries": dict(card.libraries),
        "lineage": lineage(registry, version),
        "location": version.location,
        "example_request": example_request(registry, version),
    }


@models.command("list")
@click.argument("name", required=False)
@models_option
@json_option
def models_list(name: str | None, models_dir: str, as_json: bool) -> None:
    """Every registered version (of NAME only if given), oldest first."""
    if name is not None:
        check_name(name, source="NAME")
    found = _open(models_dir).versions(name)
    if as_json:
        click.echo(json.dumps([version_record(v) for v in found]))
        return
    if not found:
        stdout.print(f"no registered models in {models_dir}" + (f" named {name}" if name else ""))
        return
    table = Table(title=f"models in {models_dir}")
    for column in ("model", "aliases", "agent", "scenario"):
        table.add_column(column, no_wrap=True)
    for column in ("data to", "metrics", "parent"):
        table.add_column(column)
    for v in found:
        card = v.card
        metrics = ", ".join(f"{k} {x:.4g}" for k, x in card.metrics.items())
        table.add_row(
            v.ref,
            ", ".join(v.aliases),
            card.agent,
            card.scenario or "",
            card.data_end or "",
            metrics,
            card.parent or "",
        )
    stdout.print(table)


@models.command("show")
@click.argument("ref")
@models_option
@json_option
def models_show(ref: str, models_dir: str, as_json: bool) -> None:
    """One version (REF: NAME, NAME@ALIAS or NAME/VERSION) with its lineage, artefact and an
    example /invocations body."""
    registry = _open(models_dir)
    record = _show_record(registry, registry.resolve(ModelRef.parse(ref, source="REF")))
    if as_json:
        click.echo(json.dumps(record))
        return
    table = Table(title=record["ref"], show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    stdout.print(table)


@models.command("promote")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@models_option
@json_option
def models_promote(name: str, version: int, models_dir: str, as_json: bool) -> None:
    """Make VERSION of NAME the champion; the champion it replaces is kept as the rollback
    target."""
    check_name(name, source="NAME")
    promoted = _open(models_dir).promote(name, version)
    if as_json:
        click.echo(json.dumps(version_record(promoted)))
        return
    stdout.print(f"{promoted.ref} is the champion of {name}")


@models.command("rollback")
@click.argument("name")
@models_option
@json_option
def models_rollback(name: str, models_dir: str, as_json: bool) -> None:
    """Restore the champion NAME had before its last promotion."""
    check_name(name, source="NAME")
    restored = _open(models_dir).rollback(name)
    if as_json:
        click.echo(json.dumps(version_record(restored)))
        return
    stdout.print(f"{restored.ref} is the champion of {name} again")


def _flat(prefix: str, values: Any) -> dict[str, Any]:
    return {f"{prefix}.{k}": v for k, v in dict(values).items()}


def diff_records(a: ModelVersion, b: ModelVersion) -> list[dict[str, Any]]:
    """Fields whose values differ between ``a`` and ``b``: metrics (with ``b - a``), the
    data range, parameters and lineage."""

    def fields(v: ModelVersion) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in v.card.model_dump(mode="json").items():
            out.update(_flat(key, value) if isinstance(value, dict) else {key: value})
        return out

    left, right = fields(a), fields(b)
    rows = []
    for key in sorted(set(left) | set(right)):
        x, y = left.get(key), right.get(key)
        if x == y:
            continue
        row: dict[str, Any] = {"field": key, "a": x, "b": y}
        if isinstance(x, int | float) and isinstance(y, int | float):
            row["change"] = y - x
        rows.append(row)
    return rows


@models.command("diff")
@click.argument("a")
@click.argument("b")
@models_option
@json_option
def models_diff(a: str, b: str, models_dir: str, as_json: bool) -> None:
    """Compare two versions (A, B: references): metrics, data ranges and parameters that
    differ."""
    registry = _open(models_dir)
    va = registry.resolve(ModelRef.parse(a, source="A"))
    vb = registry.resolve(ModelRef.parse(b, source="B"))
    rows = diff_records(va, vb)
    if as_json:
        click.echo(json.dumps({"a": va.ref, "b": vb.ref, "differences": rows}))
        return
    if not rows:
        stdout.print(f"{va.ref} and {vb.ref} record the same fields")
        return
    table = Table(title=f"{va.ref} → {vb.ref}")
    for column in ("field", va.ref, vb.ref, "change"):
        table.add_column(column, overflow="fold")
    for row in rows:
        change = row.get("change")
        table.add_row(
            row["field"], _cell(row["a"]), _cell(row["b"]),
            "" if change is None else f"{change:+.4g}",
        )  # fmt: skip
    stdout.print(table)


def _cell(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


@models.command("copy")
@click.argument("ref")
@click.option(
    "--to",
    "target",
    required=True,
    help="the registry to copy into (e.g. sagemaker://BUCKET/PREFIX?image=URI, for deploy)",
)
@click.option("--endpoint-url", default=None, help="AWS endpoint URL (e.g. a moto server)")
@models_option
@json_option
def models_copy(
    ref: str, target: str, endpoint_url: str | None, models_dir: str, as_json: bool
) -> None:
    """Copy version REF into another registry as the next version of the same name, its card
    unchanged but for the lineage (the source is named in the description); it becomes the
    champion there if the model has none."""
    import tempfile
    from pathlib import Path

    from agents.lifecycle.open import open_registry

    source = _open(models_dir)
    version = source.resolve(ModelRef.parse(ref, source="REF"))
    destination = open_registry(target, endpoint_url=endpoint_url)
    note = f"copied from {version.ref} in {models_dir}"
    card = version.card.model_copy(
        update={"description": f"{version.card.description} ({note})".strip(), "parent": None}
    )
    with tempfile.TemporaryDirectory(prefix="opsbench-copy-") as scratch:
        folder = source.fetch(version, Path(scratch) / "artefact")
        copied = destination.register(version.name, folder, card)
    if champion_of(destination, version.name) is None:
        copied = destination.promote(version.name, copied.version)
    if as_json:
        click.echo(json.dumps({**version_record(copied), "location": copied.location}))
        return
    stdout.print(f"{version.ref} → {copied.ref} in {target} ({copied.location})")
