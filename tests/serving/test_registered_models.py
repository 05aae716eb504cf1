"""Every agent registered, then served by reference: ``models show`` gives a valid example
``/invocations`` body, and the server started from ``NAME@champion`` answers it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.anomaly.artefact import DetectorArtefact, save_detector
from agents.cost.model import SHIPPED_DIR
from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelCard, folder_digest
from agents.scaling.model import ScalingModel
from agents.security.analyser import SecurityAnalyser
from agents.serving.server import running
from bench.cli.serve import registry_predictor
from agents.security.artefact import save_folder
from opsbench_testing import run_main


@pytest.fixture(scope="module")
def registry_dir(
    tmp_path_factory: pytest.TempPathFactory,
    scaling_model: tuple[ScalingModel, Path],
    security_model: SecurityAnalyser,
) -> Path:
    """A registry holding one champion per agent."""
    base = tmp_path_factory.mktemp("registered")
    registry = open_registry(base / "reg")
    anomaly = save_detector(DetectorArtefact(detector="robust-spike", threshold=0.7), base / "a")
    security = save_folder(security_model, base / "s", record={"key": "test"})
    for name, agent, folder in (
        ("scaling-test", "scaling", scaling_model[1]),
        ("cost-rl-test", "cost-rl", SHIPPED_DIR),
        ("anomaly-test", "anomaly", anomaly),
        ("security-test", "security", security),
    ):
        card = ModelCard(agent=agent, artefact_sha256=folder_digest(folder))  # type: ignore[arg-type]
        registry.promote(name, registry.register(name, folder, card).version)
    return base / "reg"


@pytest.mark.parametrize("name", ["scaling-test", "cost-rl-test", "anomaly-test", "security-test"])
def test_every_registered_agent_is_shown_and_served_by_reference(
    capsys: pytest.CaptureFixture[str], registry_dir: Path, name: str
) -> None:
    code, out, err = run_main(capsys, ["models", "show", name, "--registry", str(registry_dir),
                                       "--json"])  # fmt: skip
    assert code == 0, err
    shown: dict[str, Any] = json.loads(out)
    assert shown["ref"] == f"{name}/1" and shown["lineage"] == []
    assert shown["location"] and len(shown["artefact_sha256"]) == 64
    predictor = registry_predictor(f"{name}@champion", str(registry_dir))
    with running(predictor) as url, httpx.Client(base_url=url) as client:
        assert client.get("/ping").status_code == 200
        answer = client.post("/invocations", json=shown["example_request"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == f"{name}/1"
        bad = client.post(
            "/invocations", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400 and "\n" not in bad.text
        again = client.post("/invocations", json=shown["example_request"])
        assert again.status_code == 200
