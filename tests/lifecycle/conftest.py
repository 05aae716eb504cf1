"""Fixtures of the model lifecycle tests: every registry backend (``BACKENDS``), each with a way
to tamper with a stored artefact, and moto for the AWS ones (``-m aws`` selects those)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_moto import (  # noqa: F401 (fixtures)
    TEST_BUCKET,
    TEST_IMAGE,
    TEST_PREFIX,
    boto_client,
    moto,
    moto_server,
)

from agents.lifecycle.registry import ModelRegistry, ModelVersion


@dataclass(frozen=True)
class Backend:
    """A registry under test and ``tamper(version)``: alter that version's stored artefact
    behind the registry's back (as a corrupted or hostile store would)."""

    name: str
    registry: ModelRegistry
    tamper: Callable[[ModelVersion], None]


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
