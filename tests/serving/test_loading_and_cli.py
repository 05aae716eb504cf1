"""Artefact folders load into predictors (or are refused with one line naming the file
and field), and ``opsbench serve`` serves one over HTTP or refuses with one line."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from opsbench_testing import assert_one_line_error, run_main

from agents.cost.model import SHIPPED_DIR
from agents.scaling.model import ScalingModel
from agents.serving.anomaly import AnomalyPredictor
from agents.serving.cost import CostPredictor
from agents.serving.loading import load_predictor
from agents.serving.scaling import ScalingPredictor
from sim.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def detector_folder(tmp_path: Path, content: object) -> Path:
    folder = tmp_path / "anomaly-model"
    folder.mkdir(exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (folder / "detector.json").write_text(text)
    return folder


def test_each_agent_folder_loads(tmp_path: Path, scaling_model: tuple[ScalingModel, Path]) -> None:
    scaling = load_predictor("scaling", scaling_model[1], {"quantile": 0.9})
    assert isinstance(scaling, ScalingPredictor) and scaling.quantile == 0.9
    cost = load_predictor("cost-rl", SHIPPED_DIR)
    assert isinstance(cost, CostPredictor)
    folder = detector_folder(tmp_path, {"detector": "robust-spike", "params": {}, "threshold": 0.8})
    anomaly = load_predictor("anomaly", folder, {"max_series": 5})
    assert isinstance(anomaly, AnomalyPredictor)
    assert anomaly.threshold == 0.8 and anomaly.max_series == 5
    assert len(anomaly.model_version) == 12


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ({"detector": "nope", "threshold": 0.5}, ("detector.json", "detector", "robust-spike")),
        ({"detector": "robust-spike", "threshold": 2}, ("detector.json", "threshold")),
        ({"detector": "robust-spike", "threshold": 0.5, "x": 1}, ("detector.json", "x")),
        ({"detector": "robust-spike", "params": {"bogus": 1}, "threshold": 0.5},
         ("detector.json", "params", "bogus")),
        ("{not json", ("detector.json", "not JSON")),
    ],
)  # fmt: skip
def test_a_bad_detector_file_is_one_line(
    tmp_path: Path, content: object, needles: tuple[str, ...]
) -> None:
    with pytest.raises(InputError) as caught:
        load_predictor("anomaly", detector_folder(tmp_path, content))
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_serve_refuses_bad_arguments_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ([], "either MODEL_REF or --folder"),
        (["--folder", str(tmp_path)], "--folder needs --agent"),
        (["scaling-default", "--folder", str(tmp_path), "--agent", "anomaly"], "either"),
        (["Not A Ref"], "MODEL_REF"),
        (["--folder", str(tmp_path / "none"), "--agent", "anomaly"], "is not a folder"),
        (["--folder", str(tmp_path), "--agent", "anomaly"], "detector.json"),
        (["--folder", str(tmp_path), "--agent", "robot"], "robot"),
        (["--folder", str(tmp_path), "--agent", "anomaly", "--port", "70000"], "--port"),
        (["--folder", str(SHIPPED_DIR), "--agent", "scaling"], "metadata.json"),
    ]
    for args, needle in cases:
        code, out, err = run_main(capsys, ["serve", *args])
        assert_one_line_error(code, out, err, needle)


def test_serve_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = detector_folder(tmp_path, {"detector": "robust-spike", "threshold": 0.5})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_main(
            capsys, ["serve", "--folder", str(folder), "--agent", "anomaly", "--port", str(port)]
        )
    assert_one_line_error(code, out, err, "--port", f"127.0.0.1:{port} cannot be bound")


def test_the_served_socket_queues_a_client_before_the_server_runs() -> None:
    """``opsbench serve`` prints its URL before uvicorn starts: a client that connects at
    once must wait in the backlog, not be refused (seen under load in the suite)."""
    from agents.serving.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        socket.create_connection(sock.getsockname()[:2], timeout=5).close()
    finally:
        sock.close()


def test_opsbench_serve_answers_over_http(tmp_path: Path) -> None:
    """The console entry point, as the container runs it, on a free port."""
    folder = detector_folder(tmp_path, {"detector": "robust-spike", "threshold": 0.5})
    command = [sys.executable, "-m", "bench.cli", "serve", "--folder", str(folder),
               "--agent", "anomaly", "--port", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    ) as proc:
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            found = re.search(
                r"serving the anomaly model \w+ at (http://127\.0\.0\.1:\d+)/invocations", line
            )
            assert found, line
            base = found.group(1)
            with httpx.Client(base_url=base, timeout=10) as http:
                assert http.get("/ping").status_code == 200
                body = {"series": "s", "timestamp": "2024-01-01T00:00:00Z", "value": 1.0}
                answer = http.post("/invocations", json=body).json()
                assert answer["series"] == "s" and answer["is_anomaly"] is False
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        rest = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in rest
    assert "POST /invocations" not in rest  # no access log
