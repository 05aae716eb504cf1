"""No package module can unpickle: every source file under the packages is parsed and
searched for calls that would run a pickle's code (``pickle.load(s)``, an
``Unpickler``, ``joblib.load``, ``pandas.read_pickle``, ``torch.load`` without
``weights_only=True``, ``numpy.load`` with ``allow_pickle`` not ``False``), whatever
name the module was imported under. A future call fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("agents", "bench", "sim", "features", "scenarios", "adapters")
PICKLERS = ("pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib")
"""Modules whose ``load`` / ``loads`` / ``Unpickler`` unpickle."""
UNPICKLING = ("load", "loads", "Unpickler")


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted name it stands for, from every import in the module."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                names[local] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(func: ast.expr, aliases: dict[str, str]) -> str | None:
    """The dotted name a call's function stands for (``np.load`` -> ``numpy.load``)."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    parts.append(aliases.get(func.id, func.id))
    return ".".join(reversed(parts))


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
        for k in call.keywords
    )


def unpickling_calls(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: call`` for every call in ``source`` that may unpickle."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name is None:
            continue
        module, _, attr = name.rpartition(".")
        bad = (
            (module.split(".")[0] in PICKLERS and attr in UNPICKLING)
            or name == "pandas.read_pickle"
            or (name == "torch.load" and not _keyword_is(node, "weights_only", True))
            or (
                name == "numpy.load"
                and any(k.arg == "allow_pickle" for k in node.keywords)
                and not _keyword_is(node, "allow_pickle", False)
            )
        )
        if bad:
            found.append(f"{filename}:{node.lineno}: {name}")
    return found


def package_sources() -> list[Path]:
    files = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 50, "the packages were not found"
    return files


def test_no_package_module_can_unpickle() -> None:
    found = [
        hit
        for path in package_sources()
        for hit in unpickling_calls(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    ]
    assert found == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle\npickle.loads(b'')",
        "import pickle as p\np.load(f)",
        "from pickle import loads\nloads(b'')",
        "from pickle import loads as l\nl(b'')",
        "import pickle\npickle.Unpickler(f).load()",
        "import cloudpickle\ncloudpickle.loads(b'')",
        "import joblib\njoblib.load('m.joblib')",
        "import pandas as pd\npd.read_pickle('x')",
        "import torch\ntorch.load(f)",
        "import torch\ntorch.load(f, weights_only=False)",
        "from torch import load\nload(f)",
        "import numpy as np\nnp.load(f, allow_pickle=True)",
        "import numpy\nnumpy.load(f, allow_pickle=flag)",
    ],
)
def test_the_scan_finds_every_form_of_unpickling(snippet: str) -> None:
    assert len(unpickling_calls(snippet)) == 1


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle\npickle.dumps(x)",
        "import torch\ntorch.load(f, weights_only=True)",
        "import numpy as np\nnp.load(f)",
        "import numpy as np\nnp.load(f, allow_pickle=False)",
        "import json\njson.loads(s)",
        "import skops.io as sio\nsio.loads(b, trusted=['a.B'])",
    ],
)
def test_the_scan_passes_safe_calls(snippet: str) -> None:
    assert unpickling_calls(snippet) == []
