"""Feeding the store from a finished replay, and cutting training sets out of it.

Everything a user hands in is checked before anything is written: a replay's ``--out``
folder is read whole (:func:`read_run_dir`: summary, every stream's Parquet file, every
row group, the stream's schema, the row counts the summary states) before the store is
opened, so a bad folder leaves no store file and no half-ingested run; a training set is
written to a temporary file that replaces ``--out`` only when complete.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.ingestion import RUN_ID_ALLOWED, check_batch, check_run_id
from features.store import FeatureStore
from sim.atomic import partial_path, publish_file, staging_path
from sim.errors import InputError
from sim.telemetry import SCHEMAS, STREAMS

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPLAY_FILE = "a Parquet file written by opsbench replay --out"


def run_id_of(summary: dict[str, Any]) -> str:
    """The legacy run id of a replay: scenario, policy, seed and length. Two replays
    that differ in anything else (a ``--spot-availability`` file, say) share it, so
    :func:`run_id_from_summary` adds the telemetry hash to it."""
    return f"{summary['scenario']}-{summary['policy']}-s{summary['seed']}-{summary['sim_days']:g}d"


def run_id_from_summary(summary: dict[str, Any]) -> str:
    """A replay's run id: the summary's ``run_id`` (a digest of all the replay's inputs)
    if it has one, else (older summaries) :func:`run_id_of` plus the first 12 hex digits
    of its ``telemetry_sha256``."""
    if "run_id" in summary:
        if not isinstance(summary["run_id"], str):
            raise TypeError(f"run_id is {type(summary['run_id']).__name__}, not a string")
        return summary["run_id"]
    return f"{run_id_of(summary)}-{str(summary['telemetry_sha256'])[:12]}"


@dataclass(frozen=True, slots=True)
class RunTelemetry:
    """A replay's ``--out`` folder, read and checked: the store will accept every batch."""

    run_dir: Path
    run_id: str
    telemetry_sha256: str
    batches: tuple[tuple[str, int, pa.Table], ...]  # (stream, seq: the row group, rows)


def read_run_dir(run_dir: Path) -> RunTelemetry:
    """Read a replay's ``--out`` folder whole and check it.

    Raises
    ------
    InputError
        One line naming the file and field: no or an unreadable ``summary.json`` (or no
        ``telemetry_sha256`` in it); a stream's Parquet file missing, empty, truncated or
        unreadable; a column missing, extra or of the wrong type; a row group that does
        not read or whose values do not fit the stream's schema; fewer or more rows than
        the summary states.
    """
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise InputError(
            run_dir, "summary.json", "not a replay output folder", "opsbench replay --out DIR"
        )
    try:
        summary = json.loads(summary_path.read_text())
        run_id = run_id_from_summary(summary)
        telemetry_sha256 = summary["telemetry_sha256"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise InputError(summary_path, "", f"unreadable summary: {exc!r}") from None
    except RecursionError:
        raise InputError(summary_path, "", "JSON nested too deeply", "a replay's summary") from None
    if not isinstance(telemetry_sha256, str) or not _SHA256.match(telemetry_sha256):
        raise InputError(
            summary_path, "telemetry_sha256", f"{telemetry_sha256!r}", "64 lowercase hex digits"
        )
    try:
        check_run_id(run_id, where=str(summary_path))
    except InputError:
        raise InputError(summary_path, "run_id", f"bad run id {run_id!r}", RUN_ID_ALLOWED) from None
    stated = summary.get("telemetry_rows")
    batches: list[tuple[str, int, pa.Table]] = []
    for stream in STREAMS:
        path = run_dir / f"{stream}.parquet"
        if not path.is_file():
            raise InputError(
                run_dir, f"{stream}.parquet", "missing", "a complete replay output folder"
            )
        tables = read_stream(path, stream)
        rows = sum(t.num_rows for t in tables)
        if isinstance(stated, dict) and stream in stated and stated[stream] != rows:
            raise InputError(
                path, "rows", f"{rows} rows, summary.json says {stated[stream]}", _REPLAY_FILE
            )
        batches += [(stream, seq, table) for seq, table in enumerate(tables)]
    return RunTelemetry(run_dir, run_id, telemetry_sha256, tuple(batches))


def read_stream(path: Path, stream: str) -> list[pa.Table]:
    """Every row group of a stream's Parquet file, in the stream's schema.

    Raises
    ------
    InputError
        The file does not open as Parquet, its columns are not the stream's, or a row
        group does not read or does not fit the schema.
    """
    expected = SCHEMAS[stream]
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            path, "", f"not a readable Parquet file: {_first_line(exc)}", _REPLAY_FILE
        ) from None
    for field in expected:
        if field.name not in schema.names:
            raise InputError(path, f"column {field.name}", "missing", f"a {field.type} column")
        actual = schema.field(field.name).type
        both_times = pa.types.is_timestamp(actual) and pa.types.is_timestamp(field.type)
        if actual != field.type and not both_times:  # Parquet keeps seconds as milliseconds
            raise InputError(
                path,
                f"column {field.name}",
                f"has type {actual}",
                f"{field.type} (the {stream} stream's schema)",
            )
    for name in schema.names:
        if name not in expected.names:
            raise InputError(
                path,
                f"column {name}",
                f"is not in the {stream} stream's schema",
                ", ".join(expected.names),
            )
    tables: list[pa.Table] = []
    for seq in range(parquet.num_row_groups):
        where = f"row group {seq}"
        try:
            table = parquet.read_row_group(seq).select(expected.names).cast(expected)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(path, where, f"unreadable: {_first_line(exc)}", _REPLAY_FILE) from None
        tables.append(check_batch(stream, table, f"{path}: {where}"))
    return tables


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ingest_run(run: RunTelemetry, store: FeatureStore) -> dict[str, int]:
    """Ingest a checked run (batch by Parquet row group) and materialise every view it
    feeds; returns the rows each view holds for it. The same run again adds nothing.

    Raises
    ------
    FeatureInputError
        The store already holds this run id with other telemetry, or holds part of it
        from a streamed replay or an older store (see :mod:`features.runs`); nothing is
        written.
    """
    if not store.runs.begin_build(run.run_id, run.telemetry_sha256):
        for stream, seq, table in run.batches:
            store.ingest_batch(run.run_id, stream, seq, table)
        for view, spec in store.views.items():
            if spec.computed:
                store.rematerialize(view, run_id=run.run_id)
        store.runs.complete(run.run_id, run.telemetry_sha256)
    return store.row_counts(run.run_id)


def build_from_run_dir(run_dir: Path, store: FeatureStore) -> tuple[str, dict[str, int]]:
    """Check a replay's ``--out`` folder, ingest it and materialise every view. Returns
    the run id and the rows each view holds for it."""
    run = read_run_dir(run_dir)
    return run.run_id, ingest_run(run, store)


def build_store(run_dir: Path, store_path: Path) -> tuple[str, dict[str, int]]:
    """``opsbench features build``: check the folder, then open (or create) the store at
    ``store_path`` (its lake beside it) and build the run into it."""
    from features.views import VIEWS

    run = read_run_dir(run_dir)  # before the store file is created
    with FeatureStore(store_path, views=VIEWS, lake=store_path.parent / "lake") as store:
        return run.run_id, ingest_run(run, store)


LABEL_TIME_MIN = pd.Timestamp("1900-01-01")
LABEL_TIME_MAX = pd.Timestamp("2200-01-01")
"""Label times outside this range are refused (telemetry is replayed on trace clocks from
1995 on; Python's datetime cannot hold the negative years ISO 8601 allows)."""


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
    stamps = labels["timestamp"]
    if stamps.isna().any():
        line = int(stamps.isna().to_numpy().argmax()) + 2
        raise InputError(path, f"line {line}", "timestamp is empty", "ISO 8601 timestamps")
    outside = (stamps < LABEL_TIME_MIN) | (stamps > LABEL_TIME_MAX)
    if outside.any():
        line = int(outside.to_numpy().argmax()) + 2
        raise InputError(
            path,
            f"line {line}",
            f"timestamp {stamps.iloc[line - 2]} is out of range",
            f"timestamps from {LABEL_TIME_MIN.date()} to {LABEL_TIME_MAX.date()}",
        )
    for column in labels.columns:
        try:  # e.g. an integer beyond 64 bits, which pandas keeps as a Python int
            pa.array(labels[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            problem = f"values Parquet cannot hold: {str(exc).splitlines()[0]}"
            raise InputError(path, f"column {column}", problem, "64-bit numbers or text") from None
    return labels


def check_output_file(out: Path) -> None:
    """``out`` can be written as a file: not a folder, and no file where a parent folder
    must be.

    Raises
    ------
    InputError
        Naming ``--out`` and what is wrong.
    """
    allowed = "a Parquet file path (a new file, or one to replace)"
    if out.is_dir():
        raise InputError(out, "--out", "is a folder", allowed)
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(out, "--out", f"{parent} is a file, not a folder", allowed)
            break


def write_training_set(
    store: FeatureStore, view: str, labels: Path | pd.DataFrame, out: Path
) -> pd.DataFrame:
    """Point-in-time correct features of ``view`` for every label row, written to ``out``.

    Raises
    ------
    InputError
        An unknown view, a bad labels file, or an ``out`` that cannot be a file; nothing
        is written (a failed write leaves neither a partial file nor new folders).
    """
    check_output_file(out)
    if view not in store.views:
        raise InputError("--view", "", f"unknown view {view!r}", ", ".join(store.views))
    spec = store.views[view]
    if isinstance(labels, Path):
        labels = read_labels(labels, spec.entity, view)
    refs = [f"{view}:{name}" for name in spec.feature_names]
    table = store.get_historical_features(labels, refs)
    created = [p for p in reversed(out.parents) if not p.exists()]
    partial = partial_path(out)
    try:
        partial = staging_path(out)  # also removes partials of writers that died
        table.to_parquet(partial, index=False)
        publish_file(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise InputError(
            out, "--out", f"cannot write: {exc.strerror or exc}", "a writable path"
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    return table
