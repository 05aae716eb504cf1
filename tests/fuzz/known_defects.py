"""Defects the fuzz found in files other engineers are changing (issue #12), not fixed here.

Each has a minimal reproducer marked ``xfail(strict=True)`` in ``test_known_defects.py``;
the fuzz tests count a hit instead of failing. Whoever fixes one removes its xfail marker
and its entry here (the fuzz then checks that input like any other). A crash names the file
it escapes from (the last project frame on the stack).
"""

from __future__ import annotations

from pathlib import Path

from fuzz.outcomes import KnownDefect
from fuzz.seeds import SEED_SCENARIO_ID

OWN_COST_MODEL = Path(".opsbench", "models", "cost", SEED_SCENARIO_ID)

EVENTS_DEEP_NESTING = KnownDefect(
    "events: deep JSON nesting", RecursionError, "bench/cli/security.py"
)
LABELS_NOT_UTF8 = KnownDefect("labels: not UTF-8", UnicodeDecodeError, "bench/cli/security.py")
AVAILABILITY_DEEP_NESTING = KnownDefect(
    "availability: deep nesting", RecursionError, "sim/market.py"
)
METADATA_NOT_UTF8 = KnownDefect(
    "metadata.json: not UTF-8", UnicodeDecodeError, "agents/artifacts.py"
)
METADATA_DEEP_NESTING = KnownDefect(
    "metadata.json: deep nesting", RecursionError, "agents/artifacts.py"
)
RUN_FOLDER_UNREADABLE = KnownDefect(
    "replay folder: bad Parquet / summary", Exception, "features/offline.py"
)
RUN_FOLDER_STORE_WRITTEN = KnownDefect("replay folder: store left on refusal", leftover="store")
TRAINING_LABEL_OVERFLOW = KnownDefect("label beyond int64", OverflowError, "features/offline.py")
WINDOWED_GAUSSIAN_OVERFLOW = KnownDefect("gaussian: NaN scores", AssertionError, "bench/nab_run.py")
COST_MODEL_SILENT_FALLBACK = KnownDefect(
    "cost model folder without metadata.json: shipped model used",
    accepted_wrongly=lambda result: (
        not (result.workdir / OWN_COST_MODEL / "metadata.json").is_file()
    ),
)
