"""A Ray cluster started as a user starts one (``ray start --head --block``), on 127.0.0.1
only, for the duration of a block: what ``--executor ray --address`` joins in the tests and
the sweep-speed benchmark.

The head runs in its own process group and is killed with it afterwards (``ray stop`` would
stop every Ray on the machine). Ray >= 2.52 authenticates with a shared token once one
exists, so the head and whoever joins it get the same ``RAY_AUTH_MODE=token`` and
``RAY_AUTH_TOKEN`` (:func:`ray_env`); the loopback switch of :mod:`bench.executors` keeps
every Ray process listening on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.executors import LOOPBACK_ONLY_ENV

RAY_TOKEN = "opsbench-local-" + "0" * 32
"""The local cluster's token: it guards a loopback-only cluster that lives for one block."""
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 3.0


class RayHeadUnavailable(RuntimeError):
    """``ray start --head`` did not come up (the message holds the end of its log)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_env() -> dict[str, str]:
    """The environment of the head and of a process that joins it."""
    return dict(
        os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=RAY_TOKEN, **{LOOPBACK_ONLY_ENV: "0"}
    )


@contextlib.contextmanager
def ray_head(num_cpus: int = 2) -> Iterator[str]:
    """A ``ray start --head`` cluster of ``num_cpus`` CPUs on 127.0.0.1 for the block; yields
    its ``HOST:PORT``. Raises :class:`RayHeadUnavailable` if it does not come up within
    :data:`START_TIMEOUT_S`."""
    # a short temp dir: Ray's unix sockets live under it (a path is at most 107 bytes)
    temp = Path(tempfile.mkdtemp(prefix="rayh", dir="/tmp"))
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={num_cpus}",
        "--include-dashboard=false", "--disable-usage-stats",
        f"--ray-client-server-port={free_port()}", f"--temp-dir={temp}",
    ]  # fmt: skip
    log = temp / "ray-start.log"
    with log.open("wb") as sink:
        head = subprocess.Popen(
            command, env=ray_env(), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    tail = " ".join(log.read_text(errors="replace").split()[-40:])
                    raise RayHeadUnavailable(f"ray start --head did not come up: {tail}") from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        # ray start --block takes ~30 s to wind down on SIGTERM: a short grace, then the
        # whole group (GCS, raylet, workers) is killed; the cluster lived for this block only
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)
