"""How a view's rows are laid out in ``fv_<view>``, written, and kept sorted.

``fv_<view>`` holds the entity columns, the event-time column, ``_ingest`` (the write
that produced the row), the features, then ``_eid`` (the entity's dense id, from
``online_<view>``), ``_t`` (the event time as int32 seconds since 2000-01-01 when it is
whole seconds, else NULL) and ``_row`` (a row id, never reused). There is at most one
row per (entity, event time): a later write of the same key replaces the row (ties in
event time are broken by ingest order), so a point-in-time lookup needs no
de-duplication.

Rows are kept sorted by ``(_eid, event time)``: each write is sorted, and the table is
re-sorted (:meth:`Layout.compact`) when its unsorted tail grows past
:data:`COMPACT_MIN_ROWS` and a quarter of the sorted part. ``_fv_layout`` records, per
view, how many rows are sorted, how many were appended since, the next ``_row`` and how
many rows have no whole-second ``_t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from features.database import StoreDatabase, quote
from features.online_table import add_entities, update_latest
from features.plans import ViewPlan

#: The unsorted tail of ``fv_<view>`` is merged into the sorted part (one re-sort) before a
#: point-in-time query once it exceeds this many rows and a quarter of the sorted part.
COMPACT_MIN_ROWS = 50_000

#: Event times are also kept as int32 seconds since this instant (2000-01-01, so
#: 1931-12-13 .. 2068-01-19) when they are whole seconds: the narrow key of the fast
#: point-in-time path.
BASE_S = 946_684_800
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def exact_seconds(et: str) -> str:
    """SQL: the TIMESTAMP column ``et`` is whole seconds within the int32 range of ``_t``
    (uses the parameter ``$base`` = :data:`BASE_S`)."""
    s = f"epoch_us({et})"
    return f"({s} % 1000000 = 0 AND {s} // 1000000 - $base BETWEEN {I32_MIN} AND {I32_MAX})"


@dataclass(frozen=True, slots=True)
class LayoutState:
    """A view's row of ``_fv_layout``."""

    sorted_rows: int
    appended_rows: int
    next_row: int  # the next _row id (the number of row ids ever used)
    inexact_rows: int  # rows whose event time is not whole seconds (_t is NULL)


@dataclass(frozen=True, slots=True)
class Written:
    """What one write did: rows written and its ingest number (the ``_ingest`` of the
    online rows it changed)."""

    rows: int
    ingest: int


class Layout:
    """Writes and sorts the ``fv_<view>`` tables of one store file."""

    def __init__(self, db: StoreDatabase) -> None:
        self._db = db

    def state(self, plan: ViewPlan) -> LayoutState:
        row = self._db.first(
            "SELECT sorted_rows, appended_rows, next_row, inexact_rows FROM _fv_layout "
            "WHERE view = $v",
            {"v": plan.name},
        )
        return LayoutState(*(int(x) for x in row)) if row else LayoutState(0, 0, 0, 0)

    def write(self, plan: ViewPlan, table: pa.Table) -> Written:
        """Write conformed rows (:func:`features.plans.conform_features`) of a view,
        inside the caller's transaction.

        The call gets one new ingest number, greater than every earlier one, so a row
        replaces an earlier row with the same entity and event time; within the call the
        later row wins. The online table keeps, per entity, the row with the greatest
        (event time, ingest number).
        """
        if table.num_rows == 0:
            return Written(0, 0)
        c = self._db.conn
        v = plan.view
        keys = [quote(k) for k in v.entity]
        feats = [quote(f) for f in v.feature_names]
        et = plan.et
        on_i = " AND ".join(f"o.{k} = i.{k}" for k in keys)
        ingest = int(self._db.first("SELECT nextval('_ingest_seq')")[0])
        c.register("_wf_in", table)
        try:
            add_entities(c, plan, "_wf_in")
            c.execute(
                f"CREATE TEMP TABLE _wf AS SELECT {', '.join('i.' + k for k in keys)}, o._eid, "
                f"i.{et}, {', '.join('i.' + f for f in feats)} "
                f"FROM _wf_in i JOIN {plan.online} o ON {on_i} "
                f"QUALIFY row_number() OVER (PARTITION BY o._eid, i.{et} ORDER BY i._pos DESC) = 1"
            )
        finally:
            c.unregister("_wf_in")
        count = self._db.first(
            f"SELECT count(*), count(*) FILTER (WHERE NOT ({exact_seconds(et)})) FROM _wf",
            {"base": BASE_S},
        )
        written, inexact = (int(count[0]), int(count[1])) if count else (0, 0)
        state = self.state(plan)
        # Rows at or before an entity's latest event time may replace stored rows.
        clash = self._db.first(
            f"SELECT count(*) FROM _wf w JOIN {plan.online} o ON o._eid = w._eid "
            f"WHERE o.{et} IS NOT NULL AND w.{et} <= o.{et}"
        )
        if clash and clash[0]:
            c.execute(
                f"DELETE FROM {plan.fv} AS f USING _wf w WHERE f._eid = w._eid AND f.{et} = w.{et}"
            )
        c.execute(
            f"INSERT INTO {plan.fv} SELECT {', '.join(keys)}, {et}, $ingest, "
            f"{', '.join(feats)}, _eid, "
            f"CASE WHEN {exact_seconds(et)} "
            f"THEN (epoch_us({et}) // 1000000 - $base)::INTEGER END, "
            f"$next_row + row_number() OVER () - 1 "
            f"FROM _wf ORDER BY _eid, {et}",
            {"ingest": ingest, "base": BASE_S, "next_row": state.next_row},
        )
        update_latest(c, plan, "_wf", ingest)
        first_write = state.sorted_rows == 0 and state.appended_rows == 0
        self._save(
            plan,
            LayoutState(
                sorted_rows=written if first_write else state.sorted_rows,  # sorted itself
                appended_rows=0 if first_write else state.appended_rows + written,
                next_row=state.next_row + written,
                inexact_rows=state.inexact_rows + inexact,
            ),
        )
        c.execute("DROP TABLE _wf")  # (a failed write rolls it back with the rest)
        return Written(written, ingest)

    def compact(self, plan: ViewPlan) -> None:
        """Re-sort ``fv_<view>`` by (entity id, event time), in one transaction."""
        with self._db.transaction() as c:
            c.execute(
                f"CREATE OR REPLACE TABLE {plan.fv} AS "
                f"SELECT * FROM {plan.fv} ORDER BY _eid, {plan.et}"
            )
            n = self._db.first(
                f"SELECT count(*), count(*) FILTER (WHERE _t IS NULL), "
                f"coalesce(max(_row) + 1, 0) FROM {plan.fv}"
            )
            state = self.state(plan)
            self._save(
                plan,
                LayoutState(
                    sorted_rows=int(n[0]),
                    appended_rows=0,
                    next_row=max(state.next_row, int(n[2])),
                    inexact_rows=int(n[1]),
                ),
            )

    def maybe_compact(self, plan: ViewPlan) -> LayoutState:
        """Re-sort the view's table if its unsorted tail is large; its layout after."""
        state = self.state(plan)
        if state.appended_rows > max(COMPACT_MIN_ROWS, state.sorted_rows // 4):
            self.compact(plan)
            state = self.state(plan)
        return state

    def _save(self, plan: ViewPlan, state: LayoutState) -> None:
        self._db.conn.execute(
            "INSERT INTO _fv_layout VALUES ($v, $s, $a, $n, $x) ON CONFLICT (view) DO UPDATE "
            "SET sorted_rows = excluded.sorted_rows, appended_rows = excluded.appended_rows, "
            "next_row = excluded.next_row, inexact_rows = excluded.inexact_rows",
            {
                "v": plan.name,
                "s": state.sorted_rows,
                "a": state.appended_rows,
                "n": state.next_row,
                "x": state.inexact_rows,
            },
        )
