"""Bad input to ``opsbench features``: one line, exit 2, nothing written.

A damaged replay folder is refused before the store is opened (no store file appears,
an existing store keeps exactly what it held); a ``--store`` that is not a DuckDB file,
an ``--out`` that is a folder, and a store another process has open are each one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import FeatureStoreError
from features.offline import run_id_from_summary
from features.store import FeatureStore
from features.views import VIEWS
from opsbench_testing import run_main

REPO = Path(__file__).resolve().parents[2]


def assert_one_line(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsbench: error: "), err
    assert "Traceback" not in err + out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def store_contents(path: Path) -> dict[str, Any]:
    """What a closed store file holds: rows of every table, the ledgers."""
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}
        batches = conn.execute("SELECT * FROM _batches ORDER BY ALL").fetchall()
    return {"counts": counts, "batches": batches}


def rewrite(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def sub_second_times(table: pa.Table) -> pa.Table:
    times = table.column("timestamp").cast(pa.timestamp("ms"))
    shifted = pa.array(times.to_numpy() + np.timedelta64(500, "ms"), type=pa.timestamp("ms"))
    return table.set_column(table.schema.get_field_index("timestamp"), "timestamp", shifted)


def null_time(table: pa.Table) -> pa.Table:
    times = table.column("timestamp").to_pylist()
    times[0] = None
    index = table.schema.get_field_index("timestamp")
    return table.set_column(
        index, "timestamp", pa.array(times, type=table.schema.field(index).type)
    )


DAMAGE: dict[str, tuple[str, Callable[[Path], object], str]] = {
    # case: (file, damage, words the error names besides the file)
    "truncated": ("capacity.parquet", truncate, "not a readable Parquet file"),
    "empty": ("events.parquet", lambda p: p.write_bytes(b""), "not a readable Parquet file"),
    "missing-column": (
        "events.parquet",
        lambda p: rewrite(p, lambda t: t.drop_columns(["reason"])),
        "column reason",
    ),
    "extra-column": (
        "billing.parquet",
        lambda p: rewrite(p, lambda t: t.append_column("extra", pa.array(np.zeros(len(t))))),
        "column extra",
    ),
    "wrong-type": (
        "capacity.parquet",
        lambda p: rewrite(
            p,
            lambda t: t.set_column(
                t.schema.get_field_index("nodes_running"),
                "nodes_running",
                t.column("nodes_running").cast(pa.string()),
            ),
        ),
        "column nodes_running",
    ),
    "sub-second-times": ("capacity.parquet", lambda p: rewrite(p, sub_second_times), "row group 0"),
    "null-time": ("events.parquet", lambda p: rewrite(p, null_time), "column timestamp"),
    "rows-not-as-summary": (
        "capacity.parquet",
        lambda p: rewrite(p, lambda t: t.slice(0, len(t) // 2)),
        "summary.json says",
    ),
}


@pytest.fixture
def damaged(request: pytest.FixtureRequest, short_replay: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the short replay's folder with one file damaged; (folder, file name)."""
    name, damage, _ = DAMAGE[request.param]
    run = tmp_path / "run"
    shutil.copytree(short_replay, run)
    damage(run / name)
    return run, name


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_a_damaged_run_folder_is_refused_before_anything_is_written(
    damaged: tuple[Path, str],
    other_replay: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    run, name = damaged
    words = DAMAGE[request.node.callspec.params["damaged"]][2]
    fresh = tmp_path / "fresh" / "store.duckdb"
    assert_one_line(
        *run_main(capsys, ["features", "build", str(run), "--store", str(fresh)]), name, words
    )
    assert not fresh.exists() and not fresh.parent.exists()

    held = tmp_path / "held" / "store.duckdb"
    code, _, err = run_main(capsys, ["features", "build", str(other_replay), "--store", str(held)])
    assert code == 0, err
    before = store_contents(held)
    assert_one_line(
        *run_main(capsys, ["features", "build", str(run), "--store", str(held)]), name, words
    )
    assert store_contents(held) == before


def test_training_set_with_a_store_that_is_not_duckdb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "notes.txt"
    store.write_text("not a database\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("run_id,pool,timestamp,y\nr,spot,2024-01-01T01:00:00,1\n")
    out = tmp_path / "out" / "train.parquet"
    args = ["features", "training-set", "--view", "infrastructure_metrics", "--labels", str(labels)]
    result = run_main(capsys, [*args, "--out", str(out), "--store", str(store)])
    assert_one_line(*result, str(store), "not a DuckDB database file")
    assert store.read_text() == "not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "notes.txt"]


def test_training_set_with_out_an_existing_folder(
    short_replay: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store.duckdb"
    code, _, err = run_main(capsys, ["features", "build", str(short_replay), "--store", str(store)])
    assert code == 0, err
    run_id = run_id_from_summary(json.loads((short_replay / "summary.json").read_text()))
    labels = tmp_path / "labels.csv"
    labels.write_text(f"run_id,pool,timestamp,y\n{run_id},spot,2024-01-01T01:00:00,1\n")
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["features", "training-set", "--view", "infrastructure_metrics", "--labels", str(labels)]
    result = run_main(capsys, [*args, "--out", str(out), "--store", str(store)])
    assert_one_line(*result, str(out), "--out", "is a folder")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    # and a good --out works
    good = tmp_path / "sets" / "train.parquet"
    code, _, err = run_main(capsys, [*args, "--out", str(good), "--store", str(store)])
    assert code == 0, err
    assert pq.read_table(good).num_rows == 1


HOLDER = """
import sys, time
import duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def locked_store(tmp_path: Path) -> Iterator[Path]:
    """A DuckDB file another process has open for writing."""
    path = tmp_path / "locked" / "store.duckdb"
    path.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield path
    finally:
        holder.kill()
        holder.wait()


def test_a_locked_store_is_one_line(
    locked_store: Path, short_replay: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FeatureStoreError) as info:
        FeatureStore(locked_store, views=VIEWS)
    message = str(info.value)
    assert "\n" not in message and str(locked_store) in message
    assert "another process" in message and "--store" in message
    result = run_main(
        capsys, ["features", "build", str(short_replay), "--store", str(locked_store)]
    )
    assert_one_line(*result, str(locked_store), "another process")
