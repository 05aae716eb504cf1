"""The replay's security analyser comes from the registry the user gave (``--registry``,
i.e. :func:`bench.runner.attach_model`'s ``models_dir``), not from the default one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.lifecycle.open import open_registry
from bench import runner, security_model
from bench.security_data import TrainingSpec

SMALL_SPEC = TrainingSpec(seed=3, accounts=2, days=0.5, campaigns_per_account=4)


def test_the_security_model_comes_from_the_given_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_params: dict[str, Any]
) -> None:
    monkeypatch.setattr(security_model, "SHIPPED_SPEC", SMALL_SPEC)
    monkeypatch.setattr(security_model, "SHIPPED_PARAMS", small_params)
    default, given = tmp_path / "default", tmp_path / "given"
    monkeypatch.setenv("OPSBENCH_MODEL_DIR", str(default))
    prepared = runner.prepare_run("new-service-account", days=0.05)
    runner.attach_model(prepared, models_dir=given)
    runner.run(prepared)
    names = {v.name for v in open_registry(given).versions(security_model.SECURITY_MODEL_NAME)}
    assert names == {security_model.SECURITY_MODEL_NAME}
    # the default folder holds at most the training cache, no registry
    assert not (default / "mlflow.db").exists()
