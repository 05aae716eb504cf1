"""Two processes (here: threads, each with its own lock handle) asking for the same cached
model at once train it once; the second waits and loads what the first wrote."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bench import security_model


def test_concurrent_callers_train_the_security_model_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_analyser: Any
) -> None:
    calls: list[float] = []

    def slow_train(*_: Any, **__: Any) -> Any:
        calls.append(time.monotonic())
        time.sleep(0.5)  # long enough that the second caller arrives while this trains
        return small_analyser

    monkeypatch.setattr(security_model, "train", slow_train)
    got: list[Any] = []

    def ask() -> None:
        got.append(security_model.load_or_train(model_dir=tmp_path))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(got) == 2
    assert {model.threshold_ for model in got} == {small_analyser.threshold_}
    assert len(list(tmp_path.glob("security-*.skops"))) == 1
