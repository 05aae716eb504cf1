"""The shipped scenarios and the real data they replay, as package data.

``scenarios/*.yaml`` are the shipped scenario files; ``scenarios/data/`` holds the load
traces, spot-market data, NAB split and security recordings they and the benchmarks read
(each folder's README gives provenance and licence). Code finds them through
:func:`data_path` / :func:`scenario_files`, which go through :mod:`importlib.resources`, so
they are found the same way in a source checkout and in an installed wheel.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_dir() -> Path:
    """The folder of this package (scenario files and ``data/``) on the file system.

    Raises
    ------
    RuntimeError
        If the package is not installed as plain files (e.g. imported from a zip): the
        simulator reads its data with ordinary file I/O.
    """
    root = files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(
            f"opsbench's scenarios package is not on the file system ({root!r}); install "
            "the wheel (pip install) instead of importing it from an archive"
        )
    return root


def data_path(*parts: str) -> Path:
    """A path under ``scenarios/data/`` (e.g. ``data_path("spot", "traces")``)."""
    return package_dir().joinpath("data", *parts)
