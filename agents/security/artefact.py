"""The security analyser on disk: skops of explicitly trusted types, never a pickle.

A registered security model is a folder::

    analyser.skops   the fitted :class:`~agents.security.analyser.SecurityAnalyser`
    analyser.json    what shaped it: training key, spec, hyper-parameters, threshold

Loading refuses, in one line naming the file, anything that is not a skops file of a
``SecurityAnalyser`` built only from
:data:`~agents.lifecycle.artefacts.SECURITY_TRUSTED` types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.lifecycle.artefacts import SECURITY_TRUSTED, load_skops, loads_skops, save_skops
from agents.security.analyser import SecurityAnalyser

ANALYSER_FILE = "analyser.skops"
RECORD_FILE = "analyser.json"
REWRITE = "a security model written by opsbench (delete the file to retrain it)"


def save_analyser(model: SecurityAnalyser, path: Path) -> bytes:
    """Write ``model`` to ``path`` in the skops format (atomically); returns the bytes."""
    return save_skops(model, path)


def load_analyser(path: Path) -> SecurityAnalyser:
    """The analyser saved at ``path`` by :func:`save_analyser`; InputError (one line
    naming the file) on anything else."""
    return load_skops(path, SECURITY_TRUSTED, expect=SecurityAnalyser, allowed=REWRITE)


def loads_analyser(data: bytes, *, source: Path) -> SecurityAnalyser:
    """:func:`load_analyser` of bytes already read from ``source``."""
    return loads_skops(
        data, SECURITY_TRUSTED, expect=SecurityAnalyser, source=source, allowed=REWRITE
    )


def save_folder(model: SecurityAnalyser, folder: Path, *, record: Mapping[str, Any]) -> Path:
    """``folder`` (created) with the analyser and ``record`` (what shaped it, plus the
    threshold): the artefact the registry keeps for a security model."""
    folder.mkdir(parents=True, exist_ok=True)
    save_analyser(model, folder / ANALYSER_FILE)
    text = json.dumps({**record, "threshold": model.threshold_}, indent=2, default=str)
    (folder / RECORD_FILE).write_text(text + "\n", encoding="utf-8")
    return folder


def load_folder(folder: Path) -> SecurityAnalyser:
    """The analyser of a folder written by :func:`save_folder`."""
    return load_analyser(folder / ANALYSER_FILE)
