"""Point-in-time (offline) retrieval: the features each label row could have known.

For a label ``(entity, t)`` and a feature of view ``v``, the answer is the value of
``v``'s row with the greatest event time ``<= t`` for that entity, if ``t - event time
<= v.ttl``; otherwise null. ``fv_<view>`` holds at most one row per (entity, event time)
(the latest write wins, :mod:`features.layout`), so there are no ties left to break.

Two paths compute it:

the merge (when every stored event time is whole seconds in the int32 range of ``_t``)
    The view's keys are cached in process as one sorted int64 array,
    ``_eid << 32 | (_t - INT32_MIN)`` (``fv_<view>`` is kept in that order, so this is
    its storage order), with each key's ``_row``. The labels are mapped to ``_eid``
    (single-column entities in process; others by a join on ``online_<view>``), sorted
    by (``_eid``, floor of ``t`` in seconds) with one sort of a packed int64 key, and
    :func:`numpy.searchsorted` finds each label's row: the last key <= the label's key,
    kept if its entity is the label's and the ttl holds on the exact times. Feature
    values are gathered from a cache of the requested columns indexed by ``_row``.
    DuckDB's ASOF JOIN would re-sort both sides on every query; this reads the stored
    order instead and sorts only the labels (about a third of the time, measured in
    ``bench/features_speed.py``).
the plain ASOF JOIN
    For sub-second event times, or when the caches would exceed their memory budget:
    a DuckDB ``ASOF LEFT JOIN`` on (``_eid``, event time) carrying the features.

Both caches are dropped when the view is written.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.columns import ARROW_OF, PANDAS_OF, coerce, frame_column, frame_columns, is_string
from features.database import StoreDatabase, quote
from features.errors import FeatureInputError, FeatureStoreError
from features.layout import BASE_S, I32_MAX, I32_MIN, Layout
from features.plans import ViewPlan

#: Default budget (bytes) of the in-process caches the merge path reads.
FEATURE_CACHE_BYTES = 1 << 30

_KEYS = "\0keys"  # the cache slot of a view's sorted keys (no feature has this name)
_WIDTH = {"DOUBLE": 8, "BIGINT": 9, "INTEGER": 5, "BOOLEAN": 2, "VARCHAR": 24}


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

    def gather(self, slots: np.ndarray[Any, Any], rid: np.ndarray[Any, Any], n: int) -> Any:
        """``n`` values, pandas-ready: the value at slot ``slots[i]`` in row ``rid[i]`` (the
        null slot gives null), null in every other row. ``slots`` is mostly ascending
        (labels in key order), so the reads are sequential and only the writes random,
        which is about twice as fast as gathering in label order."""
        if self.strings is not None:
            pos = np.full(n, len(self.strings) - 1, dtype=np.int64)
            pos[rid] = slots
            return self.strings.take(pa.array(pos)).to_pandas().array
        assert self.values is not None
        if self.valid is None:
            out = np.full(n, np.nan)
            out[rid] = self.values[slots]
            return out
        values = np.zeros(n, dtype=self.values.dtype)
        values[rid] = self.values[slots]
        mask = np.ones(n, dtype=np.bool_)
        mask[rid] = ~self.valid[slots]
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
    if is_string(t):
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
class _SortedKeys:
    """A view's rows in (``_eid``, event time) order: ``keys`` (strictly increasing
    ``_eid << 32 | (_t - INT32_MIN)``) and each key's ``_row`` (None: key i is row i)."""

    keys: np.ndarray[Any, Any]
    rows: np.ndarray[Any, Any] | None
    nbytes: int


@dataclass(frozen=True, slots=True)
class _Entities:
    """A view's entity dictionary, kept until the view is written: entity values and
    their ``_eid`` (single-column entities only) and the greatest ``_eid``."""

    values: pa.Array | None
    eids: np.ndarray[Any, Any] | None
    max_eid: int


def sort_labels(
    eid: np.ndarray[Any, Any], seconds: np.ndarray[Any, Any], rid: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(eid, seconds, rid) sorted by (eid, seconds, rid), all >= 0 but ``seconds``: one
    sort of a packed int64 key (entity | second offset | row) when the three fit in 63
    bits, else an argsort."""
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
    order = np.lexsort((rid, seconds, eid))
    return eid[order], seconds[order], rid[order]


class PointInTime:
    """Point-in-time retrieval from one store file.

    Parameters
    ----------
    db
        The open store file.
    layout
        Its ``fv_<view>`` tables (compacted here before a query when their unsorted tail
        is large).
    plans
        The store's views.
    cache_bytes
        Memory (bytes) the caches of the merge path may use; 0 always uses the plain
        ASOF JOIN.
    """

    def __init__(
        self, db: StoreDatabase, layout: Layout, plans: Mapping[str, ViewPlan], cache_bytes: int
    ) -> None:
        self._db = db
        self._layout = layout
        self._plans = plans
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, str], _Column | _SortedKeys] = OrderedDict()
        self._entities: dict[str, _Entities] = {}
        self._gather_pool: ThreadPoolExecutor | None = None

    def forget(self, view: str) -> None:
        """Drop the cached keys, columns and entity ids of ``view`` (after a write)."""
        self._entities.pop(view, None)
        for key in [k for k in self._cache if k[0] == view]:
            del self._cache[key]

    def close(self) -> None:
        if self._gather_pool is not None:
            self._gather_pool.shutdown(wait=True)
            self._gather_pool = None

    def get_historical_features(
        self,
        entity_df: pd.DataFrame | pa.Table,
        groups: Mapping[str, list[str]],
        timestamp_column: str,
    ) -> pd.DataFrame:
        """``entity_df`` plus one ``view__feature`` column per feature of ``groups``
        (view -> feature names); see :meth:`features.store.FeatureStore.get_historical_features`.
        """
        source = "entity_df"
        if not isinstance(entity_df, pd.DataFrame | pa.Table):
            raise FeatureInputError(
                source, "", f"a {type(entity_df).__name__}", "a pandas DataFrame or pyarrow Table"
            )
        present = frame_columns(entity_df)
        first_view, first_names = next(iter(groups.items()))
        if timestamp_column not in present:
            raise FeatureInputError(
                source,
                f"column {timestamp_column!r}",
                f"missing: the label times (needed for {first_view}:{first_names[0]})",
                f"a timestamp column; columns are {', '.join(present)} (or pass timestamp_column=)",
            )
        ts = coerce(
            frame_column(entity_df, timestamp_column, source=source),
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
                    coerce(
                        frame_column(entity_df, column, source=source),
                        dtype,
                        source=source,
                        field=field,
                    )
                )
            arrays: dict[str, pa.ChunkedArray] | None = None
            if lo is None:  # no label time at all
                arrays = {
                    f"{view}__{name}": pa.chunked_array(
                        [pa.nulls(n, ARROW_OF[plan.view.feature(name).dtype])]
                    )
                    for name in names
                }
            else:
                state = self._layout.maybe_compact(plan)
                if state.inexact_rows == 0 and self._cache_view(plan, names, state.next_row):
                    results.update(self._merge(plan, names, keys, ts, state.next_row))
                else:
                    arrays = self._asof(plan, names, keys, ts, lo, hi)
            for name, array in (arrays or {}).items():
                results[name] = array.to_pandas(types_mapper=PANDAS_OF.get).array
        if isinstance(entity_df, pd.DataFrame):
            out = entity_df.copy(deep=False)
        else:
            out = entity_df.to_pandas()
        # Every result array is new (gathered or converted here): no need to copy them.
        added = pd.DataFrame(
            {name: results[name] for name in out_names}, index=out.index, copy=False
        )
        return pd.concat([out, added], axis=1)

    # ------------------------------------------------------------------ the caches

    def _cache_view(self, plan: ViewPlan, names: list[str], size: int) -> bool:
        """Make sure the view's sorted keys and the ``names`` columns (``size`` row ids)
        are cached; False if they would not fit the budget."""
        want = [(plan.name, _KEYS), *((plan.name, name) for name in names)]
        missing = [k for k in want if k not in self._cache]
        for key in want:
            if key in self._cache:
                self._cache.move_to_end(key)
        if not missing:
            return True
        need = sum(
            (size + 1) * (16 if name == _KEYS else _WIDTH[plan.dtypes[name]]) for _, name in missing
        )
        held = sum(c.nbytes for k, c in self._cache.items() if k in want)
        if need + held > self.cache_bytes:
            return False
        total = sum(c.nbytes for c in self._cache.values())
        for key in list(self._cache):  # evict least recently used entries
            if total + need <= self.cache_bytes:
                break
            if key not in want:
                total -= self._cache.pop(key).nbytes
        c = self._db.conn
        if (plan.name, _KEYS) in missing:
            table = c.sql(f"SELECT _eid, _t, _row FROM {plan.fv}").to_arrow_table()
            self._cache[(plan.name, _KEYS)] = _sort_keys(
                table.column(0).to_numpy(), table.column(1).to_numpy(), table.column(2).to_numpy()
            )
        columns = [name for _, name in missing if name != _KEYS]
        if columns:
            table = c.sql(
                f"SELECT _row, {', '.join(quote(name) for name in columns)} FROM {plan.fv}"
            ).to_arrow_table()
            rows = table.column(0).to_numpy()
            for name in columns:
                self._cache[(plan.name, name)] = _load_column(table.column(name), rows, size)
        return True

    def _entities_of(self, plan: ViewPlan) -> _Entities:
        """The view's :class:`_Entities` (cached until the view is written)."""
        known = self._entities.get(plan.name)
        if known is None:
            top = self._db.first(f"SELECT max(_eid) FROM {plan.online}")
            max_eid = -1 if top is None or top[0] is None else int(top[0])
            values: pa.Array | None = None
            eids: np.ndarray[Any, Any] | None = None
            if len(plan.view.entity) == 1:
                table = self._db.conn.sql(
                    f"SELECT {quote(plan.view.entity[0])}, _eid FROM {plan.online}"
                ).to_arrow_table()
                values = table.column(0).combine_chunks()
                eids = table.column(1).to_numpy().astype(np.int64)
            known = _Entities(values, eids, max_eid)
            self._entities[plan.name] = known
        return known

    # ------------------------------------------------------------------ the merge

    def _entity_ids(self, plan: ViewPlan, keys: list[pa.ChunkedArray]) -> np.ndarray[Any, Any]:
        """Each label's ``_eid`` (-1: an entity the view has never seen, or a null key)."""
        known = self._entities_of(plan)
        n = len(keys[0])
        if known.values is None or known.eids is None:
            return self._entity_ids_joined(plan, keys)
        values, eids, key = known.values, known.eids, keys[0]
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

    def _entity_ids_joined(
        self, plan: ViewPlan, keys: list[pa.ChunkedArray]
    ) -> np.ndarray[Any, Any]:
        """Each label's ``_eid`` for multi-column entities: a join on ``online_<view>``."""
        n = len(keys[0])
        names = [f"_k{i}" for i in range(len(keys))]
        lhs = pa.Table.from_arrays(
            [pa.array(np.arange(n, dtype=np.int64)), *keys], names=["_rid", *names]
        )
        on = " AND ".join(
            f"o.{quote(k)} = l.{kn}" for k, kn in zip(plan.view.entity, names, strict=True)
        )
        found = self._query_unordered(
            f"SELECT l._rid, o._eid FROM _pit_keys l JOIN {plan.online} o ON {on}",
            {},
            {"_pit_keys": lhs},
        )
        eid = np.full(n, -1, dtype=np.int64)
        eid[found.column(0).to_numpy()] = found.column(1).to_numpy()
        return eid

    def _merge(
        self,
        plan: ViewPlan,
        names: list[str],
        keys: list[pa.ChunkedArray],
        ts: pa.ChunkedArray,
        size: int,
    ) -> dict[str, Any]:
        """One view's features for every label row, in label order: the merge path."""
        v = plan.view
        n = len(ts)
        micros = pc.cast(ts, pa.int64()).fill_null(0).to_numpy()
        seconds = np.floor_divide(micros, 1_000_000) - BASE_S
        eid = self._entity_ids(plan, keys)
        keep = eid >= 0
        if ts.null_count:
            keep &= ts.is_valid().to_numpy(zero_copy_only=False)
        if n and (seconds.min() < I32_MIN or seconds.max() > I32_MAX):
            # Before the range of _t no row can match; after it, every row is earlier.
            keep &= seconds >= I32_MIN
            seconds = np.clip(seconds, I32_MIN, I32_MAX)
        e, s, rid = sort_labels(eid[keep], seconds[keep], np.flatnonzero(keep))
        stored = self._cache[(v.name, _KEYS)]
        assert isinstance(stored, _SortedKeys)
        at = np.searchsorted(stored.keys, (e << 32) | (s - I32_MIN), side="right") - 1
        hit = at >= 0
        at = np.maximum(at, 0)
        found = stored.keys[at] if len(stored.keys) else np.zeros(len(at), dtype=np.int64)
        hit &= (found >> 32) == e
        ttl_us = v.ttl // timedelta(microseconds=1)
        if ttl_us <= 2**62:
            event_us = ((found & 0xFFFFFFFF) + (I32_MIN + BASE_S)) * 1_000_000
            hit &= micros[rid] - event_us <= ttl_us
        # The cache slot (``_row``) of each sorted label's row; the null slot ``size`` if none.
        slots = np.where(hit, at if stored.rows is None else stored.rows[at], size)
        cached = [self._cache[(v.name, name)] for name in names]
        columns = [column for column in cached if isinstance(column, _Column)]
        if len(columns) == 1 or n < 100_000:
            gathered = [column.gather(slots, rid, n) for column in columns]
        else:  # numpy's gathers release the GIL: use both cores
            if self._gather_pool is None:
                self._gather_pool = ThreadPoolExecutor(2, thread_name_prefix="opsbench-gather")
            gathered = list(self._gather_pool.map(lambda col: col.gather(slots, rid, n), columns))
        return {f"{v.name}__{name}": g for name, g in zip(names, gathered, strict=True)}

    # ------------------------------------------------------------------ the plain path

    def _asof(
        self,
        plan: ViewPlan,
        names: list[str],
        keys: list[pa.ChunkedArray],
        ts: pa.ChunkedArray,
        lo: datetime,
        hi: datetime,
    ) -> dict[str, pa.ChunkedArray]:
        """One view's features for every label row, in label order: an ASOF LEFT JOIN on
        (entity id, event time) that carries the features through the join."""
        v = plan.view
        n = len(ts)
        key_names = [f"_k{i}" for i in range(len(keys))]
        lhs = pa.Table.from_arrays(
            [pa.array(np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)), *keys, ts],
            names=["_rid", *key_names, "_ts"],
        )
        et = plan.et
        on = " AND ".join(
            f"o.{quote(k)} = l.{kn}" for k, kn in zip(v.entity, key_names, strict=True)
        )
        cols = ", ".join(
            f"CASE WHEN f.{et} >= l._ts - $ttl THEN f.{quote(name)} END AS {quote(name)}"
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
            f"f AS (SELECT _eid, {et}, {', '.join(quote(x) for x in names)} "
            f"FROM {plan.fv} {where}) "
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

    def _query_unordered(
        self, sql: str, params: dict[str, Any], tables: dict[str, pa.Table]
    ) -> pa.Table:
        """Run a read query over registered Arrow ``tables``; rows in any order.

        The results are put in label order by row id afterwards, so DuckDB may return
        them as they come (``preserve_insertion_order = false``, which saves a few per
        cent); the setting is restored at once, as the sorted writes rely on it.
        """
        c = self._db.conn
        for name, table in tables.items():
            c.register(name, table)
        c.execute("SET preserve_insertion_order = false")
        try:
            return c.sql(sql, params=params).to_arrow_table()
        finally:
            c.execute("SET preserve_insertion_order = true")
            for name in tables:
                c.unregister(name)


def _sort_keys(
    eid: np.ndarray[Any, Any], t: np.ndarray[Any, Any], rows: np.ndarray[Any, Any]
) -> _SortedKeys:
    """The :class:`_SortedKeys` of a view's ``_eid``, ``_t`` and ``_row`` columns (any
    order; sorted here when the table's storage order is not already the key order)."""
    keys = (eid.astype(np.int64) << 32) | (t.astype(np.int64) - I32_MIN)
    rows = rows.astype(np.int64)
    if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys, kind="stable")
        keys, rows = keys[order], rows[order]
    if bool(np.array_equal(rows, np.arange(len(rows)))):
        return _SortedKeys(keys, None, keys.nbytes)
    return _SortedKeys(keys, rows, keys.nbytes + rows.nbytes)
