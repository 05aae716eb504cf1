"""How the store lays out a declared feature view, and how rows and references to it
are checked.

A view ``v`` is kept in ``fv_v`` (every row), ``online_v`` (the latest row per entity)
and a SQL view ``v`` over ``fv_v`` with the declared columns only. Its plan fixes the
entity columns' types and the tables' columns; :func:`conform_features` checks and casts
rows written to it, and :func:`parse_refs` checks ``"view:feature"`` references.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from features.columns import as_table, coerce
from features.database import quote
from features.errors import FeatureInputError, FeatureStoreError
from features.schema import FeatureView

#: DuckDB types an entity column may have (set per column name with ``entity_types``).
ENTITY_TYPES = ("VARCHAR", "BIGINT", "INTEGER")
#: Column names the store uses itself; no entity, event time or feature may be called so.
RESERVED = frozenset({"_eid", "_ingest", "_pos", "_batch", "_rid", "_ts", "_t", "_row"})
#: Name prefixes of the store's own tables: a view's SQL view, named like the view,
#: must not collide with them.
RESERVED_PREFIXES = ("fv_", "online_", "raw_", "_")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ViewPlan:
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
        """The quoted event-time column."""
        return quote(self.view.event_time)

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

    def declared_columns(self) -> list[str]:
        """Entity columns, the event-time column, then the features (declared order)."""
        v = self.view
        return [*v.entity, v.event_time, *v.feature_names]


def make_plan(name: str, view: FeatureView, entity_types: Mapping[str, str]) -> ViewPlan:
    """The plan of ``view`` (registered as ``name``).

    Raises
    ------
    FeatureStoreError
        The declaration is unusable: a name that is not an identifier or collides with
        the store's tables, no entity, a column declared twice or reserved, an entity
        type not in :data:`ENTITY_TYPES`.
    """
    where = f"view {name!r}"
    if name != view.name:
        raise FeatureStoreError(f"{where}: registered under a name other than {view.name!r}")
    if not _IDENT.match(name):
        raise FeatureStoreError(f"{where}: a view name must match {_IDENT.pattern}")
    if name.lower().startswith(RESERVED_PREFIXES):
        raise FeatureStoreError(
            f"{where}: a view name must not start with {', '.join(RESERVED_PREFIXES)} "
            "(the store's own tables)"
        )
    if not view.entity:
        raise FeatureStoreError(f"{where}: no entity columns")
    seen: set[str] = set()
    for column in [*view.entity, view.event_time, *view.feature_names]:
        if column.lower() in seen:
            raise FeatureStoreError(f"{where}: column {column!r} declared twice")
        if column in RESERVED:
            raise FeatureStoreError(f"{where}: column name {column!r} is reserved")
        seen.add(column.lower())
    types = tuple(entity_types.get(c, "VARCHAR") for c in view.entity)
    for column, dtype in zip(view.entity, types, strict=True):
        if dtype not in ENTITY_TYPES:
            raise FeatureStoreError(
                f"{where}: entity column {column!r} has type {dtype!r}, not in {ENTITY_TYPES}"
            )
    return ViewPlan(
        view=view,
        entity_types=types,
        fv=quote(f"fv_{name}"),
        online=quote(f"online_{name}"),
        feature_index={f: i for i, f in enumerate(view.feature_names)},
        dtypes={f.name: f.dtype for f in view.features},
    )


def conform_features(plan: ViewPlan, rows: pa.Table | pd.DataFrame, *, source: str) -> pa.Table:
    """Validate and cast a view's rows: entity columns, event time, every feature.

    Returns the rows in store column order (entities, event time, features) plus
    ``_pos`` (the row's position, which breaks ties within one write).

    Raises
    ------
    FeatureInputError
        A missing, extra, repeated or mistyped column (named with the view and
        feature), or nulls in a key or the event time.
    """
    table = as_table(rows, source=source)
    v = plan.view
    names = table.schema.names
    for name in names:
        if names.count(name) > 1:
            raise FeatureInputError(source, f"column {name!r}", "appears twice", "unique names")
    declared = plan.declared_columns()
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
        values = coerce(table.column(column), dtype, source=source, field=field)
        if values.null_count:
            raise FeatureInputError(
                source, field, f"{values.null_count} null(s)", "a key on every row"
            )
        columns.append(values)
    field = f"event time column {v.event_time!r}"
    if v.event_time not in names:
        raise FeatureInputError(source, field, "missing", "a TIMESTAMP column")
    times = coerce(table.column(v.event_time), "TIMESTAMP", source=source, field=field)
    if times.null_count:
        raise FeatureInputError(source, field, f"{times.null_count} null(s)", "a time on every row")
    columns.append(times)
    for feature in v.features:
        field = f"feature {v.name}:{feature.name}"
        if feature.name not in names:
            raise FeatureInputError(
                source, field, "missing (every feature is required)", f"a {feature.dtype} column"
            )
        columns.append(
            coerce(table.column(feature.name), feature.dtype, source=source, field=field)
        )
    columns.append(pa.chunked_array([np.arange(table.num_rows, dtype=np.int64)]))
    return pa.Table.from_arrays(columns, names=[*declared, "_pos"])


def parse_refs(features: Sequence[str], plans: Mapping[str, ViewPlan]) -> dict[str, list[str]]:
    """``"view:feature"`` references grouped by view (order kept, duplicates dropped).

    Raises
    ------
    FeatureInputError
        No reference, a malformed one, an unknown view or feature.
    """
    if isinstance(features, str):
        features = [features]
    groups: dict[str, list[str]] = {}
    if not features:
        raise FeatureInputError("features", "", "no features requested", "'view:feature', ...")
    for ref in features:
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise FeatureInputError(
                "features", repr(ref), "not of the form view:feature", "'view:feature'"
            )
        view, name = ref.split(":")
        plan = plans.get(view)
        if plan is None:
            raise FeatureInputError(
                "features",
                repr(ref),
                f"unknown view {view!r} (feature {name!r})",
                ", ".join(plans) or "no views",
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
