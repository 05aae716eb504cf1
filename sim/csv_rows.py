"""Reading the rows of a user's CSV file, with errors that name the file and the line."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from sim.errors import InputError


def csv_rows(
    path: Path, required: Sequence[str], *, what: str, field: str = ""
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, row)`` of each data row after checking the header.

    Parameters
    ----------
    path
        The CSV file.
    required
        Columns the header must contain (others are allowed).
    what
        What the file is, for messages (``"catalogue"``).
    field
        The scenario field that named the file, for the not-found message.
    """
    if not path.is_file():
        raise InputError(path, field, f"{what} file not found", allowed="an existing CSV file")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(
                    path,
                    "line 1",
                    f"missing columns {missing} in header {header}",
                    allowed=", ".join(required),
                )
            for row in reader:
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, "", f"cannot read {what}: {exc}") from exc
