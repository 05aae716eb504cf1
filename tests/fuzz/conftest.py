"""Fixtures of the fuzz suite: the seed inputs (built once per session), a small security
analyser (tests/conftest.py), and one-thread numerics.

Each fuzz test copies a seed into a fresh working folder per example, mutates it
(:mod:`fuzz.mutations`), runs the cheapest command that reads it and checks the outcome
(:mod:`fuzz.outcomes`). The seeds themselves are never modified.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from fuzz.seeds import Seeds, build_seeds


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    """Every seed input, built once."""
    return build_seeds(tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.fixture()
def scored_by_small_model(monkeypatch: pytest.MonkeyPatch, small_analyser: Any) -> None:
    """``security score`` uses the small analyser instead of training the shipped one."""
    import bench.security_model

    monkeypatch.setattr(bench.security_model, "load_or_train", lambda **_: small_analyser)


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """scikit-learn and torch on one thread: the machine is shared, and oversubscribed
    OpenMP threads make a tiny fit take seconds."""
    with threadpool_limits(1):
        yield
