"""Run identity: a store never mixes up two replays.

Two replays with the same scenario, policy, seed and length but other inputs (here,
other spot prices) used to share a run id, and building the second kept the first's
rows. A run id now comes from the summary (its ``run_id``, or the legacy id plus the
telemetry hash), and the run ledger refuses a run id it holds with other telemetry,
whether built from files or streamed, leaving the store unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from bench import runner
from features.errors import FeatureInputError
from features.offline import build_from_run_dir, run_id_from_summary, run_id_of
from features.sink import FeatureStoreSink
from features.store import FeatureStore
from features.views import VIEWS
from opsbench_testing import run_main
from sim.telemetry import SCHEMAS

DAYS = 0.1  # as the replays of conftest.py


def summary_of(run: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((run / "summary.json").read_text())
    return loaded


def contents(path: Path) -> dict[str, Any]:
    """Everything a closed store file holds that a run changes."""
    with duckdb.connect(str(path), read_only=True) as conn:
        out: dict[str, Any] = {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("_batches", "_runs", "_materialized")
        }
        for view in VIEWS:
            out[view] = conn.execute(f"SELECT count(*) FROM fv_{view}").fetchall()
        out["raw"] = conn.execute("SELECT count(*) FROM raw_capacity").fetchall()
    return out


def test_two_replays_that_differ_only_in_inputs_are_two_runs(
    short_replay: Path, other_replay: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = summary_of(short_replay), summary_of(other_replay)
    assert run_id_of(first) == run_id_of(second)  # the legacy id cannot tell them apart
    assert first["telemetry_sha256"] != second["telemetry_sha256"]
    store = tmp_path / "store.duckdb"
    for run in (short_replay, other_replay):
        code, out, err = run_main(capsys, ["features", "build", str(run), "--store", str(store)])
        assert code == 0, err
        assert run_id_from_summary(summary_of(run)) in out
    with FeatureStore(store, views=VIEWS) as s:
        ids = sorted(s.batches()["run_id"].unique())
        assert ids == sorted(run_id_from_summary(x) for x in (first, second))
        for summary in (first, second):
            run_id = run_id_from_summary(summary)
            assert (
                s.row_counts(run_id)["cost_optimization"] == summary["telemetry_rows"]["capacity"]
            )
            record = s.runs.get(run_id)
            assert record is not None and record.complete
            assert record.telemetry_sha256 == summary["telemetry_sha256"]


def test_the_same_run_twice_adds_nothing(short_replay: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    with FeatureStore(store, views=VIEWS) as s:
        first = build_from_run_dir(short_replay, s)
    before = contents(store)
    with FeatureStore(store, views=VIEWS) as s:
        assert build_from_run_dir(short_replay, s) == first
    assert contents(store) == before


def test_a_run_id_held_with_other_telemetry_is_refused(
    short_replay: Path, other_replay: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Summaries that name the same ``run_id`` (as a content-derived id would for the same
    inputs) but whose telemetry differs: the second build is refused, store unchanged."""
    runs = []
    for source in (short_replay, other_replay):
        run = tmp_path / source.parent.name
        shutil.copytree(source, run)
        summary = summary_of(run) | {"run_id": "same-inputs-0123456789ab"}
        (run / "summary.json").write_text(json.dumps(summary))
        runs.append(run)
    store = tmp_path / "store.duckdb"
    code, _, err = run_main(capsys, ["features", "build", str(runs[0]), "--store", str(store)])
    assert code == 0, err
    before = contents(store)
    code, out, err = run_main(capsys, ["features", "build", str(runs[1]), "--store", str(store)])
    assert code == 2 and len(err.splitlines()) == 1, (out, err)
    assert "same-inputs-0123456789ab" in err and "other telemetry" in err
    assert str(store) in err
    assert contents(store) == before


def test_different_replays_stream_under_their_own_run_ids(
    dearer_spot_prices: Path, tmp_path: Path
) -> None:
    """The runner names a run by its content: the same replay twice adds nothing; a replay
    with other spot prices (same scenario, policy, seed and length) is a run of its own."""
    store = tmp_path / "store.duckdb"
    first = runner.run(runner.prepare_run("spot-storm", days=DAYS), store=store)
    before = contents(store)
    runner.run(runner.prepare_run("spot-storm", days=DAYS), store=store)
    assert contents(store) == before
    other = runner.run(
        runner.prepare_run("spot-storm", days=DAYS, spot_prices=dearer_spot_prices), store=store
    )
    assert other["run_id"] != first["run_id"]
    runs = {row[0] for row in contents(store)["_runs"]}
    assert {first["run_id"], other["run_id"]} <= runs


def test_a_stream_of_a_run_id_held_with_other_telemetry_is_refused(
    dearer_spot_prices: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two different replays streamed under one run id (forced here; ids come from the
    content): the second writes nothing and is refused at its end."""
    monkeypatch.setattr(runner.PreparedRun, "run_id", property(lambda self: "one-id"))
    store = tmp_path / "store.duckdb"
    runner.run(runner.prepare_run("spot-storm", days=DAYS), store=store)
    before = contents(store)
    out = tmp_path / "out"
    dearer = runner.prepare_run("spot-storm", days=DAYS, spot_prices=dearer_spot_prices)
    with pytest.raises(FeatureInputError, match="other telemetry") as info:
        runner.run(dearer, store=store, out=out)
    assert "\n" not in str(info.value)
    assert contents(store) == before
    assert not out.exists()


def test_the_sink_records_the_run_and_checks_a_held_one(tmp_path: Path) -> None:
    with FeatureStore(tmp_path / "s.duckdb", views=VIEWS) as store:
        sink = FeatureStoreSink(store, "r-1")
        assert not sink.already_held
        record = store.runs.get("r-1")
        assert record is not None and not record.complete and record.telemetry_sha256 is None
        sink.write("metrics", pa.RecordBatch.from_pylist([], schema=SCHEMAS["metrics"]))
        sink.close()
        sink.finish("a" * 64)
        record = store.runs.get("r-1")
        assert record is not None and record.complete and record.telemetry_sha256 == "a" * 64
        again = FeatureStoreSink(store, "r-1")
        assert again.already_held
        again.finish("a" * 64)  # the same run: fine
        with pytest.raises(FeatureInputError, match="other telemetry"):
            FeatureStoreSink(store, "r-1").finish("b" * 64)
        # A build cannot add to a stream that did not finish, nor a stream to such a build.
        FeatureStoreSink(store, "r-2")
        with pytest.raises(FeatureInputError, match="did not finish"):
            store.runs.begin_build("r-2", "c" * 64)
        assert not store.runs.begin_build("r-3", "c" * 64)
        with pytest.raises(FeatureInputError, match="did not finish"):
            FeatureStoreSink(store, "r-3")
        # Batches from a store made before the ledger: nothing may be added to them.
        store.ingest_batch("r-4", "metrics", 0, SCHEMAS["metrics"].empty_table())
        with pytest.raises(FeatureInputError, match="no recorded telemetry hash"):
            FeatureStoreSink(store, "r-4")
