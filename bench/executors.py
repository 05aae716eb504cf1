"""Where a sweep's replays run: in this process, in a pool of processes, or as Ray tasks.

Every executor maps one picklable, module-level function over a list of items and returns
the results in the items' order, whatever order they finish in, calling ``on_done(index,
result)`` as each one finishes (a progress bar). An item carries everything its replay
depends on (:class:`bench.sweep.ReplayTask`: the run spec and where the models are), so a
result depends on the item only, never on the executor, the worker or the order.

- ``serial``: one after the other in this process.
- ``process``: a :class:`concurrent.futures.ProcessPoolExecutor` of ``workers`` processes
  started with the ``spawn`` method (fresh interpreters: nothing inherited from a fork of a
  process that holds threads, DuckDB or MLflow connections).
- ``ray``: each item a Ray task (one CPU). With no address, a local Ray is started with
  ``num_cpus=workers``, no dashboard, listening on 127.0.0.1 only, and shut down afterwards; with
  ``address`` the sweep joins that running cluster (``ray start --head``), whose workers
  must import this code and see the same paths (same machine or shared file system), and
  is disconnected afterwards.

A failed item stops the sweep: the items not started are cancelled and the first error is
raised (an :class:`~sim.errors.OpsbenchError` from inside a worker is re-raised as
itself, so the CLI prints its one line).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from typing import Any, Literal, Protocol, TypeVar

from sim.errors import InputError, OpsbenchError

ExecutorName = Literal["serial", "process", "ray"]
EXECUTOR_NAMES: tuple[ExecutorName, ...] = ("serial", "process", "ray")
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch (read by ``ray._private.ray_constants`` as ``ENABLE_RAY_CLUSTER``) that,
off, makes a node use 127.0.0.1 as its address: the local Ray's GCS, raylet and workers
then listen on 127.0.0.1 only. Without it, on Linux, Ray replaces a ``_node_ip_address``
of 127.0.0.1 with the machine's routable address and listens on every interface."""
RAY_INSTALL = "pip install 'opsbench[ray]', or --executor serial or process"
RAY_OBJECT_STORE_BYTES = 128 * 1024**2
"""The local Ray's object store: results are a few kB each, so a small store is plenty
(Ray's default takes 30% of the machine's memory)."""

Item = TypeVar("Item")
Result = TypeVar("Result")
OnDone = Callable[[int, Any], None]


class Executor(Protocol):
    """Maps a function over items; results in the items' order."""

    name: ExecutorName

    def map(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_done: OnDone
    ) -> list[Result]:
        """``[fn(item) for item in items]``, calling ``on_done(index, result)`` as each
        finishes."""
        ...


class SerialExecutor:
    """Runs every item in this process, in order."""

    name: ExecutorName = "serial"

    def map(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_done: OnDone
    ) -> list[Result]:
        results = []
        for index, item in enumerate(items):
            result = fn(item)
            on_done(index, result)
            results.append(result)
        return results


class ProcessExecutor:
    """Runs the items in a pool of ``workers`` spawned processes."""

    name: ExecutorName = "process"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_done: OnDone
    ) -> list[Result]:
        results: dict[int, Result] = {}
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            pending: dict[Future[Result], int] = {
                pool.submit(fn, item): index for index, item in enumerate(items)
            }
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = pending.pop(future)
                        results[index] = future.result()
                        on_done(index, results[index])
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return [results[index] for index in range(len(items))]


class RayExecutor:
    """Runs each item as a Ray task (one CPU) on a Ray that :func:`ray_session` started or
    joined."""

    name: ExecutorName = "ray"

    def map(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_done: OnDone
    ) -> list[Result]:
        import ray

        task = ray.remote(num_cpus=1, max_retries=0)(fn)
        refs = [task.remote(item) for item in items]
        index_of = {ref: index for index, ref in enumerate(refs)}
        results: dict[int, Result] = {}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    index = index_of[ref]
                    results[index] = _ray_get(ref)
                    on_done(index, results[index])
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        return [results[index] for index in range(len(items))]


def _ray_get(ref: Any) -> Any:
    """``ray.get(ref)``; an OpsbenchError raised in the task is re-raised as itself."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, OpsbenchError):
            raise exc.cause from None
        raise


@contextmanager
def ray_session(workers: int, address: str | None) -> Iterator[RayExecutor]:
    """A local Ray (``workers`` CPUs, no dashboard, listening on 127.0.0.1 only: see
    :data:`LOOPBACK_ONLY_ENV`) for the block, or the cluster at ``address`` joined for the
    block."""
    try:
        import ray
    except ImportError:
        raise InputError(
            "--executor",
            "",
            "ray is not installed",
            "pip install 'opsbench[ray]', or serial, process",
        ) from None
    try:
        if address is None:
            with _loopback_only():
                ray.init(
                    address="local",  # always a new local Ray, never one found on the machine
                    num_cpus=workers,
                    include_dashboard=False,
                    object_store_memory=RAY_OBJECT_STORE_BYTES,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                )
        else:
            _check_reachable(address)
            host = address.rpartition(":")[0].strip("[]")
            loopback = host in ("127.0.0.1", "localhost", "::1")
            with _loopback_only() if loopback else nullcontext():  # else Ray swaps the host
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except OpsbenchError:
        raise
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        ray.shutdown()
        message = " ".join(str(exc).split()) or type(exc).__name__
        if address is None:
            raise RayUnavailable(f"cannot start a local Ray: {message[:300]}") from None
        raise InputError(
            "--address", "", f"cannot join Ray at {address!r}: {message[:300]}", JOIN_ALLOWED
        ) from None
    try:
        yield RayExecutor()
    finally:
        ray.shutdown()


JOIN_ALLOWED = (
    "the HOST:PORT of a running Ray cluster's GCS (ray start --head), e.g. 127.0.0.1:6379"
)
CONNECT_TIMEOUT_S = 3.0


def check_executor(name: ExecutorName, address: str | None) -> None:
    """What can be checked before any work: ``--address`` only with ray, ray installed, the
    address answering (InputError otherwise)."""
    if address is not None and name != "ray":
        raise InputError("--address", "", f"given with --executor {name}", "--executor ray")
    if name != "ray":
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        raise InputError("--executor", "", "ray is not installed", RAY_INSTALL) from None
    if address is not None:
        _check_reachable(address)


def _check_reachable(address: str) -> None:
    """A ``HOST:PORT`` address must accept a TCP connection within
    :data:`CONNECT_TIMEOUT_S` (Ray itself retries for a minute, logging as it goes); other
    forms (``ray://...``, ``auto``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise InputError(
            "--address", "", f"nothing answers at {address!r}: {exc.strerror or exc}", JOIN_ALLOWED
        ) from None


@contextmanager
def _loopback_only() -> Iterator[None]:
    """While a local Ray starts: :data:`LOOPBACK_ONLY_ENV` off for the processes it starts
    (they inherit the environment) and for this one (Ray read it when imported, so the
    constant is set too); both restored afterwards."""
    from ray._private import ray_constants

    before_env = os.environ.get(LOOPBACK_ONLY_ENV)
    before = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOOPBACK_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(LOOPBACK_ONLY_ENV, None)
        else:
            os.environ[LOOPBACK_ONLY_ENV] = before_env


class RayUnavailable(OpsbenchError):
    """A local Ray could not be started on this machine."""


@contextmanager
def executor(name: ExecutorName, *, workers: int, address: str | None = None) -> Iterator[Executor]:
    """The executor ``name`` for the block (a local Ray is started and stopped with it)."""
    check_executor(name, address)
    if workers < 1:
        raise InputError("--workers", "", f"{workers}", "an integer >= 1")
    if name == "serial":
        yield SerialExecutor()
    elif name == "process":
        yield ProcessExecutor(workers)
    elif name == "ray":
        with ray_session(workers, address) as ray_executor:
            yield ray_executor
    else:
        raise InputError("--executor", "", f"unknown executor {name!r}", ", ".join(EXECUTOR_NAMES))
