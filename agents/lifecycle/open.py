"""Open a model registry from where the user points: a folder or a URI.

``--registry`` (alias ``--models``) takes:

- a folder (default ``.opsbench/models``): the local MLflow registry kept there
  (:mod:`agents.lifecycle.local`);
- ``sqlite:///PATH/mlflow.db``: the same, naming the database itself;
- ``sagemaker://BUCKET/PREFIX``: SageMaker model package groups, artefacts in S3
  (:mod:`agents.lifecycle.sagemaker`); ``endpoint_url`` points boto3 elsewhere (moto in tests).
"""

from __future__ import annotations

from pathlib import Path

from agents.lifecycle.registry import ModelRegistry
from sim.errors import InputError

REGISTRY_ALLOWED = "a folder, sqlite:///PATH/mlflow.db or sagemaker://BUCKET/PREFIX"


def open_registry(location: str | Path, *, endpoint_url: str | None = None) -> ModelRegistry:
    """The registry at ``location`` (see the module docstring)."""
    from agents.lifecycle.local import DATABASE, MlflowRegistry

    text = str(location)
    if "://" not in text:
        return MlflowRegistry(Path(text))
    scheme = text.split("://", 1)[0]
    if scheme == "sqlite":
        # SQLAlchemy's form: sqlite:///relative/mlflow.db or sqlite:////absolute/mlflow.db
        db = Path(text.removeprefix("sqlite:///")) if text.startswith("sqlite:///") else None
        if db is None or db.name != DATABASE:
            raise InputError("--registry", "", f"{text!r} names no {DATABASE}", REGISTRY_ALLOWED)
        return MlflowRegistry(db.parent)
    if scheme == "sagemaker":
        from agents.lifecycle.sagemaker import sagemaker_registry_from_uri

        return sagemaker_registry_from_uri(text, endpoint_url=endpoint_url)  # type: ignore[no-any-return]
    raise InputError("--registry", "", f"unknown registry scheme {scheme!r}", REGISTRY_ALLOWED)
