"""The feature store: telemetry in, point-in-time correct features out (DuckDB + Parquet).

One DuckDB file (default ``.opsbench/store.duckdb``) holds

``raw_<stream>``
    Every telemetry row of every run: ``run_id``, ``_batch`` (the batch's ``seq``), then
    the stream's columns (:data:`sim.telemetry.SCHEMAS`; timestamps as ``TIMESTAMP``).
``_batches``
    The ledger: one row per committed batch ``(run_id, stream, seq)`` with its row count
    and the time range it covers. A batch's raw rows and its ledger row are committed in
    one transaction, so the ledger is the exact list of what the store holds.
``fv_<view>``
    A view's feature rows: entity columns, the event-time column, ``_ingest`` (the write
    that produced the row), the features, then ``_eid`` (a dense integer id of the
    entity), ``_t`` (the event time as int32 seconds since 2000-01-01 when it is whole
    seconds, else NULL) and ``_row`` (a row id, never reused). At most one row per
    (entity, event time): a later write of the same key replaces the row (ties in event
    time are broken by ingest order), so a point-in-time join needs no de-duplication.
    Rows are kept sorted by ``(_eid, event time)``: each write is sorted, and the table
    is re-sorted when its unsorted tail grows (see :meth:`FeatureStore.compact`), which
    DuckDB's sort (and so its ASOF JOIN) profits from.
``online_<view>``
    The latest row per entity (entity columns are the primary key); it doubles as the
    entity -> ``_eid`` dictionary.
``_materialized``
    The watermark ``until`` per (view, run): event times up to it are materialised.

Batches may also be written to a Parquet lake (:mod:`features.lake`) before they are
committed, so every committed batch is in the lake.

Point-in-time retrieval is a DuckDB ASOF JOIN per view. When every stored event time is
whole seconds (telemetry is), the join runs on narrow keys only -- (``_eid`` as SMALLINT
or INTEGER, ``_t``) -- with the labels mapped to ``_eid`` in process (single-column
entities) and handed to DuckDB already sorted by those keys, which its sort profits from;
the ttl is checked in the same query, which returns only (label row, ``_row``) pairs. The
feature values then come from an in-process cache of the requested columns indexed by
``_row`` (kept up to ``feature_cache_bytes``; dropped when the view is written). Carrying
the feature values through DuckDB's sort instead costs about a third more. Otherwise
(sub-second event times, or no cache budget) the plain ASOF LEFT JOIN on
(``_eid``, event time) carries the features.

Every public method takes the store's lock; one process may have the file open for
writing at a time (DuckDB's rule).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import FeatureInputError, FeatureStoreError
from features.lake import Lake, time_column
from features.schema import FeatureView
from sim.telemetry import SCHEMAS

DEFAULT_PATH = Path(".opsbench") / "store.duckdb"

#: DuckDB types an entity column may have (set per column name with ``entity_types``).
ENTITY_TYPES = ("VARCHAR", "BIGINT", "INTEGER")
#: Column names the store uses itself; no entity, event time or feature may be called so.
RESERVED = frozenset({"_eid", "_ingest", "_pos", "_batch", "_rid", "_ts", "_t", "_row"})
#: Where a materialisation starts for a run that has none yet.
EPOCH = datetime(1970, 1, 1)
#: The unsorted tail of ``fv_<view>`` is merged into the sorted part (one re-sort) before a
#: point-in-time query once it exceeds this many rows and a quarter of the sorted part.
COMPACT_MIN_ROWS = 50_000

#: Event times are also kept as int32 seconds since this instant (2000-01-01, so
#: 1931-12-13 .. 2068-01-19) when they are whole seconds: the narrow join key of the fast
#: point-in-time path.
BASE_S = 946_684_800
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
#: A view's online cache is filled with every entity on first use if it has at most
#: this many; beyond, entities are fetched from DuckDB on a miss.
ONLINE_PRELOAD_ROWS = 200_000
#: Default budget of the in-process cache of feature columns the fast path gathers from.
FEATURE_CACHE_BYTES = 1 << 30

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

_ARROW_OF: dict[str, pa.DataType] = {
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
}
_ALLOWED_OF: dict[str, str] = {
    "DOUBLE": "float or integer values",
    "BIGINT": "integer values",
    "INTEGER": "integer values that fit in 32 bits",
    "BOOLEAN": "boolean values",
    "VARCHAR": "string values",
    "TIMESTAMP": "timestamps (any unit; zoned ones are taken in UTC)",
}
_PANDAS_OF: dict[pa.DataType, Any] = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _q(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier (for names the store controls)."""
    return '"' + identifier.replace('"', '""') + '"'


def _duck_type(arrow_type: pa.DataType) -> str:
    """The DuckDB column type of a telemetry column's Arrow type."""
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "VARCHAR"
    for duck, arrow in _ARROW_OF.items():
        if arrow_type == arrow:
            return duck
    raise FeatureStoreError(f"no DuckDB type for Arrow type {arrow_type}")


def _exact_seconds(et: str) -> str:
    """SQL: the TIMESTAMP column ``et`` is whole seconds within the int32 range of ``_t``."""
    s = f"epoch_us({et})"
    return f"({s} % 1000000 = 0 AND {s} // 1000000 - $base BETWEEN {I32_MIN} AND {I32_MAX})"


def _first(rows: list[Any]) -> Any:
    """The first row of a fully fetched result, or None (DuckDB wants results drained)."""
    return rows[0] if rows else None


def _is_string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _coerce(values: pa.ChunkedArray, dtype: str, *, source: str, field: str) -> pa.ChunkedArray:
    """``values`` cast to ``dtype`` (a DuckDB type) if their type is compatible.

    Compatible: any float, integer or integral decimal for DOUBLE; integers (and
    decimals with scale 0) for BIGINT / INTEGER, range-checked; booleans for BOOLEAN;
    strings (plain, large, view or dictionary-encoded) for VARCHAR; timestamps of any
    unit for TIMESTAMP (zoned ones in UTC, sub-microsecond digits dropped). An all-null
    or empty column fits any type.

    Raises
    ------
    FeatureInputError
        Naming ``source`` and ``field`` when the type does not fit or a value overflows.
    """
    t = values.type
    if pa.types.is_dictionary(t):
        values = pc.cast(values, t.value_type)
        t = values.type
    target = _ARROW_OF[dtype]
    if len(values) == 0:  # an empty frame's columns have whatever type pandas guessed
        return pa.chunked_array([], type=target)
    if pa.types.is_null(t):
        return pc.cast(values, target)
    ok = False
    safe = True
    if dtype == "DOUBLE":
        ok = pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t)
        safe = False  # int64 -> float64 may round, which is what a DOUBLE means
    elif dtype in ("BIGINT", "INTEGER"):
        ok = pa.types.is_integer(t) or (pa.types.is_decimal(t) and t.scale == 0)
    elif dtype == "BOOLEAN":
        ok = pa.types.is_boolean(t)
    elif dtype == "VARCHAR":
        ok = _is_string(t)
    elif dtype == "TIMESTAMP":
        ok = pa.types.is_timestamp(t)
        safe = False  # ns -> us drops sub-microsecond digits
        if ok and t.tz is not None:
            values = pc.cast(values, pa.timestamp(t.unit))  # zoned -> naive UTC
    if not ok:
        raise FeatureInputError(
            source, field, f"has type {t}, which does not fit {dtype}", _ALLOWED_OF[dtype]
        )
    if values.type == target:
        return values
    try:
        return pc.cast(values, target, safe=safe)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FeatureInputError(
            source, field, f"values do not fit {dtype}: {first}", _ALLOWED_OF[dtype]
        ) from None


def _as_table(rows: pa.Table | pa.RecordBatch | pd.DataFrame, *, source: str) -> pa.Table:
    """``rows`` as an Arrow table (a DataFrame's index is dropped)."""
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    if isinstance(rows, pd.DataFrame):
        try:
            return pa.Table.from_pandas(rows, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise FeatureInputError(
                source, "", f"cannot convert the frame to Arrow: {exc}", "typed columns"
            ) from None
    raise FeatureInputError(
        source,
        "",
        f"rows of type {type(rows).__name__}",
        "a pandas DataFrame, a pyarrow Table or RecordBatch",
    )


def _typed(values: list[Any], dtype: str) -> Any:
    """Python values (None for null) as the pandas array a feature of ``dtype`` gets."""
    if dtype == "DOUBLE":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if dtype == "VARCHAR":
        return np.array(values, dtype=object)
    mask = np.array([v is None for v in values], dtype=np.bool_)
    if dtype == "BOOLEAN":
        flags = np.array([False if v is None else bool(v) for v in values], dtype=np.bool_)
        return pd.arrays.BooleanArray(flags, mask)
    numbers = np.array(
        [0 if v is None else v for v in values], dtype=np.int64 if dtype == "BIGINT" else np.int32
    )
    return pd.arrays.IntegerArray(numbers, mask)


def _frame_column(frame: pd.DataFrame | pa.Table, name: str, *, source: str) -> pa.ChunkedArray:
    """Column ``name`` of a DataFrame or Arrow table as an Arrow chunked array."""
    if isinstance(frame, pa.Table):
        return frame.column(name)
    column = frame[name]
    if isinstance(column, pd.DataFrame):
        raise FeatureInputError(source, f"column {name!r}", "appears twice", "unique names")
    try:
        return pa.chunked_array([pa.Array.from_pandas(column)])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise FeatureInputError(
            source, f"column {name!r}", f"cannot be converted to Arrow: {exc}", "typed values"
        ) from None


@dataclass(slots=True)
class _Column:
    """One feature column of ``fv_<view>`` in memory, indexed by ``_row``.

    The last slot is null: gathering it gives "no value". DOUBLE columns mark nulls
    with NaN; integer and boolean ones carry a validity mask; strings stay in Arrow.
    """

    values: np.ndarray[Any, Any] | None
    valid: np.ndarray[Any, Any] | None
    strings: pa.Array | None
    nbytes: int

    @property
    def size(self) -> int:
        data = self.values if self.values is not None else self.strings
        assert data is not None
        return len(data) - 1

    def gather(self, pos: np.ndarray[Any, Any]) -> Any:
        """The values at slots ``pos`` (the null slot gives null), pandas-ready."""
        if self.strings is not None:
            return self.strings.take(pa.array(pos)).to_pandas().array
        assert self.values is not None
        values = self.values[pos]
        if self.valid is None:
            return values
        mask = ~self.valid[pos]
        if values.dtype == np.bool_:
            return pd.arrays.BooleanArray(values, mask)
        return pd.arrays.IntegerArray(values, mask)


def _load_column(values: pa.ChunkedArray, rows: np.ndarray[Any, Any], size: int) -> _Column:
    """A :class:`_Column` of ``size`` rows (+ the null slot) from ``values`` at ``rows``."""
    t = values.type
    if pa.types.is_floating(t):
        out = np.full(size + 1, np.nan)
        out[rows] = values.to_numpy()  # nulls come out as NaN
        return _Column(out, None, None, out.nbytes)
    if _is_string(t):
        inverse = np.full(size + 1, -1, dtype=np.int64)
        inverse[rows] = np.arange(len(rows))
        strings = values.combine_chunks().take(pa.array(inverse, mask=inverse < 0))
        return _Column(None, None, strings, int(strings.nbytes))
    dtype = np.bool_ if pa.types.is_boolean(t) else t.to_pandas_dtype()
    out = np.zeros(size + 1, dtype=dtype)
    valid = np.zeros(size + 1, dtype=np.bool_)
    out[rows] = pc.fill_null(values, False if dtype == np.bool_ else 0).to_numpy()
    valid[rows] = values.is_valid().to_numpy()
    return _Column(out, valid, None, out.nbytes + valid.nbytes)


@dataclass(frozen=True, slots=True)
class _ViewKeys:
    """What the fast point-in-time path needs to know of a view's keys, kept in process
    until the view is written: its entity dictionary (single-column entities only:
    entity values and their ``_eid``), the greatest ``_eid`` and the latest ``_t``."""

    values: pa.Array | None
    eids: np.ndarray[Any, Any] | None
    max_eid: int
    max_t: int | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """A view as the store lays it out."""

    view: FeatureView
    entity_types: tuple[str, ...]
    fv: str  # quoted table names
    online: str
    feature_index: Mapping[str, int]
    dtypes: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def et(self) -> str:
        return _q(self.view.event_time)

    def online_columns(self) -> list[tuple[str, str]]:
        v = self.view
        return [
            *zip(v.entity, self.entity_types, strict=True),
            (v.event_time, "TIMESTAMP"),
            ("_ingest", "BIGINT"),
            *((f.name, f.dtype) for f in v.features),
            ("_eid", "INTEGER"),
        ]

    def fv_columns(self) -> list[tuple[str, str]]:
        return [*self.online_columns(), ("_t", "INTEGER"), ("_row", "BIGINT")]


#: Row group size the store file is attached with: ~100k-row micro-batches fill whole
#: row groups, which DuckDB writes in parallel (≥ 1M metric rows/s here, see bench/).
DEFAULT_ROW_GROUP_SIZE = 61440


class FeatureStore:
    """Telemetry batches in; historical (point-in-time) and online features out.

    Parameters
    ----------
    path
        The DuckDB file (created with its parent folders if missing).
    views
        The feature views this store serves, by name.
    lake
        Root of the Parquet lake every ingested batch is also written to (none if None).
    threads
        DuckDB worker threads (DuckDB's default, one per core, if None).
    entity_types
        DuckDB type of each entity column by name, one of :data:`ENTITY_TYPES`; columns
        not listed are ``VARCHAR``. (A view declares its entity columns' names only.)
    feature_cache_bytes
        Memory (bytes) the fast point-in-time path may use to keep requested feature
        columns in process; 0 always uses the plain ASOF JOIN path.
    row_group_size
        If given (a multiple of 2048; the default is :data:`DEFAULT_ROW_GROUP_SIZE`), the
        file is opened with ``ATTACH ... (ROW_GROUP_SIZE n)`` on an in-memory connection;
        ``None`` opens it with a plain ``duckdb.connect(path)``. DuckDB writes
        full row groups of a transaction straight to the file, in parallel, and only the
        remainder at commit; with batches of ~100k rows, 61440 makes ingestion about a
        third faster than the default (122880, which a batch never fills).
    rebuild_changed_views
        Drop (and recreate empty, watermarks reset) the tables of views whose
        declaration no longer matches the file's; their rows come back by
        :meth:`materialize`. Without it such a file is an error.

    Raises
    ------
    FeatureStoreError
        A view's declaration is unusable, or the file holds tables laid out for
        different declarations (and ``rebuild_changed_views`` is false).
    """

    def __init__(
        self,
        path: Path | str = DEFAULT_PATH,
        *,
        views: Mapping[str, FeatureView],
        lake: Path | str | None = None,
        threads: int | None = None,
        entity_types: Mapping[str, str] | None = None,
        feature_cache_bytes: int = FEATURE_CACHE_BYTES,
        row_group_size: int | None = DEFAULT_ROW_GROUP_SIZE,
        rebuild_changed_views: bool = False,
    ) -> None:
        self.path = Path(path)
        self.views: Mapping[str, FeatureView] = MappingProxyType(dict(views))
        self.lake = Lake(lake) if lake is not None else None
        self._entity_types = dict(entity_types or {})
        self._rebuild = rebuild_changed_views
        self._plans = {name: self._make_plan(name, view) for name, view in self.views.items()}
        self._lock = threading.RLock()
        self._online_cache: dict[str, dict[tuple[Any, ...], tuple[Any, ...] | None]] = {}
        self.feature_cache_bytes = feature_cache_bytes
        self._columns: OrderedDict[tuple[str, str], _Column] = OrderedDict()
        self._view_keys: dict[str, _ViewKeys] = {}
        self._parsed: dict[tuple[Any, ...], dict[str, list[str]]] = {}
        self._online_complete: set[str] = set()
        self._gather_pool: ThreadPoolExecutor | None = None
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsbench-lake")
            if self.lake is not None
            else None
        )
        self._ingest_sql = {
            stream: (
                f"INSERT INTO {_q('raw_' + stream)} SELECT $run_id, $seq, "
                + ", ".join(_q(f.name) for f in schema)
                + " FROM _ingest_in"
            )
            for stream, schema in SCHEMAS.items()
        }
        if row_group_size is not None and (
            isinstance(row_group_size, bool)
            or not isinstance(row_group_size, int)
            or row_group_size < 2048
            or row_group_size % 2048
        ):
            raise FeatureInputError(
                "FeatureStore", "row_group_size", f"{row_group_size!r}", "a multiple of 2048"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: duckdb.DuckDBPyConnection | None
        if row_group_size is None:
            self._conn = duckdb.connect(str(self.path))
        else:  # the store file attached, with its row group size, to an in-memory catalog
            self._conn = duckdb.connect(":memory:")
            self._conn.execute(
                f"ATTACH $path AS store (ROW_GROUP_SIZE {int(row_group_size)})",
                {"path": str(self.path)},
            )
            self._conn.execute("USE store")
        try:
            if threads is not None:
                if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                    raise FeatureInputError(
                        "FeatureStore", "threads", f"{threads!r}", "an integer >= 1"
                    )
                self._conn.execute(f"SET threads = {int(threads)}")
            self._create_schema()
            if self.lake is not None:
                committed = self._c.execute("SELECT stream, run_id, seq FROM _batches").fetchall()
                self.lake.sweep({(str(a), str(b), int(c)) for a, b, c in committed})
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ set-up

    def _make_plan(self, name: str, view: FeatureView) -> _Plan:
        where = f"view {name!r}"
        if name != view.name:
            raise FeatureStoreError(f"{where}: registered under a name other than {view.name!r}")
        if not _IDENT.match(name):
            raise FeatureStoreError(f"{where}: a view name must match {_IDENT.pattern}")
        if not view.entity:
            raise FeatureStoreError(f"{where}: no entity columns")
        columns = [*view.entity, view.event_time, *view.feature_names]
        seen: set[str] = set()
        for column in columns:
            if column.lower() in seen:
                raise FeatureStoreError(f"{where}: column {column!r} declared twice")
            if column in RESERVED:
                raise FeatureStoreError(f"{where}: column name {column!r} is reserved")
            seen.add(column.lower())
        types = tuple(self._entity_types.get(c, "VARCHAR") for c in view.entity)
        for column, dtype in zip(view.entity, types, strict=True):
            if dtype not in ENTITY_TYPES:
                raise FeatureStoreError(
                    f"{where}: entity column {column!r} has type {dtype!r}, not in {ENTITY_TYPES}"
                )
        return _Plan(
            view=view,
            entity_types=types,
            fv=_q(f"fv_{name}"),
            online=_q(f"online_{name}"),
            feature_index={f: i for i, f in enumerate(view.feature_names)},
            dtypes={f.name: f.dtype for f in view.features},
        )

    def _table_columns(self, table: str) -> list[tuple[str, str]]:
        rows = self._c.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "AND table_name = $t ORDER BY ordinal_position",
            {"t": table},
        ).fetchall()
        return [(str(name), str(dtype)) for name, dtype in rows]

    def _ensure_table(
        self, table: str, columns: list[tuple[str, str]], extra: str = "", *, view: str = ""
    ) -> None:
        existing = self._table_columns(table)
        if existing and existing != columns and view and self._rebuild:
            self._c.execute(f"DROP TABLE {_q(table)}")
            self._c.execute("DELETE FROM _materialized WHERE view = $v", {"v": view})
            self._c.execute("DELETE FROM _fv_layout WHERE view = $v", {"v": view})
            existing = []
        if not existing:
            body = ", ".join(f"{_q(n)} {t}" for n, t in columns)
            self._c.execute(f"CREATE TABLE {_q(table)} ({body}{extra})")
        elif existing != columns:
            hint = (
                f"open with rebuild_changed_views=True to drop view {view!r}'s rows"
                if view
                else "use a new store file"
            )
            raise FeatureStoreError(
                f"{self.path}: table {table} has columns {existing}, but the declarations "
                f"need {columns}; {hint}"
            )

    def _create_schema(self) -> None:
        c = self._c
        c.execute("BEGIN")
        try:
            for stream, schema in SCHEMAS.items():
                columns = [("run_id", "VARCHAR"), ("_batch", "BIGINT")]
                columns += [(f.name, _duck_type(f.type)) for f in schema]
                self._ensure_table(f"raw_{stream}", columns)
            self._ensure_table(
                "_batches",
                [
                    ("run_id", "VARCHAR"),
                    ("stream", "VARCHAR"),
                    ("seq", "BIGINT"),
                    ("rows", "BIGINT"),
                    ("min_time", "TIMESTAMP"),
                    ("max_time", "TIMESTAMP"),
                ],
                ", PRIMARY KEY (run_id, stream, seq)",
            )
            self._ensure_table(
                "_materialized",
                [("view", "VARCHAR"), ("run_id", "VARCHAR"), ("until", "TIMESTAMP")],
                ", PRIMARY KEY (view, run_id)",
            )
            self._ensure_table(
                "_fv_layout",
                [
                    ("view", "VARCHAR"),
                    ("sorted_rows", "BIGINT"),
                    ("appended_rows", "BIGINT"),
                    ("next_row", "BIGINT"),
                    ("inexact_rows", "BIGINT"),
                ],
                ", PRIMARY KEY (view)",
            )
            c.execute("CREATE SEQUENCE IF NOT EXISTS _ingest_seq START 1")
            for plan in self._plans.values():
                self._create_view_tables(plan)
            c.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _create_view_tables(self, plan: _Plan) -> None:
        keys = ", ".join(_q(c) for c in plan.view.entity)
        self._ensure_table(f"fv_{plan.name}", plan.fv_columns(), view=plan.name)
        self._ensure_table(
            f"online_{plan.name}",
            plan.online_columns(),
            f", PRIMARY KEY ({keys})",
            view=plan.name,
        )

    def _rollback(self) -> None:
        """Roll back the open transaction (a failed COMMIT has already ended it)."""
        try:
            self._c.execute("ROLLBACK")
        except duckdb.Error:
            pass

    @property
    def _c(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            raise FeatureStoreError(f"{self.path}: the store is closed")
        return self._conn

    # ------------------------------------------------------------------ ingestion

    def ingest_batch(
        self, run_id: str, stream: str, seq: int, batch: pa.RecordBatch | pa.Table
    ) -> bool:
        """Commit one telemetry micro-batch, atomically and at most once.

        Parameters
        ----------
        run_id
            The replay the batch belongs to (letters, digits, ``.``, ``_``, ``-``).
        stream
            One of :data:`sim.telemetry.STREAMS`.
        seq
            The batch's number within (run, stream), >= 0.
        batch
            Rows in the stream's schema (same column names and types; any column order).

        Returns
        -------
        bool
            True if committed now; False if (run_id, stream, seq) was committed before
            (nothing is written again).

        Raises
        ------
        FeatureInputError
            Unknown stream, bad run id or seq, or a schema that does not match the
            stream's (missing, extra or mistyped column, nulls in the time column);
            nothing is written.
        """
        where = f"stream {stream} (run {run_id}, seq {seq})"
        if stream not in SCHEMAS:
            raise FeatureInputError(
                "ingest_batch", "stream", f"unknown stream {stream!r}", ", ".join(SCHEMAS)
            )
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise FeatureInputError(
                where,
                "run_id",
                f"bad run id {run_id!r}",
                "1-200 of A-Z a-z 0-9 . _ - (not first . _ -)",
            )
        if isinstance(seq, bool) or not isinstance(seq, int | np.integer) or seq < 0:
            raise FeatureInputError(where, "seq", f"bad sequence number {seq!r}", "an integer >= 0")
        seq = int(seq)
        table = self._conform_batch(stream, batch, where)
        tcol = time_column(stream)
        times = table.column(tcol)
        if times.null_count:
            raise FeatureInputError(
                where, f"column {tcol}", f"{times.null_count} null time(s)", "a time on every row"
            )
        lo_hi = pc.min_max(times)
        lo, hi = lo_hi["min"].as_py(), lo_hi["max"].as_py()
        key = {"run_id": run_id, "stream": stream, "seq": seq}
        with self._lock:
            c = self._c
            done = _first(
                c.execute(
                    "SELECT 1 FROM _batches "
                    "WHERE run_id = $run_id AND stream = $stream AND seq = $seq",
                    key,
                ).fetchall()
            )
            if done is not None:
                return False
            lake_job: Future[list[Path]] | None = None
            if self.lake is not None and self._pool is not None:
                lake_job = self._pool.submit(self.lake.write_batch, stream, run_id, seq, table)
            try:
                c.execute("BEGIN")
                try:
                    c.execute(
                        "INSERT INTO _batches VALUES ($run_id, $stream, $seq, $rows, $lo, $hi)",
                        {**key, "rows": table.num_rows, "lo": lo, "hi": hi},
                    )
                    c.register("_ingest_in", table)
                    try:
                        c.execute(self._ingest_sql[stream], {"run_id": run_id, "seq": seq})
                    finally:
                        c.unregister("_ingest_in")
                    if lake_job is not None:
                        lake_job.result()  # every file in place before the commit
                    c.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except BaseException:
                if lake_job is not None:
                    try:
                        Lake.remove(lake_job.result())
                    except Exception:  # the lake write failed itself and cleaned up
                        pass
                raise
        return True

    @staticmethod
    def _conform_batch(stream: str, batch: pa.RecordBatch | pa.Table, where: str) -> pa.Table:
        """``batch`` as a table in the stream's column order, or an error naming the column."""
        if isinstance(batch, pa.RecordBatch):
            table = pa.Table.from_batches([batch])
        elif isinstance(batch, pa.Table):
            table = batch
        else:
            raise FeatureInputError(
                where, "", f"a {type(batch).__name__}", "a pyarrow RecordBatch or Table"
            )
        expected = SCHEMAS[stream]
        names = table.schema.names
        for name in names:
            if names.count(name) > 1:
                raise FeatureInputError(where, f"column {name}", "appears twice", "unique names")
        for field in expected:
            if field.name not in names:
                raise FeatureInputError(
                    where, f"column {field.name}", "missing", f"a {field.type} column"
                )
            actual = table.schema.field(field.name).type
            if actual != field.type:
                raise FeatureInputError(
                    where,
                    f"column {field.name}",
                    f"has type {actual}, the stream's schema says {field.type}",
                    f"{field.type}",
                )
        for name in names:
            if name not in expected.names:
                raise FeatureInputError(
                    where,
                    f"column {name}",
                    "is not in the stream's schema",
                    ", ".join(expected.names),
                )
        if names != expected.names:
            table = table.select(expected.names)
        return table

    # ------------------------------------------------------------------ feature writes

    def _plan(self, view: str, *, source: str) -> _Plan:
        plan = self._plans.get(view)
        if plan is None:
            raise FeatureInputError(
                source, "view", f"unknown view {view!r}", ", ".join(self._plans) or "no views"
            )
        return plan

    def _conform_features(
        self, plan: _Plan, rows: pa.Table | pd.DataFrame, *, source: str
    ) -> pa.Table:
        """Validate and cast a view's rows: entity columns, event time, every feature.

        Returns the rows in store column order (entities, event time, features) plus
        ``_pos`` (the row's position, which breaks ties within one write).
        """
        table = _as_table(rows, source=source)
        v = plan.view
        names = table.schema.names
        for name in names:
            if names.count(name) > 1:
                raise FeatureInputError(source, f"column {name!r}", "appears twice", "unique names")
        declared = [*v.entity, v.event_time, *v.feature_names]
        for name in names:
            if name not in declared:
                raise FeatureInputError(
                    source,
                    f"column {name!r}",
                    f"is not a feature of view {v.name!r}",
                    ", ".join(declared),
                )
        columns: list[pa.ChunkedArray] = []
        for column, dtype in zip(v.entity, plan.entity_types, strict=True):
            field = f"entity column {column!r}"
            if column not in names:
                raise FeatureInputError(source, field, "missing", f"a {dtype} column")
            values = _coerce(table.column(column), dtype, source=source, field=field)
            if values.null_count:
                raise FeatureInputError(
                    source, field, f"{values.null_count} null(s)", "a key on every row"
                )
            columns.append(values)
        field = f"event time column {v.event_time!r}"
        if v.event_time not in names:
            raise FeatureInputError(source, field, "missing", "a TIMESTAMP column")
        times = _coerce(table.column(v.event_time), "TIMESTAMP", source=source, field=field)
        if times.null_count:
            raise FeatureInputError(
                source, field, f"{times.null_count} null(s)", "a time on every row"
            )
        columns.append(times)
        for feature in v.features:
            field = f"feature {v.name}:{feature.name}"
            if feature.name not in names:
                raise FeatureInputError(
                    source,
                    field,
                    "missing (every feature is required)",
                    f"a {feature.dtype} column",
                )
            columns.append(
                _coerce(table.column(feature.name), feature.dtype, source=source, field=field)
            )
        columns.append(pa.chunked_array([np.arange(table.num_rows, dtype=np.int64)]))
        return pa.Table.from_arrays(columns, names=[*declared, "_pos"])

    def write_features(self, view: str, rows: pa.Table | pd.DataFrame) -> int:
        """Write computed feature rows of ``view`` in one transaction.

        The whole call gets one new ingest number, greater than every earlier one, so a
        row replaces an earlier row with the same entity and event time; within one call
        the later row wins. The online table keeps, per entity, the row with the greatest
        (event time, ingest number).

        Parameters
        ----------
        view
            The view's name.
        rows
            The entity columns, the event-time column and every feature (any order).

        Returns
        -------
        int
            Rows written (after duplicates within the call are dropped).

        Raises
        ------
        FeatureInputError
            Unknown view; a missing, extra or mistyped column (named with the view and
            feature); nulls in a key. Nothing is written.
        """
        plan = self._plan(view, source="write_features")
        table = self._conform_features(plan, rows, source=f"view {view!r}")
        with self._lock:
            c = self._c
            c.execute("BEGIN")
            try:
                written, updates = self._write_tx(plan, table)
                c.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._apply_online(plan, updates)
        return written

    def _write_tx(self, plan: _Plan, table: pa.Table) -> tuple[int, list[tuple[Any, ...]] | None]:
        """The body of a feature write, inside the caller's transaction.

        Returns the rows written and, if the view's online cache is loaded, the view's
        updated online rows (entity values, event time, features) to put in it.
        """
        if table.num_rows == 0:
            return 0, None
        c = self._c
        v = plan.view
        keys = [_q(k) for k in v.entity]
        feats = [_q(f) for f in v.feature_names]
        et = plan.et
        on_i = " AND ".join(f"o.{k} = i.{k}" for k in keys)
        on_n = " AND ".join(f"o.{k} = n.{k}" for k in keys)
        ingest = _first(c.execute("SELECT nextval('_ingest_seq')").fetchall())
        assert ingest is not None
        c.register("_wf_in", table)
        try:
            # New entities get the next dense ids (and a placeholder online row).
            c.execute(
                f"INSERT INTO {plan.online} ({', '.join(keys)}, _eid) "
                f"SELECT {', '.join(keys)}, "
                f"(SELECT coalesce(max(_eid), -1) FROM {plan.online}) "
                f"+ row_number() OVER (ORDER BY {', '.join(keys)}) "
                f"FROM (SELECT DISTINCT {', '.join(keys)} FROM _wf_in) n "
                f"WHERE NOT EXISTS (SELECT 1 FROM {plan.online} o WHERE {on_n})"
            )
            c.execute(
                f"CREATE TEMP TABLE _wf AS SELECT {', '.join('i.' + k for k in keys)}, o._eid, "
                f"i.{et}, {', '.join('i.' + f for f in feats)} "
                f"FROM _wf_in i JOIN {plan.online} o ON {on_i} "
                f"QUALIFY row_number() OVER (PARTITION BY o._eid, i.{et} ORDER BY i._pos DESC) = 1"
            )
        finally:
            c.unregister("_wf_in")
        count = _first(
            c.execute(
                f"SELECT count(*), count(*) FILTER (WHERE NOT ({_exact_seconds(et)})) FROM _wf",
                {"base": BASE_S},
            ).fetchall()
        )
        written, inexact = (int(count[0]), int(count[1])) if count else (0, 0)
        layout = _first(
            c.execute(
                "SELECT sorted_rows, appended_rows, next_row, inexact_rows FROM _fv_layout "
                "WHERE view = $v",
                {"v": plan.name},
            ).fetchall()
        )
        sorted_rows, appended, next_row, inexact_rows = layout or (0, 0, 0, 0)
        # Rows at or before an entity's latest event time may replace stored rows.
        clash = _first(
            c.execute(
                f"SELECT count(*) FROM _wf w JOIN {plan.online} o ON o._eid = w._eid "
                f"WHERE o.{et} IS NOT NULL AND w.{et} <= o.{et}"
            ).fetchall()
        )
        if clash and clash[0]:
            c.execute(
                f"DELETE FROM {plan.fv} AS f USING _wf w WHERE f._eid = w._eid AND f.{et} = w.{et}"
            )
        c.execute(
            f"INSERT INTO {plan.fv} SELECT {', '.join(keys)}, {et}, $ingest, "
            f"{', '.join(feats)}, _eid, "
            f"CASE WHEN {_exact_seconds(et)} "
            f"THEN (epoch_us({et}) // 1000000 - $base)::INTEGER END, "
            f"$next_row + row_number() OVER () - 1 "
            f"FROM _wf ORDER BY _eid, {et}",
            {"ingest": int(ingest[0]), "base": BASE_S, "next_row": int(next_row)},
        )
        sets = ", ".join([f"{et} = l.{et}", "_ingest = $ingest", *(f"{f} = l.{f}" for f in feats)])
        c.execute(
            f"UPDATE {plan.online} AS o SET {sets} "
            f"FROM (SELECT * FROM _wf QUALIFY row_number() OVER "
            f"(PARTITION BY _eid ORDER BY {et} DESC) = 1) l "
            f"WHERE o._eid = l._eid AND (o.{et} IS NULL OR l.{et} >= o.{et})",
            {"ingest": int(ingest[0])},
        )
        if sorted_rows == 0 and appended == 0:  # the first write is sorted
            sorted_rows = written
        else:
            appended += written
        c.execute(
            "INSERT INTO _fv_layout VALUES ($v, $s, $a, $n, $x) ON CONFLICT (view) DO UPDATE "
            "SET sorted_rows = excluded.sorted_rows, appended_rows = excluded.appended_rows, "
            "next_row = excluded.next_row, inexact_rows = excluded.inexact_rows",
            {
                "v": plan.name,
                "s": sorted_rows,
                "a": appended,
                "n": next_row + written,
                "x": inexact_rows + inexact,
            },
        )
        self._drop_columns(plan.name)
        updates: list[tuple[Any, ...]] | None = None
        if plan.name in self._online_cache:
            updates = c.execute(
                f"SELECT {', '.join(keys)}, {et}, {', '.join(feats)} FROM {plan.online} "
                f"WHERE _eid IN (SELECT DISTINCT _eid FROM _wf)"
            ).fetchall()
        c.execute("DROP TABLE _wf")
        return written, updates

    def _apply_online(self, plan: _Plan, updates: list[tuple[Any, ...]] | None) -> None:
        cache = self._online_cache.get(plan.name)
        if cache is None or updates is None:
            return
        n = len(plan.view.entity)
        for row in updates:
            cache[tuple(row[:n])] = tuple(row[n:])  # (event time, features...)

    # ------------------------------------------------------------------ materialisation

    def materialize(self, view: str, *, run_id: str, complete_until: datetime | None = None) -> int:
        """Compute ``view``'s new rows for ``run_id`` from the raw tables and store them.

        Runs the view's transformation with ``$run_id``, ``$since`` (the (view, run)
        watermark, or 1970-01-01) and ``$until`` (the latest time in the view's source
        streams for the run, plus the view's ``available_after``), writes the result as
        :meth:`write_features` does and moves the watermark to ``$until``, all in one
        transaction. ``complete_until``, if given, caps ``$until``: a streaming checkpoint
        passes the time up to which every source stream is complete.

        Returns
        -------
        int
            Rows written (0 when there is nothing new).

        Raises
        ------
        FeatureInputError
            Unknown view; the SQL returns a column the view does not declare, lacks one,
            or returns a type that does not fit.
        FeatureStoreError
            The view has no transformation or sources, its SQL fails, or it returns rows
            outside ``($since, $until]``. Nothing is written.
        """
        until_limit = complete_until
        plan = self._plan(view, source="materialize")
        v = plan.view
        if not v.transformation.strip() or not v.sources:
            raise FeatureStoreError(
                f"view {view!r}: no transformation SQL or sources; "
                "write its rows with write_features"
            )
        unknown = [s for s in v.sources if s not in SCHEMAS]
        if unknown:
            raise FeatureStoreError(f"view {view!r}: unknown source stream(s) {unknown}")
        used = set(_PARAM.findall(v.transformation))
        with self._lock:
            c = self._c
            c.execute("BEGIN")
            try:
                row = _first(
                    c.execute(
                        "SELECT until FROM _materialized WHERE view = $v AND run_id = $r",
                        {"v": view, "r": run_id},
                    ).fetchall()
                )
                since: datetime = row[0] if row else EPOCH
                top = _first(
                    c.execute(
                        "SELECT max(max_time) FROM _batches "
                        "WHERE run_id = $r AND list_contains($streams, stream)",
                        {"r": run_id, "streams": list(v.sources)},
                    ).fetchall()
                )
                if top is None or top[0] is None or top[0] + v.available_after <= since:
                    c.execute("ROLLBACK")
                    return 0
                until: datetime = top[0] + v.available_after
                if until_limit is not None and until_limit < until:
                    until = until_limit  # a streaming checkpoint: later rows may be incomplete
                if until <= since:
                    c.execute("ROLLBACK")
                    return 0
                values = {"run_id": run_id, "since": since, "until": until}
                params = {k: values[k] for k in values if k in used}
                try:
                    result = c.sql(v.transformation, params=params).to_arrow_table()
                except duckdb.Error as exc:
                    raise FeatureStoreError(
                        f"view {view!r}: transformation failed: {str(exc).splitlines()[0]}"
                    ) from exc
                table = self._conform_features(
                    plan, result, source=f"view {view!r} (transformation)"
                )
                if table.num_rows:
                    span = pc.min_max(table.column(v.event_time))
                    lo, hi = span["min"].as_py(), span["max"].as_py()
                    if lo <= since or hi > until:
                        raise FeatureStoreError(
                            f"view {view!r}: transformation returned event times {lo}..{hi}, "
                            f"outside ($since, $until] = ({since}, {until}]"
                        )
                written, updates = self._write_tx(plan, table)
                c.execute(
                    "INSERT INTO _materialized VALUES ($v, $r, $u) ON CONFLICT (view, run_id) "
                    "DO UPDATE SET until = excluded.until",
                    {"v": view, "r": run_id, "u": until},
                )
                c.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._apply_online(plan, updates)
        return written

    def watermark(self, view: str, run_id: str) -> datetime | None:
        """Event times of ``view`` up to this are materialised for ``run_id`` (None: none)."""
        self._plan(view, source="watermark")
        with self._lock:
            row = _first(
                self._c.execute(
                    "SELECT until FROM _materialized WHERE view = $v AND run_id = $r",
                    {"v": view, "r": run_id},
                ).fetchall()
            )
        return row[0] if row else None

    # ------------------------------------------------------------------ layout

    def compact(self, view: str | None = None) -> None:
        """Re-sort ``fv_<view>`` (every view if None) by (entity id, event time).

        Point-in-time queries do this themselves when the unsorted tail is large.
        """
        names = [view] if view is not None else list(self._plans)
        with self._lock:
            for name in names:
                self._compact(self._plan(name, source="compact"))

    def _compact(self, plan: _Plan) -> None:
        c = self._c
        c.execute("BEGIN")
        try:
            c.execute(
                f"CREATE OR REPLACE TABLE {plan.fv} AS "
                f"SELECT * FROM {plan.fv} ORDER BY _eid, {plan.et}"
            )
            n = _first(
                c.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE _t IS NULL), "
                    f"coalesce(max(_row) + 1, 0) FROM {plan.fv}"
                ).fetchall()
            )
            c.execute(
                "INSERT INTO _fv_layout VALUES ($v, $s, 0, $n, $x) ON CONFLICT (view) DO UPDATE "
                "SET sorted_rows = excluded.sorted_rows, appended_rows = 0, "
                "next_row = greatest(_fv_layout.next_row, excluded.next_row), "
                "inexact_rows = excluded.inexact_rows",
                {"v": plan.name, "s": int(n[0]), "n": int(n[2]), "x": int(n[1])},
            )
            c.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _layout(self, plan: _Plan) -> tuple[int, int, int, int]:
        """(sorted rows, appended rows, next ``_row``, rows without whole-second ``_t``)."""
        row = _first(
            self._c.execute(
                "SELECT sorted_rows, appended_rows, next_row, inexact_rows FROM _fv_layout "
                "WHERE view = $v",
                {"v": plan.name},
            ).fetchall()
        )
        return (int(row[0]), int(row[1]), int(row[2]), int(row[3])) if row else (0, 0, 0, 0)

    def _maybe_compact(self, plan: _Plan) -> tuple[int, int, int, int]:
        """Re-sort the view's table if its unsorted tail is large; its layout after."""
        layout = self._layout(plan)
        if layout[1] > max(COMPACT_MIN_ROWS, layout[0] // 4):
            self._compact(plan)
            layout = self._layout(plan)
        return layout

    def reset_view(self, view: str) -> None:
        """Drop ``view``'s feature and online tables and watermarks, and recreate them empty."""
        plan = self._plan(view, source="reset_view")
        with self._lock:
            c = self._c
            c.execute("BEGIN")
            try:
                c.execute(f"DROP TABLE IF EXISTS {plan.fv}")
                c.execute(f"DROP TABLE IF EXISTS {plan.online}")
                c.execute("DELETE FROM _materialized WHERE view = $v", {"v": view})
                c.execute("DELETE FROM _fv_layout WHERE view = $v", {"v": view})
                self._create_view_tables(plan)
                c.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._online_cache.pop(view, None)
            self._online_complete.discard(view)
            self._drop_columns(view)

    # ------------------------------------------------------------------ retrieval

    def _parse_refs(self, features: Sequence[str]) -> dict[str, list[str]]:
        """``"view:feature"`` references grouped by view (order kept, duplicates dropped)."""
        if isinstance(features, str):
            features = [features]
        try:
            memo_key = tuple(features)
            known = self._parsed.get(memo_key)
        except TypeError:  # unhashable entries: parse (and fail) below
            memo_key, known = None, None
        if known is not None:
            return known
        groups = self._parse_refs_uncached(features)
        if memo_key is not None and len(self._parsed) < 1024:
            self._parsed[memo_key] = groups
        return groups

    def _parse_refs_uncached(self, features: Sequence[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        if not features:
            raise FeatureInputError("features", "", "no features requested", "'view:feature', ...")
        for ref in features:
            if not isinstance(ref, str) or ref.count(":") != 1:
                raise FeatureInputError(
                    "features", repr(ref), "not of the form view:feature", "'view:feature'"
                )
            view, name = ref.split(":")
            plan = self._plans.get(view)
            if plan is None:
                raise FeatureInputError(
                    "features",
                    repr(ref),
                    f"unknown view {view!r} (feature {name!r})",
                    ", ".join(self._plans) or "no views",
                )
            if name not in plan.feature_index:
                raise FeatureInputError(
                    "features",
                    repr(ref),
                    f"view {view!r} has no feature {name!r}",
                    ", ".join(plan.view.feature_names),
                )
            names = groups.setdefault(view, [])
            if name not in names:
                names.append(name)
        return groups

    def get_historical_features(
        self,
        entity_df: pd.DataFrame | pa.Table,
        features: Sequence[str],
        *,
        timestamp_column: str = "timestamp",
    ) -> pd.DataFrame:
        """Point-in-time correct feature values for every (entity, timestamp) row.

        For each row and feature, the value of the view's row with the greatest event
        time <= the row's timestamp, if that row is at most the view's ttl older
        (``t - event_time <= ttl``); otherwise null. Computed per view with a DuckDB
        ASOF LEFT JOIN on the view's entity id and event time.

        Parameters
        ----------
        entity_df
            The view's entity columns and ``timestamp_column`` (a timestamp; zoned ones
            are taken in UTC). Other columns (labels) are carried through.
        features
            ``"view:feature"`` references, possibly from several views.
        timestamp_column
            The name of the label-time column.

        Returns
        -------
        pandas.DataFrame
            ``entity_df``'s rows in the same order (and index), plus one column
            ``view__feature`` per feature: float64 (NaN), nullable Int64/Int32/boolean,
            or strings (None) when no row is within ttl.

        Raises
        ------
        FeatureInputError
            A malformed reference, an unknown view or feature, a missing or mistyped
            timestamp or entity column, or an output column name already in use.
        """
        groups = self._parse_refs(features)
        source = "entity_df"
        if not isinstance(entity_df, pd.DataFrame | pa.Table):
            raise FeatureInputError(
                source, "", f"a {type(entity_df).__name__}", "a pandas DataFrame or pyarrow Table"
            )
        present = (
            [str(c) for c in entity_df.columns]
            if isinstance(entity_df, pd.DataFrame)
            else list(entity_df.schema.names)
        )
        first = next(iter(groups.items()))
        if timestamp_column not in present:
            raise FeatureInputError(
                source,
                f"column {timestamp_column!r}",
                f"missing: the label times (needed for {first[0]}:{first[1][0]})",
                f"a timestamp column; columns are {', '.join(present)} (or pass timestamp_column=)",
            )
        ts = _coerce(
            _frame_column(entity_df, timestamp_column, source=source),
            "TIMESTAMP",
            source=source,
            field=f"column {timestamp_column!r}",
        )
        n = len(ts)
        out_names = [f"{v}__{f}" for v, fs in groups.items() for f in fs]
        for name in out_names:
            if name in present:
                raise FeatureInputError(
                    source,
                    f"column {name!r}",
                    "already exists; it would be overwritten",
                    "another name",
                )
        results: dict[str, Any] = {}
        span = pc.min_max(ts)
        lo, hi = span["min"].as_py(), span["max"].as_py()
        with self._lock:
            for view, names in groups.items():
                plan = self._plans[view]
                keys: list[pa.ChunkedArray] = []
                for column, dtype in zip(plan.view.entity, plan.entity_types, strict=True):
                    field = f"column {column!r}"
                    if column not in present:
                        raise FeatureInputError(
                            source,
                            field,
                            f"missing: an entity column of view {view!r} "
                            f"(needed for {view}:{names[0]})",
                            ", ".join(plan.view.entity),
                        )
                    keys.append(
                        _coerce(
                            _frame_column(entity_df, column, source=source),
                            dtype,
                            source=source,
                            field=field,
                        )
                    )
                arrays: dict[str, pa.ChunkedArray] | None = None
                if lo is None:  # no label time at all
                    arrays = {
                        f"{view}__{name}": pa.chunked_array(
                            [pa.nulls(n, _ARROW_OF[plan.view.feature(name).dtype])]
                        )
                        for name in names
                    }
                else:
                    layout = self._maybe_compact(plan)
                    fast = layout[3] == 0 and self._cache_columns(plan, names, layout[2])
                    if fast:
                        results.update(self._asof_fast(plan, names, keys, ts, layout[2]))
                    else:
                        arrays = self._asof(plan, names, keys, ts, lo, hi)
                for name, array in (arrays or {}).items():
                    results[name] = array.to_pandas(types_mapper=_PANDAS_OF.get).array
        if isinstance(entity_df, pd.DataFrame):
            out = entity_df.copy(deep=False)
        else:
            out = entity_df.to_pandas()
        # Every result array is new (gathered or converted here): no need to copy them.
        added = pd.DataFrame(
            {name: results[name] for name in out_names}, index=out.index, copy=False
        )
        return pd.concat([out, added], axis=1)

    def _drop_columns(self, view: str) -> None:
        """Forget the cached feature columns and entity ids of ``view`` (after a write)."""
        self._view_keys.pop(view, None)
        for key in [k for k in self._columns if k[0] == view]:
            del self._columns[key]

    def _cache_columns(self, plan: _Plan, names: list[str], size: int) -> bool:
        """Make sure ``names`` of ``plan`` are cached (``size`` rows); False if over budget."""
        want = [(plan.name, name) for name in names]
        missing = [k for k in want if k not in self._columns]
        for key in want:
            if key in self._columns:
                self._columns.move_to_end(key)
        if not missing:
            return True
        width = {"DOUBLE": 8, "BIGINT": 9, "INTEGER": 5, "BOOLEAN": 2, "VARCHAR": 24}
        need = sum((size + 1) * width[plan.view.feature(name).dtype] for _, name in missing)
        held = sum(c.nbytes for k, c in self._columns.items() if k in want)
        if need + held > self.feature_cache_bytes:
            return False
        total = sum(c.nbytes for c in self._columns.values())
        for key in list(self._columns):  # evict least recently used columns
            if total + need <= self.feature_cache_bytes:
                break
            if key not in want:
                total -= self._columns.pop(key).nbytes
        columns = ", ".join(_q(name) for _, name in missing)
        table = self._c.sql(f"SELECT _row, {columns} FROM {plan.fv}").to_arrow_table()
        rows = table.column(0).to_numpy()
        for key in missing:
            self._columns[key] = _load_column(table.column(key[1]), rows, size)
        return True

    def _query_unordered(
        self, sql: str, params: dict[str, Any], tables: dict[str, pa.Table]
    ) -> pa.Table:
        """Run a read query over registered Arrow ``tables``; rows in any order.

        The join results are put in label order by row id afterwards, so DuckDB may
        return them as they come (``preserve_insertion_order = false``, which saves a few
        per cent); the setting is restored at once, as the sorted writes rely on it.
        """
        c = self._c
        for name, table in tables.items():
            c.register(name, table)
        c.execute("SET preserve_insertion_order = false")
        try:
            return c.sql(sql, params=params).to_arrow_table()
        finally:
            c.execute("SET preserve_insertion_order = true")
            for name in tables:
                c.unregister(name)

    def _keys_of(self, plan: _Plan) -> _ViewKeys:
        """The view's :class:`_ViewKeys` (cached until the view is written)."""
        known = self._view_keys.get(plan.name)
        if known is None:
            c = self._c
            top = _first(
                c.execute(
                    f"SELECT max(_eid), max(_t) FROM {plan.online} o, "
                    f"(SELECT max(_t) AS _t FROM {plan.fv}) f"
                ).fetchall()
            )
            max_eid = -1 if top is None or top[0] is None else int(top[0])
            max_t = None if top is None or top[1] is None else int(top[1])
            values: pa.Array | None = None
            eids: np.ndarray[Any, Any] | None = None
            if len(plan.view.entity) == 1:
                table = c.sql(
                    f"SELECT {_q(plan.view.entity[0])}, _eid FROM {plan.online}"
                ).to_arrow_table()
                values = table.column(0).combine_chunks()
                eids = table.column(1).to_numpy().astype(np.int64)
            known = _ViewKeys(values, eids, max_eid, max_t)
            self._view_keys[plan.name] = known
        return known

    @staticmethod
    def _entity_ids(known: _ViewKeys, key: pa.ChunkedArray) -> np.ndarray[Any, Any]:
        """Each label's ``_eid`` (-1: an entity the view has never seen)."""
        values, eids = known.values, known.eids
        assert values is not None and eids is not None
        n = len(key)
        if len(eids) == 0:
            return np.full(n, -1, dtype=np.int64)
        if pa.types.is_integer(values.type) and not key.null_count:
            # Integer entities over a small range: one table lookup instead of a hash.
            low, high = int(np.min(values)), int(np.max(values))
            if high - low < max(1 << 16, 4 * len(eids)):
                table = np.full(high - low + 2, -1, dtype=np.int64)  # last slot: not seen
                table[values.to_numpy() - low] = eids
                labels = key.to_numpy()
                slot = labels - low
                slot[(labels < low) | (labels > high)] = high - low + 1
                found: np.ndarray[Any, Any] = table[slot]
                return found
        index = pc.index_in(key, value_set=values).fill_null(-1).to_numpy()
        ids: np.ndarray[Any, Any] = np.append(eids, -1)[index]  # index -1: the -1 at the end
        return ids

    @staticmethod
    def _sort_labels(
        eid: np.ndarray[Any, Any], seconds: np.ndarray[Any, Any], rid: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(eid, seconds, rid) sorted by (eid, seconds): DuckDB's sort inside the ASOF JOIN
        is much cheaper on input that is already in order. One sort of a packed int64
        key (entity | second offset | row) when the three fit in 63 bits, else an argsort."""
        if len(rid) == 0:
            return eid, seconds, rid
        t0 = int(seconds.min())
        e_bits = int(eid.max()).bit_length()
        t_bits = (int(seconds.max()) - t0).bit_length()
        r_bits = int(rid.max()).bit_length()
        if e_bits + t_bits + r_bits <= 63:
            key = (eid << (t_bits + r_bits)) | ((seconds - t0) << r_bits) | rid
            key.sort()
            return (
                key >> (t_bits + r_bits),
                ((key >> r_bits) & ((1 << t_bits) - 1)) + t0,
                key & ((1 << r_bits) - 1),
            )
        order = np.argsort((eid << 32) | (seconds - I32_MIN), kind="stable")
        return eid[order], seconds[order], rid[order]

    def _asof_fast(
        self,
        plan: _Plan,
        names: list[str],
        keys: list[pa.ChunkedArray],
        ts: pa.ChunkedArray,
        size: int,
    ) -> dict[str, Any]:
        """One view's features for every label row, in label order: the fast path.

        DuckDB's ASOF JOIN matches each label to its row on narrow keys only: the entity
        id (SMALLINT when there are fewer than 32,767 entities) and the event time as
        int32 seconds (label times floored, which is exact because every stored event
        time is whole seconds); the labels go in sorted by those keys. The ttl is checked
        in the same query on the exact label time, and the query returns just (label row,
        ``_row`` or the null slot ``size``). The feature values are then gathered from the
        in-process column cache (indexed by ``_row``).
        """
        v = plan.view
        n = len(ts)
        micros = pc.cast(ts, pa.int64()).fill_null(0).to_numpy()
        seconds = np.floor_divide(micros, 1_000_000) - BASE_S
        ttl_us = v.ttl // timedelta(microseconds=1)
        keep = ts.is_valid().to_numpy(zero_copy_only=False) if ts.null_count else None
        if n and (seconds.min() < I32_MIN or seconds.max() > I32_MAX):
            # Before the range of _t no row can match; after it, every row is earlier.
            early = seconds >= I32_MIN
            keep = early if keep is None else keep & early
            seconds = np.clip(seconds, I32_MIN, I32_MAX)
        known_keys = self._keys_of(plan)
        eid = self._entity_ids(known_keys, keys[0]) if known_keys.values is not None else None
        if eid is not None:
            known = eid >= 0
            keep = known if keep is None else keep & known
        rid = np.arange(n, dtype=np.int64)
        if keep is not None:
            rid = rid[keep]
        # The ttl: the matched row's second must be >= ceil((t - ttl) / 1 s); for whole-
        # second label times that is t - floor(ttl / 1 s), checked in SQL without a column.
        whole = not (micros % 1_000_000).any()
        columns: list[pa.Array] = []
        if eid is not None:
            e, t, rid = self._sort_labels(
                eid if keep is None else eid[keep],
                seconds if keep is None else seconds[keep],
                rid,
            )
            etype = pa.int16() if e.size == 0 or e.max() < 2**15 - 1 else pa.int32()
            columns = [pa.array(e.astype(etype.to_pandas_dtype())), pa.array(t.astype(np.int32))]
            key_names = ["_eid"]
        else:
            picked = keys if keep is None else [k.take(pa.array(rid)) for k in keys]
            columns = [*picked, pa.array(seconds[rid].astype(np.int32))]
            key_names = [f"_k{i}" for i in range(len(keys))]
        names_in = ["_rid", *key_names, "_t"]
        columns.insert(0, pa.array(rid.astype(np.int32)))
        params: dict[str, Any] = {"none": size}
        rows = f"SELECT _eid::{{eid_t}} AS _eid, _t, _row::{{row_type}} AS _row FROM {plan.fv}"
        if n and (known_keys.max_t is None or seconds.max() < known_keys.max_t):
            rows += " WHERE _t <= $hi"  # rows after the last label cannot match
            params["hi"] = int(seconds.max())
        if ttl_us > 2**62:
            ttl_ok = "true"
        elif whole:
            ttl_ok = "l._t::BIGINT - f._t <= $ttl"
            params["ttl"] = ttl_us // 1_000_000
        else:
            lo = -np.floor_divide(ttl_us - micros[rid], 1_000_000) - BASE_S
            columns.append(pa.array(lo))
            names_in.append("_lo")
            ttl_ok = "f._t >= l._lo"
        lhs = pa.Table.from_arrays(columns, names=names_in)
        eid_t = "SMALLINT" if known_keys.max_eid < 2**15 - 1 else "INTEGER"
        row_type = "INTEGER" if size < I32_MAX else "BIGINT"
        rows = rows.format(eid_t=eid_t, row_type=row_type)
        if eid is not None:
            left = "_pit_lhs"
        else:
            on = " AND ".join(
                f"o.{_q(k)} = l.{kn}" for k, kn in zip(v.entity, key_names, strict=True)
            )
            left = (
                f"(SELECT l.* EXCLUDE ({', '.join(key_names)}), o._eid::{eid_t} AS _eid "
                f"FROM _pit_lhs l JOIN {plan.online} o ON {on})"
            )
        sql = (
            f"SELECT l._rid, CASE WHEN {ttl_ok} THEN f._row ELSE $none END "
            f"FROM {left} l ASOF JOIN ({rows}) f ON l._eid = f._eid AND l._t >= f._t"
        )
        result = self._query_unordered(sql, params, {"_pit_lhs": lhs})
        # pos[i]: the cache slot of label i's row; the null slot ``size`` if none.
        pos = np.full(n, size, dtype=np.int32 if size < I32_MAX else np.int64)
        pos[result.column(0).to_numpy()] = result.column(1).to_numpy()
        cached = [self._columns[(v.name, name)] for name in names]
        if len(cached) == 1 or n < 100_000:
            gathered = [column.gather(pos) for column in cached]
        else:  # numpy's gathers release the GIL: use both cores
            if self._gather_pool is None:
                self._gather_pool = ThreadPoolExecutor(2, thread_name_prefix="opsbench-gather")
            gathered = list(self._gather_pool.map(lambda col: col.gather(pos), cached))
        return {f"{v.name}__{name}": g for name, g in zip(names, gathered, strict=True)}

    def _asof(
        self,
        plan: _Plan,
        names: list[str],
        keys: list[pa.ChunkedArray],
        ts: pa.ChunkedArray,
        lo: datetime,
        hi: datetime,
    ) -> dict[str, pa.ChunkedArray]:
        """One view's features for every label row, in label order: the plain path.

        An ASOF LEFT JOIN on (entity id, event time) that carries the features through
        the join; for views with sub-second (or out of range) event times, or when the
        column cache is over budget.
        """
        v = plan.view
        n = len(ts)
        key_names = [f"_k{i}" for i in range(len(keys))]
        lhs = pa.Table.from_arrays(
            [pa.array(np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)), *keys, ts],
            names=["_rid", *key_names, "_ts"],
        )
        et = plan.et
        on = " AND ".join(f"o.{_q(k)} = l.{kn}" for k, kn in zip(v.entity, key_names, strict=True))
        cols = ", ".join(
            f"CASE WHEN f.{et} >= l._ts - $ttl THEN f.{_q(name)} END AS {_q(name)}"
            for name in names
        )
        # Rows newer than the last label or older than the first label minus ttl cannot
        # be returned: leave them out of the join.
        try:
            lower: datetime | None = lo - v.ttl
        except OverflowError:
            lower = None
        where = f"WHERE {et} <= $hi" + (f" AND {et} >= $lo" if lower is not None else "")
        params: dict[str, Any] = {"ttl": v.ttl, "hi": hi}
        if lower is not None:
            params["lo"] = lower
        sql = (
            f"WITH l AS (SELECT l._rid, o._eid, l._ts FROM _pit_lhs l "
            f"LEFT JOIN {plan.online} o ON {on}), "
            f"f AS (SELECT _eid, {et}, {', '.join(_q(x) for x in names)} FROM {plan.fv} {where}) "
            f"SELECT l._rid, {cols} FROM l ASOF LEFT JOIN f "
            f"ON l._eid = f._eid AND l._ts >= f.{et}"
        )
        result = self._query_unordered(sql, params, {"_pit_lhs": lhs})
        if result.num_rows != n:
            raise FeatureStoreError(
                f"view {v.name!r}: ASOF join returned {result.num_rows} rows for {n} labels"
            )
        rid = result.column("_rid").to_numpy()
        inverse = np.empty(n, dtype=np.int64)
        inverse[rid] = np.arange(n, dtype=np.int64)
        order = pa.array(inverse)
        return {f"{v.name}__{name}": result.column(name).take(order) for name in names}

    def get_online_features(
        self,
        entity_keys: Sequence[Mapping[str, object]] | pd.DataFrame,
        features: Sequence[str],
    ) -> pd.DataFrame:
        """The latest value of each feature for each entity (the online store).

        Served from an in-process cache of ``online_<view>`` (loaded whole on first use,
        up to :data:`ONLINE_PRELOAD_ROWS` entities, else filled from DuckDB on a miss) and
        kept current by this process's writes, so a lookup is a dict hit.

        Parameters
        ----------
        entity_keys
            One mapping (or DataFrame row) per entity with the views' entity columns.
        features
            ``"view:feature"`` references.

        Returns
        -------
        pandas.DataFrame
            One row per entity key: the entity columns, then ``view__feature`` columns
            (NaN / None for an entity the store has never seen).

        Raises
        ------
        FeatureInputError
            A malformed reference, an unknown view or feature, or a missing entity column.
        """
        groups = self._parse_refs(features)
        if isinstance(entity_keys, pd.DataFrame):
            present = list(entity_keys.columns)
            columns_in = {c: entity_keys[c].tolist() for c in present}
            count = len(entity_keys)
        else:
            records = list(entity_keys)
            present = []
            for record in records:
                for k in record:
                    if k not in present:
                        present.append(k)
            count = len(records)
            columns_in = {k: [r.get(k) for r in records] for k in present}
        out: dict[str, Any] = {}
        for view in groups:
            for column in self._plans[view].view.entity:
                if column not in columns_in:
                    raise FeatureInputError(
                        "entity_keys",
                        f"column {column!r}",
                        f"missing: an entity column of view {view!r} "
                        f"(needed for {view}:{groups[view][0]})",
                        ", ".join(self._plans[view].view.entity),
                    )
                if column not in out:
                    out[column] = np.array(columns_in[column], dtype=object)
        with self._lock:
            for view, names in groups.items():
                plan = self._plans[view]
                cache = self._online_cache.get(view)
                if cache is None:
                    cache = self._preload_online(plan)
                keys = list(zip(*(columns_in[k] for k in plan.view.entity), strict=True))
                if view in self._online_complete:
                    rows = [cache.get(k) for k in keys]
                else:
                    missing = [k for k in keys if k not in cache]
                    if missing:
                        self._load_online(plan, missing, cache)
                    rows = [cache[k] for k in keys]
                for name in names:
                    j = plan.feature_index[name] + 1
                    values = [None if r is None else r[j] for r in rows]
                    out[f"{view}__{name}"] = _typed(values, plan.dtypes[name])
        return pd.DataFrame(out, index=pd.RangeIndex(count), copy=False)

    def _preload_online(self, plan: _Plan) -> dict[tuple[Any, ...], tuple[Any, ...] | None]:
        """The view's online cache, with every entity if there are at most
        :data:`ONLINE_PRELOAD_ROWS` (then a miss means "unknown", no SQL needed)."""
        cache: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}
        self._online_cache[plan.name] = cache
        v = plan.view
        count = _first(self._c.execute(f"SELECT count(*) FROM {plan.online}").fetchall())
        if count is not None and count[0] <= ONLINE_PRELOAD_ROWS:
            n = len(v.entity)
            rows = self._c.execute(
                f"SELECT {', '.join(_q(k) for k in v.entity)}, {plan.et}, "
                f"{', '.join(_q(f) for f in v.feature_names)} FROM {plan.online} "
                f"WHERE {plan.et} IS NOT NULL"
            ).fetchall()
            for row in rows:
                cache[tuple(row[:n])] = tuple(row[n:])
            self._online_complete.add(plan.name)
        return cache

    def _load_online(
        self,
        plan: _Plan,
        keys: list[tuple[Any, ...]],
        cache: dict[tuple[Any, ...], tuple[Any, ...] | None],
    ) -> None:
        """Fill ``cache`` for ``keys`` from ``online_<view>`` (None for unknown entities)."""
        v = plan.view
        wanted = list(dict.fromkeys(keys))
        try:
            arrays = [
                _coerce(
                    pa.chunked_array([pa.array([k[i] for k in wanted])]),
                    dtype,
                    source="entity_keys",
                    field=f"column {column!r}",
                )
                for i, (column, dtype) in enumerate(zip(v.entity, plan.entity_types, strict=True))
            ]
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise FeatureInputError(
                "entity_keys", "", f"keys of view {v.name!r} do not convert: {exc}"
            ) from None
        names = [f"_k{i}" for i in range(len(arrays))]
        c = self._c
        c.register("_online_keys", pa.Table.from_arrays(arrays, names=names))
        try:
            on = " AND ".join(f"o.{_q(k)} = q.{kn}" for k, kn in zip(v.entity, names, strict=True))
            rows = c.execute(
                f"SELECT {', '.join('o.' + _q(k) for k in v.entity)}, o.{plan.et}, "
                f"{', '.join('o.' + _q(f) for f in v.feature_names)} "
                f"FROM {plan.online} o JOIN _online_keys q ON {on} WHERE o.{plan.et} IS NOT NULL"
            ).fetchall()
        finally:
            c.unregister("_online_keys")
        found = {tuple(r[: len(names)]): tuple(r[len(names) :]) for r in rows}
        for key, converted in zip(
            wanted, zip(*(a.to_pylist() for a in arrays), strict=True), strict=True
        ):
            cache[key] = found.get(tuple(converted))

    # ------------------------------------------------------------------ inspection

    def list_views(self) -> list[dict[str, Any]]:
        """Every view with its entity, ttl, features (name, type, description) and sizes."""
        out: list[dict[str, Any]] = []
        with self._lock:
            for name, plan in self._plans.items():
                v = plan.view
                rows = _first(self._c.execute(f"SELECT count(*) FROM {plan.fv}").fetchall())
                entities = _first(
                    self._c.execute(
                        f"SELECT count(*) FROM {plan.online} WHERE {plan.et} IS NOT NULL"
                    ).fetchall()
                )
                out.append(
                    {
                        "view": name,
                        "entity": list(v.entity),
                        "entity_types": list(plan.entity_types),
                        "event_time": v.event_time,
                        "ttl_s": v.ttl.total_seconds(),
                        "sources": list(v.sources),
                        "description": v.description,
                        "features": [
                            {"name": f.name, "dtype": f.dtype, "description": f.description}
                            for f in v.features
                        ],
                        "rows": int(rows[0]) if rows else 0,
                        "entities": int(entities[0]) if entities else 0,
                    }
                )
        return out

    def row_counts(self, run_id: str | None = None) -> dict[str, int]:
        """Rows per view (only ``run_id``'s, for views keyed by ``run_id``, if given)."""
        out: dict[str, int] = {}
        with self._lock:
            for name, plan in self._plans.items():
                if run_id is not None and "run_id" in plan.view.entity:
                    row = _first(
                        self._c.execute(
                            f"SELECT count(*) FROM {plan.fv} WHERE run_id = $r", {"r": run_id}
                        ).fetchall()
                    )
                else:
                    row = _first(self._c.execute(f"SELECT count(*) FROM {plan.fv}").fetchall())
                out[name] = int(row[0]) if row else 0
        return out

    def batches(self, run_id: str | None = None) -> pd.DataFrame:
        """The ledger of committed batches (one run's if ``run_id`` is given)."""
        with self._lock:
            sql = "SELECT * FROM _batches"
            params: dict[str, Any] = {}
            if run_id is not None:
                sql += " WHERE run_id = $r"
                params["r"] = run_id
            return self._c.sql(sql + " ORDER BY run_id, stream, seq", params=params).df()

    # ------------------------------------------------------------------ life cycle

    def close(self) -> None:
        """Close the database (committed data is on disk); further calls fail."""
        with self._lock:
            for pool in (self._pool, self._gather_pool):
                if pool is not None:
                    pool.shutdown(wait=True)
            self._pool = self._gather_pool = None
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"FeatureStore({str(self.path)!r}, views={list(self.views)}, {state})"


__all__ = [
    "DEFAULT_PATH",
    "ENTITY_TYPES",
    "FeatureInputError",
    "FeatureStore",
    "FeatureStoreError",
]
