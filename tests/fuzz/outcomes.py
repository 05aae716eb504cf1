"""Run a command on generated inputs and check that each outcome is an acceptable one.

* refused: exit 2, ONE line ``opsbench: error: ...`` on stderr, no traceback, and the working
  folder exactly as before (no ``--out`` target, no hidden ``.NAME.partial-*`` sibling);
* accepted (a mutation may leave a file valid): exit 0, complete output, nothing written
  outside the declared outputs, and nothing on stderr but the command's own warning lines.

:class:`Tally` counts the outcomes per file kind, so a fuzz test that only ever generated
valid files (and so proved nothing) fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from fuzz.mutations import FileMutation, copy_folder
from opsbench_testing import assert_one_line_error, run_main

REPO = Path(__file__).resolve().parents[2]
HANG_S = 60
"""A single command that runs longer than this on a tiny input counts as a hang."""

Snapshot = dict[str, tuple[str, str]]
T = TypeVar("T")


def snapshot(folder: Path) -> Snapshot:
    """Every entry under ``folder``: relative path -> (kind, content digest or link target)."""
    out: Snapshot = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", "")
            else:
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return out


class Hang(Exception):
    """A command ran longer than :data:`HANG_S`."""


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_S) -> Iterator[None]:
    """Raise :class:`Hang` in the test if the body runs longer than ``seconds``."""

    def alarm(_signum: int, _frame: FrameType | None) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True, slots=True)
class Result:
    """What one command did: exit code, streams, and the working folder's changes."""

    code: int
    stdout: str
    stderr: str
    changed: frozenset[str]
    seconds: float
    workdir: Path
    numeric_warnings: tuple[str, ...] = ()
    """RuntimeWarnings (overflow, invalid value) raised in project code: silent garbage."""



def run_in(
    capsys: pytest.CaptureFixture[str],
    workdir: Path,
    args: Sequence[str],
) -> Result:
    """``opsbench ARGS`` in-process with ``workdir`` as the current directory (an
    exception other than SystemExit fails the test: a traceback)."""
    before = snapshot(workdir)
    started = time.perf_counter()
    with contextlib.chdir(workdir), hang_guard(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        code, out, err = run_main(capsys, list(args))
    seconds = time.perf_counter() - started
    after = snapshot(workdir)
    changed = frozenset(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    numeric = tuple(
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, RuntimeWarning) and w.filename.startswith(str(REPO))
    )
    return Result(code, out, err, changed, seconds, workdir, numeric)


def check(
    result: Result,
    *,
    outputs: Sequence[str] = (),
    complete: Callable[[Result], str | None] = lambda _r: None,
    warnings: bool = False,
) -> str:
    """Assert ``result`` is one of the acceptable outcomes; return ``"error"``, ``"valid"``
    or (``warnings``: the command reports tolerated problems as warning lines) ``"warned"``.

    ``outputs`` are the paths (relative to the working folder) a successful run may write;
    ``complete`` checks a successful run's output is whole, and may name its outcome (e.g.
    ``"reported"``: accepted, but the command's summary counts rows it could not use).
    """
    partial = sorted(p for p in result.changed if ".partial-" in p)
    assert partial == [], f"partial output left behind: {partial}"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.numeric_warnings == (), result.numeric_warnings
    if result.code == 2:
        assert_one_line_error(result.code, result.stdout, result.stderr)
        assert result.changed == frozenset(), f"refused but wrote {sorted(result.changed)}"
        return "error"
    assert result.code == 0, (result.code, result.stdout, result.stderr)
    stray = sorted(
        p for p in result.changed if not any(p == o or p.startswith(o + "/") for o in outputs)
    )
    assert stray == [], f"wrote outside {list(outputs)}: {stray}"
    named = complete(result)
    lines = result.stderr.splitlines()
    if warnings and lines:
        assert all(line.startswith("opsbench: warning: ") for line in lines), result.stderr
        return "warned"
    assert result.stderr == "", result.stderr
    return named or "valid"


@dataclass
class Tally:
    """Outcomes per file kind (also reported as hypothesis events)."""

    kind: str
    counts: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)

    def run(
        self,
        capsys: pytest.CaptureFixture[str],
        workdir: Path,
        args: Sequence[str],
        **expected: Any,
    ) -> None:
        """:func:`run_in`, :func:`check` the result (``expected``: its keywords) and count
        its outcome."""
        result = run_in(capsys, workdir, args)
        outcome = check(result, **expected)
        self.counts[outcome] += 1
        self.seconds[outcome] += result.seconds
        event(f"{self.kind}: {outcome}")

    def assert_mostly(self, noticed: Sequence[str] = ("error",), at_least: float = 0.75) -> None:
        """At least ``at_least`` of the examples had an outcome in ``noticed``: the mutations
        really broke the files, so the suite cannot pass vacuously."""
        total = sum(self.counts.values())
        hits = sum(n for o, n in self.counts.items() if o in noticed)
        timing = {o: f"{s / self.counts[o]:.3f} s" for o, s in self.seconds.items()}
        print(f"fuzz {self.kind}: {dict(self.counts)}, mean command time {timing}")
        assert total > 0
        assert hits >= at_least * total, f"{self.kind}: {dict(self.counts)}"


@contextlib.contextmanager
def fresh_workdir(base: Path) -> Iterator[Path]:
    """An empty working folder for one example, removed afterwards."""
    with tempfile.TemporaryDirectory(dir=base) as name:
        yield Path(name)


def replay_output(name: str) -> Callable[[Result], None]:
    """Checks a replay's ``--out`` folder ``name`` is whole: every stream, and the summary
    printed (``--json``) is the one written."""

    def complete(result: Result) -> None:
        from sim.telemetry import STREAMS

        files = {p.split("/", 1)[1] for p in result.changed if p.startswith(name + "/")}
        assert {"summary.json", *(f"{s}.parquet" for s in STREAMS)} <= files, sorted(files)
        summary = json.loads(result.stdout)  # --json
        assert summary == json.loads((result.workdir / name / "summary.json").read_text())

    return complete


def stub_plot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the replay's overview plot (0.6 s of matplotlib per run) by a placeholder file.

    For fuzzing a data file only: the plot draws the simulator's telemetry, never the file
    itself; the scenario fuzz keeps the real plot.
    """
    import bench.plots

    def placeholder(folder: Path, *_args: Any, **_kwargs: Any) -> None:
        (folder / "overview.png").write_bytes(b"placeholder")

    monkeypatch.setattr(bench.plots, "plot_overview", placeholder)


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible, database-less settings for one fuzz test."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def fuzz_command(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tally: Tally,
    inputs: st.SearchStrategy[T],
    *,
    prepare: Callable[[Path, T], object],
    args: Sequence[str] | Callable[[T], Sequence[str]],
    examples: int,
    explicit: Sequence[T] = (),
    **expected: Any,
) -> None:
    """Run the command ``args`` on ``examples`` generated inputs and the ``explicit`` ones,
    each put in a fresh working folder by ``prepare``; check and count every outcome
    (``expected``: the keywords of :func:`check`)."""

    @fuzz_settings(examples)
    @given(inputs)
    def one_input(value: T) -> None:
        with fresh_workdir(tmp_path) as work:
            prepare(work, value)
            tally.run(capsys, work, args(value) if callable(args) else args, **expected)

    for value in explicit:
        one_input = example(value)(one_input)
    one_input()


def write_file(name: str) -> Callable[[Path, bytes], None]:
    """``prepare`` for one generated file: written as ``name`` in the working folder."""

    def prepare(work: Path, data: bytes) -> None:
        (work / name).write_bytes(data)

    return prepare


def mutated_copy(seed: Path, target: Path) -> Callable[[Path, tuple[str, FileMutation]], None]:
    """``prepare`` for a folder: ``seed`` copied to ``target`` (relative to the working
    folder), then one of its files mutated."""

    def prepare(work: Path, change: tuple[str, FileMutation]) -> None:
        name, mutate = change
        mutate(copy_folder(seed, work / target) / name)

    return prepare
