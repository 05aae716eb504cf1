"""Materialisation: computing a view's rows for a run from the raw telemetry tables.

A view's transformation (DuckDB SQL, :class:`features.schema.FeatureView`) runs with
``$run_id``, ``$since`` and ``$until``; the rows it returns, all with event times in
``($since, $until]``, are written to the view (:meth:`features.layout.Layout.write`)
and the (view, run) watermark in ``_materialized`` moves to ``$until``, in one
transaction.

:meth:`Materializer.materialize` is incremental: ``$since`` is the watermark, so each
call computes only the rows that became available since the last. Window aggregates
over floating-point values (averages, standard deviations, regression slopes) are not
associative, and DuckDB combines a window's values in an order that depends on which
rows the query read, so an incremental result may differ from a whole-run computation
in the last bits. :meth:`Materializer.rematerialize` recomputes the run from its first
row in one query -- exactly what a single materialisation of the whole run gives -- and
is what a finished streamed replay and ``features build`` end with, so both hold the
same values bit for bit.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import duckdb
import pyarrow.compute as pc

from features.database import StoreDatabase
from features.errors import FeatureStoreError
from features.layout import Layout, Written
from features.plans import ViewPlan, conform_features
from sim.telemetry import SCHEMAS

#: Where a materialisation starts for a run that has none yet.
EPOCH = datetime(1970, 1, 1)

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class Materializer:
    """Runs views' transformations against one store file."""

    def __init__(self, db: StoreDatabase, layout: Layout) -> None:
        self._db = db
        self._layout = layout

    def materialize(
        self, plan: ViewPlan, *, run_id: str, complete_until: datetime | None = None
    ) -> Written:
        """Compute and store ``plan``'s new rows for ``run_id`` (since its watermark).

        ``$until`` is the latest time in the view's source streams for the run plus the
        view's ``available_after``, capped by ``complete_until`` if given (a streaming
        checkpoint passes the time up to which every source stream is complete).

        Raises
        ------
        FeatureInputError
            The SQL returns a column the view does not declare, lacks one, or returns a
            type that does not fit.
        FeatureStoreError
            The view has no transformation or sources, its SQL fails, or it returns rows
            outside ``($since, $until]``. Nothing is written.
        """
        return self._run(plan, run_id=run_id, until_cap=complete_until, from_start=False)

    def rematerialize(self, plan: ViewPlan, *, run_id: str) -> Written:
        """Recompute all of ``plan``'s rows for ``run_id`` from every ingested batch, in one
        query (replacing the rows held), and move the watermark to the end.

        Raises as :meth:`materialize` does.
        """
        return self._run(plan, run_id=run_id, until_cap=None, from_start=True)

    def watermark(self, plan: ViewPlan, run_id: str) -> datetime | None:
        """Event times up to this are materialised for ``run_id`` (None: none)."""
        row = self._db.first(
            "SELECT until FROM _materialized WHERE view = $v AND run_id = $r",
            {"v": plan.name, "r": run_id},
        )
        return row[0] if row else None

    def _run(
        self, plan: ViewPlan, *, run_id: str, until_cap: datetime | None, from_start: bool
    ) -> Written:
        v = plan.view
        if not v.transformation.strip() or not v.sources:
            raise FeatureStoreError(
                f"view {v.name!r}: no transformation SQL or sources; "
                "write its rows with write_features"
            )
        unknown = [s for s in v.sources if s not in SCHEMAS]
        if unknown:
            raise FeatureStoreError(f"view {v.name!r}: unknown source stream(s) {unknown}")
        used = set(_PARAM.findall(v.transformation))
        with self._db.transaction() as c:
            held = self.watermark(plan, run_id)
            since = EPOCH if from_start or held is None else held
            top = self._db.first(
                "SELECT max(max_time) FROM _batches "
                "WHERE run_id = $r AND list_contains($streams, stream)",
                {"r": run_id, "streams": list(v.sources)},
            )
            if top is None or top[0] is None:
                return Written(0, 0)
            until: datetime = top[0] + v.available_after
            if until_cap is not None and until_cap < until:
                until = until_cap  # a streaming checkpoint: later rows may be incomplete
            if until <= since:
                return Written(0, 0)
            values: dict[str, Any] = {"run_id": run_id, "since": since, "until": until}
            params = {k: values[k] for k in values if k in used}
            try:
                result = c.sql(v.transformation, params=params).to_arrow_table()
            except duckdb.Error as exc:
                raise FeatureStoreError(
                    f"view {v.name!r}: transformation failed: {str(exc).splitlines()[0]}"
                ) from exc
            table = conform_features(plan, result, source=f"view {v.name!r} (transformation)")
            if table.num_rows:
                span = pc.min_max(table.column(v.event_time))
                lo, hi = span["min"].as_py(), span["max"].as_py()
                if lo <= since or hi > until:
                    raise FeatureStoreError(
                        f"view {v.name!r}: transformation returned event times {lo}..{hi}, "
                        f"outside ($since, $until] = ({since}, {until}]"
                    )
            written = self._layout.write(plan, table)
            c.execute(
                "INSERT INTO _materialized VALUES ($v, $r, $u) ON CONFLICT (view, run_id) "
                "DO UPDATE SET until = excluded.until",
                {"v": v.name, "r": run_id, "u": until},
            )
        return written
