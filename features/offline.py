"""Feeding the store from a finished replay, and cutting training sets out of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.store import FeatureStore
from sim.errors import InputError
from sim.telemetry import SCHEMAS, STREAMS


def run_id_of(summary: dict[str, object]) -> str:
    """The run id of a replay: scenario, policy, seed and length (stable across re-runs)."""
    return f"{summary['scenario']}-{summary['policy']}-s{summary['seed']}-{summary['sim_days']:g}d"


def build_from_run_dir(run_dir: Path, store: FeatureStore) -> tuple[str, dict[str, int]]:
    """Ingest a replay's ``--out`` folder (batch by Parquet row group) and materialise
    every view. Returns the run id and the rows each view holds for it."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise InputError(
            run_dir, "summary.json", "not a replay output folder", "opsbench replay --out DIR"
        )
    try:
        summary = json.loads(summary_path.read_text())
        run_id = str(summary["run_id"]) if "run_id" in summary else run_id_of(summary)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(summary_path, "", f"unreadable summary: {exc}") from None
    files = {stream: run_dir / f"{stream}.parquet" for stream in STREAMS}
    for stream, path in files.items():
        if not path.is_file():
            raise InputError(
                run_dir, f"{stream}.parquet", "missing", "a complete replay output folder"
            )
    for stream, path in files.items():
        parquet = pq.ParquetFile(path)
        for seq in range(parquet.num_row_groups):
            # Parquet keeps second timestamps as milliseconds: cast back to the stream's schema.
            batch = parquet.read_row_group(seq).cast(SCHEMAS[stream])
            store.ingest_batch(run_id, stream, seq, batch)
    for view, spec in store.views.items():
        if spec.computed:
            store.materialize(view, run_id=run_id)
    return run_id, store.row_counts(run_id)


def read_labels(path: Path, entity: tuple[str, ...], view: str) -> pd.DataFrame:
    """A labels CSV: the view's entity columns, ``timestamp``, then label columns."""
    try:
        labels = pd.read_csv(path, dtype={key: str for key in entity})
    except FileNotFoundError:
        raise InputError(path, "--labels", "file not found", "a CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, "--labels", f"not a readable CSV: {exc}") from None
    required = [*entity, "timestamp"]
    missing = [c for c in required if c not in labels.columns]
    if missing:
        raise InputError(
            path,
            "header",
            f"missing column(s) {missing} for view {view}",
            f"columns {', '.join(required)}, then label columns",
        )
    try:
        labels["timestamp"] = pd.to_datetime(labels["timestamp"], format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise InputError(path, "timestamp", f"not ISO 8601 timestamps: {exc}") from None
    if labels["timestamp"].dt.tz is not None:
        labels["timestamp"] = labels["timestamp"].dt.tz_convert(None)
    return labels


def write_training_set(
    store: FeatureStore, view: str, labels_path: Path, out: Path
) -> pd.DataFrame:
    """Point-in-time correct features of ``view`` for every label row, written to ``out``."""
    if view not in store.views:
        raise InputError("--view", "", f"unknown view {view!r}", ", ".join(store.views))
    spec = store.views[view]
    labels = read_labels(labels_path, spec.entity, view)
    refs = [f"{view}:{name}" for name in spec.feature_names]
    table = store.get_historical_features(labels, refs)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        table.to_parquet(partial, index=False)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return table
