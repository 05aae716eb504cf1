"""moto in server mode on 127.0.0.1: the stand-in for AWS in tests (no call leaves the machine).

One server per test session (a subprocess on a free loopback port; about a second to start),
its state wiped before every test (``POST /moto-api/reset``). Clients carry dummy
credentials, region us-east-1 and a single attempt (an action moto lacks answers HTTP 500:
one try fails fast instead of four slow retries). The environment a test runs in points every
other boto3 client at a closed port, so code that forgets its endpoint fails rather than
reaching AWS. What moto emulates (and what not): ``/work/shared/notes/moto.md``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's one account
CLOSED_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens there
STARTUP_TIMEOUT_S = 30.0
TEST_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/opsbench-serve:test"
TEST_BUCKET = "opsbench-test-models"
TEST_PREFIX = "registry/models"

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": CLOSED_ENDPOINT,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
AWS_ENV_REMOVED = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=1) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class MotoServer:
    """A running moto server: its URL and its log file."""

    url: str
    log: Path

    def reset(self) -> None:
        """Wipe every service's state."""
        request = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 200, reply.status

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` on this server (dummy keys, us-east-1, one attempt)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=2,
                read_timeout=20,
            ),
        )


@dataclass(frozen=True)
class _Started:
    server: MotoServer
    process: subprocess.Popen[bytes]


def _start() -> _Started:
    log = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])
    for _attempt in range(3):  # a free port can be taken between the probe and the bind
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(url):
                return _Started(MotoServer(url, log), process)
            time.sleep(0.1)
        _stop(process)
    raise RuntimeError(f"moto server did not answer /moto-api/ (log: {log})")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session (stopped at its end)."""
    started = _start()
    try:
        yield started.server
    finally:
        _stop(started.process)
        started.server.log.unlink(missing_ok=True)


def set_test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AWS environment of a test: dummy credentials, no profile or config file, no
    instance metadata, and every client that is not given the server's URL pointed at a
    closed port."""
    for name in AWS_ENV_REMOVED:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]:
        monkeypatch.delenv(name)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The session's moto server, wiped, with the AWS environment of a test set
    (:func:`set_test_environment`)."""
    set_test_environment(monkeypatch)
    moto_server.reset()
    return moto_server


@pytest.fixture
def boto_client(moto: MotoServer) -> Callable[[str], Any]:
    """``boto_client(service)``: a client on the wiped moto server."""
    return moto.client
