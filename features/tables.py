"""The tables (and SQL views) a store file holds, created or checked when it opens.

``raw_<stream>``
    Every telemetry row of every run: ``run_id``, ``_batch`` (the batch's ``seq``), then
    the stream's columns (:data:`sim.telemetry.SCHEMAS`; timestamps as ``TIMESTAMP``).
``_batches``
    The ingestion ledger: one row per committed batch ``(run_id, stream, seq)`` with its
    row count and time range (:mod:`features.ingestion`).
``_runs``
    The run ledger: which replays the store holds and their telemetry hash
    (:mod:`features.runs`).
``_materialized``
    The watermark ``until`` per (view, run) (:mod:`features.materialization`).
``_fv_layout``
    How much of each ``fv_<view>`` is sorted (:mod:`features.layout`).
``fv_<view>``, ``online_<view>``
    A view's rows and its latest row per entity (:mod:`features.layout`,
    :mod:`features.online_table`).
``<view>``
    A SQL view over ``fv_<view>`` with the declared columns only (entity, event time,
    features), so ``duckdb store.duckdb "select * from infrastructure_metrics"`` works.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from features.columns import duck_type
from features.database import StoreDatabase, quote
from features.errors import FeatureStoreError
from features.plans import ViewPlan
from sim.telemetry import SCHEMAS


def ensure_table(
    db: StoreDatabase,
    table: str,
    columns: list[tuple[str, str]],
    extra: str = "",
    *,
    view: str = "",
    rebuild: bool = False,
) -> None:
    """Create ``table`` or check that it has ``columns``.

    A view's table with other columns is dropped (with the view's watermarks and layout
    row) when ``rebuild``, and is an error otherwise.
    """
    c = db.conn
    existing = db.table_columns(table)
    if existing and existing != columns and view and rebuild:
        c.execute(f"DROP TABLE {quote(table)}")
        c.execute("DELETE FROM _materialized WHERE view = $v", {"v": view})
        c.execute("DELETE FROM _fv_layout WHERE view = $v", {"v": view})
        existing = []
    if not existing:
        body = ", ".join(f"{quote(n)} {t}" for n, t in columns)
        c.execute(f"CREATE TABLE {quote(table)} ({body}{extra})")
    elif existing != columns:
        hint = (
            f"open with rebuild_changed_views=True to drop view {view!r}'s rows"
            if view
            else "use a new store file"
        )
        raise FeatureStoreError(
            f"{db.path}: table {table} has columns {existing}, but the declarations "
            f"need {columns}; {hint}"
        )


def create_schema(db: StoreDatabase, plans: Iterable[ViewPlan], *, rebuild: bool) -> None:
    """Create (or check) every table of the store and of each view, in one transaction."""
    with db.transaction() as c:
        for stream, schema in SCHEMAS.items():
            columns = [("run_id", "VARCHAR"), ("_batch", "BIGINT")]
            columns += [(f.name, duck_type(f.type)) for f in schema]
            ensure_table(db, f"raw_{stream}", columns)
        ensure_table(
            db,
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
        ensure_table(
            db,
            "_runs",
            [("run_id", "VARCHAR"), ("telemetry_sha256", "VARCHAR"), ("complete", "BOOLEAN")],
            ", PRIMARY KEY (run_id)",
        )
        ensure_table(
            db,
            "_materialized",
            [("view", "VARCHAR"), ("run_id", "VARCHAR"), ("until", "TIMESTAMP")],
            ", PRIMARY KEY (view, run_id)",
        )
        ensure_table(
            db,
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
        for plan in plans:
            create_view_tables(db, plan, rebuild=rebuild)


def create_view_tables(db: StoreDatabase, plan: ViewPlan, *, rebuild: bool = False) -> None:
    """Create (or check) ``fv_<view>`` and ``online_<view>``, and (re)create the SQL view."""
    keys = ", ".join(quote(c) for c in plan.view.entity)
    ensure_table(db, f"fv_{plan.name}", plan.fv_columns(), view=plan.name, rebuild=rebuild)
    ensure_table(
        db,
        f"online_{plan.name}",
        plan.online_columns(),
        f", PRIMARY KEY ({keys})",
        view=plan.name,
        rebuild=rebuild,
    )
    declared = list(plan.declared_columns())
    shown = db.conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "AND table_schema = current_schema() ORDER BY ordinal_position",
        [plan.name],
    ).fetchall()
    if [name for (name,) in shown] == declared and not rebuild:
        return  # already there: opening a store writes nothing
    columns = ", ".join(quote(c) for c in declared)
    sql = f"CREATE OR REPLACE VIEW {quote(plan.name)} AS SELECT {columns} FROM {plan.fv}"
    try:
        db.conn.execute(sql)
    except duckdb.Error as exc:  # e.g. a table of that name made by someone else
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FeatureStoreError(
            f"{db.path}: cannot create the SQL view {plan.name!r} over fv_{plan.name}: {first}"
        ) from None


def drop_view_tables(db: StoreDatabase, plan: ViewPlan) -> None:
    """Drop a view's tables and forget its watermarks and layout (inside a transaction)."""
    c = db.conn
    c.execute(f"DROP TABLE IF EXISTS {plan.fv}")
    c.execute(f"DROP TABLE IF EXISTS {plan.online}")
    c.execute("DELETE FROM _materialized WHERE view = $v", {"v": plan.name})
    c.execute("DELETE FROM _fv_layout WHERE view = $v", {"v": plan.name})
