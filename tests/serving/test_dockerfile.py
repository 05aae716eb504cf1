"""The container honours SageMaker's contract: ``serve`` on PATH runs ``opsbench serve`` on
the mounted model folder, port 8080 is exposed, CPU torch is installed before the
project. The image is built only where a docker daemon answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
ENTRY = REPO / "docker" / "serve"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_the_dockerfile_meets_the_sagemaker_contract() -> None:
    steps = instructions()
    kinds = [k for k, _ in steps]
    assert ("EXPOSE", "8080") in steps
    assert ("COPY", "docker/serve /usr/local/bin/serve") in steps
    assert ("CMD", '["serve"]') in steps
    assert "ENTRYPOINT" not in kinds  # `docker run IMAGE serve` runs the script
    runs = [args for kind, args in steps if kind == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch==2.13.0" in r)
    project = next(i for i, r in enumerate(runs) if r.startswith("pip install ."))
    assert torch < project, "CPU torch must be installed before the project"
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]


def test_the_entry_point_serves_the_model_folder_on_8080() -> None:
    assert os.access(ENTRY, os.X_OK)
    text = ENTRY.read_text()
    assert text.startswith("#!/bin/sh")
    command = next(line for line in text.splitlines() if line.startswith("exec "))
    assert command.split() == [
        "exec", "opsbench", "serve", "--folder", "/opt/ml/model", "--agent", '"$OPSBENCH_AGENT"',
        "--host", "0.0.0.0", "--port", "8080",
    ]  # fmt: skip


def test_the_entry_point_refuses_a_missing_agent_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPSBENCH_AGENT"}
    done = subprocess.run(["sh", str(ENTRY)], capture_output=True, text=True, env=env, timeout=10)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "OPSBENCH_AGENT is not set" in done.stderr


def docker_unusable() -> str | None:
    """Why no image can be built here (None: docker answers)."""
    if shutil.which("docker") is None:
        return "no docker command"
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 20 s"
    if done.returncode != 0:
        return "the docker daemon does not answer: " + " ".join(done.stderr.split())[:200]
    return None


@pytest.mark.slow
def test_the_image_builds() -> None:
    reason = docker_unusable()
    if reason is not None:
        pytest.skip(reason)
    done = subprocess.run(
        ["docker", "build", "-q", "-t", "opsbench-serve:test", str(REPO)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    probe = subprocess.run(
        ["docker", "run", "--rm", "opsbench-serve:test", "sh", "-c", "command -v serve opsbench"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and "/usr/local/bin/serve" in probe.stdout, probe.stderr
