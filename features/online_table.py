"""The online table: the latest row of each entity of a view (``online_<view>``).

Every feature write keeps, per entity, the row with the greatest (event time, ingest
number) in ``online_<view>``, whose entity columns are its primary key; the table also
numbers the entities (``_eid``, dense from 0), which is how ``fv_<view>`` refers to
them. Lookups are served from an in-process cache of the table (loaded whole on first
use, up to :data:`ONLINE_PRELOAD_ROWS` entities, else filled from DuckDB on a miss) that
this process's writes keep current, so a lookup is a dict hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from features.columns import ARROW_OF, coerce, typed_values
from features.database import StoreDatabase, quote
from features.errors import FeatureInputError
from features.online import Values, online_row
from features.plans import ViewPlan

#: A view's online cache is filled with every entity on first use if it has at most
#: this many; beyond, entities are fetched from DuckDB on a miss.
ONLINE_PRELOAD_ROWS = 200_000

#: An entity's latest row: (event time, feature values in declared order).
LatestRow = tuple[Any, ...]


def add_entities(c: duckdb.DuckDBPyConnection, plan: ViewPlan, source: str) -> None:
    """Give the entities of table ``source`` that the view has never seen the next dense
    ``_eid`` (and a placeholder online row with a NULL event time)."""
    keys = ", ".join(quote(k) for k in plan.view.entity)
    on = " AND ".join(f"o.{quote(k)} = n.{quote(k)}" for k in plan.view.entity)
    c.execute(
        f"INSERT INTO {plan.online} ({keys}, _eid) "
        f"SELECT {keys}, (SELECT coalesce(max(_eid), -1) FROM {plan.online}) "
        f"+ row_number() OVER (ORDER BY {keys}) "
        f"FROM (SELECT DISTINCT {keys} FROM {source}) n "
        f"WHERE NOT EXISTS (SELECT 1 FROM {plan.online} o WHERE {on})"
    )


def update_latest(c: duckdb.DuckDBPyConnection, plan: ViewPlan, staged: str, ingest: int) -> None:
    """Make each entity's online row the latest of table ``staged`` (``_eid``, event time,
    features; one row per (entity, event time)) if it is not older than the one held."""
    et = plan.et
    feats = [quote(f) for f in plan.view.feature_names]
    sets = ", ".join([f"{et} = l.{et}", "_ingest = $ingest", *(f"{f} = l.{f}" for f in feats)])
    c.execute(
        f"UPDATE {plan.online} AS o SET {sets} "
        f"FROM (SELECT * FROM {staged} QUALIFY row_number() OVER "
        f"(PARTITION BY _eid ORDER BY {et} DESC) = 1) l "
        f"WHERE o._eid = l._eid AND (o.{et} IS NULL OR l.{et} >= o.{et})",
        {"ingest": ingest},
    )


def pushed_row(
    plan: ViewPlan, key: tuple[object, ...], event_time: datetime, values: Values
) -> pa.Table:
    """One pushed row (:meth:`features.online.OnlineStore.push`) as rows to write to the
    view: its entity key, event time and ``values`` in declared feature order.

    Raises
    ------
    FeatureInputError
        Not one value per feature, or a value that does not fit its feature's type.
    """
    features = plan.view.features
    if len(values) != len(features):
        online_row(plan.view, values)  # raises: the wrong number of values
    columns = {k: pa.array([x]) for k, x in zip(plan.view.entity, key, strict=True)}
    columns[plan.view.event_time] = pa.array([event_time], pa.timestamp("us"))
    for feature, value in zip(features, values, strict=True):
        columns[feature.name] = _pushed_value(plan.name, feature.name, feature.dtype, value)
    return pa.table(columns)


def _pushed_value(view: str, name: str, dtype: str, value: Any) -> pa.Array:
    """A pushed value as a one-element Arrow array of the feature's type (None and NaN
    are null; integral floats fit integer features, as an online row holds numbers as
    float64)."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return pa.nulls(1, ARROW_OF[dtype])
    try:
        if dtype in ("BIGINT", "INTEGER") and isinstance(value, float | np.floating):
            if not float(value).is_integer():
                raise ValueError(f"{value!r} is not a whole number")
            value = int(value)
        elif dtype == "BOOLEAN" and isinstance(value, int | float | np.number):
            value = bool(value)
        return pa.array([value], ARROW_OF[dtype])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise FeatureInputError(
            f"view {view!r}",
            f"feature {view}:{name}",
            f"value {value!r}: {exc}",
            f"a {dtype} value",
        ) from None


class OnlineTable:
    """Lookups of the latest rows, through the in-process cache.

    Parameters
    ----------
    db
        The open store file.
    plans
        The store's views.
    """

    def __init__(self, db: StoreDatabase, plans: Mapping[str, ViewPlan]) -> None:
        self._db = db
        self._plans = plans
        self._cache: dict[str, dict[tuple[Any, ...], LatestRow | None]] = {}
        self._complete: set[str] = set()

    def latest(self, plan: ViewPlan, keys: list[tuple[Any, ...]]) -> list[LatestRow | None]:
        """The latest row of each entity key (None: an entity the view has never seen)."""
        cache = self._cache.get(plan.name)
        if cache is None:
            cache = self._preload(plan)
        if plan.name in self._complete:
            return [cache.get(k) for k in keys]
        missing = [k for k in keys if k not in cache]
        if missing:
            self._load(plan, missing, cache)
        return [cache[k] for k in keys]

    def get_online_features(
        self,
        entity_keys: Sequence[Mapping[str, object]] | pd.DataFrame,
        groups: Mapping[str, list[str]],
    ) -> pd.DataFrame:
        """The latest value of each feature (``groups``: view -> feature names) for each
        entity: entity columns, then ``view__feature`` columns (NaN / None for an entity
        the store has never seen).

        Raises
        ------
        FeatureInputError
            A missing entity column, or keys that do not convert to the entity's type.
        """
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
        for view, names in groups.items():
            plan = self._plans[view]
            keys = list(zip(*(columns_in[k] for k in plan.view.entity), strict=True))
            rows = self.latest(plan, keys)
            for name in names:
                j = plan.feature_index[name] + 1
                values = [None if r is None else r[j] for r in rows]
                out[f"{view}__{name}"] = typed_values(values, plan.dtypes[name])
        return pd.DataFrame(out, index=pd.RangeIndex(count), copy=False)

    def refresh(self, plan: ViewPlan, ingest: int) -> None:
        """Put the online rows that write ``ingest`` changed into the view's cache (if
        it is loaded)."""
        cache = self._cache.get(plan.name)
        if cache is None:
            return
        n = len(plan.view.entity)
        for row in self._db.conn.execute(
            f"SELECT {self._columns(plan)} FROM {plan.online} WHERE _ingest = $i", {"i": ingest}
        ).fetchall():
            cache[tuple(row[:n])] = tuple(row[n:])

    def forget(self, view: str) -> None:
        """Drop the view's cache (its tables were recreated)."""
        self._cache.pop(view, None)
        self._complete.discard(view)

    @staticmethod
    def _columns(plan: ViewPlan, prefix: str = "") -> str:
        names = [*plan.view.entity, plan.view.event_time, *plan.view.feature_names]
        return ", ".join(prefix + quote(c) for c in names)

    def _preload(self, plan: ViewPlan) -> dict[tuple[Any, ...], LatestRow | None]:
        """The view's cache, with every entity if there are at most
        :data:`ONLINE_PRELOAD_ROWS` (then a miss means "unknown", no SQL needed)."""
        cache: dict[tuple[Any, ...], LatestRow | None] = {}
        self._cache[plan.name] = cache
        count = self._db.first(f"SELECT count(*) FROM {plan.online}")
        if count is not None and count[0] <= ONLINE_PRELOAD_ROWS:
            n = len(plan.view.entity)
            rows = self._db.conn.execute(
                f"SELECT {self._columns(plan)} FROM {plan.online} WHERE {plan.et} IS NOT NULL"
            ).fetchall()
            for row in rows:
                cache[tuple(row[:n])] = tuple(row[n:])
            self._complete.add(plan.name)
        return cache

    def _load(
        self,
        plan: ViewPlan,
        keys: list[tuple[Any, ...]],
        cache: dict[tuple[Any, ...], LatestRow | None],
    ) -> None:
        """Fill ``cache`` for ``keys`` from ``online_<view>`` (None for unknown entities)."""
        v = plan.view
        wanted = list(dict.fromkeys(keys))
        try:
            arrays = [
                coerce(
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
        c = self._db.conn
        c.register("_online_keys", pa.Table.from_arrays(arrays, names=names))
        try:
            on = " AND ".join(
                f"o.{quote(k)} = q.{kn}" for k, kn in zip(v.entity, names, strict=True)
            )
            rows = c.execute(
                f"SELECT {self._columns(plan, 'o.')} FROM {plan.online} o "
                f"JOIN _online_keys q ON {on} WHERE o.{plan.et} IS NOT NULL"
            ).fetchall()
        finally:
            c.unregister("_online_keys")
        found = {tuple(r[: len(names)]): tuple(r[len(names) :]) for r in rows}
        for key, converted in zip(
            wanted, zip(*(a.to_pylist() for a in arrays), strict=True), strict=True
        ):
            cache[key] = found.get(tuple(converted))
