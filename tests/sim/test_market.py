"""Tests of sim.market: spot price step functions, the price model, spot availability."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.catalog import load_catalogue
from sim.errors import InputError
from sim.market.availability import (
    AvailabilitySeries,
    always_available,
    availability_from_path,
    load_availability_trace,
    replay_availability,
)
from sim.market.price_model import calibrate, modelled_spot_prices
from sim.market.prices import PriceSeries, constant_price, replay_spot_prices
from sim.scenario import (
    AlwaysAvailable,
    ModelledSpotPrices,
    ReplayedAvailability,
    ReplayedSpotPrices,
)
import itertools

DATA = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "spot"
HISTORY = DATA / "spot_price_history.csv"
TRACE_DIR = DATA / "traces" / "availability" / "1-node" / "aws-02-15-2023"
TRACE_1C = TRACE_DIR / "us-east-1c_v100_1.json"
DAY_S = 86_400.0
HISTORY_HEADER = "timestamp,region,az,az_id,instance_type,product_description,spot_price,source"


# --------------------------------------------------------------------------- helpers


def brute_force_cost(times: np.ndarray, prices: np.ndarray, t0: float, t1: float) -> float:
    """Sum over pieces of price * overlap / 3600 (first piece extends to -inf)."""
    starts = [-math.inf, *times[1:].tolist()]
    ends = [*times[1:].tolist(), math.inf]
    parts = []
    for start, end, price in zip(starts, ends, prices.tolist(), strict=True):
        lo, hi = max(t0, start), min(t1, end)
        if hi > lo:
            parts.append(price * (hi - lo))
    return math.fsum(parts) / 3600.0


def history_rows(instance_type: str, az: str) -> list[tuple[float, float]]:
    """(epoch s, price) rows of one (type, AZ name) from the bundled CSV, sorted."""
    with HISTORY.open(newline="") as fh:
        rows = [
            (datetime.fromisoformat(r["timestamp"]).timestamp(), float(r["spot_price"]))
            for r in csv.DictReader(fh)
            if r["instance_type"] == instance_type and r["az"] == az
        ]
    return sorted(rows)


def soso_origin() -> float:
    """First record of the 33-day c5a.2xlarge series (any of its AZ names)."""
    with HISTORY.open(newline="") as fh:
        return min(
            datetime.fromisoformat(r["timestamp"]).timestamp()
            for r in csv.DictReader(fh)
            if r["instance_type"] == "c5a.2xlarge" and r["az"]
        )


def on_demand_us_east_1() -> dict[str, float]:
    catalogue = load_catalogue(DATA / "on_demand_prices.csv", region="us-east-1")
    return {name: it.on_demand_usd_per_hour for name, it in catalogue.items()}


def one_line(err: InputError) -> str:
    text = str(err)
    assert "\n" not in text
    return text


@st.composite
def step_functions(draw: st.DrawFn) -> PriceSeries:
    n = draw(st.integers(1, 25))
    gaps = draw(
        st.lists(st.floats(1e-3, 1e5, allow_subnormal=False), min_size=n - 1, max_size=n - 1)
    )
    prices = draw(st.lists(st.floats(1e-4, 100.0, allow_subnormal=False), min_size=n, max_size=n))
    return PriceSeries(np.concatenate(([0.0], np.cumsum(gaps))), np.array(prices))


_times = st.floats(-100.0, 3e6, allow_nan=False, allow_subnormal=False)


# --------------------------------------------------------------------------- PriceSeries


@settings(max_examples=300, deadline=None)
@given(series=step_functions(), a=_times, b=_times)
def test_cost_equals_brute_force_integral(series: PriceSeries, a: float, b: float) -> None:
    t0, t1 = min(a, b), max(a, b)
    expected = brute_force_cost(series.times_s, series.prices_usd_per_hour, t0, t1)
    assert math.isclose(series.cost_usd(t0, t1), expected, rel_tol=1e-9)


@settings(max_examples=300, deadline=None)
@given(series=step_functions(), points=st.lists(_times, min_size=3, max_size=3))
def test_cost_is_additive(series: PriceSeries, points: list[float]) -> None:
    a, b, c = sorted(points)
    whole = series.cost_usd(a, c)
    assert math.isclose(series.cost_usd(a, b) + series.cost_usd(b, c), whole, rel_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    series=step_functions(),
    a=st.lists(_times, min_size=1, max_size=20),
    lengths=st.lists(st.floats(0, 1e6, allow_subnormal=False), min_size=20, max_size=20),
)
def test_cost_many_matches_scalar(
    series: PriceSeries, a: list[float], lengths: list[float]
) -> None:
    t0 = np.array(a)
    t1 = t0 + np.array(lengths[: len(a)])
    many = series.cost_usd_many(t0, t1)
    scalar = [series.cost_usd(x, y) for x, y in zip(t0.tolist(), t1.tolist(), strict=True)]
    np.testing.assert_allclose(many, scalar, rtol=1e-12, atol=0)


@settings(max_examples=200, deadline=None)
@given(series=step_functions(), t=_times)
def test_price_at_is_right_continuous(series: PriceSeries, t: float) -> None:
    k = max(int(np.sum(series.times_s <= t)) - 1, 0)
    assert series.price_at(t) == series.prices_usd_per_hour[k]
    for i, change in enumerate(series.times_s[1:], start=1):
        assert series.price_at(float(change)) == series.prices_usd_per_hour[i]


def test_price_series_basics() -> None:
    s = PriceSeries(np.array([0.0, 3600.0, 7200.0]), np.array([1.0, 2.0, 4.0]))
    assert s.price_at(0.0) == 1.0
    assert s.price_at(3599.999) == 1.0
    assert s.price_at(3600.0) == 2.0
    assert s.price_at(1e9) == 4.0
    assert s.cost_usd(0.0, 3 * 3600.0) == pytest.approx(7.0)
    assert s.cost_usd(1800.0, 1800.0) == 0.0
    np.testing.assert_array_equal(s.changes_between(0.0, 3600.0), [3600.0])
    np.testing.assert_array_equal(s.changes_between(-1.0, 1e9), [3600.0, 7200.0])
    assert s.changes_between(3600.0, 7199.0).size == 0
    assert s.changes_between(5.0, 1.0).size == 0
    with pytest.raises(ValueError):
        s.cost_usd(2.0, 1.0)
    with pytest.raises(ValueError):
        s.cost_usd_many(np.array([2.0]), np.array([1.0]))
    with pytest.raises(ValueError):
        s.times_s[0] = 5.0  # read-only


@pytest.mark.parametrize(
    ("times", "prices"),
    [
        ([1.0, 2.0], [1.0, 1.0]),  # does not start at 0
        ([0.0, 2.0, 2.0], [1.0, 1.0, 1.0]),  # not strictly increasing
        ([0.0, 1.0], [1.0, 0.0]),  # non-positive price
        ([0.0, 1.0], [1.0]),  # length mismatch
        ([], []),
    ],
)
def test_price_series_rejects_bad_arrays(times: list[float], prices: list[float]) -> None:
    with pytest.raises(ValueError):
        PriceSeries(np.array(times), np.array(prices))


def test_constant_price() -> None:
    s = constant_price(0.308)
    assert s.cost_usd(100.0, 100.0 + 7200.0) == pytest.approx(0.616)
    assert s.changes_between(0.0, 1e9).size == 0


# --------------------------------------------------------------------------- replay


def _replay(
    pools: list[tuple[str, str]], duration_s: float = 30 * DAY_S, **kwargs: object
) -> dict[tuple[str, str], PriceSeries]:
    cfg = ReplayedSpotPrices(kind="replay", path=HISTORY.name, **kwargs)  # type: ignore[arg-type]
    return replay_spot_prices(cfg, base_dir=DATA, pools=pools, duration_s=duration_s)


def test_replay_c5a_us_east_1c_matches_csv_rows() -> None:
    duration = 30 * DAY_S
    series = _replay([("c5a.2xlarge", "us-east-1c")], duration)[("c5a.2xlarge", "us-east-1c")]
    rows = history_rows("c5a.2xlarge", "us-east-1c")
    origin = soso_origin()
    assert series.times_s[0] == 0.0
    assert np.all(np.diff(series.times_s) > 0)
    assert series.times_s[-1] <= duration
    # origin is before the first us-east-1c record: t=0 takes that record's price
    assert rows[0][0] > origin
    assert series.price_at(0.0) == rows[0][1]
    checked = 0
    for epoch, price in rows:
        rel = epoch - origin
        if 0 < rel <= duration:
            assert series.price_at(rel) == pytest.approx(price, abs=0)
            checked += 1
    assert checked > 80
    # every change time is a CSV record time
    record_times = {epoch - origin for epoch, _ in rows}
    assert set(series.times_s[1:].tolist()) <= record_times


def test_replay_cost_matches_brute_force_on_rows() -> None:
    series = _replay([("c5a.2xlarge", "us-east-1c")])[("c5a.2xlarge", "us-east-1c")]
    origin = soso_origin()
    rows = [(e - origin, p) for e, p in history_rows("c5a.2xlarge", "us-east-1c")]
    times = np.array([0.0] + [t for t, _ in rows if 0 < t <= 30 * DAY_S])
    prices = np.array([rows[0][1]] + [p for t, p in rows if 0 < t <= 30 * DAY_S])
    for t0, t1 in [(0.0, 30 * DAY_S), (12_345.6, 2 * DAY_S), (5 * DAY_S, 5 * DAY_S + 60.0)]:
        assert math.isclose(
            series.cost_usd(t0, t1), brute_force_cost(times, prices, t0, t1), rel_tol=1e-9
        )


def test_replay_offset_takes_last_record_before_origin() -> None:
    series = _replay([("c5a.2xlarge", "us-east-1c")], 5 * DAY_S, offset_h=48.0)
    s = series[("c5a.2xlarge", "us-east-1c")]
    start = soso_origin() + 48 * 3600.0
    before = [p for e, p in history_rows("c5a.2xlarge", "us-east-1c") if e <= start]
    assert s.price_at(0.0) == before[-1]
    assert s.times_s[-1] <= 5 * DAY_S


def test_replay_az_map_instance_override_and_az_ids() -> None:
    out = _replay(
        [("c5.large", "us-east-1a"), ("c5.large", "us-east-1c"), ("c5.large", "use1-az4")],
        az_map={"us-east-1a": "us-east-1c"},
        instance_type="c5a.2xlarge",
    )
    a, c = out[("c5.large", "us-east-1a")], out[("c5.large", "us-east-1c")]
    np.testing.assert_array_equal(a.times_s, c.times_s)
    np.testing.assert_array_equal(a.prices_usd_per_hour, c.prices_usd_per_hour)
    az4 = out[("c5.large", "use1-az4")]  # 5-hour cross-section keyed by az_id: one price
    np.testing.assert_array_equal(az4.prices_usd_per_hour, [0.2184])


def test_replay_unknown_az_lists_allowed() -> None:
    with pytest.raises(InputError) as info:
        _replay([("c5a.2xlarge", "us-east-1a")])
    err = info.value
    assert one_line(err).startswith(f"{HISTORY}: pricing.spot_prices: ")
    assert err.problem == "no spot price history for c5a.2xlarge in us-east-1a"
    for az in ("us-east-1b", "us-east-1c", "us-east-1f", "use1-az4"):
        assert az in err.allowed


def test_replay_unknown_type() -> None:
    with pytest.raises(InputError, match=r"no spot price history for zz1\.nano in us-east-1c"):
        _replay([("zz1.nano", "us-east-1c")])


def _history_file(tmp_path: Path, *rows: str, header: str = HISTORY_HEADER) -> Path:
    path = tmp_path / "h.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


GOOD_ROW = "2023-01-01T00:00:00Z,us-east-1,us-east-1a,,m5.large,Linux/UNIX,0.05,x"


@pytest.mark.parametrize(
    ("rows", "header", "field", "needle"),
    [
        ((GOOD_ROW,), HISTORY_HEADER.replace(",spot_price", ""), "line 1", "spot_price"),
        (
            (GOOD_ROW, "yesterday,us-east-1,us-east-1a,,m5.large,L,0.05,x"),
            HISTORY_HEADER,
            "line 3",
            "timestamp",
        ),
        (
            ("2023-01-01T00:00:00Z,us-east-1,us-east-1a,,m5.large,L,cheap,x",),
            HISTORY_HEADER,
            "line 2",
            "spot_price",
        ),
        (
            ("2023-01-01T00:00:00Z,us-east-1,us-east-1a,,m5.large,L,-1,x",),
            HISTORY_HEADER,
            "line 2",
            "spot_price",
        ),
        (("2023-01-01T00:00:00Z,us-east-1,,,m5.large,L,0.05,x",), HISTORY_HEADER, "line 2", "az"),
    ],
)
def test_replay_bad_csv(
    tmp_path: Path, rows: tuple[str, ...], header: str, field: str, needle: str
) -> None:
    path = _history_file(tmp_path, *rows, header=header)
    cfg = ReplayedSpotPrices(kind="replay", path=path.name)
    with pytest.raises(InputError) as info:
        replay_spot_prices(
            cfg, base_dir=tmp_path, pools=[("m5.large", "us-east-1a")], duration_s=DAY_S
        )
    assert one_line(info.value).startswith(f"{path}: {field}: ")
    assert needle in info.value.problem


def test_replay_missing_file(tmp_path: Path) -> None:
    cfg = ReplayedSpotPrices(kind="replay", path="missing.csv")
    with pytest.raises(InputError) as info:
        replay_spot_prices(cfg, base_dir=tmp_path, pools=[], duration_s=DAY_S)
    assert str(tmp_path / "missing.csv") in one_line(info.value)


def test_replay_small_file_semantics(tmp_path: Path) -> None:
    path = _history_file(
        tmp_path,
        "2023-01-01T02:00:00Z,us-east-1,us-east-1a,,m5.large,L,0.07,x",
        "2023-01-01T00:00:00Z,us-east-1,us-east-1b,,m5.large,L,0.01,x",  # origin (other AZ)
        "2023-01-01T01:00:00Z,us-east-1,us-east-1a,,m5.large,L,0.05,x",
        "2023-01-01T03:00:00Z,us-east-1,us-east-1a,,m5.large,L,0.07,x",  # no change: dropped
        "2023-01-01T04:00:00Z,us-east-1,us-east-1a,,m5.large,L,0.02,x",
        "2023-01-01T04:00:00Z,us-east-1,us-east-1a,,m5.large,L,0.03,x",  # same time: last wins
    )
    cfg = ReplayedSpotPrices(kind="replay", path=path.name)
    s = replay_spot_prices(
        cfg, base_dir=tmp_path, pools=[("m5.large", "us-east-1a")], duration_s=DAY_S
    )[("m5.large", "us-east-1a")]
    np.testing.assert_array_equal(s.times_s, [0.0, 7200.0, 14_400.0])
    np.testing.assert_array_equal(s.prices_usd_per_hour, [0.05, 0.07, 0.03])
    short = replay_spot_prices(
        cfg, base_dir=tmp_path, pools=[("m5.large", "us-east-1a")], duration_s=3 * 3600.0
    )[("m5.large", "us-east-1a")]
    np.testing.assert_array_equal(short.times_s, [0.0, 7200.0])


# --------------------------------------------------------------------------- model

MODEL = ModelledSpotPrices(kind="model", calibrate_on=HISTORY.name)
POOLS = [("c5a.2xlarge", "us-east-1c"), ("c5a.2xlarge", "us-east-1d"), ("c5.large", "us-east-1a")]


def _model(
    seed: int,
    pools: list[tuple[str, str]] = POOLS,
    duration_s: float = 30 * DAY_S,
    cfg: ModelledSpotPrices = MODEL,
) -> dict[tuple[str, str], PriceSeries]:
    return modelled_spot_prices(
        cfg,
        base_dir=DATA,
        pools=pools,
        on_demand=on_demand_us_east_1(),
        duration_s=duration_s,
        rng=np.random.default_rng(seed),
    )


def test_model_is_deterministic_per_seed() -> None:
    a, b, c = _model(7), _model(7), _model(8)
    for key in POOLS:
        np.testing.assert_array_equal(a[key].times_s, b[key].times_s)
        np.testing.assert_array_equal(a[key].prices_usd_per_hour, b[key].prices_usd_per_hour)
    assert any(
        len(a[k].times_s) != len(c[k].times_s)
        or not np.array_equal(a[k].prices_usd_per_hour, c[k].prices_usd_per_hour)
        for k in POOLS
    )


def test_model_pool_streams_are_independent() -> None:
    alone = _model(3, pools=[POOLS[0]])[POOLS[0]]
    together = _model(3)[POOLS[0]]
    np.testing.assert_array_equal(alone.times_s, together.times_s)
    np.testing.assert_array_equal(alone.prices_usd_per_hour, together.prices_usd_per_hour)
    assert not np.array_equal(_model(3)[POOLS[1]].times_s, together.times_s)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_model_prices_within_zero_and_on_demand(seed: int) -> None:
    od = on_demand_us_east_1()
    for (itype, _), s in _model(seed).items():
        assert np.all(s.prices_usd_per_hour > 0)
        assert np.all(s.prices_usd_per_hour <= od[itype])
        assert s.times_s[0] == 0.0 and s.times_s[-1] < 30 * DAY_S


def test_model_matches_calibration_roughly() -> None:
    od = on_demand_us_east_1()
    cal = calibrate(HISTORY, "c5a.2xlarge", od)
    assert cal.instance_type == "c5a.2xlarge"
    assert 0.1 < cal.change_rate_per_hour < 0.2  # ~117 changes per AZ in ~33 days
    assert 0 < cal.log_step_sd < 0.05
    assert 0.3 < cal.mean_ratio < 0.8
    s = _model(11, pools=[POOLS[0]], duration_s=60 * DAY_S)[POOLS[0]]
    expected_changes = cal.change_rate_per_hour * 60 * 24
    assert 0.7 * expected_changes < len(s.changes_between(0, 60 * DAY_S)) < 1.3 * expected_changes
    mean_price = s.cost_usd(0, 60 * DAY_S) / (60 * 24)
    assert mean_price == pytest.approx(cal.mean_ratio * od["c5a.2xlarge"], rel=0.2)


def test_model_sparse_type_falls_back_to_richest_series() -> None:
    od = on_demand_us_east_1()
    assert calibrate(HISTORY, "c5.large", od).instance_type == "c5a.2xlarge"
    cfg = ModelledSpotPrices(kind="model", calibrate_on=HISTORY.name, instance_type="c5.large")
    out = _model(1, pools=[("c5.large", "us-east-1a")], cfg=cfg)
    assert np.all(out[("c5.large", "us-east-1a")].prices_usd_per_hour <= od["c5.large"])


def test_model_needs_on_demand_price() -> None:
    with pytest.raises(InputError, match=r"no on-demand price for instance type 'zz1\.nano'"):
        _model(1, pools=[("zz1.nano", "us-east-1a")])


# --------------------------------------------------------------------------- availability


def _raw(path: Path) -> tuple[float, np.ndarray]:
    doc = json.loads(path.read_text())
    return float(doc["metadata"]["gap_seconds"]), np.array(doc["data"], dtype=float)


def test_us_east_1c_trace_loads() -> None:
    gap, data = _raw(TRACE_1C)
    assert gap == 195.0
    length = len(data) * gap
    s = load_availability_trace(TRACE_1C, offset_s=0.0, duration_s=length)
    assert s.source == str(TRACE_1C)
    assert np.all(np.mod(s.times_s, 195.0) == 0.0)
    mean_available = 1.0 - s.unavailable_fraction(0.0, length)
    assert mean_available == pytest.approx(0.47, abs=0.01)
    assert mean_available == pytest.approx(float(np.mean(data > 0)), abs=1e-12)
    for i in range(0, len(data), 97):
        assert s.available_at((i + 0.5) * gap) == (data[i] > 0)


def test_transitions_alternate() -> None:
    s = load_availability_trace(TRACE_1C, offset_s=0.0, duration_s=40 * DAY_S)
    transitions = s.transitions()
    assert len(transitions) > 10
    state = s.available_at(0.0)
    last = 0.0
    for time, new_state in transitions:
        assert time > last and new_state != state
        state, last = new_state, time


def test_trace_offset() -> None:
    gap, data = _raw(TRACE_1C)
    offset = 400 * gap + 50.0
    s = load_availability_trace(TRACE_1C, offset_s=offset, duration_s=5 * DAY_S)
    assert s.available_at(0.0) == (data[400] > 0)
    for time, state in s.transitions():
        tick = (time + offset) / gap
        assert tick == round(tick)
        assert state == (data[round(tick)] > 0)


def test_duration_beyond_trace() -> None:
    with pytest.raises(InputError) as info:
        load_availability_trace(TRACE_1C, offset_s=3600.0, duration_s=45.5 * DAY_S)
    err = info.value
    assert err.field == "duration_days"
    assert "covers only 1091.9 h" in one_line(err)
    assert str(TRACE_1C) in str(err)


def _trace(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"metadata": {"gap_seconds": 60}, "data": [0, 1', "line 1"),
        ('{"data": [0, 1]}', "metadata.gap_seconds"),
        ('{"metadata": {}, "data": [0, 1]}', "metadata.gap_seconds"),
        ('{"metadata": {"gap_seconds": 0}, "data": [0, 1]}', "metadata.gap_seconds"),
        ('{"metadata": {"gap_seconds": "60"}, "data": [0, 1]}', "metadata.gap_seconds"),
        ('{"metadata": {"gap_seconds": true}, "data": [0, 1]}', "metadata.gap_seconds"),
        ('{"metadata": {"gap_seconds": 60}}', "data"),
        ('{"metadata": {"gap_seconds": 60}, "data": []}', "data"),
        ('{"metadata": {"gap_seconds": 60}, "data": {"a": 1}}', "data"),
        ('{"metadata": {"gap_seconds": 60}, "data": [0, 1, -1]}', "data[2]"),
        ('{"metadata": {"gap_seconds": 60}, "data": [0, "1"]}', "data[1]"),
        ('{"metadata": {"gap_seconds": 60}, "data": [0, NaN]}', "data[1]"),
        ("[0, 1]", ""),
    ],
)
def test_malformed_trace(tmp_path: Path, text: str, field: str) -> None:
    path = _trace(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_availability_trace(path, offset_s=0.0, duration_s=60.0)
    assert info.value.field == field
    assert one_line(info.value).startswith(str(path))


def test_missing_trace(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_availability_trace(tmp_path / "x.json", offset_s=0.0, duration_s=1.0)


def test_n_node_trace(tmp_path: Path) -> None:
    path = _trace(tmp_path, '{"metadata": {"gap_seconds": 10}, "data": [0, 2, 3, 0, 0]}')
    s = load_availability_trace(path, offset_s=0.0, duration_s=50.0)
    assert s.transitions() == [(10.0, True), (30.0, False)]
    assert not s.available_at(0.0)
    assert s.unavailable_fraction(0.0, 50.0) == pytest.approx(0.6)
    assert s.unavailable_fraction(5.0, 15.0) == pytest.approx(0.5)
    assert s.unavailable_fraction(12.0, 12.0) == 0.0


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.integers(0, 1), min_size=1, max_size=200),
    gap=st.integers(1, 600),
    data=st.data(),
)
def test_trace_step_function_property(
    tmp_path_factory: pytest.TempPathFactory, values: list[int], gap: int, data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("trace") / "t.json"
    path.write_text(json.dumps({"metadata": {"gap_seconds": gap}, "data": values}))
    first = data.draw(st.integers(0, len(values) - 1))
    ticks = data.draw(st.integers(1, len(values) - first))
    offset, duration = float(first * gap), float(ticks * gap)
    s = load_availability_trace(path, offset_s=offset, duration_s=duration)
    window = np.array(values[first : first + ticks])
    for i, v in enumerate(window.tolist()):
        assert s.available_at((i + 0.5) * gap) == (v > 0)
    assert s.unavailable_fraction(0.0, duration) == pytest.approx(float(np.mean(window == 0)))
    states = [s.available_at(0.0)] + [st_ for _, st_ in s.transitions()]
    assert all(x != y for x, y in itertools.pairwise(states))


def test_availability_series_collapses_and_always() -> None:
    states = np.array([True, True, False, False])
    s = AvailabilitySeries(np.array([0.0, 1.0, 2.0, 3.0]), states, "x")
    assert s.transitions() == [(2.0, False)]
    a = always_available()
    assert a.available_at(1e12) and a.transitions() == []
    assert a.unavailable_fraction(0.0, 1e6) == 0.0
    with pytest.raises(ValueError):
        AvailabilitySeries(np.array([1.0]), np.array([True]), "x")


def test_replay_availability() -> None:
    azs = ["us-east-1c", "us-east-1d"]
    always = replay_availability(
        AlwaysAvailable(kind="always"), base_dir=DATA, azs=azs, duration_s=DAY_S
    )
    assert set(always) == set(azs) and all(s.available_at(5.0) for s in always.values())
    files = {az: f"traces/availability/1-node/aws-02-15-2023/{az}_v100_1.json" for az in azs}
    cfg = ReplayedAvailability(kind="replay", files=files, offset_h=24.0)
    out = replay_availability(cfg, base_dir=DATA, azs=azs, duration_s=7 * DAY_S)
    gap, data = _raw(TRACE_1C)
    assert out["us-east-1c"].available_at(0.0) == (data[int(DAY_S // gap)] > 0)
    assert out["us-east-1c"].source.endswith("us-east-1c_v100_1.json")


def test_replay_availability_missing_az() -> None:
    cfg = ReplayedAvailability(kind="replay", files={"us-east-1c": TRACE_1C.name})
    with pytest.raises(InputError) as info:
        replay_availability(
            cfg, base_dir=TRACE_DIR, azs=["us-east-1c", "us-east-1b"], duration_s=DAY_S
        )
    err = info.value
    assert one_line(err).startswith(
        "scenario: pricing.spot_availability.files: no trace for AZ us-east-1b"
    )
    assert "us-east-1c" in err.allowed


def test_availability_from_path() -> None:
    single = availability_from_path(TRACE_1C, azs=["a", "b"], duration_s=DAY_S)
    assert single["a"] is single["b"]
    azs = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"]
    out = availability_from_path(TRACE_DIR, azs=azs, duration_s=DAY_S)
    names = {az: Path(s.source).name for az, s in out.items()}
    assert names["us-east-1a"] == "us-east-1a_v100_1.json"
    assert names["us-east-1c"] == "us-east-1c_v100_1.json"
    # unmatched AZs: round-robin over unclaimed files in sorted order
    assert names["us-east-1b"] == "us-east-1d_v100_1.json"
    assert names["us-east-1e"] == "us-east-1f_v100_1.json"


def test_availability_from_path_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        availability_from_path(tmp_path / "nope", azs=["a"], duration_s=1.0)
    with pytest.raises(InputError, match=r"no \*\.json"):
        availability_from_path(tmp_path, azs=["a"], duration_s=1.0)
