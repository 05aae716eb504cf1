"""Running a script in a fresh interpreter on this tree (what a module imports can only be
seen there: the test process has imported everything already)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_script(script: str, *args: str) -> str:
    """``python -c script args...`` with this tree on the path; its stdout, stripped
    (the script must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
