"""Point-in-time correctness: get_historical_features against a brute-force reference.

Random feature streams (a few entities, integer-second event times with deliberate ties,
several writes so later writes re-write earlier times and arrive late) and random label
frames (whole- and half-second times before, between, equal to and after the feature
times, and ttl after them; unknown entities), with random ttls, for two views requested
together, through both retrieval paths (the in-process merge over the view's sorted keys,
and the plain ASOF JOIN). The answer for a label at ``t`` is the row with the
greatest event time <= t (ties: the latest write, then the later row in that write), if
``t - event_time <= ttl``; otherwise null.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.schema import Feature, FeatureView
from features.store import FEATURE_CACHE_BYTES, FeatureStore

T0 = datetime(2024, 1, 1)


@dataclass(frozen=True)
class Row:
    entity: Any
    second: int
    values: dict[str, Any]
    ingest: int  # the write call
    pos: int  # the row's position in it


@dataclass(frozen=True)
class Case:
    entity_type: str
    cache_bytes: int  # 0: the plain ASOF path; else the fast path
    views: dict[str, FeatureView]
    writes: dict[str, list[list[Row]]]
    labels: list[tuple[Any, float]]  # (entity, seconds after T0; whole or half seconds)


def _value(draw: st.DrawFn, dtype: str) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return None
    number = draw(st.integers(-1000, 1000))
    return {"DOUBLE": number / 8, "BIGINT": number, "VARCHAR": f"v{number}"}[dtype]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    entity_type = draw(st.sampled_from(["VARCHAR", "BIGINT"]))
    n_entities = draw(st.integers(2, 5))
    entities: list[Any] = (
        [f"e{i}" for i in range(n_entities)]
        if entity_type == "VARCHAR"
        else [i * 7919 - 3 for i in range(n_entities)]
    )
    unknown = "nobody" if entity_type == "VARCHAR" else 10**12
    views: dict[str, FeatureView] = {}
    writes: dict[str, list[list[Row]]] = {}
    for name in ("a", "b"):
        dtypes = draw(
            st.lists(st.sampled_from(["DOUBLE", "BIGINT", "VARCHAR"]), min_size=1, max_size=3)
        )
        features = (
            Feature("stamp", "BIGINT", "the row's event time, s after T0"),
            *(Feature(f"f{i}", d) for i, d in enumerate(dtypes)),
        )
        views[name] = FeatureView(
            name=name,
            entity=("entity",),
            event_time="event_time",
            ttl=timedelta(seconds=draw(st.sampled_from([0, 1, 3]) | st.integers(0, 40))),
            features=features,
        )
        calls: list[list[Row]] = []
        for ingest in range(draw(st.integers(1, 4))):
            rows: list[Row] = []
            for pos in range(draw(st.integers(0, 12))):
                second = draw(st.integers(0, 30))  # a small range: many ties
                values: dict[str, Any] = {"stamp": second}
                for f in features[1:]:
                    values[f.name] = _value(draw, f.dtype)
                rows.append(Row(draw(st.sampled_from(entities)), second, values, ingest, pos))
            calls.append(rows)
        writes[name] = calls
    # Label times: anywhere, or exactly at / ttl after / just past ttl after a row's time.
    stamps = sorted({r.second for calls in writes.values() for rows in calls for r in rows})
    offsets = sorted(
        {0, 1, *(int(v.ttl.total_seconds()) + d for v in views.values() for d in (0, 1))}
    )
    near = (
        st.builds(lambda s, d: s + d, st.sampled_from(stamps), st.sampled_from(offsets))
        if stamps
        else st.integers(-5, 45)
    )
    seconds = st.integers(-5, 45) | near | near
    labels = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*entities, unknown]),
                st.builds(lambda s, half: s + 0.5 * half, seconds, st.booleans()),
            ),
            min_size=1,
            max_size=25,
        )
    )
    cache_bytes = draw(st.sampled_from([0, FEATURE_CACHE_BYTES]))
    return Case(entity_type, cache_bytes, views, writes, labels)


def reference(case: Case, view: str, entity: Any, second: float) -> dict[str, Any] | None:
    """The feature values a label (entity, T0 + second) must get, by brute force."""
    rows = [r for call in case.writes[view] for r in call]
    eligible = [r for r in rows if r.entity == entity and r.second <= second]
    if not eligible:
        return None
    best = max(eligible, key=lambda r: (r.second, r.ingest, r.pos))
    if second - best.second > case.views[view].ttl.total_seconds():
        return None
    return best.values


def latest(case: Case, view: str, entity: Any) -> dict[str, Any] | None:
    rows = [r for call in case.writes[view] for r in call if r.entity == entity]
    if not rows:
        return None
    return max(rows, key=lambda r: (r.second, r.ingest, r.pos)).values


def _same(actual: Any, expected: Any) -> bool:
    if expected is None:
        return (
            actual is None or actual is pd.NA or (isinstance(actual, float) and math.isnan(actual))
        )
    return bool(actual == expected)


def _frame(view: FeatureView, rows: list[Row]) -> pd.DataFrame:
    data: dict[str, list[Any]] = {
        "entity": [r.entity for r in rows],
        "event_time": [T0 + timedelta(seconds=r.second) for r in rows],
    }
    for f in view.features:
        data[f.name] = [r.values[f.name] for r in rows]
    frame = pd.DataFrame(data)
    for f in view.features:  # typed columns even when all values are None
        dtype = {"DOUBLE": "float64", "BIGINT": "Int64", "VARCHAR": "object"}[f.dtype]
        frame[f.name] = frame[f.name].astype(dtype)
    return frame


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_historical_features_match_brute_force(case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with FeatureStore(
            Path(tmp) / "store.duckdb",
            views=case.views,
            entity_types={"entity": case.entity_type},
            threads=1,
            feature_cache_bytes=case.cache_bytes,
        ) as store:
            for name, calls in case.writes.items():
                for rows in calls:
                    assert store.write_features(name, _frame(case.views[name], rows)) == len(
                        {(r.entity, r.second) for r in rows}
                    )
            labels = pd.DataFrame(
                {
                    "entity": [e for e, _ in case.labels],
                    "timestamp": [T0 + timedelta(seconds=s) for _, s in case.labels],
                }
            )
            refs = [f"{name}:{f}" for name, v in case.views.items() for f in v.feature_names]
            out = store.get_historical_features(labels, refs)
            assert len(out) == len(labels)
            assert out["entity"].tolist() == labels["entity"].tolist()
            for i, (entity, second) in enumerate(case.labels):
                for name, view in case.views.items():
                    expected = reference(case, name, entity, second)
                    stamp = out[f"{name}__stamp"].iloc[i]
                    if not _same(stamp, None):
                        # Never a value from after the label time, never one older than ttl.
                        assert stamp <= second
                        assert second - stamp <= view.ttl.total_seconds()
                    for f in view.feature_names:
                        want = None if expected is None else expected[f]
                        got = out[f"{name}__{f}"].iloc[i]
                        assert _same(got, want), (name, f, entity, second, got, want)
            keys = [{"entity": e} for e, _ in case.labels]
            online = store.get_online_features(keys, refs)
            for i, (entity, _) in enumerate(case.labels):
                for name, view in case.views.items():
                    expected = latest(case, name, entity)
                    for f in view.feature_names:
                        want = None if expected is None else expected[f]
                        assert _same(online[f"{name}__{f}"].iloc[i], want)


def test_sub_second_event_times_use_the_exact_path(tmp_path: Path) -> None:
    """Event times with microseconds: ties and ttl are decided on the exact times."""
    view = FeatureView(
        name="v",
        entity=("entity",),
        event_time="event_time",
        ttl=timedelta(milliseconds=1500),
        features=(Feature("x", "DOUBLE"),),
    )
    us = timedelta(microseconds=1)
    with FeatureStore(tmp_path / "s.duckdb", views={"v": view}) as store:
        store.write_features(
            "v",
            pd.DataFrame(
                {
                    "entity": ["a", "a", "a"],
                    "event_time": [T0, T0 + 500_000 * us, T0 + 500_001 * us],
                    "x": [1.0, 2.0, 3.0],
                }
            ),
        )
        seconds = [0, 0.499999, 0.5, 0.500001, 2.0, 2.000001, 2.000002]
        labels = pd.DataFrame(
            {"entity": "a", "timestamp": [T0 + timedelta(seconds=s) for s in seconds]}
        )
        out = store.get_historical_features(labels, ["v:x"])["v__x"].tolist()
    assert out[:6] == [1.0, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert math.isnan(out[6])  # 1.500001 s after the last row: beyond ttl


def test_both_paths_agree_on_labels_far_off_null_or_unknown(tmp_path: Path) -> None:
    """Label times before and after the int32-second range of the merge's keys, null
    times, unknown entities, a ttl long enough to reach far-future labels."""
    view = FeatureView(
        name="v",
        entity=("entity",),
        event_time="event_time",
        ttl=timedelta(days=365 * 200),
        features=(Feature("x", "DOUBLE"), Feature("n", "BIGINT")),
    )
    rows = pd.DataFrame(
        {
            "entity": ["a", "a", "b"],
            "event_time": [T0, T0 + timedelta(seconds=5), T0],
            "x": [1.0, 2.0, 3.0],
            "n": [1, 2, 3],
        }
    )
    times = [
        datetime(1900, 1, 1),
        datetime(2200, 1, 1),
        None,
        T0 + timedelta(seconds=4, microseconds=999_999),
        T0 + timedelta(seconds=5),
        T0,
    ]
    labels = pd.DataFrame(
        {"entity": ["a", "a", "a", "a", "a", "zz"], "timestamp": pd.to_datetime(times)}
    )
    answers = []
    for cache_bytes in (0, FEATURE_CACHE_BYTES):
        with FeatureStore(
            tmp_path / f"s{cache_bytes}.duckdb", views={"v": view}, feature_cache_bytes=cache_bytes
        ) as store:
            store.write_features("v", rows)
            answers.append(store.get_historical_features(labels, ["v:x", "v:n"]))
    plain, merged = answers
    pd.testing.assert_frame_equal(plain, merged)
    assert merged["v__x"].tolist()[1] == 2.0  # 2200: within 200 years of the last row
    assert merged["v__x"].tolist()[3:5] == [1.0, 2.0]
    assert merged["v__x"].isna().tolist() == [True, False, True, False, False, True]
    assert merged["v__n"].isna().tolist() == [True, False, True, False, False, True]
