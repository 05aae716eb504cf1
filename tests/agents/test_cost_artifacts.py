"""Saved model folders (``agents.artifacts``, used by the cost and scaling models): published
whole or not at all, one version per reader, stale partials of killed writers removed,
and a dangling model symlink refused with one line naming it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agents import artifacts
from agents.cost.model import MODEL_FILE, SHIPPED_DIR, load_model
from sim.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def _save(folder: Path, version: str) -> None:
    staging = artifacts.staging_folder(folder)
    (staging / "metadata.json").write_text(version)
    (staging / "model.bin").write_text(version)
    artifacts.publish(staging, folder)


def test_an_interrupted_publish_keeps_the_old_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cost" / "default"
    _save(folder, "1")
    staging = artifacts.staging_folder(folder)
    (staging / "metadata.json").write_text("2")
    (staging / "model.bin").write_text("2")

    def crash(src: object, dst: object) -> None:
        raise OSError("killed mid-publish")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed mid-publish"):
        artifacts.publish(staging, folder)
    monkeypatch.undo()
    assert (folder / "metadata.json").read_text() == (folder / "model.bin").read_text() == "1"


def test_a_reader_never_mixes_two_versions(tmp_path: Path) -> None:
    folder = tmp_path / "cost" / "default"
    _save(folder, "1")
    resolved = folder.resolve()  # what a loader does once (agents.artifacts.resolve_folder)
    meta = (resolved / "metadata.json").read_text()
    _save(folder, "2")  # published between the reader's two reads
    assert (resolved / "model.bin").read_text() == meta == "1"
    assert (folder / "model.bin").read_text() == "2"


def test_a_killed_writers_partial_is_removed_by_the_next_save(tmp_path: Path) -> None:
    folder = tmp_path / "cost" / "default"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from agents import artifacts; "
            "s = artifacts.staging_folder(Path(sys.argv[1])); "
            "(s / 'model.bin').write_bytes(b'x' * 4096); print(s, flush=True); time.sleep(120)",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert writer.stdout is not None
    partial = Path(writer.stdout.readline().strip())
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert partial.is_dir() and str(writer.pid) in partial.name
    _save(folder, "1")
    assert not partial.exists()
    assert [p.name for p in folder.parent.iterdir() if "partial" in p.name] == []


def test_publishing_over_a_dangling_link_replaces_it(tmp_path: Path) -> None:
    folder = tmp_path / "cost" / "default"
    folder.parent.mkdir(parents=True)
    folder.symlink_to(tmp_path / "deleted-by-hand")
    _save(folder, "1")
    assert (folder / "model.bin").read_text() == "1"


def test_a_dangling_file_in_the_model_folder_is_named(tmp_path: Path) -> None:
    models = tmp_path / "models"
    own = models / "cost" / "default"
    shutil.copytree(SHIPPED_DIR, own)
    (own / MODEL_FILE).unlink()
    (own / MODEL_FILE).symlink_to(tmp_path / "moved-away.zip")
    with pytest.raises(InputError) as exc:
        load_model(own, models_dir=models)
    line = exc.value.one_line()
    assert f"{MODEL_FILE}: is a symlink to" in line and "does not exist" in line
