"""Errors raised by opsbench for bad user input and broken invariants.

Every error a user can cause derives from :class:`OpsbenchError`. :class:`InputError`
carries the file, the field path and what is allowed, so the CLI can print it as one
line (``file: field: problem (allowed: ...)``) and exit with code 2.
"""

from __future__ import annotations

from pathlib import Path


class OpsbenchError(Exception):
    """Base class of every error opsbench raises on purpose."""


class InputError(OpsbenchError):
    """A file or argument the user gave us is malformed.

    Parameters
    ----------
    source
        The file (or ``"--flag"`` / ``"scenario id"``) the bad input came from.
    field
        The field path inside it, e.g. ``cluster.pools[0].min_nodes`` or ``line 12``.
    problem
        What is wrong, including the bad value.
    allowed
        What would be accepted, e.g. ``"an integer >= 0"``.
    """

    def __init__(self, source: str | Path, field: str, problem: str, allowed: str = "") -> None:
        self.source = str(source)
        self.field = field
        self.problem = problem
        self.allowed = allowed
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The error as a single line: ``source: field: problem (allowed: ...)``."""
        parts = [self.source]
        if self.field:
            parts.append(self.field)
        text = ": ".join(parts) + ": " + self.problem
        if self.allowed:
            text += f" (allowed: {self.allowed})"
        return " ".join(text.split())
