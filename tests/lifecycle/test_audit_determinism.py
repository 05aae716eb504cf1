"""Same scenario and seed, same lifecycle decisions and telemetry hash: a short variant of
new-service-account (a day and a half, the arrival and the campaign early, the loop's
windows shortened) replayed twice with a small analyser as the shipped one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import runner, security_model
from bench.security_data import TrainingSpec

SMALL_SPEC = TrainingSpec(seed=3, accounts=2, days=0.5, campaigns_per_account=4)
WALL_KEYS = frozenset({"wall_s", "version", "champion", "challenger"})
SHORT = {
    "      at_h: 24                # Tuesday 00:00 UTC": "      at_h: 6",
    "      start_h: 28.5           # running while the analyser is retrained": "      start_h: 9",
    "    reference_h: 24": "    reference_h: 5",
    "    alert_window_h: 6": "    alert_window_h: 2",
    "    shadow_h: 6": "    shadow_h: 3",
    "    cooldown_h: 12": "    cooldown_h: 3\n    threat_accounts: 1",
}


def _without_wall(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_wall(v) for k, v in value.items() if k not in WALL_KEYS}
    if isinstance(value, list):
        return [_without_wall(v) for v in value]
    return value


@pytest.fixture
def short_scenario(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_params: dict[str, Any]
) -> Path:
    monkeypatch.setattr(security_model, "SHIPPED_SPEC", SMALL_SPEC)
    monkeypatch.setattr(security_model, "SHIPPED_PARAMS", small_params)
    monkeypatch.setenv("OPSBENCH_MODEL_DIR", str(tmp_path / "models"))
    text = (repo / "scenarios" / "new-service-account.yaml").read_text()
    for old, new in SHORT.items():
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "data").symlink_to(repo / "scenarios" / "data")
    path = tmp_path / "short.yaml"
    path.write_text(text)
    return path


def test_same_scenario_and_seed_same_decisions_and_telemetry(short_scenario: Path) -> None:
    runs = [runner.run(runner.prepare_run(str(short_scenario), days=1.5)) for _ in range(2)]
    first, second = (_without_wall(r["lifecycle"]) for r in runs)
    model = first["models"][0]
    assert model["drift_detections"] and model["retrains"]  # the loop decided something
    assert first == second
    assert runs[0]["telemetry_sha256"] == runs[1]["telemetry_sha256"]
    assert runs[0]["security"] == runs[1]["security"]
