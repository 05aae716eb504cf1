"""The Stratus Red Team technique catalogue: each technique's tactics and CloudTrail calls.

``attack_techniques.csv`` lists one technique per row (``stratus_id, name, tactics, ...,
cloudtrail_events``); :func:`load_techniques` reads it into :class:`Technique` objects,
the building blocks of the generator's attack campaigns (:mod:`sim.audit.generator`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError

_CALL = re.compile(r"([a-z0-9-]+):([A-Za-z0-9]+)(\*?)")


@dataclass(frozen=True, slots=True)
class Technique:
    """One Stratus Red Team technique: its id, tactics and CloudTrail calls."""

    stratus_id: str
    name: str
    tactics: tuple[str, ...]
    calls: tuple[tuple[str, str], ...]  # (service, eventName)


def load_techniques(path: Path) -> dict[str, Technique]:
    """Read ``attack_techniques.csv`` (columns ``stratus_id, name, tactics, ...,
    cloudtrail_events``) into techniques keyed by Stratus id (``aws.`` prefix kept)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, "", f"cannot read: {exc.strerror or exc}", "a CSV file") from None
    rows = list(csv.DictReader(text.splitlines()))
    needed = {"stratus_id", "name", "tactics", "cloudtrail_events"}
    if not rows or not needed <= set(rows[0]):
        raise InputError(path, "header", "missing columns", ", ".join(sorted(needed)))
    out: dict[str, Technique] = {}
    for i, row in enumerate(rows, start=2):
        calls = tuple(
            (svc, name) for svc, name, star in _CALL.findall(row["cloudtrail_events"]) if not star
        )
        if not calls:
            raise InputError(path, f"line {i}", "no service:eventName in cloudtrail_events")
        out[row["stratus_id"]] = Technique(
            stratus_id=row["stratus_id"],
            name=row["name"],
            tactics=tuple(t.strip() for t in row["tactics"].split(";")),
            calls=calls,
        )
    return out
