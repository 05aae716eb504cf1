"""``opsbench features``: build the DuckDB feature store from a replay, list views, cut
point-in-time training sets."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from bench.cli.common import path_option, command_group, json_option, store_option, stdout
from sim.errors import InputError


features = command_group(
    "features",
    "The DuckDB feature store: build it from a replay, list views, cut training sets.",
)


@features.command("build")
@click.argument("run_dir", type=click.Path(path_type=Path))
@store_option
def features_build(run_dir: Path, store: Path) -> None:
    """Ingest a replay's telemetry (RUN_DIR from replay --out) and materialise every view."""
    from features.offline import build_store

    run_id, counts = build_store(run_dir, store)  # checks the folder before opening the store
    table = Table(title=f"feature store {store}: run {run_id}")
    table.add_column("view")
    table.add_column("rows for this run", justify="right")
    for view, rows in counts.items():
        table.add_row(view, f"{rows:,}")
    stdout.print(table)


@features.command("list")
@json_option
def features_list(as_json: bool) -> None:
    """Feature views: entity, ttl, sources, and every feature with its type and meaning."""
    from features.views import VIEWS

    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": view.name,
                        "entity": list(view.entity),
                        "ttl_s": view.ttl.total_seconds(),
                        "sources": list(view.sources),
                        "features": [
                            {"name": f.name, "dtype": f.dtype, "description": f.description}
                            for f in view.features
                        ],
                    }
                    for view in VIEWS.values()
                ]
            )
        )
        return
    for view in VIEWS.values():
        table = Table(
            title=f"{view.name}  (entity: {', '.join(view.entity)}; ttl {view.ttl}; "
            f"from {', '.join(view.sources)})",
            title_justify="left",
        )
        table.add_column("feature", no_wrap=True)
        table.add_column("type", no_wrap=True)
        table.add_column("meaning")
        for feature in view.features:
            table.add_row(feature.name, feature.dtype, feature.description)
        stdout.print(table)


@features.command("training-set")
@click.option("--view", required=True, help="feature view")
@path_option(
    "--labels",
    required=True,
    help="CSV: the view's entity columns, timestamp, label columns",
)
@path_option("--out", required=True, help="Parquet file")
@store_option
def features_training_set(view: str, labels: Path, out: Path, store: Path) -> None:
    """Point-in-time correct features of the --view for every row of the --labels CSV."""
    from features.offline import check_output_file, read_labels, write_training_set
    from features.store import FeatureStore
    from features.views import VIEWS

    if view not in VIEWS:
        raise InputError("--view", "", f"unknown view {view!r}", ", ".join(VIEWS))
    if not store.is_file():
        raise InputError(store, "--store", "no feature store here", "features build RUN_DIR first")
    check_output_file(out)
    rows = read_labels(labels, VIEWS[view].entity, view)  # all input checked before the store
    with FeatureStore(store, views=VIEWS) as fs:
        table = write_training_set(fs, view, rows, out)
    found = int(table.filter(like=f"{view}__").notna().any(axis=1).sum())
    stdout.print(f"{len(table):,} label rows, {found:,} with features, written to {out}")
