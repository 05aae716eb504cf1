"""The on-demand EC2 catalogue: what each instance type has and costs.

The catalogue is a CSV (``scenarios/data/spot/on_demand_prices.csv`` shape) with one
row per (instance type, region)::

    instance_type,region,vcpus,memory_gib,gpu,on_demand_usd_per_hour,operating_system,source

Only the rows of the scenario's region are kept. Every kept row is validated, and a
bad value is reported as a one-line :class:`~sim.errors.InputError` naming the file
and its line number. ``gpu``, ``operating_system`` and ``source`` are informational
and not interpreted. Prices are US dollars per hour, memory is GiB.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sim.csv_rows import csv_rows
from sim.errors import InputError

REQUIRED_COLUMNS: tuple[str, ...] = (
    "instance_type",
    "region",
    "vcpus",
    "memory_gib",
    "gpu",
    "on_demand_usd_per_hour",
    "operating_system",
    "source",
)


@dataclass(frozen=True, slots=True)
class InstanceType:
    """One EC2 instance type in one region.

    Attributes
    ----------
    name
        The API name, e.g. ``"c5a.2xlarge"``.
    vcpus
        Number of vCPUs (> 0).
    memory_gib
        Memory in GiB (>= 0).
    on_demand_usd_per_hour
        On-demand Linux price in USD/hour (> 0).
    """

    name: str
    vcpus: int
    memory_gib: float
    on_demand_usd_per_hour: float


class Catalogue(dict[str, InstanceType]):
    """A ``dict`` of instance types that also remembers its ``region`` (for messages)."""

    def __init__(self, region: str) -> None:
        super().__init__()
        self.region = region


def load_catalogue(path: Path, *, region: str) -> dict[str, InstanceType]:
    """Read the on-demand catalogue CSV and keep the rows of ``region``.

    Parameters
    ----------
    path
        The catalogue CSV.
    region
        The AWS region to keep, e.g. ``"us-east-1"``.

    Returns
    -------
    dict[str, InstanceType]
        Instance type name -> its vCPUs, memory (GiB) and on-demand price (USD/hour).
        (A :class:`Catalogue`, i.e. a ``dict`` with a ``region`` attribute.)

    Raises
    ------
    InputError
        The file is missing or unreadable, a column is missing, a kept row has a
        non-numeric or non-positive ``vcpus`` / ``on_demand_usd_per_hour``, a bad
        ``memory_gib``, a duplicate instance type, or the region has no rows.
    """
    path = Path(path)
    catalogue = Catalogue(region)
    regions: set[str] = set()
    for line, row in _read_rows(path):
        row_region = (row.get("region") or "").strip()
        regions.add(row_region)
        if row_region != region:
            continue
        item = _parse_row(path, line, row)
        if item.name in catalogue:
            raise InputError(
                path,
                f"line {line}",
                f"duplicate instance type {item.name!r} for {region}",
                allowed="one row per (instance_type, region)",
            )
        catalogue[item.name] = item
    if not catalogue:
        raise InputError(
            path,
            "region",
            f"no rows for region {region!r}",
            allowed=", ".join(sorted(r for r in regions if r)) or "a non-empty catalogue",
        )
    return catalogue


def lookup(
    catalogue: dict[str, InstanceType], instance_type: str, *, source: str, field: str
) -> InstanceType:
    """The catalogue entry of ``instance_type``, or a helpful :class:`InputError`.

    Parameters
    ----------
    catalogue
        As returned by :func:`load_catalogue`.
    instance_type
        The name to look up.
    source, field
        Where the name came from (file / flag, and field path), for the error.

    Raises
    ------
    InputError
        The type is unknown; ``allowed`` lists a few close names and the count.
    """
    item = catalogue.get(instance_type)
    if item is not None:
        return item
    region = _region_hint(catalogue)
    raise InputError(
        source,
        field,
        f"instance type {instance_type!r} is not in the on-demand catalogue for {region}",
        allowed=_close_names(instance_type, catalogue),
    )


# --------------------------------------------------------------------------- helpers


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, row)`` for each data row, after checking the header."""
    return csv_rows(path, REQUIRED_COLUMNS, what="catalogue")


def _parse_row(path: Path, line: int, row: dict[str, str]) -> InstanceType:
    """Validate one catalogue row into an :class:`InstanceType`."""
    name = (row.get("instance_type") or "").strip()
    if not name:
        raise InputError(path, f"line {line}", "empty instance_type", allowed="e.g. c5a.2xlarge")
    vcpus = _number(path, line, row, "vcpus", positive=True)
    if vcpus != int(vcpus):
        raise InputError(
            path,
            f"line {line}",
            f"vcpus {row['vcpus']!r} is not an integer",
            allowed="an integer > 0",
        )
    memory = _number(path, line, row, "memory_gib", positive=False)
    price = _number(path, line, row, "on_demand_usd_per_hour", positive=True)
    return InstanceType(
        name=name, vcpus=int(vcpus), memory_gib=memory, on_demand_usd_per_hour=price
    )


def _number(path: Path, line: int, row: dict[str, str], column: str, *, positive: bool) -> float:
    """Parse ``row[column]`` as a finite number (> 0 if ``positive``, else >= 0)."""
    text = (row.get(column) or "").strip()
    allowed = "a number > 0" if positive else "a number >= 0"
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            path, f"line {line}", f"{column} {text!r} is not a number", allowed=allowed
        ) from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise InputError(
            path, f"line {line}", f"{column} {text!r} is out of range", allowed=allowed
        )
    return value


def _close_names(name: str, catalogue: dict[str, InstanceType]) -> str:
    """A few catalogue names close to ``name``, plus how many types there are."""
    close = difflib.get_close_matches(name, list(catalogue), n=5, cutoff=0.5)
    if not close:
        family = name.split(".", 1)[0]
        close = sorted(n for n in catalogue if n.split(".", 1)[0] == family)[:5]
    text = ", ".join(close) if close else ", ".join(sorted(catalogue)[:5])
    return f"{text} ... ({len(catalogue)} types)"


def _region_hint(catalogue: dict[str, InstanceType]) -> str:
    """The catalogue's region if it is a :class:`Catalogue`, else ``"this region"``."""
    region = getattr(catalogue, "region", None)
    return region if isinstance(region, str) else "this region"
