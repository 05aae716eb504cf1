"""The declared feature views, computed from a real replay's telemetry."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from bench import runner
from features.offline import build_from_run_dir
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
    built: tuple[Path, str], tmp_path: Path
) -> None:
    store_path, run_id = built
    streamed = tmp_path / "streamed.duckdb"
    summary = runner.run(runner.prepare_run("spot-storm", days=2.0), store=streamed)
    assert summary["run_id"] == run_id
    for view in ("infrastructure_metrics", "cost_optimization"):
        spec = VIEWS[view]
        order = ", ".join([*spec.entity, spec.event_time])
        columns = ", ".join([*spec.entity, spec.event_time, *spec.feature_names])
        query = f"SELECT {columns} FROM fv_{view} ORDER BY {order}"
        a = duckdb.connect(str(store_path), read_only=True).execute(query).df()
        b = duckdb.connect(str(streamed), read_only=True).execute(query).df()
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)


def test_streaming_does_not_change_the_telemetry(tmp_path: Path) -> None:
    plain = runner.run(runner.prepare_run("default", days=0.5))
    streamed = runner.run(runner.prepare_run("default", days=0.5), store=tmp_path / "s.duckdb")
    assert plain["telemetry_sha256"] == streamed["telemetry_sha256"]
