"""Writing a file or a folder so that readers see the old one or the new one, never a
mix, and cleaning up after writers that died.

A writer stages its output in a hidden sibling of the target, ``.<name>.partial-<pid>``
(:func:`staging_path`), then publishes it:

- a file: :func:`publish_file` moves it over the target with one ``os.replace``, atomic
  on POSIX;
- a folder: :func:`publish_folder` renames the staged folder to an immutable version
  folder ``.<name>.v-<ns>-<pid>`` beside it and points the target, a relative symlink,
  at that version with one ``os.replace`` of a new symlink over the old one. A reader
  that resolves the target once (``Path.resolve()``) and reads from the resolved folder
  sees one whole version. The version the target pointed to before stays on disk until
  the next publish, so a reader that resolved it just before the swap can finish; older
  versions are removed.

A writer killed with SIGKILL leaves its partial behind. Every :func:`staging_path` call
first removes the target's partials whose writer is no longer alive (``os.kill(pid, 0)``
raises ``ProcessLookupError``); those of live writers are left alone. A version folder a
dead writer never linked is removed by the next :func:`publish_folder`.

:func:`writing_file` and :func:`writing_folder` wrap the three steps: stage, let the
caller write, publish on success and discard on an exception.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.errors import InputError

_PARTIAL = re.compile(r"\.partial-(\d+)$")
_VERSION = re.compile(r"\.v-[0-9a-f]+-(\d+)$")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def partial_path(target: Path, pid: int | None = None) -> Path:
    """The staging name of ``target`` for writer ``pid`` (default: this process)."""
    return target.parent / f".{target.name}.partial-{os.getpid() if pid is None else pid}"


def _remove(path: Path) -> None:
    """Remove a file, a symlink or a folder tree; absent is fine."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _writer_pid(path: Path, target: Path, pattern: re.Pattern[str]) -> int | None:
    prefix = f".{target.name}"
    if not path.name.startswith(prefix):
        return None
    match = pattern.fullmatch(path.name[len(prefix) :])
    return int(match.group(1)) if match else None


def remove_stale(target: Path) -> list[Path]:
    """Remove ``target``'s partials whose writer is dead; return them."""
    if not target.parent.is_dir():
        return []
    removed = []
    for path in target.parent.glob(glob.escape(f".{target.name}") + ".partial-*"):
        pid = _writer_pid(path, target, _PARTIAL)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            _remove(path)
            removed.append(path)
    return removed


def staging_path(target: Path) -> Path:
    """Where to write ``target`` before publishing it (not created; its folder is).

    Removes stale partials first (:func:`remove_stale`) and any earlier
    partial of this process.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    staging = partial_path(target)
    _remove(staging)
    return staging


def publish_file(staging: Path, target: Path) -> None:
    """Move the finished file ``staging`` over ``target`` (atomic)."""
    os.replace(staging, target)


def _link_name(target: Path) -> str | None:
    """The version folder name ``target`` points to, if it is one of our symlinks."""
    if not target.is_symlink():
        return None
    name = Path(os.readlink(target))
    if name.parent != Path(".") or _writer_pid(name, target, _VERSION) is None:
        return None
    return name.name


def _new_version(target: Path) -> Path:
    """A version folder name for ``target`` that does not exist yet."""
    while True:
        version = target.parent / f".{target.name}.v-{time.time_ns():x}-{os.getpid()}"
        if not os.path.lexists(version):
            return version


def publish_folder(staging: Path, target: Path) -> Path:
    """Make the finished folder ``staging`` what ``target`` shows; return its version
    folder.

    ``target`` becomes (or stays) a symlink to ``.<name>.v-<ns>-<pid>``. A ``target``
    that is a plain folder (written before this module existed) is first moved aside
    as a version: readers see no target for the instant between the two renames,
    once. The previous version is kept until the next publish; older ones are removed.
    """
    if target.exists() and not target.is_dir():
        raise InputError(target, "", "exists and is not a folder", "a folder path")
    version = _new_version(target)
    os.replace(staging, version)
    previous = _link_name(target)
    if target.is_dir() and not target.is_symlink():
        aside = _new_version(target)
        os.replace(target, aside)
        previous = aside.name
    link = partial_path(target)  # free again; a link left by a crash here is stale
    _remove(link)
    os.symlink(version.name, link)
    os.replace(link, target)
    keep = {version.name, previous}
    for path in target.parent.glob(glob.escape(f".{target.name}") + ".v-*"):
        pid = _writer_pid(path, target, _VERSION)
        if path.name in keep or pid is None:
            continue
        if pid == os.getpid() or not pid_alive(pid):
            _remove(path)
    return version


def discard(staging: Path) -> None:
    """Remove an unfinished ``staging`` file or folder (absent is fine)."""
    _remove(staging)


@contextmanager
def writing_file(target: Path) -> Iterator[Path]:
    """``with writing_file(out) as tmp:`` write ``tmp``; it replaces ``out`` when the
    block ends without an exception, and is removed otherwise."""
    staging = staging_path(target)
    try:
        yield staging
        publish_file(staging, target)
    finally:
        discard(staging)


@contextmanager
def writing_folder(target: Path) -> Iterator[Path]:
    """``with writing_folder(out) as tmp:`` fill the folder ``tmp``; it becomes ``out``'s
    new version when the block ends without an exception, and is removed otherwise."""
    staging = staging_path(target)
    staging.mkdir()
    try:
        yield staging
        publish_folder(staging, target)
    finally:
        discard(staging)
