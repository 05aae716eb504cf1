"""What every saved model folder shares: published atomically, read back only when its
metadata validates and its payload's sha256 is the one recorded at save.

A model folder holds ``metadata.json`` (a frozen pydantic model, with the payload's
``model_sha256``) and one payload file. :func:`staging_folder` / :func:`publish` write
it in a hidden sibling and publish it with :mod:`sim.atomic`: the model's path is a
symlink swapped in one ``os.replace`` to an immutable version folder, so a crash or a
concurrent reader never sees half a model, and a writer killed mid-write leaves a
partial that the next save removes. Readers resolve the folder once
(:func:`resolve_folder`) and read every file from the resolved version;
:func:`read_metadata` and :func:`verified_payload` turn every problem into one
:class:`~sim.errors.InputError` line naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from sim import atomic
from sim.errors import InputError

M = TypeVar("M", bound=BaseModel)


def staging_folder(folder: Path) -> Path:
    """A fresh hidden sibling of ``folder`` to write a model into (stale partials of
    writers that died are removed first)."""
    staging = atomic.staging_path(folder)
    staging.mkdir()
    return staging


def publish(staging: Path, folder: Path) -> None:
    """Make the finished ``staging`` folder the model at ``folder`` (atomic swap)."""
    atomic.publish_folder(staging, folder)


def check_models_dir(models_dir: Path, option: str = "--models") -> None:
    """InputError unless ``models_dir`` is a folder or can be created as one: checked
    before anything is trained or written."""
    allowed = "a folder (created if absent)"
    for path in (models_dir, *models_dir.parents):
        if path.is_symlink() and not path.exists():
            problem = f"{path} is a symlink to {os.readlink(path)}, which does not exist"
            raise InputError(option, "", problem, allowed)
        if path.exists():
            if not path.is_dir():
                raise InputError(option, "", f"{path} is an existing file, not a folder", allowed)
            return


def _refuse_dangling(path: Path, retrain: str) -> None:
    if path.is_symlink() and not path.exists():
        problem = f"is a symlink to {os.readlink(path)}, which does not exist"
        raise InputError(path, "", problem, retrain)


def resolve_folder(folder: Path, files: tuple[str, ...], retrain: str) -> Path:
    """``folder`` resolved once (every file is then read from one published version),
    after checking that it and ``files`` in it exist; InputError naming the dangling
    symlink or the missing file otherwise."""
    _refuse_dangling(folder, retrain)
    if not folder.is_dir():
        raise InputError(folder, "", "is not a model folder", retrain)
    resolved = folder.resolve()
    for name in files:
        _refuse_dangling(resolved / name, retrain)
        if not (resolved / name).is_file():
            raise InputError(folder, "", f"needs {' and '.join(files)}", retrain)
    return resolved


def read_metadata(meta_path: Path, model: type[M], retrain: str, *, shown: Path | None = None) -> M:
    """``meta_path`` parsed and validated as ``model``; InputError (naming ``shown``,
    default ``meta_path``) otherwise."""
    name = meta_path if shown is None else shown
    try:
        return model.model_validate(json.loads(meta_path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        problem = f"not JSON ({exc.msg}, line {exc.lineno})"
        raise InputError(name, "", problem, retrain) from None
    except UnicodeDecodeError as exc:
        raise InputError(name, "", f"not UTF-8 text (byte {exc.start})", retrain) from None
    except RecursionError:
        raise InputError(name, "", "JSON nested too deeply", retrain) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise InputError(name, where, err["msg"], retrain) from None


def verified_payload(
    payload_path: Path, sha256: str, retrain: str, *, shown: Path | None = None
) -> bytes:
    """The payload's bytes, if their sha256 is ``sha256``; InputError (naming ``shown``,
    default ``payload_path``) otherwise."""
    payload = payload_path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != sha256:
        raise InputError(
            payload_path if shown is None else shown,
            "model_sha256",
            "does not match the hash recorded at save",
            retrain,
        )
    return payload
