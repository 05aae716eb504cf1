"""Plugging the shipped security analyser into a replay (the closed loop of issue 7).

``sim`` defines the seam (:class:`sim.audit.watch.AuditWatcher`); ``agents`` implements
it (:class:`agents.security.watch.AnalyserAuditWatcher`); this module picks the model: the
shipped one from :mod:`bench.security_model` (trained from simulated accounts at first
use, then read from its cache).
"""

from __future__ import annotations

from collections.abc import Callable

from sim.audit.watch import AuditWatcher
from sim.world import World


def audit_watcher_for(
    world: World, *, progress: Callable[[str], None] | None = None
) -> AuditWatcher | None:
    """The watcher for ``world``'s audit events: None without an ``audit:`` section or
    with ``audit.watch: false``; otherwise the shipped analyser."""
    if world.audit is None or not world.audit.config.watch:
        return None
    from agents.security.watch import AnalyserAuditWatcher
    from bench.security_model import load_or_train

    return AnalyserAuditWatcher(load_or_train(progress=progress or _to_stderr))


def audit_model_key(world: World) -> str | None:
    """The identity of the model :func:`audit_watcher_for` gives ``world`` (its cache key:
    training spec, parameters, the code that trains it, library versions), or None."""
    if world.audit is None or not world.audit.config.watch:
        return None
    from bench.security_model import SHIPPED_PARAMS, SHIPPED_SPEC, cache_key

    return cache_key(SHIPPED_SPEC, SHIPPED_PARAMS, False)


def _to_stderr(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[dim]{message}[/dim]")
