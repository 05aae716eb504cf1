"""The declared feature views, computed from a real replay's telemetry."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from bench import runner
from features.offline import build_from_run_dir, run_id_from_summary
from features.store import FeatureStore
from features.views import VIEWS


@pytest.fixture(scope="module")
def replay_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "run"
    runner.run(runner.prepare_run("spot-storm", days=2.0), out=out)
    return out


@pytest.fixture(scope="module")
def built(replay_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    store_path = tmp_path_factory.mktemp("store") / "store.duckdb"
    with FeatureStore(store_path, views=VIEWS) as store:
        run_id, counts = build_from_run_dir(replay_dir, store)
    assert counts["infrastructure_metrics"] == 2 * 2 * 1440  # two pools, two days of minutes
    assert counts["cost_optimization"] == 2 * 3 * 2 * 1440  # two pools x three AZs
    return store_path, run_id


def test_every_view_returns_its_declared_columns(built: tuple[Path, str]) -> None:
    store_path, run_id = built
    con = duckdb.connect(str(store_path), read_only=True)
    for view in (v for v in VIEWS.values() if v.computed):
        columns = [
            row[0]
            for row in con.execute(
                view.transformation,
                {
                    "run_id": run_id,
                    "since": pd.Timestamp("1970-01-01"),
                    "until": pd.Timestamp("2100-01-01"),
                },
            ).description
        ]
        assert columns == [*view.entity, view.event_time, *view.feature_names], view.name


def test_features_only_use_data_available_at_their_event_time(
    built: tuple[Path, str], replay_dir: Path
) -> None:
    store_path, run_id = built
    metrics = pd.read_parquet(replay_dir / "metrics.parquet")
    metrics["available"] = metrics["timestamp"] + pd.Timedelta(seconds=60)
    with FeatureStore(store_path, views=VIEWS) as store:
        sample = metrics.iloc[::97][["pool", "available"]].rename(
            columns={"available": "timestamp"}
        )
        sample.insert(0, "run_id", run_id)
        got = store.get_historical_features(
            sample,
            [
                "infrastructure_metrics:request_rate_avg_1h",
                "infrastructure_metrics:request_rate_rps",
            ],
        )
    for (_, row), value, avg in zip(
        sample.iterrows(),
        got["infrastructure_metrics__request_rate_rps"],
        got["infrastructure_metrics__request_rate_avg_1h"],
        strict=True,
    ):
        pool_rows = metrics[metrics.pool == row.pool]
        seen = pool_rows[pool_rows.available <= row.timestamp]
        assert value == pytest.approx(seen.request_rate_rps.iloc[-1])
        window = seen[seen.available > row.timestamp - pd.Timedelta(hours=1)]
        assert avg == pytest.approx(window.request_rate_rps.mean())


def test_streaming_during_the_replay_equals_building_afterwards(
    built: tuple[Path, str], replay_dir: Path, tmp_path: Path
) -> None:
    """The same replay streamed (hourly micro-batches, views materialised at every
    checkpoint) and built from its files afterwards: every feature value is the same,
    bit for bit, read through each view's SQL view."""
    store_path, run_id = built
    streamed = tmp_path / "streamed.duckdb"
    summary = runner.run(runner.prepare_run("spot-storm", days=2.0), store=streamed)
    on_disk = json.loads((replay_dir / "summary.json").read_text())
    assert summary["telemetry_sha256"] == on_disk["telemetry_sha256"]
    assert summary["run_id"] == run_id_from_summary(on_disk) == run_id  # one id, streamed or built
    for view in (v for v in VIEWS.values() if v.computed):
        keys = [*view.entity, view.event_time]
        columns = ", ".join([*keys, *view.feature_names])
        query = f"SELECT {columns} FROM {view.name} ORDER BY {', '.join(keys)}"
        with duckdb.connect(str(store_path), read_only=True) as conn:
            a = conn.sql(query).df()
        with duckdb.connect(str(streamed), read_only=True) as conn:
            b = conn.sql(query).df()
        assert len(a) == len(b), view.name
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=view.name)


def test_sql_views_show_the_declared_columns(built: tuple[Path, str]) -> None:
    """``duckdb store.duckdb "select * from infrastructure_metrics limit 5"``."""
    store_path, run_id = built
    with duckdb.connect(str(store_path), read_only=True) as conn:
        for view in VIEWS.values():
            rows = conn.sql(f"select * from {view.name} limit 5").df()
            assert list(rows.columns) == [*view.entity, view.event_time, *view.feature_names]
            if view.name in ("infrastructure_metrics", "cost_optimization"):
                assert len(rows) == 5 and (rows["run_id"] == run_id).all()


def test_streaming_does_not_change_the_telemetry(tmp_path: Path) -> None:
    plain = runner.run(runner.prepare_run("default", days=0.5))
    streamed = runner.run(runner.prepare_run("default", days=0.5), store=tmp_path / "s.duckdb")
    assert plain["telemetry_sha256"] == streamed["telemetry_sha256"]
