"""The local model registry: MLflow's Model Registry on SQLite, artefacts on disk.

Layout (``root`` defaults to ``.opsbench/models``)::

    root/mlflow.db       MLflow's tracking + registry database (SQLite)
    root/mlartifacts/    run artefacts; every version's folder is ``<run>/artifacts/model``

``mlflow ui --backend-store-uri sqlite:///.opsbench/models/mlflow.db`` opens the same
store: each registered version is a run of experiment ``opsbench`` (its card's params,
metrics and library versions logged there) and a model version whose tags hold the card
(``opsbench.card``, the whole :class:`~agents.lifecycle.registry.ModelCard` as JSON, and
one readable tag per lineage field).

Aliases are MLflow's registered-model aliases. The champions a promotion replaced are kept,
newest last, in the registered model's tag ``opsbench.previous_champions`` (a JSON list of
versions): :meth:`MlflowRegistry.rollback` pops it.

MLflow is imported only when a registry is opened (about 1 s).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agents.lifecycle.registry import (
    CHAMPION,
    ModelCard,
    ModelRef,
    ModelVersion,
    check_name,
    folder_digest,
)
from sim.errors import InputError

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_ROOT = Path(".opsbench") / "models"
DATABASE = "mlflow.db"
ARTIFACTS = "mlartifacts"
EXPERIMENT = "opsbench"
ARTEFACT_PATH = "model"
CARD_TAG = "opsbench.card"
HISTORY_TAG = "opsbench.previous_champions"
_READABLE = ("agent", "scenario", "trace", "data_start", "data_end", "feature_store", "seed",
             "artefact_sha256", "parent")  # fmt: skip


def _quiet_mlflow() -> None:
    """MLflow and alembic log schema migrations at INFO on every new store: keep stderr for
    our own lines."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


class MlflowRegistry:
    """:class:`~agents.lifecycle.registry.ModelRegistry` on MLflow (SQLite + local files)."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        if root.exists() and not root.is_dir():
            allowed = "a registry folder (created if absent)"
            raise InputError(root, "", "is an existing file", allowed)
        self.root = root
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @property
    def uri(self) -> str:
        """The SQLite URI of the store (what ``mlflow ui --backend-store-uri`` takes)."""
        return f"sqlite:///{(self.root / DATABASE).resolve()}"

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            _quiet_mlflow()  # after the import: MLflow sets its logger's level when imported

            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(
                    self.root,
                    "",
                    f"cannot create the registry folder: {exc.strerror}",
                    "a folder path whose parents are folders",
                ) from None
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def _experiment(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(EXPERIMENT)
            if found is not None:
                self._experiment_id = found.experiment_id
            else:
                location = (self.root / ARTIFACTS).resolve().as_uri()
                self._experiment_id = self.client.create_experiment(
                    EXPERIMENT, artifact_location=location
                )
        return self._experiment_id

    # ------------------------------------------------------------------ reading

    def _registered(self, name: str) -> Any | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def _version(self, mv: Any, aliases: dict[str, int]) -> ModelVersion:
        raw = mv.tags.get(CARD_TAG)
        try:
            card = ModelCard.model_validate_json(raw or "")
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or CARD_TAG
            raise InputError(
                self.uri,
                f"{mv.name}/{mv.version}: {where}",
                err["msg"],
                "a version registered by opsbench",
            ) from None
        version = int(mv.version)
        return ModelVersion(
            name=mv.name,
            version=version,
            card=card,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
            location=mv.source,
            created=_iso_ms(mv.creation_timestamp),
            extra={"run_id": mv.run_id},
        )

    def _aliases(self, name: str) -> dict[str, int]:
        model = self._registered(name)
        return {} if model is None else {a: int(v) for a, v in model.aliases.items()}

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        if name is not None:
            check_name(name)
            if self._registered(name) is None:
                return []
        found = self.client.search_model_versions(
            f"name = '{name}'" if name is not None else "", max_results=10_000
        )
        aliases: dict[str, dict[str, int]] = {}
        out = []
        for mv in found:
            if mv.name not in aliases:
                aliases[mv.name] = self._aliases(mv.name)
            out.append(self._version(mv, aliases[mv.name]))
        return sorted(out, key=lambda v: (v.name, v.version))

    def resolve(self, ref: ModelRef) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        model = self._registered(ref.name)
        if model is None:
            known = sorted({v.name for v in self.versions()})
            raise InputError(
                str(self.root),
                "",
                f"no model named {ref.name!r}",
                f"one of {', '.join(known)}" if known else "a model registered by `opsbench train`",
            )
        aliases = {a: int(v) for a, v in model.aliases.items()}
        if ref.version is None:
            assert ref.alias is not None
            if ref.alias not in aliases:
                raise InputError(
                    str(self.root),
                    "",
                    f"model {ref.name!r} has no version with alias {ref.alias!r}",
                    f"an alias it has ({', '.join(sorted(aliases)) or 'none yet'}) or "
                    f"{ref.name}/VERSION",
                )
            number = aliases[ref.alias]
        else:
            number = ref.version
        try:
            mv = self.client.get_model_version(ref.name, str(number))
        except MlflowException:
            have = [str(v.version) for v in self.versions(ref.name)]
            raise InputError(
                str(self.root),
                "",
                f"model {ref.name!r} has no version {number}",
                f"one of {', '.join(have)}",
            ) from None
        return self._version(mv, aliases)

    # ------------------------------------------------------------------ writing

    def register(self, name: str, artefact_dir: Path, card: ModelCard) -> ModelVersion:
        check_name(name)
        digest = folder_digest(artefact_dir)
        if digest != card.artefact_sha256:
            raise InputError(
                artefact_dir,
                "artefact_sha256",
                f"the card records {card.artefact_sha256[:12]}, the folder is {digest[:12]} "
                "(changed after the card was written)",
                "a card made from the folder as it is (folder_digest)",
            )
        client = self.client
        run = client.create_run(
            self._experiment(), run_name=name, tags={"opsbench.agent": card.agent}
        )
        run_id = run.info.run_id
        try:
            for key, value in card.params.items():
                client.log_param(run_id, key, _short(value, 6000))
            for key, value in card.metrics.items():
                client.log_metric(run_id, key, float(value))
            for key, value in card.libraries.items():
                client.set_tag(run_id, f"library.{key}", value)
            client.log_artifacts(run_id, str(artefact_dir), artifact_path=ARTEFACT_PATH)
        finally:
            client.set_terminated(run_id)
        if self._registered(name) is None:
            client.create_registered_model(name, tags={"agent": card.agent})
        tags = {CARD_TAG: card.model_dump_json()}
        for key in _READABLE:
            value = getattr(card, key)
            if value is not None:
                tags[key] = str(value)
        mv = client.create_model_version(
            name,
            f"{run.info.artifact_uri}/{ARTEFACT_PATH}",
            run_id=run_id,
            tags=tags,
            description=card.description or None,
        )
        return self._version(mv, self._aliases(name))

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.resolve(ModelRef(name, None, version))  # an unknown version: InputError
        self.client.set_registered_model_alias(name, alias, str(version))

    def remove_alias(self, name: str, alias: str) -> None:
        if alias == CHAMPION:
            raise ValueError("the champion alias is moved by promote and rollback only")
        if alias in self._aliases(name):
            self.client.delete_registered_model_alias(name, alias)

    def _history(self, name: str) -> list[int]:
        model = self._registered(name)
        raw = None if model is None else model.tags.get(HISTORY_TAG)
        return [int(v) for v in json.loads(raw)] if raw else []

    def promote(self, name: str, version: int) -> ModelVersion:
        target = self.resolve(ModelRef(name, None, version))
        current = self._aliases(name).get(CHAMPION)
        if current == version:
            return target
        if current is not None:
            history = [*self._history(name), current]
            self.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        return self.resolve(ModelRef(name, None, version))

    def rollback(self, name: str) -> ModelVersion:
        check_name(name)
        history = self._history(name)
        if not history:
            raise InputError(
                "rollback",
                name,
                "no earlier champion to roll back to",
                "a model that has been promoted over an earlier champion",
            )
        previous = history.pop()
        self.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
        self.client.set_registered_model_alias(name, CHAMPION, str(previous))
        return self.resolve(ModelRef(name, None, previous))

    def fetch(self, version: ModelVersion, into: Path) -> Path:
        import mlflow.artifacts

        into.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=into))
        try:
            got = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=version.location, dst_path=str(scratch), tracking_uri=self.uri
                )
            )
        except Exception as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise InputError(
                version.location,
                "",
                f"cannot read the artefact of {version.ref}: {exc}",
                "a registry whose artefact files are intact",
            ) from None
        if folder_digest(got) != version.card.artefact_sha256:
            shutil.rmtree(scratch, ignore_errors=True)
            raise InputError(
                version.location,
                "artefact_sha256",
                f"the artefact of {version.ref} does not match the digest recorded at "
                "registration (changed or truncated since)",
                "an untouched artefact; retrain and register a new version",
            )
        return got


def _iso_ms(ms: int | None) -> str:
    from datetime import UTC, datetime

    return "" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _short(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["DEFAULT_ROOT", "MlflowRegistry"]
