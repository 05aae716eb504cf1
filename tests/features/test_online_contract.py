"""The OnlineStore contract, one suite for both implementations: the in-process
MemoryOnlineStore and the DuckDB store's online table (FeatureStore.push /
get_online_row).

A lookup at ``now`` returns the latest row pushed for the entity (greatest event time;
of equal event times, the one pushed last) if it is not dated after ``now`` and at most
the view's ttl before it; otherwise None.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.errors import FeatureInputError
from features.online import MemoryOnlineStore, OnlineStore
from features.schema import Feature, FeatureView
from features.store import FeatureStore

T0 = datetime(2024, 5, 1, 12, 0, 0)
HOSTS = FeatureView(
    name="hosts",
    entity=("host",),
    event_time="event_time",
    ttl=timedelta(seconds=10),
    features=(
        Feature("load", "DOUBLE"),
        Feature("pods", "INTEGER"),
        Feature("healthy", "BOOLEAN"),
    ),
)
POOLS = FeatureView(
    name="pools",
    entity=("run_id", "pool"),
    event_time="event_time",
    ttl=timedelta(minutes=1),
    features=(Feature("price", "DOUBLE"),),
)
VIEWS = {"hosts": HOSTS, "pools": POOLS}


def _memory(_: Path) -> MemoryOnlineStore:
    return MemoryOnlineStore(VIEWS)


def _duckdb(folder: Path) -> FeatureStore:
    return FeatureStore(folder / "store.duckdb", views=VIEWS, threads=1)


@pytest.fixture(params=[_memory, _duckdb], ids=["memory", "duckdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    made = request.param(tmp_path)
    yield made
    if isinstance(made, FeatureStore):
        made.close()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_both_are_online_stores(store: OnlineStore) -> None:
    assert isinstance(store, OnlineStore)
    assert set(store.views) == {"hosts", "pools"}


def test_unknown_entity_is_none(store: OnlineStore) -> None:
    assert store.get_online_row("hosts", ("a",), now=at(0)) is None
    store.push("hosts", ("a",), at(0), [1.0, 3, True])
    assert store.get_online_row("hosts", ("b",), now=at(0)) is None


def test_a_pushed_row_comes_back_as_float64_in_declared_order(store: OnlineStore) -> None:
    store.push("hosts", ("a",), at(0), [0.25, 3, True])
    store.push("pools", ("r1", "spot"), at(0), [0.5])
    row = store.get_online_row("hosts", ("a",), now=at(0))
    assert row is not None and row.dtype == np.float64
    assert row.tolist() == [0.25, 3.0, 1.0]
    pools = store.get_online_row("pools", ("r1", "spot"), now=at(0))
    assert pools is not None and pools.tolist() == [0.5]


def test_nulls_come_back_as_nan(store: OnlineStore) -> None:
    store.push("hosts", ("a",), at(0), [None, None, None])
    row = store.get_online_row("hosts", ("a",), now=at(1))
    assert row is not None and np.isnan(row).all()


def test_ttl_and_future_rows(store: OnlineStore) -> None:
    store.push("hosts", ("a",), at(100), [1.0, 1, True])
    assert store.get_online_row("hosts", ("a",), now=at(99.999999)) is None  # not yet
    assert store.get_online_row("hosts", ("a",), now=at(100)) is not None
    assert store.get_online_row("hosts", ("a",), now=at(110)) is not None  # exactly ttl old
    assert store.get_online_row("hosts", ("a",), now=at(110.000001)) is None


def test_latest_wins_late_rows_are_ignored_ties_go_to_the_last_push(store: OnlineStore) -> None:
    store.push("hosts", ("a",), at(10), [1.0, 1, True])
    store.push("hosts", ("a",), at(5), [2.0, 2, False])  # late: older than the one held
    row = store.get_online_row("hosts", ("a",), now=at(10))
    assert row is not None and row[0] == 1.0
    assert store.get_online_row("hosts", ("a",), now=at(7)) is None  # the latest is in the future
    store.push("hosts", ("a",), at(10), [3.0, 3, True])  # same time: replaces
    row = store.get_online_row("hosts", ("a",), now=at(10))
    assert row is not None and row[0] == 3.0
    store.push("hosts", ("a",), at(12), [4.0, 4, False])
    row = store.get_online_row("hosts", ("a",), now=at(12))
    assert row is not None and row.tolist() == [4.0, 4.0, 0.0]


def test_the_stored_row_does_not_alias_the_pushed_values(store: OnlineStore) -> None:
    values = np.array([1.0])
    store.push("pools", ("r1", "spot"), at(0), values)
    values[0] = 99.0
    row = store.get_online_row("pools", ("r1", "spot"), now=at(0))
    assert row is not None and row.tolist() == [1.0]


@pytest.mark.parametrize(
    ("view", "entity", "values", "words"),
    [
        ("nope", ("a",), [1.0], ["nope", "unknown view"]),
        ("hosts", ("a", "b"), [1.0, 1, True], ["hosts", "entity", "2 key values"]),
        ("hosts", ("a",), [1.0, 1], ["hosts", "values", "2 values"]),
        ("pools", ("r1", "spot"), ["cheap"], ["pools", "price"]),
    ],
    ids=["unknown-view", "entity-length", "values-length", "not-a-number"],
)
def test_bad_pushes_are_one_line_and_store_nothing(
    store: OnlineStore, view: str, entity: tuple[str, ...], values: list[Any], words: list[str]
) -> None:
    with pytest.raises(FeatureInputError) as info:
        store.push(view, entity, at(0), values)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    if view in VIEWS and len(entity) == len(VIEWS[view].entity):
        assert store.get_online_row(view, entity, now=at(0)) is None


def test_lookup_errors(store: OnlineStore) -> None:
    with pytest.raises(FeatureInputError, match="unknown view"):
        store.get_online_row("nope", ("a",), now=at(0))


@st.composite
def pushes(draw: st.DrawFn) -> list[tuple[str, int, float]]:
    """(host, second, load) pushes: few hosts and seconds, so ties and late rows abound."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c"]),
                st.integers(0, 30),
                st.integers(-100, 100).map(lambda x: x / 4),
            ),
            max_size=12,
        )
    )


@pytest.mark.parametrize("make", [_memory, _duckdb], ids=["memory", "duckdb"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=pushes(), now=st.integers(-2, 45))
def test_lookups_match_a_reference(
    make: Any,
    tmp_path_factory: pytest.TempPathFactory,
    history: list[tuple[str, int, float]],
    now: int,
) -> None:
    """Random pushes (ties, late rows) then lookups, against the contract's reference."""
    made = make(tmp_path_factory.mktemp("online"))
    try:
        for host, second, load in history:
            made.push("hosts", (host,), at(second), [load, 1, True])
        for host in ("a", "b", "c"):
            mine = [(s, i, x) for i, (h, s, x) in enumerate(history) if h == host]
            latest = max(mine, default=None)  # greatest second, then the last push
            expected = (
                None
                if latest is None or latest[0] > now or now - latest[0] > HOSTS.ttl.total_seconds()
                else latest[2]
            )
            row = made.get_online_row("hosts", (host,), now=at(now))
            assert (None if row is None else row[0]) == expected, (host, history, now)
    finally:
        if isinstance(made, FeatureStore):
            made.close()
