"""Where the lifecycle loops book what they do during a replay.

A loop (the scaling forecaster's, the security analyser's) books each drift detection,
retrain, rollout stage, promotion and rollback here. The replay binds the log to its
clock and its ``events`` telemetry (:meth:`LifecycleLog.bind`): every entry is written as
a ``lifecycle`` event at the simulated time it happens (``reason``: the entry as JSON
text) and kept for the summary's ``lifecycle`` block. Only deterministic facts go to
telemetry (simulated times, digests, statistics); wall times and registry version
numbers, which differ between identical runs, are kept beside it (``wall``), never in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

LIFECYCLE_EVENT = "lifecycle"
"""The ``event`` column of every lifecycle row in the ``events`` telemetry."""


@dataclass(frozen=True, slots=True)
class LifecycleEntry:
    """One thing a lifecycle loop did: ``kind`` (``drift``, ``retrain``, ``stage``,
    ``promotion``, ``rollback``, ...), for ``model``, at ``sim_time_s`` seconds into the
    replay; ``detail`` is what telemetry carries, ``wall`` what it must not (it varies
    between identical runs: wall times, registry version numbers)."""

    sim_time_s: float
    model: str
    kind: str
    detail: Mapping[str, Any]
    wall: Mapping[str, Any] = field(default_factory=dict)

    def reason(self) -> str:
        """The telemetry ``reason`` text: model, kind and detail as JSON."""
        return json.dumps({"model": self.model, "kind": self.kind, **self.detail}, sort_keys=True)


Writer = Callable[[str, str], None]
"""Writes one ``events`` row now: ``(event, reason)``."""


class LifecycleLog:
    """The entries of one replay, written to its telemetry as they are booked."""

    def __init__(self) -> None:
        self.entries: list[LifecycleEntry] = []
        self._write: Writer | None = None
        self._clock: Callable[[], float] | None = None

    def bind(self, write: Writer, clock: Callable[[], float]) -> None:
        """Attach the replay's events writer and simulated clock (seconds)."""
        self._write, self._clock = write, clock

    def book(
        self,
        model: str,
        kind: str,
        detail: Mapping[str, Any],
        *,
        wall: Mapping[str, Any] | None = None,
    ) -> LifecycleEntry:
        """Record an entry at the current simulated time and write it to telemetry."""
        if self._clock is None or self._write is None:
            raise RuntimeError("the lifecycle log is not bound to a replay")
        entry = LifecycleEntry(self._clock(), model, kind, dict(detail), dict(wall or {}))
        self.entries.append(entry)
        self._write(LIFECYCLE_EVENT, entry.reason())
        return entry

    def of(self, model: str) -> list[LifecycleEntry]:
        """The entries of ``model``, in the order they were booked."""
        return [e for e in self.entries if e.model == model]
