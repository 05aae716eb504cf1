"""Fixtures of the model lifecycle tests: every registry backend (``BACKENDS``), each with a
way to tamper with a stored artefact, moto for the AWS ones (``-m aws`` selects those), and a
small security training spec and its analyser."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from aws_moto import (  # noqa: F401 (fixtures)
    TEST_BUCKET,
    TEST_IMAGE,
    TEST_PREFIX,
    boto_client,
    moto,
    moto_server,
)
from threadpoolctl import threadpool_limits

from agents.lifecycle.registry import ModelRegistry, ModelVersion
from bench.security_data import TrainingSpec

SMALL_PARAMS: dict[str, Any] = {"max_iter": 5, "calibration_folds": 2}


@dataclass(frozen=True)
class Backend:
    """A registry under test and ``tamper(version)``: alter that version's stored artefact
    behind the registry's back (as a corrupted or hostile store would)."""

    name: str
    registry: ModelRegistry
    tamper: Callable[[ModelVersion], None]


def local_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """MlflowRegistry (MLflow on SQLite) in a fresh folder."""
    from agents.lifecycle.local import MlflowRegistry

    registry = MlflowRegistry(tmp_path / "registry")

    def tamper(version: ModelVersion) -> None:
        stored = Path(unquote(urlparse(version.location).path))
        shutil.rmtree(stored)
        stored.mkdir()
        (stored / "weights.json").write_text('{"w": [6, 6, 6]}')

    return Backend("local", registry, tamper)


def sagemaker_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """SageMakerRegistry on moto (bucket created, image given)."""
    from agents.lifecycle.sagemaker import S3Url, SageMakerRegistry, pack_folder

    server = request.getfixturevalue("moto")
    s3 = server.client("s3")
    s3.create_bucket(Bucket=TEST_BUCKET)
    registry = SageMakerRegistry(
        TEST_BUCKET, TEST_PREFIX, image=TEST_IMAGE, client_factory=server.client
    )

    def tamper(version: ModelVersion) -> None:
        forged = tmp_path / f"forged-{version.version}"
        forged.mkdir()
        (forged / "weights.json").write_text('{"w": [6, 6, 6]}')
        url = S3Url.parse(version.location, source="tamper")
        s3.put_object(Bucket=url.bucket, Key=url.key, Body=pack_folder(forged))

    return Backend("sagemaker", registry, tamper)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "local": local_backend,
    "sagemaker": sagemaker_backend,
}
BACKEND_MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {"sagemaker": (pytest.mark.aws,)}


@pytest.fixture(params=[pytest.param(n, marks=BACKEND_MARKS.get(n, ())) for n in BACKENDS])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each registry backend in turn, empty."""
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def registry(backend: Backend) -> ModelRegistry:
    return backend.registry


@pytest.fixture(scope="session")
def small_spec() -> TrainingSpec:
    """One account, half a day: an analyser trains in about a second."""
    return TrainingSpec(seed=3, accounts=1, days=0.5, campaigns_per_account=3)


@pytest.fixture(scope="session")
def small_params() -> dict[str, Any]:
    return dict(SMALL_PARAMS)


@pytest.fixture(scope="session")
def small_analyser(small_spec: TrainingSpec, small_params: dict[str, Any]) -> Any:
    from bench.security_model import train

    with threadpool_limits(1):
        return train(small_spec, small_params)
