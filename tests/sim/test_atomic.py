"""``sim.atomic``: a writer killed with SIGKILL leaves a partial that the next write to the
same target removes (a live writer's is kept); a published folder is swapped whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sim import atomic
from sim.errors import InputError

REPO = Path(__file__).resolve().parents[2]
WRITER = """
import sys, time
from pathlib import Path
from sim import atomic
folder, file = Path(sys.argv[1]), Path(sys.argv[2])
staging = atomic.staging_path(folder)
staging.mkdir()
(staging / "half.bin").write_bytes(b"x" * 1000)
atomic.staging_path(file).write_bytes(b"half a file")
print("writing", flush=True)
time.sleep(120)
"""


def _writer(folder: Path, file: Path) -> subprocess.Popen[str]:
    """A child process that is halfway through writing ``folder`` and ``file``."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), str(file)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"
    return child


def test_a_killed_writers_partials_are_removed_at_the_next_write(tmp_path: Path) -> None:
    folder, file = tmp_path / "model", tmp_path / "train.parquet"
    alive = _writer(folder, file)
    try:
        killed = _writer(folder, file)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        dead_partials = [atomic.partial_path(t, killed.pid) for t in (folder, file)]
        live_partials = [atomic.partial_path(t, alive.pid) for t in (folder, file)]
        assert all(p.exists() for p in dead_partials + live_partials)
        with atomic.writing_folder(folder) as staging:
            (staging / "weights.bin").write_bytes(b"new")
        with atomic.writing_file(file) as staging:
            staging.write_bytes(b"whole")
        assert not any(p.exists() for p in dead_partials)
        assert all(p.exists() for p in live_partials)  # its writer may still finish
        assert (folder / "weights.bin").read_bytes() == b"new"
        assert file.read_bytes() == b"whole"
        assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == sorted(
            p.name for p in live_partials
        )
    finally:
        alive.kill()
        alive.wait(timeout=30)


def test_a_failed_write_leaves_the_old_folder_and_no_partial(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    with atomic.writing_folder(folder) as staging:
        (staging / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic.writing_folder(folder) as staging:
        (staging / "a").write_text("2")
        raise RuntimeError("crash while writing")
    assert (folder / "a").read_text() == "1"
    assert not atomic.partial_path(folder).exists()


def test_a_reader_that_resolved_the_folder_keeps_one_version(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    with atomic.writing_folder(folder) as staging:
        (staging / "a").write_text("1")
        (staging / "b").write_text("1")
    resolved = folder.resolve()
    first = (resolved / "a").read_text()
    with atomic.writing_folder(folder) as staging:
        (staging / "a").write_text("2")
        (staging / "b").write_text("2")
    assert (resolved / "b").read_text() == first == "1"  # the old version, whole
    assert (folder / "a").read_text() == (folder / "b").read_text() == "2"
    with atomic.writing_folder(folder) as staging:
        (staging / "a").write_text("3")
    versions = sorted(p.name for p in tmp_path.iterdir() if ".v-" in p.name)
    assert len(versions) == 2  # the current and the previous one; older ones removed
    assert not resolved.exists()


def test_a_plain_folder_and_a_dangling_link_are_replaced(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "a").write_text("old")
    with atomic.writing_folder(legacy) as staging:
        (staging / "a").write_text("new")
    assert legacy.is_symlink() and (legacy / "a").read_text() == "new"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with atomic.writing_folder(dangling) as staging:
        (staging / "a").write_text("new")
    assert (dangling / "a").read_text() == "new"
    file = tmp_path / "file"
    file.write_text("not a folder")
    with (
        pytest.raises(InputError, match="exists and is not a folder"),
        atomic.writing_folder(file) as staging,
    ):
        (staging / "a").write_text("new")
    assert file.read_text() == "not a folder"
