"""``opsbench train security``: the shipped analyser registered with its recording figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelRef
from agents.security.artefact import load_folder
from bench import security_model
from opsbench_testing import run_main


def test_train_security_registers_the_analyser_that_loads_back(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    small_spec: Any,
    small_params: dict[str, Any],
) -> None:
    monkeypatch.setattr(security_model, "SHIPPED_SPEC", small_spec)
    monkeypatch.setattr(security_model, "SHIPPED_PARAMS", small_params)
    monkeypatch.setenv("OPSBENCH_MODEL_DIR", str(tmp_path / "cache"))
    reg = tmp_path / "reg"
    code, out, err = run_main(capsys, ["train", "security", "--registry", str(reg), "--json"])
    assert code == 0, err
    record = json.loads(out)
    assert record["ref"] == "security-shipped/1" and record["agent"] == "security"
    assert 0 <= record["metrics"]["recording_recall"] <= 1
    registry = open_registry(reg)
    version = registry.resolve(ModelRef.parse("security-shipped"))
    key = security_model.cache_key(small_spec, small_params, False)
    assert version.card.params["training_key"] == key
    analyser = load_folder(registry.fetch(version, tmp_path / "fetched"))
    assert analyser.threshold_ == pytest.approx(record["metrics"]["threshold"])
