"""Regime shifts mid-replay: a second real trace (``workload.shift``) and another spot price
series (``pricing.spot_prices.shift``) take over at ``at_h``; the history stays the first
trace's. Checked against the raw CSV values, on short runs of the shipped scenario."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import runner
from opsbench_testing import (
    assert_nothing_written,
    assert_one_line_error,
    run_main,
    shipped_doc,
    write_scenario,
)
from sim.errors import InputError
from sim.market.prices import PriceSeries, replay_spot_prices, spliced_prices
from sim.scenario import ReplayedSpotPrices
from sim.scenario_files import parse_scenario
from sim.traces import load_trace
from sim.world import World, prepare

AT_H = 3.0
DAYS = 0.25  # 6 h: 3 h of each regime
SHIFT_MIN = int(AT_H * 60)


def doc(**workload: Any) -> dict[str, Any]:
    """The shipped regime-shift scenario, shortened: both shifts at ``AT_H`` of 6 hours."""
    data = shipped_doc("regime-shift")
    data["duration_days"] = DAYS
    data["workload"]["shift"]["at_h"] = AT_H
    data["pricing"]["spot_prices"]["shift"]["at_h"] = AT_H
    data["workload"].update(workload)
    return data


def world_of(data: dict[str, Any], tmp_path: Path, **overrides: Any) -> World:
    path = write_scenario(tmp_path, data)
    return prepare(parse_scenario(data, source=path), source=path, **overrides)


def raw_minutes(path: str, start: str, minutes: int) -> np.ndarray:
    """A 1-minute trace's values from ``start`` on, straight from the CSV (no gaps there)."""
    trace = load_trace(Path(path))
    first = int(np.searchsorted(trace.timestamps, np.datetime64(start, "s")))
    assert trace.timestamps[first] == np.datetime64(start, "s")
    values = trace.values[first : first + minutes]
    assert values.size == minutes and not np.isnan(values).any()
    return np.asarray(values, dtype=np.float64)


# --------------------------------------------------------------------------- workload


def test_offered_load_is_the_first_trace_then_the_second_normalised_on_its_own(
    tmp_path: Path,
) -> None:
    data = doc()
    w, shift = data["workload"], data["workload"]["shift"]
    offered = world_of(data, tmp_path).workload.offered_rps
    assert offered.size == DAYS * 1440
    nasa = raw_minutes(w["path"], w["start"], SHIFT_MIN)
    np.testing.assert_allclose(offered[:SHIFT_MIN], nasa / nasa.max() * w["peak_rps"], rtol=1e-12)
    cup = raw_minutes(shift["path"], shift["start"], offered.size - SHIFT_MIN)
    np.testing.assert_allclose(
        offered[SHIFT_MIN:], cup / cup.mean() * shift["mean_rps"], rtol=1e-12
    )
    assert offered[SHIFT_MIN:].mean() == pytest.approx(shift["mean_rps"])


def test_history_is_the_first_trace_only(tmp_path: Path) -> None:
    shifted = world_of(doc(), tmp_path).workload
    plain_doc = doc()
    del plain_doc["workload"]["shift"], plain_doc["pricing"]["spot_prices"]["shift"]
    plain_doc["duration_days"] = AT_H / 24
    plain = world_of(plain_doc, tmp_path).workload
    np.testing.assert_array_equal(shifted.history_rps, plain.history_rps)
    np.testing.assert_array_equal(shifted.history_filled, plain.history_filled)
    np.testing.assert_array_equal(shifted.offered_rps[:SHIFT_MIN], plain.offered_rps)
    assert shifted.history_rps.size == 16 * 1440  # 1-16 July 1995
    assert (shifted.start, shifted.source) == (plain.start, plain.source)


def test_a_trace_override_replaces_the_first_regime_only(tmp_path: Path) -> None:
    data = doc()
    w = data["workload"]
    plain = world_of(data, tmp_path).workload
    over = world_of(
        data, tmp_path, trace_override=Path(w["path"]), trace_start=plain.start
    ).workload
    np.testing.assert_array_equal(over.offered_rps, plain.offered_rps)


def test_the_second_traces_gaps_are_filled_and_counted(tmp_path: Path) -> None:
    """NASA's August log has no data from 1 Aug 14:53 to 3 Aug 04:35 (seasonally filled)."""
    data = doc()
    data["workload"]["shift"].update(
        path=data["workload"]["path"], start="1995-08-01T14:00:00", peak_rps=1000.0
    )
    del data["workload"]["shift"]["mean_rps"]
    world = world_of(data, tmp_path)
    assert world.workload.filled_minutes == 180 - 53  # 14:53 to 17:00 of the second part
    assert np.isfinite(world.workload.offered_rps).all()
    assert world.workload.offered_rps[SHIFT_MIN:].max() == pytest.approx(1000.0)


# --------------------------------------------------------------------------- prices


def test_spot_prices_follow_the_other_series_from_at_h(tmp_path: Path) -> None:
    data = doc()
    cfg = data["pricing"]["spot_prices"]
    world = world_of(data, tmp_path)
    plain_cfg = ReplayedSpotPrices.model_validate({k: v for k, v in cfg.items() if k != "shift"})
    azs = cfg["shift"]["az_map"]
    before = replay_spot_prices(
        plain_cfg,
        base_dir=tmp_path,
        pools=[("c5a.2xlarge", az) for az in azs],
        duration_s=DAYS * 86400,
    )
    at_s = AT_H * 3600
    level_2022 = {"use1-az4": 0.2184, "use1-az6": 0.1992, "use1-az5": 0.1969}
    spot = [i for i, p in enumerate(world.pools) if p.capacity_type == "spot"]
    for (pool, az), series in world.prices.items():
        if pool not in spot:
            assert series.prices_usd_per_hour.tolist() == [0.308]  # on-demand unchanged
            continue
        for t in np.linspace(0, at_s - 1, 50):
            assert series.price_at(t) == before[("c5a.2xlarge", az)].price_at(t)
        for t in (at_s, at_s + 1, DAYS * 86400, 1e9):
            assert series.price_at(t) == level_2022[azs[az]]
    assert len(spot) == 1


def test_a_moving_series_keeps_its_changes_after_the_shift(tmp_path: Path) -> None:
    """Shift to the dearest 2023 AZ 20 days in: the new series' own changes, re-timed."""
    history = shipped_doc("regime-shift")["pricing"]["spot_prices"]["path"]
    shift = {"at_h": 30.0, "az_map": {"us-east-1c": "us-east-1d"}, "offset_h": 480.0}
    cfg = ReplayedSpotPrices(
        kind="replay", path=history, instance_type="c5a.2xlarge", offset_h=96, shift=shift
    )
    days_s = 3 * 86400.0
    pools = [("c5a.2xlarge", "us-east-1c")]
    got = replay_spot_prices(cfg, base_dir=tmp_path, pools=pools, duration_s=days_s)[pools[0]]
    new = ReplayedSpotPrices(kind="replay", path=history, instance_type="c5a.2xlarge", offset_h=480)
    later = replay_spot_prices(
        new, base_dir=tmp_path, pools=[("c5a.2xlarge", "us-east-1d")], duration_s=days_s
    )
    at_s = 30 * 3600.0
    changes = got.changes_between(at_s, days_s)
    assert changes.size >= 3
    for t in np.concatenate(([at_s], changes, changes - 1, [days_s])):
        if t >= at_s:
            assert got.price_at(t) == later[("c5a.2xlarge", "us-east-1d")].price_at(t - at_s)


def test_spliced_prices_cut_at_the_shift() -> None:
    before = PriceSeries(np.array([0.0, 10.0, 30.0]), np.array([1.0, 2.0, 3.0]))
    after = PriceSeries(np.array([0.0, 20.0, 25.0]), np.array([5.0, 6.0, 2.0]))
    got = spliced_prices(before, after, 20.0)
    assert got.times_s.tolist() == [0.0, 10.0, 20.0, 25.0]
    assert got.prices_usd_per_hour.tolist() == [1.0, 2.0, 6.0, 2.0]
    assert got.cost_usd(0, 40) == pytest.approx((10 * 1 + 10 * 2 + 5 * 6 + 15 * 2) / 3600)
    same = spliced_prices(before, PriceSeries(np.array([0.0]), np.array([2.0])), 15.0)
    assert same.times_s.tolist() == [0.0, 10.0]  # no change where the price stays
    with pytest.raises(ValueError, match="at_s"):
        spliced_prices(before, after, 0.0)


def test_a_spot_prices_override_keeps_the_shift(tmp_path: Path) -> None:
    """``--spot-prices`` replaces the file (replayed from its start, as without a shift);
    the shift still applies, read from the override file."""
    data = doc()
    history = Path(data["pricing"]["spot_prices"]["path"])
    plain = world_of(data, tmp_path)
    over = world_of(data, tmp_path, spot_prices_override=history)
    at_s = AT_H * 3600
    for key, series in plain.prices.items():
        for t in (at_s, at_s + 60, DAYS * 86400):
            assert over.prices[key].price_at(t) == series.price_at(t)


# --------------------------------------------------------------------------- bad input


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    *parents, leaf = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[leaf] = value
    return out


BAD = [
    ("workload.shift.at_h", 6.0, (), ("workload.shift.at_h", "not before the end", "< 6")),
    ("workload.shift.at_h", 0.0, (), ("workload.shift.at_h", "greater than 0")),
    (
        "pricing.spot_prices.shift.at_h",
        7.5,
        (),
        ("pricing.spot_prices.shift.at_h", "7.5 h is not before the end"),
    ),
    (
        "workload.shift.at_h",
        AT_H,
        ("--days", "0.1"),
        ("workload.shift.at_h", "2.4-hour replay"),
    ),
    (
        "workload.shift.start",
        "1998-07-26T20:00:00",
        (),
        ("worldcup98_requests_per_min.csv", "workload.shift.start", "needs data until"),
    ),
    (
        "workload.shift.start",
        "1999-01-01T00:00:00",
        (),
        ("workload.shift.start", "outside the trace"),
    ),
    (
        "workload.shift.path",
        "nowhere.csv",
        (),
        ("workload.shift.path", "file not found"),
    ),
    (
        "workload.shift.peak_rps",
        100.0,
        (),
        ("workload.shift", "exactly one of peak_rps or mean_rps"),
    ),
    (
        "pricing.spot_prices.shift.instance_type",
        "zz1.nano",
        (),
        ("pricing.spot_prices.shift.instance_type", "zz1.nano", "no AZ has rows"),
    ),
    (
        "pricing.spot_prices.shift.az_map",
        {"us-east-1c": "use1-az9"},
        (),
        ("pricing.spot_prices.shift.az_map", "use1-az9", "use1-az4"),
    ),
]


@pytest.mark.parametrize(
    ("field", "value", "args", "needles"), BAD, ids=[b[0] + str(b[1]) for b in BAD]
)
def test_bad_shift_is_one_line_naming_the_field(
    field: str,
    value: Any,
    args: tuple[str, ...],
    needles: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_scenario(tmp_path, _set(doc(), field, value))
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, ["replay", str(path), "--policy", "reactive", "--out", str(out), *args]
    )
    assert_one_line_error(code, stdout, stderr, *needles)
    assert_nothing_written(out)


def test_first_trace_ending_before_the_shift_names_at_h(tmp_path: Path) -> None:
    data = doc(start="1995-07-28T12:00:00")  # the July log stops at 13:32
    data["workload"]["shift"]["at_h"] = 2.0
    data["workload"]["path"] = str(tmp_path / "short.csv")
    rows = [f"1995-07-28T{12 + m // 60:02d}:{m % 60:02d}:00,{m}" for m in range(90)]
    Path(data["workload"]["path"]).write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as info:
        world_of(data, tmp_path)
    assert info.value.field == "workload.shift.at_h"


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_telemetry(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, doc())
    first, second = (runner.run(runner.prepare_run(str(path), policy="reactive")) for _ in range(2))
    assert first["telemetry_sha256"] == second["telemetry_sha256"]
    other = runner.run(runner.prepare_run(str(path), policy="reactive", seed=15))
    assert other["telemetry_sha256"] != first["telemetry_sha256"]
    assert math.isclose(first["offered_requests"], other["offered_requests"])
