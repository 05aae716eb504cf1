"""Arrow columns in and out of the store: type checks, casts and pandas conversion.

Every value that enters the store (a telemetry batch, a view's feature rows, a label
frame's keys and times) is checked against the DuckDB type it is stored as, and every
value that leaves it becomes a pandas array of the type a feature's ``dtype`` promises
(float64 with NaN, nullable Int64 / Int32 / boolean, or object strings with None).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import FeatureInputError, FeatureStoreError

#: The Arrow type each DuckDB column type is held in.
ARROW_OF: dict[str, pa.DataType] = {
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
#: pandas dtypes for Arrow types whose default conversion would lose nulls.
PANDAS_OF: dict[pa.DataType, Any] = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def duck_type(arrow_type: pa.DataType) -> str:
    """The DuckDB column type of a telemetry column's Arrow type."""
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "VARCHAR"
    for duck, arrow in ARROW_OF.items():
        if arrow_type == arrow:
            return duck
    raise FeatureStoreError(f"no DuckDB type for Arrow type {arrow_type}")


def is_string(t: pa.DataType) -> bool:
    """Whether ``t`` is an Arrow string type (plain, large or view)."""
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def coerce(values: pa.ChunkedArray, dtype: str, *, source: str, field: str) -> pa.ChunkedArray:
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
    target = ARROW_OF[dtype]
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
        ok = is_string(t)
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


def as_table(rows: pa.Table | pa.RecordBatch | pd.DataFrame, *, source: str) -> pa.Table:
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


def typed_values(values: list[Any], dtype: str) -> Any:
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


def frame_column(frame: pd.DataFrame | pa.Table, name: str, *, source: str) -> pa.ChunkedArray:
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


def frame_columns(frame: pd.DataFrame | pa.Table) -> list[str]:
    """The column names of a DataFrame or Arrow table."""
    if isinstance(frame, pd.DataFrame):
        return [str(c) for c in frame.columns]
    return list(frame.schema.names)
