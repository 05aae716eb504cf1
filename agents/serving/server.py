"""Run a predictor's application with uvicorn: in the foreground (:func:`serve`, the
container's entry point) or on a background thread (:func:`running`, for tests and the
serving benchmark)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
import uvicorn

from agents.serving.app import create_app
from agents.serving.protocol import MAX_BODY_BYTES, Predictor
from sim.errors import InputError

STARTUP_TIMEOUT_S = 10.0


def _config(predictor: Predictor, max_body_bytes: int) -> uvicorn.Config:
    # no access log (one line per request); warnings and the model's tracebacks only
    logging.getLogger("opsbench.serving").setLevel(logging.INFO)
    return uvicorn.Config(
        create_app(predictor, max_body_bytes=max_body_bytes),
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


BACKLOG = 2048
"""Pending connections the socket queues (uvicorn's own default)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one): a client that connects
    as soon as the URL is printed waits in the backlog until the server accepts, instead of
    being refused. An address that cannot be bound is an InputError naming
    ``--host``/``--port``."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise InputError("--host", "", f"{host!r}: {exc}", "an address of this machine") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise InputError(
            "--port", "", f"{host}:{port} cannot be bound ({exc.strerror})",
            "a free port (0: any free port)",
        ) from None  # fmt: skip
    sock.listen(BACKLOG)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    predictor: Predictor,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Serve ``predictor`` until interrupted; one line on stderr names the model and URL."""
    sock = bind(host, port)
    config = _config(predictor, max_body_bytes)
    click.echo(
        f"opsbench: serving the {predictor.agent} model {predictor.model_version} at "
        f"{url_of(sock)}/invocations",
        err=True,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def running(
    predictor: Predictor, *, host: str = "127.0.0.1", max_body_bytes: int = MAX_BODY_BYTES
) -> Iterator[str]:
    """Serve ``predictor`` on a free port of ``host`` in a background thread; yields the
    base URL (``http://127.0.0.1:PORT``) once it answers, stops the server on exit."""
    sock = bind(host, 0)
    server = uvicorn.Server(_config(predictor, max_body_bytes))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the server on {url_of(sock)} did not start")
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
        sock.close()
