"""The security analyser's rollout through the registry (promotion, rollback), the
session-level shadow rule, and ``retrain: false`` (monitor only), driven directly with
small fitted analysers on a local registry."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from agents.lifecycle.audit_loop import ManagedAuditWatcher, _Shadow
from agents.lifecycle.local import MlflowRegistry
from agents.lifecycle.registry import (
    CHALLENGER,
    ModelVersion,
    champion_of,
    fetch_and_load,
    folder_digest,
)
from agents.security.analyser import SecurityAnalyser
from agents.security.artefact import load_folder, save_folder
from bench import registered_models as rm
from bench.security_data import TrainingSpec, simulate_accounts
from bench.security_replay import SecurityRegistrar, _sigma
from sim.lifecycle_events import LifecycleLog
from sim.lifecycle_security import SecurityLifecycle

STREAM_SPEC = TrainingSpec(seed=5, accounts=1, days=0.5, campaigns_per_account=3)
"""The audit records a watcher is fed (another seed than the analysers' training)."""
THREAT_SPEC = TrainingSpec(seed=11, accounts=1, days=0.25, campaigns_per_account=4)
NAME = "security-test"


@pytest.fixture(scope="module")
def other_analyser(small_params: dict[str, Any]) -> SecurityAnalyser:
    """A second small analyser (other data, other seed): a challenger's artefact."""
    records, labels = simulate_accounts(THREAT_SPEC)
    with threadpool_limits(1):
        return SecurityAnalyser(**{**small_params, "random_state": 1}).fit(
            records, [lab.label for lab in labels]
        )


@pytest.fixture(scope="module")
def stream() -> tuple[datetime, list[dict[str, Any]]]:
    records, _ = simulate_accounts(STREAM_SPEC)
    first = datetime.strptime(str(records[0]["eventTime"]), "%Y-%m-%dT%H:%M:%SZ")
    return first.replace(hour=0, minute=0, second=0), records


@pytest.fixture(scope="module")
def threats() -> tuple[list[Mapping[str, Any]], list[str]]:
    records, labels = simulate_accounts(THREAT_SPEC)
    return records, [lab.label for lab in labels]


def _shipped(registry: MlflowRegistry, model: SecurityAnalyser) -> ModelVersion:
    with tempfile.TemporaryDirectory() as scratch:
        folder = save_folder(model, Path(scratch) / "model", record={"what": "test"})
        card = {"agent": "security", "description": "the replay's starting analyser"}
        return rm.register(registry, "security-shipped", folder, card, promote=True)


def _champion(registry: MlflowRegistry) -> tuple[int, str, str]:
    """The champion of :data:`NAME`: version, card digest, digest of the fetched artefact."""
    version = champion_of(registry, NAME)
    assert version is not None
    with tempfile.TemporaryDirectory() as scratch:
        fetched = registry.fetch(version, Path(scratch))
        return version.version, version.card.artefact_sha256, folder_digest(fetched)


def _registrar(
    tmp_path: Path, analyser: SecurityAnalyser
) -> tuple[MlflowRegistry, SecurityRegistrar, ModelVersion]:
    registry = MlflowRegistry(tmp_path / "registry")
    registrar = SecurityRegistrar(registry, NAME)
    return registry, registrar, registrar.baseline(_shipped(registry, analyser))


def _register(registrar: SecurityRegistrar, model: SecurityAnalyser, parent: str) -> str:
    ref, _ = registrar.register(
        model, parent=parent, trigger="test", data_start="1995-07-17T00:00:00",
        data_end="1995-07-18T00:00:00", metrics={"quarantine_session_recall": 1.0},
    )  # fmt: skip
    return ref


def test_a_rollback_keeps_exactly_the_previous_champion(
    tmp_path: Path, small_analyser: SecurityAnalyser, other_analyser: SecurityAnalyser
) -> None:
    registry, registrar, baseline = _registrar(tmp_path, small_analyser)
    before = _champion(registry)
    assert before[1] == before[2] == baseline.card.artefact_sha256
    ref = _register(registrar, other_analyser, baseline.ref)
    assert CHALLENGER in registry.versions(NAME)[-1].aliases
    registrar.roll_back(ref)
    assert _champion(registry) == before
    assert all(CHALLENGER not in v.aliases for v in registry.versions(NAME))
    loaded = fetch_and_load(registry, champion_of(registry, NAME), load_folder)  # type: ignore[arg-type]
    assert loaded.threshold_ == small_analyser.threshold_


def test_a_promoted_challenger_becomes_the_champion(
    tmp_path: Path, small_analyser: SecurityAnalyser, other_analyser: SecurityAnalyser
) -> None:
    registry, registrar, baseline = _registrar(tmp_path, small_analyser)
    ref, sha = registrar.register(
        other_analyser, parent=baseline.ref, trigger="test", data_start="a", data_end="b",
        metrics={},
    )  # fmt: skip
    registrar.promote(ref)
    version, card_sha, fetched_sha = _champion(registry)
    assert f"{NAME}/{version}" == ref
    assert card_sha == fetched_sha == sha != baseline.card.artefact_sha256
    assert champion_of(registry, NAME).card.parent == baseline.ref  # type: ignore[union-attr]
    assert all(CHALLENGER not in v.aliases for v in registry.versions(NAME))
    # the next replay starts from the shipped analyser again: its version is the champion
    assert registrar.baseline(registry.versions("security-shipped")[-1]).version == 1
    assert _champion(registry)[1] == baseline.card.artefact_sha256


def _watcher(
    registry: MlflowRegistry,
    registrar: SecurityRegistrar,
    baseline: ModelVersion,
    champion: SecurityAnalyser,
    start: datetime,
    threats: tuple[Sequence[Mapping[str, Any]], Sequence[str]],
    **settings: Any,
) -> ManagedAuditWatcher:
    log = LifecycleLog()
    log.bind(lambda event, reason: None, lambda: 0.0)
    return ManagedAuditWatcher(
        champion,
        champion_ref=baseline.ref,
        champion_sha256=baseline.card.artefact_sha256,
        settings=SecurityLifecycle(**settings),
        start=start,
        threats=threats,
        sigma=_sigma(),
        registrar=registrar,
        log=log,
        model_name=NAME,
    )


def _decide(
    watcher: ManagedAuditWatcher, model: SecurityAnalyser, ref: str, sha: str,
    *, rules: dict[tuple[str, str], set[str]], alerted: set[tuple[str, str]],
    noise: tuple[int, int] = (12, 3),
) -> None:  # fmt: skip
    """A shadow of ``model`` in which the champion alerted on the sessions of ``rules``
    with those Sigma rules fired (5 alerts each) plus ``noise[0]`` alerts elsewhere, and
    the challenger on the sessions ``alerted`` (5 each) plus ``noise[1]`` elsewhere;
    decided after its ``shadow_h``."""
    watcher.reference_per_h = 10.0
    shadow = _Shadow(ref, sha, model, model.stream(), "test", 0.0)
    elsewhere = ("192.0.2.1", "benign")
    shadow.champion_alerts = {**{k: 5 for k in rules}, elsewhere: noise[0]}
    shadow.challenger_alerts = {**{k: 5 for k in alerted}, elsewhere: noise[1]}
    shadow.sigma_rules, shadow.challenger_sessions = rules, set(alerted)
    watcher.shadow = shadow
    watcher._decide(3600.0)


ATTACKER = ("203.0.113.9", "python-requests/2.28")
DEVELOPER = ("198.51.100.4", "aws-cli/2.13")
TWO_RULES = {"aws_enum_buckets.yml", "aws_cloudtrail_disable_logging.yml"}
ONE_RULE = {"aws_sts_getcalleridentity_trufflehog.yml"}


@pytest.mark.parametrize(
    ("rules", "alerted", "noise", "promoted"),
    [
        ({ATTACKER: TWO_RULES, DEVELOPER: TWO_RULES}, {ATTACKER, DEVELOPER}, (12, 3), True),
        ({ATTACKER: TWO_RULES, DEVELOPER: TWO_RULES}, {ATTACKER}, (12, 3), False),
        ({ATTACKER: TWO_RULES, DEVELOPER: TWO_RULES}, set(), (12, 3), False),
        # one rule fired is a single odd call, not an incident: it need not be kept...
        ({ATTACKER: TWO_RULES, DEVELOPER: ONE_RULE}, {ATTACKER}, (12, 3), True),
        # ...and its alerts are noise: keeping them counts against the challenger
        ({ATTACKER: TWO_RULES, DEVELOPER: ONE_RULE}, {ATTACKER, DEVELOPER}, (0, 0), False),
        # alerts on an incident are not noise: many of them do not block a promotion
        ({ATTACKER: TWO_RULES}, {ATTACKER}, (80, 40), False),  # noise over 3 x 10 per h
        ({ATTACKER: TWO_RULES}, {ATTACKER}, (12, 12), False),  # not less noisy
    ],
)
def test_the_loop_promotes_through_the_registry_only_without_a_missed_incident(
    tmp_path: Path,
    small_analyser: SecurityAnalyser,
    other_analyser: SecurityAnalyser,
    stream: tuple[datetime, list[dict[str, Any]]],
    threats: tuple[list[Mapping[str, Any]], list[str]],
    rules: dict[tuple[str, str], set[str]],
    alerted: set[tuple[str, str]],
    noise: tuple[int, int],
    promoted: bool,
) -> None:
    registry, registrar, baseline = _registrar(tmp_path, small_analyser)
    watcher = _watcher(registry, registrar, baseline, small_analyser, stream[0], threats)
    before = _champion(registry)
    ref, sha = registrar.register(
        other_analyser, parent=baseline.ref, trigger="test", data_start="a", data_end="b",
        metrics={},
    )  # fmt: skip
    _decide(watcher, other_analyser, ref, sha, rules=rules, alerted=alerted, noise=noise)
    assert (watcher.promotions, watcher.rollbacks) == ((1, 0) if promoted else (0, 1))
    if promoted:
        assert watcher.champion is other_analyser and watcher.champion_ref == ref
        assert _champion(registry)[1:] == (sha, sha)
    else:
        assert watcher.champion is small_analyser and watcher.champion_ref == baseline.ref
        assert _champion(registry) == before
    assert all(CHALLENGER not in v.aliases for v in registry.versions(NAME))


def _feed(watcher: ManagedAuditWatcher, records: Sequence[dict[str, Any]]) -> None:
    """The records minute by minute, as the replay hands them over."""
    for _, minute in groupby(records, key=lambda r: str(r["eventTime"])[:16]):
        watcher.observe(list(minute))


@pytest.mark.parametrize("retrain", [False, True])
def test_monitor_only_books_detections_and_never_retrains(
    tmp_path: Path,
    small_analyser: SecurityAnalyser,
    stream: tuple[datetime, list[dict[str, Any]]],
    threats: tuple[list[Mapping[str, Any]], list[str]],
    retrain: bool,
) -> None:
    registry, registrar, baseline = _registrar(tmp_path, small_analyser)
    start, records = stream
    watcher = _watcher(
        registry, registrar, baseline, small_analyser, start, threats, retrain=retrain,
        reference_h=1.0, min_reference_per_h=0.05, alert_window_h=1.0, alert_rate_factor=2.0,
        cooldown_h=1.0, shadow_h=1.0,
    )  # fmt: skip
    with threadpool_limits(1):
        _feed(watcher, records)
    report = watcher.report()
    assert report["drift_detections"]
    kinds = {entry.kind for entry in watcher.log.of(NAME)}
    assert "drift" in kinds
    if retrain:
        assert report["retrains"]
    else:
        assert report["retrains"] == [] and report["rollouts"] == []
        assert "retrain" not in kinds
        assert [v.version for v in registry.versions(NAME)] == [baseline.version]
