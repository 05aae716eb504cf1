"""A run killed mid-write (SIGKILL) leaves its hidden ``.NAME.partial-PID`` folder behind;
the next run that writes the same output removes it (and leaves a live writer's alone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from opsbench_testing import make_nab_corpus, run_main, run_nab


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def plant(target: Path, pid: int) -> Path:
    partial = target.parent / f".{target.name}.partial-{pid}"
    (partial / "half").mkdir(parents=True)
    (partial / "half" / "metrics.parquet").write_bytes(b"PAR1 cut short")
    return partial


def test_replay_out_removes_a_dead_writers_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    stale, live = plant(out, dead_pid()), plant(out, os.getppid())
    code, _, err = run_main(capsys, ["replay", "default", "--days", "0.05", "--out", str(out)])
    assert code == 0, err
    assert (out / "summary.json").is_file()
    assert not stale.exists()
    assert live.exists()  # its writer (our parent) is alive: never touched


def test_anomaly_nab_removes_a_dead_writers_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, windows = make_nab_corpus(tmp_path, ["artificialWithAnomaly/art_daily_jumpsup.csv"])
    out = tmp_path / "results"
    out.mkdir()
    stale = plant(out / "windowed-gaussian", dead_pid())
    code, _, err = run_nab(capsys, data, windows, out, "--detector", "windowed-gaussian")
    assert code == 0, err
    assert (out / "windowed-gaussian" / "artificialWithAnomaly").is_dir()
    assert not stale.exists()
