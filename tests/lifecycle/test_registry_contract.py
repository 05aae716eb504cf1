"""The registry contract, run over every backend in ``BACKENDS`` (conftest): written against
the ModelRegistry protocol alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from agents.lifecycle.registry import (
    CHAMPION,
    ModelCard,
    ModelRef,
    ModelRegistry,
    ModelVersion,
    folder_digest,
)
from sim.errors import InputError

NAME = "scaling-default"


class Backend(Protocol):
    """What the ``backend`` fixture gives (tests/lifecycle/conftest.py)."""

    registry: ModelRegistry
    tamper: Callable[[ModelVersion], None]


def make_artefact(root: Path, label: str, *, weights: bytes = b"\x00\x01\xff") -> Path:
    """A small artefact folder: JSON metadata, binary weights, a nested file."""
    folder = root / f"artefact-{label}"
    (folder / "nested").mkdir(parents=True)
    (folder / "meta.json").write_text(f'{{"label": "{label}"}}', encoding="utf-8")
    (folder / "weights.bin").write_bytes(weights)
    (folder / "nested" / "notes.txt").write_text(f"ünïcode {label}\n", encoding="utf-8")
    return folder


def card_for(folder: Path, **fields: object) -> ModelCard:
    base: dict[str, object] = {"agent": "scaling", "artefact_sha256": folder_digest(folder)}
    return ModelCard.model_validate({**base, **fields})


def register(registry: ModelRegistry, root: Path, label: str, **fields: object) -> int:
    folder = make_artefact(root, label)
    return registry.register(NAME, folder, card_for(folder, **fields)).version


def one_line(exc: pytest.ExceptionInfo[InputError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.strip(), text
    return text


def test_versions_are_numbered_from_one_oldest_first(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    assert [register(registry, tmp_path, "a"), register(registry, tmp_path, "b")] == [1, 2]
    assert [v.version for v in registry.versions(NAME)] == [1, 2]
    assert [v.ref for v in registry.versions()] == [f"{NAME}/1", f"{NAME}/2"]
    assert registry.resolve(ModelRef.parse(f"{NAME}/2")).version == 2


def test_the_card_round_trips_equal(registry: ModelRegistry, tmp_path: Path) -> None:
    folder = make_artefact(tmp_path, "card")
    card = card_for(
        folder,
        description="predictive scaling — gbm quantile, trained on “default”",
        scenario="default",
        trace=None,
        data_start="2024-01-01T00:00:00Z",
        data_end="2024-01-08T00:00:00Z",
        feature_store=".opsbench/features.duckdb@ledger:" + "ab" * 32,
        seed=1234,
        params={
            "model": "gbm-quantile",
            "quantile": 0.9,
            "lags": [1, 2, 24],
            "nested": {"a": None},
        },
        metrics={"mae": 0.1 + 0.2, "coverage": 0.8999999999999999, "n": 3.0},
        libraries={"scikit-learn": "1.5.2", "numpy": "2.1.0"},
        parent=None,
    )
    version = registry.register(NAME, folder, card)
    assert version.card == card
    assert registry.resolve(ModelRef(NAME, None, version.version)).card == card
    assert registry.versions(NAME)[0].card == card


def test_set_alias_and_resolve_by_alias(registry: ModelRegistry, tmp_path: Path) -> None:
    register(registry, tmp_path, "a")
    register(registry, tmp_path, "b")
    registry.set_alias(NAME, "challenger", 2)
    registry.set_alias(NAME, CHAMPION, 1)
    assert registry.resolve(ModelRef.parse(f"{NAME}@challenger")).version == 2
    assert registry.resolve(ModelRef.parse(NAME)).version == 1
    registry.set_alias(NAME, "challenger", 1)
    assert registry.resolve(ModelRef.parse(f"{NAME}@challenger")).version == 1
    assert set(registry.resolve(ModelRef(NAME, None, 1)).aliases) == {CHAMPION, "challenger"}
    assert registry.resolve(ModelRef(NAME, None, 2)).aliases == ()


def test_remove_alias_withdraws_a_challenger_and_leaves_the_champion(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    register(registry, tmp_path, "a")
    register(registry, tmp_path, "b")
    registry.promote(NAME, 1)
    registry.set_alias(NAME, "challenger", 2)
    registry.remove_alias(NAME, "challenger")
    registry.remove_alias(NAME, "challenger")  # not set: nothing happens
    assert registry.resolve(ModelRef(NAME, None, 2)).aliases == ()
    assert registry.resolve(ModelRef.parse(NAME)).version == 1
    with pytest.raises(InputError):
        registry.resolve(ModelRef.parse(f"{NAME}@challenger"))
    with pytest.raises(ValueError):
        registry.remove_alias(NAME, CHAMPION)


def test_promote_then_rollback_restores_the_champion(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    register(registry, tmp_path, "a")
    register(registry, tmp_path, "b")
    first = registry.promote(NAME, 1)
    assert first.version == 1
    promoted = registry.promote(NAME, 2)
    assert promoted.version == 2 and CHAMPION in promoted.aliases
    assert promoted.card.artefact_sha256 != first.card.artefact_sha256
    assert registry.resolve(ModelRef.parse(NAME)).version == 2
    restored = registry.rollback(NAME)
    assert restored.version == 1 and CHAMPION in restored.aliases
    assert restored.card == first.card  # exactly the previous champion: card and digest
    fetched = registry.fetch(restored, tmp_path / "restored")
    assert folder_digest(fetched) == first.card.artefact_sha256
    assert registry.resolve(ModelRef.parse(NAME)).version == 1
    with pytest.raises(InputError) as exc:
        registry.rollback(NAME)
    assert NAME in one_line(exc)


def test_rollback_with_nothing_to_roll_back(registry: ModelRegistry, tmp_path: Path) -> None:
    register(registry, tmp_path, "a")
    with pytest.raises(InputError):
        registry.rollback(NAME)
    registry.promote(NAME, 1)
    with pytest.raises(InputError) as exc:
        registry.rollback(NAME)
    assert NAME in one_line(exc)
    assert registry.resolve(ModelRef.parse(NAME)).version == 1


def test_fetch_returns_the_identical_folder(registry: ModelRegistry, tmp_path: Path) -> None:
    folder = make_artefact(tmp_path, "fetch", weights=bytes(range(256)) * 64)
    version = registry.register(NAME, folder, card_for(folder))
    fetched = registry.fetch(
        registry.resolve(ModelRef(NAME, None, version.version)), tmp_path / "out"
    )
    assert folder_digest(fetched) == folder_digest(folder) == version.card.artefact_sha256
    assert sorted(p.relative_to(fetched) for p in fetched.rglob("*")) == sorted(
        p.relative_to(folder) for p in folder.rglob("*")
    )
    assert (fetched / "weights.bin").read_bytes() == (folder / "weights.bin").read_bytes()


def test_a_tampered_artefact_is_refused_and_nothing_is_returned(
    backend: Backend, tmp_path: Path
) -> None:
    registry = backend.registry
    register(registry, tmp_path, "a")
    version = registry.resolve(ModelRef(NAME, None, 1))
    backend.tamper(version)
    into = tmp_path / "fetched" / "model"
    with pytest.raises(InputError) as exc:
        registry.fetch(version, into)
    assert "digest" in one_line(exc) or "artefact" in one_line(exc)
    assert not into.exists() or not any(into.iterdir())
    leftovers = list(into.parent.iterdir()) if into.parent.exists() else []
    assert leftovers == [] or leftovers == [into]


def test_unknown_references_are_one_line_input_errors(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    register(registry, tmp_path, "a")
    for ref, needle in (
        ("no-such-model", "no-such-model"),
        (f"{NAME}@nobody", "nobody"),
        (f"{NAME}/7", "7"),
        (NAME, CHAMPION),  # no champion yet
    ):
        with pytest.raises(InputError) as exc:
            registry.resolve(ModelRef.parse(ref))
        assert needle in one_line(exc), ref
    with pytest.raises(InputError):
        registry.set_alias(NAME, "challenger", 9)
    with pytest.raises(InputError):
        registry.promote(NAME, 9)
    with pytest.raises(InputError):
        registry.promote("no-such-model", 1)


def test_a_card_that_does_not_match_its_folder_is_refused(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    folder = make_artefact(tmp_path, "a")
    card = card_for(folder)
    (folder / "weights.bin").write_bytes(b"changed after the card was written")
    with pytest.raises(InputError) as exc:
        registry.register(NAME, folder, card)
    assert "artefact_sha256" in one_line(exc)
    with pytest.raises(InputError):
        registry.resolve(ModelRef(NAME, None, 1))
