"""The model registry seam: how a trained model is registered, found, promoted and loaded.

Every trained model reaches a decision through a :class:`ModelRegistry`: train → register
(a :class:`ModelCard`: lineage, data range, metrics, digest) → alias (``champion``,
``challenger``) → resolve a :class:`ModelRef` → fetch the artefact folder, its digest
checked against the one recorded at registration before anything reads it.

Two backends implement the protocol (one contract test runs over both): the local MLflow
Model Registry on SQLite under ``.opsbench/`` (default; ``mlflow ui`` opens the same store)
and SageMaker Model Package Groups with artefacts in S3.

References (what ``--model`` and ``opsbench models`` take)::

    scaling-default              # the champion of model "scaling-default"
    scaling-default@challenger   # an alias
    scaling-default/3            # version 3

Model names are ``<agent>-<scenario>`` by convention (``scaling-default``,
``cost-rl-default``, ``anomaly-novelty-ensemble``, ``security-shipped``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sim.errors import InputError

T = TypeVar("T")

Agent = Literal["scaling", "cost-rl", "anomaly", "security"]
"""The kinds of model the registry holds (each has its own artefact format and loader)."""

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)

_NAME = r"[a-z0-9][a-z0-9-]{0,62}"
_REF = re.compile(
    rf"^(?P<name>{_NAME})(?:@(?P<alias>[a-z][a-z0-9-]{{0,31}})|/(?P<version>[1-9][0-9]{{0,8}}))?$"
)
REF_ALLOWED = (
    "NAME, NAME@ALIAS (e.g. scaling-default@champion) or NAME/VERSION (e.g. scaling-default/3)"
)


NAME_ALLOWED = "lower-case letters, digits and '-', starting with a letter or digit, at most 63"


def check_name(name: str, *, source: str = "model name") -> str:
    """``name`` if it is a valid model name; InputError otherwise."""
    if re.fullmatch(_NAME, name) is None:
        raise InputError(source, "", f"{name!r} is not a model name", NAME_ALLOWED)
    return name


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A reference to one model version: by alias (default ``champion``) or by number."""

    name: str
    alias: str | None = CHAMPION
    version: int | None = None

    @classmethod
    def parse(cls, text: str, *, source: str = "--model") -> ModelRef:
        """``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION``; anything else is an InputError."""
        match = _REF.match(text)
        if match is None:
            raise InputError(source, "", f"{text!r} is not a model reference", REF_ALLOWED)
        if match["version"] is not None:
            return cls(match["name"], None, int(match["version"]))
        return cls(match["name"], match["alias"] or CHAMPION, None)

    def __str__(self) -> str:
        return (
            f"{self.name}/{self.version}"
            if self.version is not None
            else f"{self.name}@{self.alias}"
        )


class ModelCard(BaseModel):
    """What a registered version records about itself (kept as tags / metadata by every
    backend, returned whole by :meth:`ModelRegistry.resolve`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: Agent
    description: str = Field(default="", max_length=2000)
    scenario: str | None = Field(default=None, description="scenario id trained on, if any")
    trace: str | None = Field(default=None, description="trace file trained on, if any")
    data_start: str | None = Field(default=None, description="first training time (ISO 8601)")
    data_end: str | None = Field(default=None, description="end of training data (ISO 8601)")
    feature_store: str | None = Field(
        default=None,
        description="the feature-store snapshot read: store path and its run/batch ledger digest",
    )
    seed: int | None = None
    params: Mapping[str, Any] = Field(default_factory=dict, description="hyper-parameters")
    metrics: Mapping[str, float] = Field(default_factory=dict, description="validation metrics")
    libraries: Mapping[str, str] = Field(default_factory=dict, description="library versions")
    artefact_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="digest of the artefact folder"
    )
    parent: str | None = Field(
        default=None, description="the version it was derived from (NAME/VERSION)"
    )


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version, as a backend reports it."""

    name: str
    version: int
    card: ModelCard
    aliases: tuple[str, ...] = ()
    location: str = ""  # where the backend keeps the artefact (a URI)
    created: str = ""  # ISO 8601
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


class ModelRegistry(Protocol):
    """Where trained models live. Implementations: the local MLflow registry and SageMaker
    model package groups (:mod:`agents.lifecycle`)."""

    def register(self, name: str, artefact_dir: Path, card: ModelCard) -> ModelVersion:
        """Store the artefact folder as the next version of ``name`` (creating the model if
        new); the card's ``artefact_sha256`` must be :func:`folder_digest` of the folder."""

    def resolve(self, ref: ModelRef) -> ModelVersion:
        """The version ``ref`` names; an unknown name, alias or version is an InputError."""

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Every version of ``name`` (of every model if None), oldest first."""

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of ``name`` at ``version``."""

    def remove_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` of ``name`` (nothing if it is not set); the champion alias is
        moved only by :meth:`promote` and :meth:`rollback`, never removed."""

    def promote(self, name: str, version: int) -> ModelVersion:
        """Make ``version`` the champion; the champion it replaces becomes the rollback
        target."""

    def rollback(self, name: str) -> ModelVersion:
        """Restore the champion before the last promotion; InputError if there is none."""

    def fetch(self, version: ModelVersion, into: Path) -> Path:
        """Copy the artefact folder into ``into`` and check its digest against the card's
        before returning it; a mismatch is an InputError (nothing in it is read)."""


def folder_digest(folder: Path) -> str:
    """SHA-256 (hex) over every regular file below ``folder``: its relative path and its
    bytes, in sorted order. Symlinks are refused (an artefact is plain files)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise InputError(path, "", "is a symlink inside a model artefact", "plain files")
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def fetch_and_load(registry: ModelRegistry, version: ModelVersion, load: Callable[[Path], T]) -> T:
    """Fetch ``version`` into a scratch folder (digest checked), ``load`` it, remove the
    copy. A loader's error names the version and the file in it, not the scratch copy."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="opsbench-model-") as scratch:
        folder = registry.fetch(version, Path(scratch))
        try:
            return load(folder)
        except InputError as exc:
            where = Path(exc.source)
            if not (where.is_absolute() and where.is_relative_to(folder)):
                raise
            inside = where.relative_to(folder).as_posix()
            shown = version.ref if inside == "." else f"{version.ref}: {inside}"
            raise InputError(shown, exc.field, exc.problem, exc.allowed) from None


def champion_of(registry: ModelRegistry, name: str) -> ModelVersion | None:
    """The champion of ``name``, or None (no version, or none promoted)."""
    return next((v for v in registry.versions(name) if CHAMPION in v.aliases), None)
