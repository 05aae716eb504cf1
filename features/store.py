"""The feature store: telemetry in, point-in-time correct features out (DuckDB + Parquet).

:class:`FeatureStore` is a small facade over one DuckDB file (default
``.opsbench/store.duckdb``, :data:`features.DEFAULT_STORE`); each of its jobs lives in
its own module, along Feast's lines:

=============================  ====================================================
:mod:`features.database`       the file, its lock, transactions
:mod:`features.tables`         the tables and SQL views the file holds
:mod:`features.ingestion`      telemetry micro-batches, ledgered, into ``raw_<stream>``
:mod:`features.runs`           which replays the store holds (``_runs``)
:mod:`features.materialization` views computed from the raw tables, per run
:mod:`features.layout`         ``fv_<view>``: writes, sort order, compaction
:mod:`features.online_table`   ``online_<view>``: the latest row per entity
:mod:`features.point_in_time`  historical (point-in-time) retrieval
=============================  ====================================================

Every feature view ``v`` is also a SQL view ``v`` of the file (entity, event time and
features under their declared names), readable with the ``duckdb`` command line once
the store is closed. Every public method takes the store's lock; one process may have
the file open for writing at a time (DuckDB's rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from features import DEFAULT_STORE
from features.database import StoreDatabase
from features.errors import FeatureInputError, FeatureStoreError
from features.ingestion import Ingestion
from features.lake import Lake
from features.layout import Layout, Written
from features.materialization import Materializer
from features.online import Values, fresh, online_row
from features.online_table import OnlineTable, pushed_row
from features.plans import ENTITY_TYPES, ViewPlan, conform_features, make_plan, parse_refs
from features.point_in_time import FEATURE_CACHE_BYTES, PointInTime
from features.runs import RunLedger
from features.schema import FeatureView
from features.tables import create_schema, create_view_tables, drop_view_tables

#: Row group size the store file is attached with: ~100k-row micro-batches fill whole
#: row groups, which DuckDB writes in parallel (>= 1M metric rows/s here, see bench/).
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
        Memory (bytes) the point-in-time merge may use to keep a view's keys and the
        requested feature columns in process; 0 always uses the plain ASOF JOIN path.
    row_group_size
        If given (a multiple of 2048; the default is :data:`DEFAULT_ROW_GROUP_SIZE`), the
        file is opened with ``ATTACH ... (ROW_GROUP_SIZE n)`` on an in-memory connection;
        ``None`` opens it with a plain ``duckdb.connect(path)``. DuckDB writes full row
        groups of a transaction straight to the file, in parallel, and only the
        remainder at commit; with batches of ~100k rows, 61440 makes ingestion about a
        third faster than the default (122880, which a batch never fills).
    rebuild_changed_views
        Drop (and recreate empty, watermarks reset) the tables of views whose
        declaration no longer matches the file's; their rows come back by
        :meth:`materialize`. Without it such a file is an error.

    Raises
    ------
    FeatureInputError
        The file is not a DuckDB database; bad ``threads`` or ``row_group_size``.
    FeatureStoreError
        Another process has the file open for writing; a view's declaration is unusable,
        or the file holds tables laid out for different declarations (and
        ``rebuild_changed_views`` is false).
    """

    def __init__(
        self,
        path: Path | str = DEFAULT_STORE,
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
        types = dict(entity_types or {})
        self._plans = {name: make_plan(name, view, types) for name, view in self.views.items()}
        self._parsed: dict[tuple[Any, ...], dict[str, list[str]]] = {}
        self._db = StoreDatabase(self.path, threads=threads, row_group_size=row_group_size)
        self._ingestion = Ingestion(self._db, Lake(lake) if lake is not None else None)
        self._layout = Layout(self._db)
        self._materializer = Materializer(self._db, self._layout)
        self._online = OnlineTable(self._db, self._plans)
        self._pit = PointInTime(self._db, self._layout, self._plans, feature_cache_bytes)
        #: The run ledger (:mod:`features.runs`).
        self.runs = RunLedger(self._db)
        try:
            create_schema(self._db, self._plans.values(), rebuild=rebuild_changed_views)
            self._ingestion.sweep_lake()
        except BaseException:
            self.close()
            raise

    @property
    def lake(self) -> Lake | None:
        """The Parquet lake batches are written to, if any."""
        return self._ingestion.lake

    @property
    def feature_cache_bytes(self) -> int:
        return self._pit.cache_bytes

    @feature_cache_bytes.setter
    def feature_cache_bytes(self, value: int) -> None:
        self._pit.cache_bytes = value

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
        return self._ingestion.ingest_batch(run_id, stream, seq, batch)

    def batches(self, run_id: str | None = None) -> pd.DataFrame:
        """The ledger of committed batches (one run's if ``run_id`` is given)."""
        return self._ingestion.batches(run_id)

    # ------------------------------------------------------------------ writes

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
        table = conform_features(plan, rows, source=f"view {view!r}")
        with self._db.transaction():
            written = self._layout.write(plan, table)
            self._written(plan, written)
        return written.rows

    def _written(self, plan: ViewPlan, written: Written) -> None:
        """Bring the in-process caches up to date after a write of ``plan``."""
        if written.rows:
            self._pit.forget(plan.name)
            self._online.refresh(plan, written.ingest)

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
        plan = self._plan(view, source="materialize")
        with self._db.lock:
            written = self._materializer.materialize(
                plan, run_id=run_id, complete_until=complete_until
            )
            self._written(plan, written)
        return written.rows

    def rematerialize(self, view: str, *, run_id: str) -> int:
        """Recompute all of ``view``'s rows for ``run_id`` in one query, replacing the rows
        held: the values a single materialisation of the whole run gives, bit for bit,
        whatever incremental :meth:`materialize` calls came before (see
        :mod:`features.materialization`). Returns the rows written; raises as
        :meth:`materialize` does."""
        plan = self._plan(view, source="rematerialize")
        with self._db.lock:
            written = self._materializer.rematerialize(plan, run_id=run_id)
            self._written(plan, written)
        return written.rows

    def watermark(self, view: str, run_id: str) -> datetime | None:
        """Event times of ``view`` up to this are materialised for ``run_id`` (None: none)."""
        plan = self._plan(view, source="watermark")
        with self._db.lock:
            return self._materializer.watermark(plan, run_id)

    # ------------------------------------------------------------------ layout

    def compact(self, view: str | None = None) -> None:
        """Re-sort ``fv_<view>`` (every view if None) by (entity id, event time).

        Point-in-time queries do this themselves when the unsorted tail is large.
        """
        names = [view] if view is not None else list(self._plans)
        with self._db.lock:
            for name in names:
                self._layout.compact(self._plan(name, source="compact"))

    def reset_view(self, view: str) -> None:
        """Drop ``view``'s feature and online tables and watermarks, and recreate them empty."""
        plan = self._plan(view, source="reset_view")
        with self._db.transaction():
            drop_view_tables(self._db, plan)
            create_view_tables(self._db, plan)
            self._online.forget(view)
            self._pit.forget(view)

    # ------------------------------------------------------------------ retrieval

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
        (``t - event_time <= ttl``); otherwise null (see :mod:`features.point_in_time`).

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
        with self._db.lock:
            return self._pit.get_historical_features(entity_df, groups, timestamp_column)

    def get_online_features(
        self,
        entity_keys: Sequence[Mapping[str, object]] | pd.DataFrame,
        features: Sequence[str],
    ) -> pd.DataFrame:
        """The latest value of each feature for each entity (the online table).

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
        with self._db.lock:
            return self._online.get_online_features(entity_keys, groups)

    # ------------------------------------------------------------------ OnlineStore

    def push(
        self, view: str, entity: Sequence[object], event_time: datetime, values: Values
    ) -> None:
        """Write one row of ``view`` (:class:`features.online.OnlineStore`): ``values`` in
        declared feature order for ``entity`` (key values in entity order)."""
        plan = self._plan(view, source="push")
        self.write_features(
            view, pushed_row(plan, self._entity_key(plan, entity), event_time, values)
        )

    def get_online_row(
        self, view: str, entity: Sequence[object], *, now: datetime
    ) -> np.ndarray[Any, Any] | None:
        """The latest row of ``entity`` in ``view`` if it is fresh at ``now``
        (:class:`features.online.OnlineStore`)."""
        plan = self._plan(view, source="get_online_row")
        key = self._entity_key(plan, entity)
        with self._db.lock:
            latest = self._online.latest(plan, [key])[0]
        if latest is None or not fresh(plan.view, latest[0], now):
            return None
        return online_row(plan.view, latest[1:])

    @staticmethod
    def _entity_key(plan: ViewPlan, entity: Sequence[object]) -> tuple[object, ...]:
        key = tuple(entity)
        if len(key) != len(plan.view.entity):
            raise FeatureInputError(
                plan.name,
                "entity",
                f"{len(key)} key values",
                f"values for {', '.join(plan.view.entity)}",
            )
        return key

    # ------------------------------------------------------------------ inspection

    def list_views(self) -> list[dict[str, Any]]:
        """Every view with its entity, ttl, features (name, type, description) and sizes."""
        out: list[dict[str, Any]] = []
        with self._db.lock:
            for name, plan in self._plans.items():
                v = plan.view
                rows = self._db.first(f"SELECT count(*) FROM {plan.fv}")
                entities = self._db.first(
                    f"SELECT count(*) FROM {plan.online} WHERE {plan.et} IS NOT NULL"
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
        with self._db.lock:
            for name, plan in self._plans.items():
                if run_id is not None and "run_id" in plan.view.entity:
                    row = self._db.first(
                        f"SELECT count(*) FROM {plan.fv} WHERE run_id = $r", {"r": run_id}
                    )
                else:
                    row = self._db.first(f"SELECT count(*) FROM {plan.fv}")
                out[name] = int(row[0]) if row else 0
        return out

    # ------------------------------------------------------------------ helpers

    def _plan(self, view: str, *, source: str) -> ViewPlan:
        plan = self._plans.get(view)
        if plan is None:
            raise FeatureInputError(
                source, "view", f"unknown view {view!r}", ", ".join(self._plans) or "no views"
            )
        return plan

    def _parse_refs(self, features: Sequence[str]) -> dict[str, list[str]]:
        """:func:`features.plans.parse_refs`, remembered for repeated reference lists."""
        try:
            memo_key = tuple([features] if isinstance(features, str) else features)
            known = self._parsed.get(memo_key)
        except TypeError:  # unhashable entries: parse (and fail) below
            memo_key, known = None, None
        if known is not None:
            return known
        groups = parse_refs(features, self._plans)
        if memo_key is not None and len(self._parsed) < 1024:
            self._parsed[memo_key] = groups
        return groups

    # ------------------------------------------------------------------ life cycle

    def close(self) -> None:
        """Close the database (committed data is on disk); further calls fail."""
        with self._db.lock:
            self._ingestion.close()
            self._pit.close()
            self._db.close()

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
        state = "closed" if self._db.closed else "open"
        return f"FeatureStore({str(self.path)!r}, views={list(self.views)}, {state})"


__all__ = [
    "DEFAULT_ROW_GROUP_SIZE",
    "ENTITY_TYPES",
    "FEATURE_CACHE_BYTES",
    "FeatureInputError",
    "FeatureStore",
    "FeatureStoreError",
]
