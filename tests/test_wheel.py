"""The wheel works outside the repository: built from a copy of the sources, installed
into a fresh folder, and run from another directory, it replays the shipped ``default``
scenario with the same telemetry as the source tree (its scenarios and data ship as
package data)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench import runner

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("sim", "agents", "bench", "features", "adapters", "scenarios", "pyproject.toml",
           "README.md")  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built (no network: the venv's setuptools) from a copy of the sources."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(root / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (built,) = (root / "dist").glob("opsbench-*.whl")
    return built


def test_wheel_ships_scenarios_and_data_but_no_tests_or_benchmarks(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "scenarios/default.yaml" in names
    assert "scenarios/data/traces/nasa_http_1995_requests_per_min.csv" in names
    assert "agents/cost/shipped/model.zip" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/benchmarks/"))]


def test_installed_wheel_replays_default_from_another_directory(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # the installed copy comes first; dependencies come from this environment
    env = {k: v for k, v in os.environ.items() if k not in ("OPSBENCH_SCENARIOS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(target)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done

    imports = (
        "import sim, scenarios, bench; print(sim.__file__, scenarios.__file__, bench.__file__)"
    )
    for module_file in run(sys.executable, "-c", imports).stdout.split():
        assert Path(module_file).is_relative_to(target), module_file
    replay = run(str(target / "bin" / "opsbench"), "replay", "default", "--days", "1", "--json")
    summary = json.loads(replay.stdout)
    here = runner.run(runner.prepare_run("default", days=1.0))
    assert summary["telemetry_sha256"] == here["telemetry_sha256"]
    assert summary["run_id"] == here["run_id"]
    assert list(elsewhere.iterdir()) == []  # a replay without --out writes nothing
