"""Plugging the security analyser into a replay (the closed loop of issue 7, the lifecycle
loop of issue 14).

``sim`` defines the seam (:class:`sim.audit.watch.AuditWatcher`); ``agents`` implements
it (:class:`agents.security.watch.AnalyserAuditWatcher`, and
:class:`agents.lifecycle.audit_loop.ManagedAuditWatcher` under a scenario's
``lifecycle.security``); this module picks the model through the registry: the version of
``security-shipped`` this code trains (:func:`bench.security_model.shipped_version`:
registered at first use from the shipped training, as ``opsbench train security`` does),
loaded by :func:`~agents.lifecycle.registry.fetch_and_load` (digest checked). Under the
lifecycle loop, challengers are registered as ``security-<scenario>``
(:class:`SecurityRegistrar`), whose champion is first set to the replay's starting
analyser, so a replay never changes the analyser the next one starts with.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from agents.lifecycle.registry import (
    CHALLENGER,
    ModelRef,
    ModelRegistry,
    ModelVersion,
    champion_of,
    fetch_and_load,
    folder_digest,
)
from agents.security.analyser import SecurityAnalyser
from bench import registered_models as rm
from sim.audit.watch import AuditWatcher
from sim.lifecycle_events import LifecycleLog
from sim.world import World

THREAT_SEED = 11
"""Seed of the simulated accounts that give a retrain its labelled attack examples."""


def audit_watcher_for(
    world: World,
    *,
    registry: ModelRegistry | None = None,
    log: LifecycleLog | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditWatcher | None:
    """The watcher for ``world``'s audit events: None without an ``audit:`` section or
    with ``audit.watch: false``; otherwise the shipped analyser from ``registry`` (default:
    the one in :func:`bench.security_model.default_model_dir`), under the lifecycle loop
    when the scenario has ``lifecycle.security`` (booking into ``log``, required then)."""
    if world.audit is None or not world.audit.config.watch:
        return None
    from agents.security.artefact import load_folder
    from agents.security.watch import AnalyserAuditWatcher
    from bench.security_model import default_model_dir, shipped_version

    if registry is None:
        from agents.lifecycle.open import open_registry

        registry = open_registry(default_model_dir())
    version = shipped_version(registry, progress=progress or _to_stderr)
    model = fetch_and_load(registry, version, load_folder)
    lifecycle = world.scenario.lifecycle
    settings = lifecycle.security if lifecycle is not None else None
    if settings is None:
        return AnalyserAuditWatcher(model)
    if log is None:
        raise ValueError("a scenario with lifecycle.security needs a lifecycle log")
    from agents.lifecycle.audit_loop import ManagedAuditWatcher

    registrar = SecurityRegistrar(registry, rm.default_name("security", world.scenario.id))
    champion = registrar.baseline(version)
    return ManagedAuditWatcher(
        model,
        champion_ref=champion.ref,
        champion_sha256=champion.card.artefact_sha256,
        settings=settings,
        start=world.workload.start,
        threats=threat_examples(settings.threat_accounts),
        sigma=_sigma(),
        registrar=registrar,
        log=log,
        model_name=registrar.name,
    )


def audit_model_key(world: World) -> str | None:
    """The identity of the model :func:`audit_watcher_for` gives ``world`` (its cache key:
    training spec, parameters, the code that trains it, library versions), or None."""
    if world.audit is None or not world.audit.config.watch:
        return None
    from bench.security_model import SHIPPED_PARAMS, SHIPPED_SPEC, cache_key

    return cache_key(SHIPPED_SPEC, SHIPPED_PARAMS, False)


@lru_cache(maxsize=4)
def threat_examples(accounts: int) -> tuple[tuple[Mapping[str, Any], ...], tuple[str, ...]]:
    """Labelled records of ``accounts`` simulated accounts (one day each, six campaigns,
    seed :data:`THREAT_SEED`): the attack examples of a retrain."""
    from bench.security_data import TrainingSpec, simulate_accounts

    spec = TrainingSpec(seed=THREAT_SEED, accounts=accounts, days=1.0, campaigns_per_account=6)
    records, labels = simulate_accounts(spec)
    return tuple(records), tuple(lab.label for lab in labels)


@lru_cache(maxsize=1)
def _sigma() -> Any:
    from agents.security.sigma import SigmaBaseline, load_sigma_rules
    from bench.security_data import SECURITY_DATA

    return SigmaBaseline(load_sigma_rules(SECURITY_DATA / "sigma_aws_cloudtrail_eventnames.csv"))


@dataclasses.dataclass(slots=True)
class SecurityRegistrar:
    """Registers the loop's candidates as challengers of ``name`` in ``registry``."""

    registry: ModelRegistry
    name: str

    def baseline(self, shipped: ModelVersion) -> ModelVersion:
        """Make the replay's starting analyser (``shipped``) the champion of :attr:`name`:
        the version already holding its artefact if there is one, else a new version
        registered from it (parent ``shipped``)."""
        sha = shipped.card.artefact_sha256
        current = champion_of(self.registry, self.name)
        if current is not None and current.card.artefact_sha256 == sha:
            return current
        same = [v for v in self.registry.versions(self.name) if v.card.artefact_sha256 == sha]
        if same:
            return self.registry.promote(self.name, same[-1].version)
        with tempfile.TemporaryDirectory(prefix="opsbench-baseline-") as scratch:
            folder = self.registry.fetch(shipped, Path(scratch))
            card = shipped.card.model_dump(exclude={"artefact_sha256", "parent"})
            card["description"] = f"the analyser a replay of {self.name} starts with"
            card["parent"] = shipped.ref
            return rm.register(self.registry, self.name, folder, card, promote=True)

    def register(
        self, model: SecurityAnalyser, *, parent: str, trigger: str, data_start: str,
        data_end: str, metrics: Mapping[str, float],
    ) -> tuple[str, str]:  # fmt: skip
        import sklearn
        import skops

        from agents.security.artefact import save_folder

        with tempfile.TemporaryDirectory(prefix="opsbench-retrain-") as scratch:
            record = {"trigger": trigger, "data_start": data_start, "data_end": data_end}
            folder = save_folder(model, Path(scratch) / "model", record=record)
            version = rm.register(
                self.registry,
                self.name,
                folder,
                {
                    "agent": "security",
                    "description": f"security analyser retrained in a replay ({trigger})",
                    "data_start": data_start,
                    "data_end": data_end,
                    "parent": parent,
                    "params": {"trigger": trigger, "hyper_parameters": model.get_params()},
                    "metrics": {k: float(v) for k, v in metrics.items()},
                    "libraries": {"scikit-learn": sklearn.__version__, "skops": skops.__version__},
                },
                promote=False,
            )
            return version.ref, folder_digest(folder)

    def promote(self, ref: str) -> None:
        version = self.registry.resolve(ModelRef.parse(ref, source="lifecycle"))
        self.registry.promote(version.name, version.version)
        self.registry.remove_alias(version.name, CHALLENGER)

    def roll_back(self, ref: str) -> None:
        version = self.registry.resolve(ModelRef.parse(ref, source="lifecycle"))
        if CHALLENGER in version.aliases:
            self.registry.remove_alias(version.name, CHALLENGER)


def _to_stderr(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[dim]{message}[/dim]")
