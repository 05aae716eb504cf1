"""Feature-store speed: ingestion rate, point-in-time retrieval against pandas, online p99.

Run with ``python -m bench.features_speed`` (one JSON line) or through pytest-benchmark
(``bench/benchmarks/test_features_speed.py``). The machines are shared and noisy, so the
point-in-time figure is a ratio to ``pandas.merge_asof`` on the same data, timed in the
same process, interleaved, best of several rounds each.

Point-in-time task: 1,000,000 label rows (entity, timestamp) in random order against
5,000,000 feature rows (1,000 integer entities x 5,000 distinct event times over a week,
three DOUBLE features), ttl one hour; the answer is a DataFrame of the labels in their
order plus the features. Three pandas references are timed:

``pandas_like_for_like``
    The same task: the feature frame is kept sorted by event time (as merge_asof needs;
    not timed, like the store's own sorted layout), the labels are sorted by time,
    ``merge_asof(by="entity_id", tolerance=ttl)``, and the rows are put back in label
    order. The target ratio (store / this) is <= 1.0.
``pandas_merge_asof_only``
    Just the ``merge_asof`` call, on labels already sorted by time (reported, for
    scale: it skips work the task needs).
``pandas_sorting_features``
    The like-for-like task when the feature frame is not kept sorted by time, so pandas
    sorts it too (reported: what "merge_asof on the same data" costs from scratch).

The store's figure is its warm time (best of the rounds); the first call, which also
fills the in-process caches from DuckDB (the view's sorted keys and the requested
columns, :mod:`features.point_in_time`), is reported as ``store_cold_s``. The process CPU
seconds of the same calls (``store_cpu_s``, all threads; the store gathers columns on two
threads, pandas uses one) and the 1-minute load average before the rounds are reported
too: the machines are shared.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from features.schema import Feature, FeatureView
from features.store import FeatureStore
from sim.telemetry import SCHEMAS

INGEST_BATCH_ROWS = 100_000
INGEST_BATCHES = 20
INGEST_ROW_GROUP_SIZE = 61_440  # half DuckDB's default: a 100k-row batch fills one
PIT_LABELS = 1_000_000
PIT_FEATURE_ROWS = 5_000_000
PIT_ENTITIES = 1_000
PIT_TTL = timedelta(hours=1)
ONLINE_LOOKUPS = 5_000
ONLINE_FEATURES = 10
T0 = np.datetime64("2024-01-01T00:00:00", "s")

PIT_VIEW = FeatureView(
    name="bench",
    entity=("entity_id",),
    event_time="event_time",
    ttl=PIT_TTL,
    features=tuple(Feature(f"f{i}", "DOUBLE") for i in range(3)),
)
ONLINE_VIEW = FeatureView(
    name="online",
    entity=("run_id", "pool"),
    event_time="event_time",
    ttl=timedelta(minutes=10),
    features=tuple(
        Feature(f"g{i}", "DOUBLE" if i % 3 else "INTEGER") for i in range(ONLINE_FEATURES)
    ),
)
ENTITY_TYPES = {"entity_id": "BIGINT"}


@contextmanager
def temp_dir() -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="opsbench-features-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- ingestion


def metrics_batches(
    batches: int = INGEST_BATCHES, rows: int = INGEST_BATCH_ROWS, pools: int = 50
) -> list[pa.RecordBatch]:
    """Metrics micro-batches shaped like a large fleet's: ``pools`` pools per minute."""
    rng = np.random.default_rng(0)
    schema = SCHEMAS["metrics"]
    names = np.array([f"pool-{i:02d}" for i in range(pools)])
    out = []
    for b in range(batches):
        index = b * rows + np.arange(rows)
        minute = index // pools
        load = 1.0 + np.sin(minute * (2 * np.pi / 1440.0))
        columns: dict[str, pa.Array] = {}
        for field in schema:
            if field.name == "timestamp":
                stamps = T0 + minute.astype("timedelta64[m]")
                columns[field.name] = pa.array(stamps, type=field.type)
            elif field.name == "sim_time_s":
                columns[field.name] = pa.array(minute * 60.0)
            elif field.name == "pool":
                columns[field.name] = pa.array(names[index % pools])
            elif pa.types.is_int32(field.type):
                columns[field.name] = pa.array(rng.integers(0, 60, rows).astype(np.int32))
            else:
                columns[field.name] = pa.array(load * rng.random(rows) * 100.0)
        out.append(pa.RecordBatch.from_pydict(columns, schema=schema))
    return out


def ingest_rate(
    batches: list[pa.RecordBatch], *, lake: bool, row_group_size: int | None = None
) -> dict[str, float]:
    """Rows/s of committing ``batches`` into a fresh store (with or without the lake;
    opened with ``duckdb.connect(path)``, or attached with ``row_group_size``)."""
    with temp_dir() as tmp:
        folder = tmp / "lake" if lake else None
        with FeatureStore(
            tmp / "store.duckdb", views={}, lake=folder, row_group_size=row_group_size
        ) as s:
            started = time.perf_counter()
            for seq, batch in enumerate(batches):
                s.ingest_batch("bench", "metrics", seq, batch)
            wall = time.perf_counter() - started
    rows = sum(b.num_rows for b in batches)
    return {"rows": rows, "wall_s": wall, "rows_per_s": rows / wall}


# ---------------------------------------------------------------- point in time


def pit_data(
    labels: int = PIT_LABELS,
    feature_rows: int = PIT_FEATURE_ROWS,
    entities: int = PIT_ENTITIES,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(feature rows, label rows): distinct event times per entity over a week; labels
    uniform over the week plus an hour either side, in random order."""
    rng = np.random.default_rng(seed)
    per = feature_rows // entities
    span = 7 * 86400
    offsets = np.empty((entities, per), dtype=np.int64)
    for e in range(entities):
        offsets[e] = np.sort(rng.choice(span, size=per, replace=False))
    features = pd.DataFrame(
        {
            "entity_id": np.repeat(np.arange(entities, dtype=np.int64), per),
            "event_time": (T0 + offsets.ravel().astype("timedelta64[s]")).astype("datetime64[us]"),
        }
    )
    for i in range(3):
        features[f"f{i}"] = rng.standard_normal(len(features))
    label_frame = pd.DataFrame(
        {
            "entity_id": rng.integers(0, entities, labels).astype(np.int64),
            "timestamp": (
                T0 + rng.integers(-3600, span + 3600, labels).astype("timedelta64[s]")
            ).astype("datetime64[us]"),
        }
    )
    return features, label_frame


def pit_store(path: Path, features: pd.DataFrame, threads: int | None = None) -> FeatureStore:
    """A store at ``path`` holding ``features`` in the bench view."""
    store = FeatureStore(
        path, views={"bench": PIT_VIEW}, entity_types=ENTITY_TYPES, threads=threads
    )
    store.write_features("bench", features)
    return store


def pit_refs() -> list[str]:
    return [f"bench:{f}" for f in PIT_VIEW.feature_names]


def pandas_like_for_like(features_by_time: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The same task in pandas: sort labels, merge_asof, restore the label order."""
    order = np.argsort(labels["timestamp"].to_numpy(), kind="stable")
    ordered = labels.iloc[order]
    merged = pd.merge_asof(
        ordered,
        features_by_time,
        left_on="timestamp",
        right_on="event_time",
        by="entity_id",
        tolerance=PIT_TTL,
        direction="backward",
    )
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    out = merged.iloc[inverse].drop(columns="event_time")
    out.index = labels.index
    return out


def pandas_merge_asof_only(
    features_by_time: pd.DataFrame, sorted_labels: pd.DataFrame
) -> pd.DataFrame:
    """Only the merge_asof call, on labels already sorted by time."""
    return pd.merge_asof(
        sorted_labels,
        features_by_time,
        left_on="timestamp",
        right_on="event_time",
        by="entity_id",
        tolerance=PIT_TTL,
        direction="backward",
    )


def best_of(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    """Minimum wall seconds of ``rounds`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process over all its threads, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def pit_compare(rounds: int = 5, threads: int | None = None) -> dict[str, float]:
    """Store vs pandas on the same data, interleaved, best of ``rounds`` each."""
    features, labels = pit_data()
    by_time = features.sort_values("event_time", kind="stable").reset_index(drop=True)
    sorted_labels = labels.sort_values("timestamp", kind="stable").reset_index(drop=True)
    refs = pit_refs()
    with temp_dir() as tmp:
        started = time.perf_counter()
        store = pit_store(tmp / "store.duckdb", features, threads)
        load_s = time.perf_counter() - started
        try:
            cold_s, _ = best_of(lambda: store.get_historical_features(labels, refs), 1)
            times: dict[str, list[float]] = {"store": [], "like": [], "only": []}
            cpu: dict[str, list[float]] = {"store": [], "like": []}
            load_before = os.getloadavg()[0]
            store_out = like_out = None
            for _ in range(rounds):
                t, c, store_out = timed(lambda: store.get_historical_features(labels, refs))
                times["store"].append(t)
                cpu["store"].append(c)
                t, c, like_out = timed(lambda: pandas_like_for_like(by_time, labels))
                times["like"].append(t)
                cpu["like"].append(c)
                t, _ = best_of(lambda: pandas_merge_asof_only(by_time, sorted_labels), 1)
                times["only"].append(t)
            sorting_s, _ = best_of(
                lambda: pandas_like_for_like(
                    features.sort_values("event_time", kind="stable"), labels
                ),
                2,
            )
        finally:
            store.close()
    assert store_out is not None and like_out is not None
    for i in range(3):
        np.testing.assert_array_equal(
            store_out[f"bench__f{i}"].to_numpy(), like_out[f"f{i}"].to_numpy()
        )
    store_s, like_s, only_s = (min(times[k]) for k in ("store", "like", "only"))
    return {
        "labels": float(len(labels)),
        "feature_rows": float(len(features)),
        "store_load_s": load_s,
        "store_cold_s": cold_s,
        "store_s": store_s,
        "pandas_like_for_like_s": like_s,
        "pandas_merge_asof_only_s": only_s,
        "pandas_sorting_features_s": sorting_s,
        "ratio": store_s / like_s,
        "ratio_to_merge_asof_only": store_s / only_s,
        "ratio_to_sorting_features": store_s / sorting_s,
        "store_cpu_s": min(cpu["store"]),
        "pandas_like_for_like_cpu_s": min(cpu["like"]),
        "cpu_ratio": min(cpu["store"]) / min(cpu["like"]),
        "load_avg_1min": load_before,
        "cpus": float(os.cpu_count() or 1),
    }


# ---------------------------------------------------------------- online


def online_latency(lookups: int = ONLINE_LOOKUPS, entities: int = 200) -> dict[str, float]:
    """Per-call latency of get_online_features for one entity and 10 features."""
    rng = np.random.default_rng(1)
    rows = pd.DataFrame(
        {
            "run_id": "bench",
            "pool": [f"pool-{i % entities}" for i in range(entities * 20)],
            "event_time": (T0 + np.arange(entities * 20).astype("timedelta64[s]")).astype(
                "datetime64[us]"
            ),
        }
    )
    for f in ONLINE_VIEW.features:
        values = rng.random(len(rows)) * 100
        rows[f.name] = values if f.dtype == "DOUBLE" else values.astype(np.int32)
    refs = [f"online:{f}" for f in ONLINE_VIEW.feature_names]
    with temp_dir() as tmp:
        with FeatureStore(tmp / "store.duckdb", views={"online": ONLINE_VIEW}) as store:
            store.write_features("online", rows)
            keys = [
                {"run_id": "bench", "pool": f"pool-{i}"} for i in rng.integers(0, entities, lookups)
            ]
            store.get_online_features([keys[0]], refs)  # warm
            samples = np.empty(lookups)
            for i, key in enumerate(keys):
                started = time.perf_counter()
                store.get_online_features([key], refs)
                samples[i] = time.perf_counter() - started
    micro = samples * 1e6
    return {
        "lookups": float(lookups),
        "p50_us": float(np.percentile(micro, 50)),
        "p99_us": float(np.percentile(micro, 99)),
        "max_us": float(micro.max()),
    }


def main() -> None:
    batches = metrics_batches()
    result: dict[str, Any] = {
        "ingest_db_only": ingest_rate(batches, lake=False),
        "ingest_with_lake": ingest_rate(batches, lake=True),
        "ingest_with_lake_row_group_61440": ingest_rate(
            batches, lake=True, row_group_size=INGEST_ROW_GROUP_SIZE
        ),
        "point_in_time": pit_compare(),
        "online": online_latency(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
