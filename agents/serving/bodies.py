"""Request bodies to validated records, and every refusal as one line.

``application/json``
    One record (an object) or a non-empty list of records. ``NaN`` and ``Infinity`` are
    not JSON and are refused.
``text/csv`` (UTF-8)
    One record per row, cells in the predictor's ``csv_columns`` order; the first row
    may be a header (it is one when it equals ``csv_columns``, and is then skipped).
    A column ``parent.child`` fills field ``child`` of object ``parent``
    (``parent.0``, ``parent.1``, ...: the items of list ``parent``); an empty cell is an
    absent value (``null``). Blank lines are ignored. A CSV body is always answered
    with a list, one answer per row.

Every refusal is a :class:`BadRequest` whose message names the record (for lists and
CSV rows), the field and what is allowed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

JSON = "application/json"
CSV = "text/csv"
CONTENT_TYPES = (JSON, CSV)


class BadRequest(ValueError):
    """A body that cannot be answered (HTTP 400); the message is one line."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (finite numbers only)")


def json_records(body: bytes) -> tuple[list[Any], bool]:
    """The records of a JSON body and whether it held one record (not a list)."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise BadRequest("body: not UTF-8 text") from None
    except ValueError as exc:
        raise BadRequest(f"body: not valid JSON ({' '.join(str(exc).split())})") from None
    if isinstance(data, dict):
        return [data], True
    if isinstance(data, list) and data:
        return data, False
    raise BadRequest(
        f"body: a JSON {type(data).__name__ if data != [] else 'empty list'}; "
        "allowed: one record (an object) or a non-empty list of records"
    )


def _nest(columns: Sequence[str], cells: Sequence[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column, cell in zip(columns, cells, strict=True):
        parts = column.split(".")
        node = record
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = cell if cell != "" else None
    nested: dict[str, Any] = _lists(record)
    return nested


def _lists(node: Any) -> Any:
    """Objects whose keys are 0, 1, ... become lists."""
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[str(i)] for i in range(len(items))]
    return items


def csv_records(body: bytes, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The records of a CSV body (see the module)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("body: not UTF-8 text") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise BadRequest(f"body: not valid CSV ({exc})") from None
    if rows and [c.strip() for c in rows[0]] == list(columns):
        rows = rows[1:]
    if not rows:
        raise BadRequest(f"body: no CSV rows; allowed: rows of {len(columns)} cells")
    records = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise BadRequest(
                f"row {number}: {len(row)} cells; allowed: {len(columns)} cells in the "
                f"order {', '.join(columns)}"
            )
        records.append(_nest(columns, [c.strip() for c in row]))
    return records


def describe(exc: ValidationError, model: type[BaseModel]) -> str:
    """The first error of a validation as ``field: problem`` (unknown fields with the
    allowed ones)."""
    errors = exc.errors(include_url=False)
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    where = ".".join(str(p) for p in err["loc"]) or "record"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_at(model, err["loc"][:-1])
        return f"{where}: unknown field; allowed: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"{where}: required"
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {json.dumps(got)[:60]})"
    return f"{where}: {err['msg']}{shown}"


def _allowed_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    current: Any = model
    for part in loc:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ["(see the example request)"]
        current = annotation
    return list(current.model_fields)


def validate(
    records: Sequence[Any], model: type[BaseModel], *, single: bool, item: str = "record"
) -> list[Any]:
    """Each record validated against ``model`` (the first refusal raises BadRequest
    naming the ``item`` (``record`` N, CSV ``row`` N) unless the body held one, and the
    field)."""
    out = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            where = "body" if single else f"{item} {number}"
            raise BadRequest(f"{where}: a JSON {type(record).__name__}; allowed: an object")
        try:
            out.append(model.model_validate(record))
        except ValidationError as exc:
            prefix = "" if single else f"{item} {number}: "
            raise BadRequest(prefix + describe(exc, model)) from None
    return out
