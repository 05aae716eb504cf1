"""``opsbench models copy``: a version trained locally, copied to SageMaker, then deployed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_moto import TEST_BUCKET, TEST_IMAGE, TEST_PREFIX, MotoServer
from opsbench_testing import run_main

from agents.anomaly.artefact import DetectorArtefact, save_detector
from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelCard, ModelRef, folder_digest

pytestmark = pytest.mark.aws


def test_a_local_version_is_copied_to_sagemaker_and_deployed(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "local"
    folder = save_detector(DetectorArtefact(detector="robust-spike", threshold=0.7), tmp_path / "a")
    card = ModelCard(agent="anomaly", artefact_sha256=folder_digest(folder), metrics={"x": 1.0})
    open_registry(local).register("anomaly-robust-spike", folder, card)
    moto.client("s3").create_bucket(Bucket=TEST_BUCKET)
    target = f"sagemaker://{TEST_BUCKET}/{TEST_PREFIX}?image={TEST_IMAGE}"
    args = ["models", "copy", "anomaly-robust-spike/1", "--to", target, "--registry", str(local),
            "--endpoint-url", moto.url, "--json"]  # fmt: skip
    code, out, err = run_main(capsys, args)
    assert code == 0, err
    copied = json.loads(out)
    assert copied["ref"] == "anomaly-robust-spike/1" and copied["aliases"] == ["champion"]
    assert copied["location"].startswith(f"s3://{TEST_BUCKET}/{TEST_PREFIX}/")
    remote = open_registry(target, endpoint_url=moto.url)
    version = remote.resolve(ModelRef.parse("anomaly-robust-spike"))
    assert version.card.metrics == {"x": 1.0} and "copied from" in version.card.description
    assert version.card.artefact_sha256 == card.artefact_sha256
    code, out, err = run_main(capsys, ["deploy", "anomaly-robust-spike", "--endpoint-name",
                                       "anomaly", "--registry", target, "--endpoint-url",
                                       moto.url, "--apply", "--json"])  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["endpoint_status"] == "InService"
