"""A writer killed with SIGKILL mid-ingestion leaves a store that opens, in which every
committed batch is complete and nothing uncommitted is visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from features.store import FeatureStore
from sim.telemetry import SCHEMAS

REPO = Path(__file__).resolve().parents[2]
ROWS = 4000
KILL_AFTER = 5

CHILD = f"""
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from features.store import FeatureStore
from sim.telemetry import SCHEMAS

schema = SCHEMAS["metrics"]
row_group_size = int(sys.argv[3]) or None
store = FeatureStore(
    Path(sys.argv[1]), views={{}}, lake=Path(sys.argv[2]), row_group_size=row_group_size
)
seq = 0
while True:
    rng = np.random.default_rng(seq)
    minute = seq * {ROWS} + np.arange({ROWS})
    columns = {{}}
    for field in schema:
        if field.name == "timestamp":
            columns[field.name] = pa.array(
                np.datetime64("2024-01-01T00:00:00") + minute.astype("timedelta64[m]"),
                type=field.type,
            )
        elif field.name == "pool":
            columns[field.name] = pa.array(["pool-a", "pool-b"] * ({ROWS} // 2))
        elif pa.types.is_int32(field.type):
            columns[field.name] = pa.array(rng.integers(0, 100, {ROWS}).astype(np.int32))
        else:
            columns[field.name] = pa.array(rng.random({ROWS}))
    store.ingest_batch("crash-run", "metrics", seq, pa.table(columns, schema=schema))
    print(seq, flush=True)  # only after the commit
    seq += 1
"""


@pytest.mark.parametrize("row_group_size", [0, 2048], ids=["connect", "attach-small-groups"])
def test_sigkill_during_ingestion_leaves_complete_batches(
    tmp_path: Path, row_group_size: int
) -> None:
    db, lake = tmp_path / "store.duckdb", tmp_path / "lake"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(lake), str(row_group_size)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: list[int] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 120
        while len(printed) < KILL_AFTER:
            line = child.stdout.readline()
            if not line:
                assert child.stderr is not None
                pytest.fail(f"writer exited early: {child.stderr.read()[-2000:]}")
            printed.append(int(line))
            assert time.monotonic() < deadline, "writer too slow"
        os.kill(child.pid, signal.SIGKILL)  # the writer is inside its next batch
        rest, _ = child.communicate(timeout=60)
        printed += [int(x) for x in rest.split()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert printed == list(range(len(printed)))

    reopen = FeatureStore(db, views={}, lake=lake, row_group_size=row_group_size or None)
    with reopen as store:  # opens (WAL replayed)
        ledger = store.batches("crash-run")
        committed = ledger["seq"].tolist()
        assert set(printed) <= set(committed)  # nothing committed is lost
        assert committed == list(range(len(committed)))
        assert (ledger["rows"] == ROWS).all()
        # Re-sending a committed batch adds nothing; the lost one can be sent again.
        assert not store.ingest_batch("crash-run", "metrics", committed[-1], _empty_metrics())
    with duckdb.connect(str(db), read_only=True) as conn:
        per_batch = dict(
            conn.execute(
                "SELECT _batch, count(*) FROM raw_metrics WHERE run_id = 'crash-run' GROUP BY ALL"
            ).fetchall()
        )
        orphans = conn.execute(
            "SELECT count(*) FROM raw_metrics r ANTI JOIN _batches b "
            "ON b.run_id = r.run_id AND b.stream = 'metrics' AND b.seq = r._batch"
        ).fetchall()[0][0]
    assert per_batch == dict.fromkeys(committed, ROWS)  # every committed batch complete
    assert orphans == 0  # no rows of a batch without a ledger row
    # Every committed batch is in the lake, whole; no temporary file is left visible.
    assert not any(p.name.endswith(".tmp") for p in lake.rglob("*"))
    with duckdb.connect() as conn:
        lake_rows = dict(
            conn.execute(
                "SELECT CAST(regexp_extract(filename, 'batch-(\\d+)', 1) AS INTEGER), count(*) "
                "FROM read_parquet($glob, filename = true) GROUP BY ALL",
                {"glob": str(lake / "metrics" / "*" / "*" / "*.parquet")},
            ).fetchall()
        )
    # (The killed batch's files, if it got that far, were swept when the store opened.)
    assert lake_rows == dict.fromkeys(committed, ROWS)


def _empty_metrics() -> pa.Table:
    return SCHEMAS["metrics"].empty_table()
