"""The same scenario and seed give byte-identical telemetry, also in another process."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import runner


def _sha(scenario: str, seed: int, days: float) -> str:
    return str(runner.run(runner.prepare_run(scenario, seed=seed, days=days))["telemetry_sha256"])


def test_same_seed_same_hash_in_process() -> None:
    assert _sha("spot-storm", 11, 2.0) == _sha("spot-storm", 11, 2.0)


def test_other_seed_other_hash() -> None:
    assert _sha("spot-storm", 11, 2.0) != _sha("spot-storm", 12, 2.0)


def test_same_hash_in_a_second_process() -> None:
    here = _sha("default", 5, 1.0)
    code = (
        "import json; from bench import runner; "
        "p = runner.prepare_run('default', seed=5, days=1.0); "
        "print(json.dumps(runner.run(p)['telemetry_sha256']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == here
