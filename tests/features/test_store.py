"""The feature store: idempotent atomic ingestion, the lake, bad input, online and
incremental materialisation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import features.layout as layout_module
import features.online_table as online_table_module
from features.database import StoreDatabase
from features.errors import FeatureInputError, FeatureStoreError
from features.schema import Feature, FeatureView
from features.store import FeatureStore
from sim.errors import InputError
from sim.telemetry import SCHEMAS

T0 = datetime(2024, 3, 1, 23, 0, 0)  # an hour before midnight: batches can span two days
POOLS = ("on-demand", "spot")

CPU = FeatureView(
    name="cpu",
    entity=("run_id", "pool"),
    event_time="event_time",
    ttl=timedelta(minutes=5),
    features=(
        Feature("util", "DOUBLE", "cpu utilisation, 0..1"),
        Feature("nodes", "INTEGER", "running nodes"),
    ),
    sources=("metrics",),
    available_after=timedelta(seconds=60),
    transformation="""
SELECT run_id, pool, "timestamp" + INTERVAL 60 SECOND AS event_time,
       cpu_utilization AS util, node_count AS nodes
FROM raw_metrics
WHERE run_id = $run_id
  AND "timestamp" + INTERVAL 60 SECOND > $since
  AND "timestamp" + INTERVAL 60 SECOND <= $until
""",
)
SCORES = FeatureView(
    name="scores",
    entity=("host",),
    event_time="event_time",
    ttl=timedelta(hours=1),
    features=(
        Feature("score", "DOUBLE"),
        Feature("count", "BIGINT"),
        Feature("label", "VARCHAR"),
        Feature("flag", "BOOLEAN"),
    ),
)
VIEWS = {"cpu": CPU, "scores": SCORES}


def metrics_batch(minutes: int, start_minute: int = 0, *, seed: int = 0) -> pa.Table:
    """``minutes`` minutes of per-pool metrics rows (two pools), starting at T0 + start."""
    rng = np.random.default_rng(seed)
    schema = SCHEMAS["metrics"]
    n = minutes * len(POOLS)
    minute = start_minute + np.arange(n) // len(POOLS)
    stamps = np.datetime64(T0, "s") + minute.astype("timedelta64[m]")
    columns: dict[str, pa.Array] = {}
    for field in schema:
        if field.name == "timestamp":
            columns[field.name] = pa.array(stamps, type=field.type)
        elif field.name == "sim_time_s":
            columns[field.name] = pa.array(minute * 60.0)
        elif field.name == "pool":
            columns[field.name] = pa.array(np.array(POOLS)[np.arange(n) % len(POOLS)])
        elif pa.types.is_int32(field.type):
            columns[field.name] = pa.array(rng.integers(0, 50, n).astype(np.int32))
        else:
            columns[field.name] = pa.array(rng.random(n))
    return pa.table(columns, schema=schema)


def query(path: Path, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Run ``sql`` on a closed store's file, read-only."""
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, params or {}).fetchall()


def counts(path: Path) -> dict[str, int]:
    """Rows of every table the store writes."""
    tables = ["raw_metrics", "_batches", "fv_cpu", "online_cpu", "fv_scores", "online_scores"]
    return {t: query(path, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "db" / "store.duckdb", tmp_path / "lake"


@pytest.fixture
def store(paths: tuple[Path, Path]) -> Iterator[FeatureStore]:
    db, lake = paths
    with FeatureStore(db, views=VIEWS, lake=lake) as s:
        yield s


def scores_rows(hosts: list[str], minutes: list[int], score: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "host": hosts,
            "event_time": [T0 + timedelta(minutes=m) for m in minutes],
            "score": score,
            "count": list(range(len(hosts))),
            "label": [f"l{i}" for i in range(len(hosts))],
            "flag": [i % 2 == 0 for i in range(len(hosts))],
        }
    )


# ---------------------------------------------------------------- ingestion


def test_reingesting_a_batch_adds_nothing(store: FeatureStore, paths: tuple[Path, Path]) -> None:
    first, second = metrics_batch(30), metrics_batch(30, 30, seed=1)
    assert store.ingest_batch("r1", "metrics", 0, first) is True
    assert store.ingest_batch("r1", "metrics", 1, second) is True
    assert store.ingest_batch("r1", "metrics", 0, first) is False
    assert store.ingest_batch("r1", "metrics", 1, second.to_batches()[0]) is False
    assert store.ingest_batch("r2", "metrics", 0, first) is True  # another run: new batch
    ledger = store.batches("r1")
    assert list(ledger["seq"]) == [0, 1]
    assert list(ledger["rows"]) == [60, 60]
    store.close()
    db, _ = paths
    assert counts(db)["raw_metrics"] == 180
    per_seq = query(
        db,
        "SELECT _batch, count(*) FROM raw_metrics WHERE run_id = 'r1' GROUP BY ALL ORDER BY 1",
    )
    assert per_seq == [(0, 60), (1, 60)]


def test_lake_partitioned_by_run_and_day_and_idempotent(
    store: FeatureStore, paths: tuple[Path, Path]
) -> None:
    _, lake = paths
    batch = metrics_batch(120)  # 23:00 .. 00:59: two days
    assert store.ingest_batch("run-a", "metrics", 7, batch)
    day1 = lake / "metrics" / "run=run-a" / "day=2024-03-01" / "batch-00000007.parquet"
    day2 = lake / "metrics" / "run=run-a" / "day=2024-03-02" / "batch-00000007.parquet"
    assert day1.is_file() and day2.is_file()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (day1, day2)}
    assert not store.ingest_batch("run-a", "metrics", 7, batch)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (day1, day2)} == before
    # Writing the same batch's files again (as after a crash before the commit) is
    # idempotent by name: same files, same rows.
    assert store.lake is not None
    store.lake.write_batch("metrics", "run-a", 7, batch)
    files = sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file())
    assert files == [
        "metrics/run=run-a/day=2024-03-01/batch-00000007.parquet",
        "metrics/run=run-a/day=2024-03-02/batch-00000007.parquet",
    ]
    with duckdb.connect() as conn:
        rows = conn.execute(
            "SELECT run, CAST(day AS VARCHAR), count(*), min(timestamp), max(timestamp) "
            "FROM read_parquet($glob, hive_partitioning = true) GROUP BY ALL ORDER BY 2",
            {"glob": store.lake.glob("metrics")},
        ).fetchall()
    assert rows == [
        ("run-a", "2024-03-01", 120, T0, datetime(2024, 3, 1, 23, 59)),
        ("run-a", "2024-03-02", 120, datetime(2024, 3, 2), datetime(2024, 3, 2, 0, 59)),
    ]


@pytest.mark.parametrize(
    ("change", "column"),
    [
        (lambda t: t.drop_columns(["pool"]), "pool"),
        (lambda t: t.append_column("extra", pa.array(np.zeros(len(t)))), "extra"),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("node_count"),
                "node_count",
                pa.array(np.zeros(len(t), dtype=np.int64)),
            ),
            "node_count",
        ),
        (
            lambda t: t.set_column(
                0, "timestamp", pa.array(t.column(0).to_numpy().astype("datetime64[ms]"))
            ),
            "timestamp",
        ),
    ],
    ids=["missing", "extra", "wrong-int-type", "wrong-time-unit"],
)
def test_batch_schema_mismatch_is_one_line_and_writes_nothing(
    store: FeatureStore, paths: tuple[Path, Path], change: Any, column: str
) -> None:
    db, lake = paths
    store.ingest_batch("r1", "metrics", 0, metrics_batch(10))
    bad = change(metrics_batch(10, 10))
    with pytest.raises(FeatureInputError) as info:
        store.ingest_batch("r1", "metrics", 1, bad)
    message = str(info.value)
    assert "\n" not in message
    assert "metrics" in message and column in message
    assert isinstance(info.value, InputError)
    assert len(list(lake.rglob("batch-00000001.parquet"))) == 0
    assert list(store.batches("r1")["seq"]) == [0]
    # Nothing half-written: the same seq can still be committed with a good batch.
    assert store.ingest_batch("r1", "metrics", 1, metrics_batch(10, 10))
    store.close()
    assert counts(db)["raw_metrics"] == 40


def test_opening_sweeps_files_of_uncommitted_batches(paths: tuple[Path, Path]) -> None:
    db, lake = paths
    with FeatureStore(db, views=VIEWS, lake=lake) as s:
        s.ingest_batch("r1", "metrics", 0, metrics_batch(10))
        assert s.lake is not None
        # As if a writer died between writing batch 1's files and committing it:
        s.lake.write_batch("metrics", "r1", 1, metrics_batch(10, 10))
        folder = s.lake.partition("metrics", "r1", "2024-03-01")
        (folder / ".batch-00000002.parquet.0123.tmp").write_bytes(b"half")
    with FeatureStore(db, views=VIEWS, lake=lake):
        names = sorted(p.name for p in lake.rglob("*") if p.is_file())
    assert names == ["batch-00000000.parquet"]


def test_bad_stream_run_and_seq(store: FeatureStore) -> None:
    batch = metrics_batch(1)
    with pytest.raises(FeatureInputError, match="unknown stream 'nope'"):
        store.ingest_batch("r1", "nope", 0, batch)
    with pytest.raises(FeatureInputError, match="bad run id"):
        store.ingest_batch("../x", "metrics", 0, batch)
    with pytest.raises(FeatureInputError, match="bad sequence number"):
        store.ingest_batch("r1", "metrics", -1, batch)
    nulls = batch.set_column(0, "timestamp", pa.nulls(len(batch), pa.timestamp("s")))
    with pytest.raises(FeatureInputError, match="null time"):
        store.ingest_batch("r1", "metrics", 0, nulls)
    assert store.batches().empty


# ---------------------------------------------------------------- bad references


@pytest.mark.parametrize(
    ("refs", "words"),
    [
        (["nope:util"], ["nope", "util", "unknown view"]),
        (["cpu:nope"], ["cpu", "nope", "has no feature"]),
        (["cpu"], ["'cpu'", "view:feature"]),
        (["cpu:util:x"], ["cpu:util:x", "view:feature"]),
    ],
)
def test_bad_feature_references_name_view_and_feature(
    store: FeatureStore, refs: list[str], words: list[str]
) -> None:
    labels = pd.DataFrame({"run_id": ["r"], "pool": ["p"], "timestamp": [T0]})
    calls: list[Callable[[], pd.DataFrame]] = [
        lambda: store.get_historical_features(labels, refs),
        lambda: store.get_online_features([{"run_id": "r", "pool": "p"}], refs),
    ]
    for call in calls:
        with pytest.raises(FeatureInputError) as info:
            call()
        assert "\n" not in str(info.value)
        for word in words:
            assert word in str(info.value)


def test_missing_timestamp_or_entity_column(store: FeatureStore) -> None:
    labels = pd.DataFrame({"run_id": ["r"], "pool": ["p"], "ts": [T0]})
    with pytest.raises(FeatureInputError, match=r"'timestamp'.*missing.*cpu:util"):
        store.get_historical_features(labels, ["cpu:util"])
    out = store.get_historical_features(labels, ["cpu:util"], timestamp_column="ts")
    assert out["cpu__util"].isna().all()
    with pytest.raises(FeatureInputError, match=r"'pool'.*view 'cpu'.*cpu:util"):
        store.get_historical_features(
            labels.drop(columns="pool"), ["cpu:util"], timestamp_column="ts"
        )
    with pytest.raises(FeatureInputError, match=r"'pool'.*view 'cpu'"):
        store.get_online_features([{"run_id": "r"}], ["cpu:util"])
    as_text = labels.assign(ts=["2024-01-01"])
    with pytest.raises(FeatureInputError, match=r"'ts'.*does not fit TIMESTAMP"):
        store.get_historical_features(as_text, ["cpu:util"], timestamp_column="ts")


def test_bad_feature_rows_name_view_and_feature_and_write_nothing(
    store: FeatureStore, paths: tuple[Path, Path]
) -> None:
    good = scores_rows(["a", "b"], [0, 1], [1.0, 2.0])
    assert store.write_features("scores", good) == 2
    cases = [
        (good.assign(score=["x", "y"]), "scores:score"),
        (good.drop(columns="label"), "scores:label"),
        (good.assign(count=[1.5, 2.5]), "scores:count"),
        (good.assign(bogus=1), "'bogus'"),
        (good.drop(columns="event_time"), "event_time"),
        (good.assign(host=[None, "b"]), "host"),
    ]
    for rows, words in cases:
        with pytest.raises(FeatureInputError) as info:
            store.write_features("scores", rows)
        assert "scores" in str(info.value) and words in str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(FeatureInputError, match="unknown view 'nope'"):
        store.write_features("nope", good)
    store.close()
    assert counts(paths[0])["fv_scores"] == 2


# ---------------------------------------------------------------- writes, online, PIT


def test_write_features_ties_and_late_rows(store: FeatureStore) -> None:
    # Call 1: a at minutes 0 and 10 (the later duplicate row in one call wins).
    store.write_features("scores", scores_rows(["a", "a", "a"], [0, 10, 10], [1.0, 2.0, 3.0]))
    # Call 2: a late row (minute 5) and a re-write of minute 10: same time, later ingest.
    store.write_features("scores", scores_rows(["a", "a"], [5, 10], [4.0, 5.0]))
    labels = pd.DataFrame(
        {"host": ["a"] * 4, "timestamp": [T0 + timedelta(minutes=m) for m in (0, 7, 10, 80)]}
    )
    out = store.get_historical_features(labels, ["scores:score"])
    assert out["scores__score"].tolist()[:3] == [1.0, 4.0, 5.0]
    assert np.isnan(out["scores__score"].iloc[3])  # 70 min after the last row > ttl 1 h
    online = store.get_online_features([{"host": "a"}], ["scores:score"])
    assert online["scores__score"].tolist() == [5.0]


@pytest.mark.parametrize("preload", [True, False], ids=["preloaded", "fetched-on-miss"])
def test_online_returns_latest_per_entity(
    store: FeatureStore, paths: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, preload: bool
) -> None:
    if not preload:
        monkeypatch.setattr(online_table_module, "ONLINE_PRELOAD_ROWS", 0)
    keys = [{"host": "a"}, {"host": "b"}, {"host": "zz"}]
    refs = ["scores:score", "scores:count", "scores:label", "scores:flag"]
    store.write_features("scores", scores_rows(["a", "b", "a"], [0, 0, 3], [1.0, 2.0, 3.0]))
    first = store.get_online_features(keys, refs)  # loads the cache
    assert first["scores__score"].tolist()[:2] == [3.0, 2.0]
    assert np.isnan(first["scores__score"].iloc[2])
    # A late row for a (older than its latest) changes nothing; a newer b replaces b.
    store.write_features("scores", scores_rows(["a", "b", "zz"], [1, 9, 2], [10.0, 20.0, 30.0]))
    second = store.get_online_features(pd.DataFrame(keys), refs)
    assert second["scores__score"].tolist() == [3.0, 20.0, 30.0]
    assert second["host"].tolist() == ["a", "b", "zz"]
    assert str(second["scores__count"].dtype) == "Int64"
    assert str(second["scores__flag"].dtype) == "boolean"
    assert second["scores__label"].tolist() == ["l2", "l1", "l2"]
    store.close()
    with FeatureStore(paths[0], views=VIEWS) as reopened:  # no cache: served from SQL
        third = reopened.get_online_features(keys, refs)
    pd.testing.assert_frame_equal(third, second)


def test_historical_keeps_order_index_and_types(store: FeatureStore) -> None:
    store.write_features("scores", scores_rows(["a", "b"], [0, 0], [1.0, 2.0]))
    labels = pd.DataFrame(
        {
            "host": ["b", "a", "c", "a"],
            "timestamp": [T0 + timedelta(minutes=1)] * 3 + [T0 - timedelta(minutes=1)],
            "y": [1, 2, 3, 4],
        },
        index=[10, 3, 7, 3],  # duplicates kept as they are
    )
    refs = ["scores:score", "scores:count", "scores:label", "scores:flag"]
    out = store.get_historical_features(labels, refs)
    assert list(out.index) == [10, 3, 7, 3]
    assert out["y"].tolist() == [1, 2, 3, 4]
    assert out["scores__score"].tolist()[:2] == [2.0, 1.0]
    assert out["scores__count"].tolist() == [1, 0, pd.NA, pd.NA]
    assert out["scores__label"].tolist()[:2] == ["l1", "l0"]
    assert out["scores__flag"].tolist() == [False, True, pd.NA, pd.NA]
    arrow = store.get_historical_features(pa.Table.from_pandas(labels), ["scores:score"])
    assert arrow["scores__score"].tolist()[:2] == [2.0, 1.0]
    with pytest.raises(FeatureInputError, match="already exists"):
        store.get_historical_features(out, ["scores:score"])


# ---------------------------------------------------------------- materialisation


def test_materialize_is_incremental(store: FeatureStore, paths: tuple[Path, Path]) -> None:
    store.ingest_batch("r1", "metrics", 0, metrics_batch(30))
    assert store.materialize("cpu", run_id="r1") == 60
    assert store.watermark("cpu", "r1") == T0 + timedelta(minutes=30)
    assert store.materialize("cpu", run_id="r1") == 0
    store.ingest_batch("r1", "metrics", 0, metrics_batch(30))  # a re-sent batch: nothing new
    assert store.materialize("cpu", run_id="r1") == 0
    store.ingest_batch("r1", "metrics", 1, metrics_batch(10, 30, seed=1))
    assert store.materialize("cpu", run_id="r1") == 20
    assert store.materialize("cpu", run_id="other") == 0
    assert store.row_counts("r1") == {"cpu": 80, "scores": 0}
    # The features are the raw values, available one minute after their minute.
    raw = pa.concat_tables([metrics_batch(30), metrics_batch(10, 30, seed=1)]).to_pandas()
    labels = pd.DataFrame(
        {
            "run_id": "r1",
            "pool": raw["pool"],
            "timestamp": raw["timestamp"] + pd.Timedelta(seconds=60),
        }
    )
    out = store.get_historical_features(labels, ["cpu:util", "cpu:nodes"])
    np.testing.assert_array_equal(out["cpu__util"].to_numpy(), raw["cpu_utilization"].to_numpy())
    assert out["cpu__nodes"].tolist() == raw["node_count"].tolist()
    early = labels.assign(timestamp=labels["timestamp"] - pd.Timedelta(seconds=1))
    shifted = store.get_historical_features(early, ["cpu:util"])
    assert shifted["cpu__util"].isna().sum() == 2  # the first minute is not yet available
    online = store.get_online_features([{"run_id": "r1", "pool": "spot"}], ["cpu:util"])
    assert online["cpu__util"].tolist() == [raw["cpu_utilization"].iloc[-1]]
    store.close()
    db, _ = paths
    assert query(db, "SELECT view, run_id, until FROM _materialized") == [
        ("cpu", "r1", T0 + timedelta(minutes=40))
    ]


def test_materialize_rejects_rows_outside_the_window(
    paths: tuple[Path, Path],
) -> None:
    leaky = FeatureView(
        name="cpu",
        entity=CPU.entity,
        event_time=CPU.event_time,
        ttl=CPU.ttl,
        features=CPU.features,
        sources=CPU.sources,
        transformation=CPU.transformation.replace("> $since", ">= $since - INTERVAL 1 HOUR"),
    )
    db, _ = paths
    with FeatureStore(db, views={"cpu": leaky}) as s:
        s.ingest_batch("r1", "metrics", 0, metrics_batch(5))
        assert s.materialize("cpu", run_id="r1") == 8  # minutes 1..4 (the 5th is not yet due)
        s.ingest_batch("r1", "metrics", 1, metrics_batch(5, 5))
        with pytest.raises(FeatureStoreError, match=r"outside \(\$since, \$until\]"):
            s.materialize("cpu", run_id="r1")
        assert s.row_counts() == {"cpu": 8}
        assert s.watermark("cpu", "r1") == T0 + timedelta(minutes=4)


def test_materialize_needs_sql_and_matching_columns(paths: tuple[Path, Path]) -> None:
    wrong = FeatureView(
        name="cpu",
        entity=CPU.entity,
        event_time=CPU.event_time,
        ttl=CPU.ttl,
        features=CPU.features,
        sources=CPU.sources,
        transformation=CPU.transformation.replace("AS nodes", "AS nodez"),
    )
    db, _ = paths
    with FeatureStore(db, views={"cpu": wrong, "scores": SCORES}) as s:
        s.ingest_batch("r1", "metrics", 0, metrics_batch(5))
        with pytest.raises(FeatureInputError, match=r"'nodez'.*not a feature of view 'cpu'"):
            s.materialize("cpu", run_id="r1")
        with pytest.raises(FeatureStoreError, match="no transformation"):
            s.materialize("scores", run_id="r1")
        assert s.row_counts() == {"cpu": 0, "scores": 0}
        assert s.watermark("cpu", "r1") is None


# ---------------------------------------------------------------- layout, reopening


def test_compaction_keeps_results(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch, paths: tuple[Path, Path]
) -> None:
    monkeypatch.setattr(layout_module, "COMPACT_MIN_ROWS", 10)
    rng = np.random.default_rng(3)
    for call in range(8):
        hosts = [f"h{i}" for i in rng.integers(0, 5, 20)]
        minutes = [int(m) for m in rng.integers(0, 120, 20)]
        store.write_features("scores", scores_rows(hosts, minutes, list(rng.random(20) + call)))
    labels = pd.DataFrame(
        {
            "host": [f"h{i}" for i in rng.integers(0, 6, 200)],
            "timestamp": [T0 + timedelta(minutes=int(m)) for m in rng.integers(-10, 200, 200)],
        }
    )
    store.compact("scores")
    before = store.get_historical_features(labels, ["scores:score", "scores:label"])
    store.write_features("scores", scores_rows(["h9"] * 40, list(range(40)), [0.5] * 40))
    after = store.get_historical_features(labels, ["scores:score", "scores:label"])  # compacts
    pd.testing.assert_frame_equal(before, after)
    store.close()
    db, _ = paths
    layout = query(db, "SELECT sorted_rows, appended_rows FROM _fv_layout WHERE view = 'scores'")
    assert layout[0][1] == 0
    ordered = query(
        db,
        "SELECT bool_and(ok) FROM (SELECT (_eid, event_time) >= lag((_eid, event_time)) "
        "OVER (ORDER BY rowid) OR lag(_eid) OVER (ORDER BY rowid) IS NULL AS ok FROM fv_scores)",
    )
    assert ordered == [(True,)]


def test_reopen_and_changed_declarations(paths: tuple[Path, Path]) -> None:
    db, _ = paths
    with FeatureStore(db, views=VIEWS) as s:
        s.write_features("scores", scores_rows(["a"], [0], [1.0]))
    with FeatureStore(db, views=VIEWS) as s:  # reopening creates nothing twice
        assert s.row_counts() == {"cpu": 0, "scores": 1}
        assert [v["view"] for v in s.list_views()] == ["cpu", "scores"]
        assert s.list_views()[1]["features"][0] == {
            "name": "score",
            "dtype": "DOUBLE",
            "description": "",
        }
    changed = FeatureView(
        name="scores",
        entity=("host",),
        event_time="event_time",
        ttl=timedelta(hours=1),
        features=(Feature("score", "DOUBLE"),),
    )
    with pytest.raises(FeatureStoreError, match="rebuild_changed_views"):
        FeatureStore(db, views={"scores": changed})
    with FeatureStore(db, views={"scores": changed}, rebuild_changed_views=True) as s:
        assert s.row_counts() == {"scores": 0}
        s.write_features("scores", scores_rows(["a"], [0], [1.0])[["host", "event_time", "score"]])
        assert s.row_counts() == {"scores": 1}
    with pytest.raises(FeatureStoreError, match="reserved"):
        FeatureStore(
            db,
            views={"x": FeatureView("x", ("_eid",), "event_time", timedelta(1), changed.features)},
        )


def test_integer_entities(paths: tuple[Path, Path]) -> None:
    view = FeatureView(
        name="ent",
        entity=("entity_id",),
        event_time="event_time",
        ttl=timedelta(hours=1),
        features=(Feature("x", "DOUBLE"),),
    )
    db, _ = paths
    with FeatureStore(db, views={"ent": view}, entity_types={"entity_id": "BIGINT"}) as s:
        rows = pd.DataFrame(
            {"entity_id": [1, 2, 2**40], "event_time": [T0] * 3, "x": [1.0, 2.0, 3.0]}
        )
        s.write_features("ent", rows)
        labels = pd.DataFrame({"entity_id": [2**40, 1, 5], "timestamp": [T0] * 3})
        out = s.get_historical_features(labels, ["ent:x"])
        assert out["ent__x"].tolist()[:2] == [3.0, 1.0]
        with pytest.raises(FeatureInputError, match=r"'entity_id'.*does not fit BIGINT"):
            s.get_historical_features(labels.assign(entity_id=["1", "2", "3"]), ["ent:x"])
        online = s.get_online_features([{"entity_id": 2}], ["ent:x"])
        assert online["ent__x"].tolist() == [2.0]


@pytest.mark.parametrize("row_group_size", [None, 2048], ids=["connect", "attach"])
def test_each_view_is_a_sql_view_of_its_name(tmp_path: Path, row_group_size: int | None) -> None:
    """After the store is closed, ``select * from <view>`` in the file gives the declared
    columns (entity, event time, features), none of the store's own."""
    db = tmp_path / "my-features.duckdb"  # the catalog is named after the file
    rows = scores_rows(["a", "b", "a"], [0, 1, 2], [1.0, 2.0, 3.0])
    with FeatureStore(db, views=VIEWS, row_group_size=row_group_size) as s:
        s.write_features("scores", rows)
    with duckdb.connect(str(db), read_only=True) as conn:
        got = conn.sql("select * from scores order by event_time").df()
        empty = conn.sql("select * from cpu limit 5").df()
    assert list(got.columns) == ["host", "event_time", "score", "count", "label", "flag"]
    expected = rows.astype({"count": "int64"})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert list(empty.columns) == ["run_id", "pool", "event_time", "util", "nodes"]
    assert empty.empty


def test_a_transaction_commits_whole_or_not_at_all(tmp_path: Path) -> None:
    db = StoreDatabase(tmp_path / "t.duckdb", threads=1, row_group_size=None)
    try:
        with db.transaction() as c:
            c.execute("CREATE TABLE t (x INTEGER)")
            c.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ZeroDivisionError), db.transaction() as c:
            c.execute("INSERT INTO t VALUES (2)")
            raise ZeroDivisionError
        with pytest.raises(duckdb.Error), db.transaction() as c:
            c.execute("INSERT INTO t VALUES (3)")
            c.execute("INSERT INTO nope VALUES (4)")  # fails inside the transaction
        assert db.conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        db.close()
    with pytest.raises(FeatureStoreError, match="closed"), db.transaction():
        pass
