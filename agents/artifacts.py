"""What every saved model folder shares: written atomically, read back only when its
metadata validates and its payload's sha256 is the one recorded at save.

A model folder holds ``metadata.json`` (a frozen pydantic model, with the payload's
``model_sha256``) and one payload file. :func:`staging_folder` / :func:`publish` write
it in a hidden sibling and move it into place, so a crash never leaves half a model;
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

from sim.errors import InputError

M = TypeVar("M", bound=BaseModel)


def staging_folder(folder: Path) -> Path:
    """A fresh hidden sibling of ``folder`` to write a model into."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    staging.mkdir(exist_ok=True)
    return staging


def publish(staging: Path, folder: Path) -> None:
    """Replace ``folder`` (if any) by the finished ``staging`` folder."""
    if folder.exists():
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()
    os.replace(staging, folder)


def read_metadata(meta_path: Path, model: type[M], retrain: str) -> M:
    """``meta_path`` parsed and validated as ``model``; InputError otherwise."""
    try:
        return model.model_validate(json.loads(meta_path.read_text()))
    except json.JSONDecodeError as exc:
        problem = f"not JSON ({exc.msg}, line {exc.lineno})"
        raise InputError(meta_path, "", problem, retrain) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise InputError(meta_path, where, err["msg"], retrain) from None


def verified_payload(payload_path: Path, sha256: str, retrain: str) -> bytes:
    """The payload's bytes, if their sha256 is ``sha256``; InputError otherwise."""
    payload = payload_path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != sha256:
        raise InputError(
            payload_path, "model_sha256", "does not match the hash recorded at save", retrain
        )
    return payload
