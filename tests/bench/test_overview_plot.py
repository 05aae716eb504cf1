"""``overview.png`` of ``replay --out``: drawn from the run folder alone, every panel inked,
every declared fault window shaded, dropped requests shown when the run drops some.

The runs are the shipped az-outage and spot-storm scenarios with their faults moved into
the first hours (so that each replay lasts a quarter to half a day)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb

from opsbench_testing import shipped_doc, write_scenario

from bench import runner
from bench.plots import (
    DROPPED,
    OFFERED,
    OVERVIEW_DPI,
    PANELS,
    plot_overview,
    read_overview_data,
    render_overview,
)
from bench.run_context import FILE_NAME, fault_spans, read_run_context
from sim.errors import InputError

AZ_OUTAGES = [
    # two AZs of three at once: the fleet loses two thirds of its capacity, so requests drop
    {"az": "us-east-1c", "start_h": 2.0, "duration_h": 1.0},
    {"az": "us-east-1d", "start_h": 2.0, "duration_h": 1.5},
    {"az": "us-east-1f", "start_h": 5.5, "duration_h": 2.0},  # clipped at the end (6 h)
    {"az": "us-east-1f", "start_h": 30.0, "duration_h": 1.0},  # after the end: not drawn
]
SPOT_STORMS = [
    {
        "azs": ["us-east-1c", "us-east-1d"],
        "start_h": 1.0,
        "duration_h": 1.5,
        "interrupt_fraction": 0.9,
    },
    {"azs": ["us-east-1f"], "start_h": 4.0, "duration_h": 1.0, "interrupt_fraction": 0.8},
]
TELEMETRY_GAPS = [{"start_h": 3.0, "duration_h": 0.5}]
DAYS = 0.25


def _replay(tmp: Path, scenario: str, faults: dict[str, Any]) -> Path:
    doc = shipped_doc(scenario)
    doc["faults"].update(faults)
    path = write_scenario(tmp, doc, f"{scenario}.yaml")
    out = tmp / scenario
    runner.run(runner.prepare_run(str(path), days=DAYS), out=out)
    return out


@pytest.fixture(scope="module")
def outage_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _replay(tmp_path_factory.mktemp("overview"), "az-outage", {"az_outages": AZ_OUTAGES})


@pytest.fixture(scope="module")
def storm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    faults = {"spot_storms": SPOT_STORMS, "telemetry_gaps": TELEMETRY_GAPS}
    return _replay(tmp_path_factory.mktemp("overview"), "spot-storm", faults)


def _declared(kind: str, windows: list[dict[str, Any]]) -> set[tuple[str, float, float]]:
    """The declared windows that start before the end of the replay, clipped to it."""
    end_h = DAYS * 24
    return {
        (kind, w["start_h"], min(w["start_h"] + w["duration_h"], end_h))
        for w in windows
        if w["start_h"] < end_h
    }


def _drawn(run: Path) -> set[tuple[str, float, float]]:
    return {(f.kind, f.start_h, f.end_h) for f in read_run_context(run).faults}


def test_outage_windows_are_the_declared_ones(outage_run: Path) -> None:
    assert _drawn(outage_run) == _declared("az_outage", AZ_OUTAGES)
    labels = sorted(f.label for f in read_run_context(outage_run).faults)
    assert labels == ["AZ outage us-east-1c", "AZ outage us-east-1d", "AZ outage us-east-1f"]


def test_storm_and_gap_windows_are_the_declared_ones(storm_run: Path) -> None:
    want = _declared("spot_storm", SPOT_STORMS) | _declared("telemetry_gap", TELEMETRY_GAPS)
    assert _drawn(storm_run) == want  # spot-storm's market is always available: no trace gaps
    storms = [f for f in read_run_context(storm_run).faults if f.kind == "spot_storm"]
    assert [list(f.azs) for f in storms] == [s["azs"] for s in SPOT_STORMS]


def _figure(run: Path) -> tuple[np.ndarray, dict[str, Axes]]:
    """The overview of ``run`` as an RGB array (drawn as ``plot_overview`` does) and its
    panels."""
    fig, axes = render_overview(read_overview_data(run))
    png = run / "check.png"
    fig.savefig(png, dpi=OVERVIEW_DPI, metadata={"Software": None})
    plt.close(fig)
    return matplotlib.image.imread(png)[..., :3], axes


def _inside(image: np.ndarray, ax: Axes, inset: int = 3) -> np.ndarray:
    """The pixels inside ``ax``'s frame (a few pixels in, off the spines)."""
    box = ax.get_window_extent()
    height = image.shape[0]
    rows = slice(int(height - box.y1) + inset, int(height - box.y0) - inset)
    cols = slice(int(box.x0) + inset, int(box.x1) - inset)
    return image[rows, cols]


def _ink(pixels: np.ndarray) -> int:
    """Pixels that are saturated or dark: data, not background, grid or light shading."""
    spread = pixels.max(axis=-1) - pixels.min(axis=-1)
    return int(((spread > 0.3) | (pixels.mean(axis=-1) < 0.55)).sum())


def _of_colour(pixels: np.ndarray, colour: str, tolerance: float = 0.08) -> int:
    return int((np.abs(pixels - np.array(to_rgb(colour))).max(axis=-1) < tolerance).sum())


@pytest.mark.parametrize("run_name", ["outage_run", "storm_run"])
def test_every_panel_is_drawn_and_every_window_shaded(
    run_name: str, request: pytest.FixtureRequest
) -> None:
    run: Path = request.getfixturevalue(run_name)
    image, axes = _figure(run)
    assert list(axes) == list(PANELS)
    windows = {f"fault:{k}:{s:g}:{e:g}": (s, e) for k, s, e in _drawn(run)}
    for name, ax in axes.items():
        inked = _ink(_inside(image, ax))
        assert inked > 100, (name, inked)  # a blank panel has none
        shaded = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("fault:")}
        assert set(shaded) == set(windows), name
        for gid, (start_h, end_h) in windows.items():
            patch: Any = shaded[gid]
            assert patch.get_x() == pytest.approx(start_h), (name, gid)
            assert patch.get_x() + patch.get_width() == pytest.approx(end_h), (name, gid)
    assert _of_colour(_inside(image, axes["load"]), OFFERED) > 500  # on top, not under served


def test_dropped_requests_show_when_the_run_drops_some(outage_run: Path) -> None:
    summary = json.loads((outage_run / "summary.json").read_text())
    assert summary["dropped_requests"] > 1000  # two AZs of three out at once
    data = read_overview_data(outage_run)
    assert data.minutes.dropped_per_min.sum() == pytest.approx(summary["dropped_requests"], abs=1)
    image, axes = _figure(outage_run)
    assert _of_colour(_inside(image, axes["dropped"]), DROPPED) > 20


def test_no_dropped_series_when_nothing_drops(storm_run: Path) -> None:
    assert json.loads((storm_run / "summary.json").read_text())["dropped_requests"] == 0
    image, axes = _figure(storm_run)
    assert _of_colour(_inside(image, axes["dropped"]), DROPPED) == 0
    assert [t.get_text() for t in axes["dropped"].texts] == ["no request dropped"]


def test_telemetry_gap_breaks_the_lines(storm_run: Path) -> None:
    minutes = read_overview_data(storm_run).minutes
    gap = TELEMETRY_GAPS[0]
    inside = minutes.loc[
        int(gap["start_h"] * 60) : int((gap["start_h"] + gap["duration_h"]) * 60) - 1
    ]
    assert inside.offered_rps.isna().all() and len(inside) == 30
    assert minutes.offered_rps.notna().sum() == len(minutes) - 30


def test_cumulative_cost_ends_at_the_bill(storm_run: Path) -> None:
    data = read_overview_data(storm_run)
    last = data.cost.iloc[-1]
    assert last["on-demand"] == pytest.approx(data.summary["on_demand_cost_usd"], rel=1e-9)
    assert last["spot"] == pytest.approx(data.summary["spot_cost_usd"], rel=1e-9)
    assert (np.diff(data.cost.to_numpy(), axis=0) >= -1e-12).all()  # never decreases


def test_the_folder_redraws_the_same_png(storm_run: Path) -> None:
    written = (storm_run / "overview.png").read_bytes()
    (storm_run / "overview.png").unlink()
    assert plot_overview(storm_run).read_bytes() == written


def test_spot_outage_rows_follow_the_capacity_telemetry(tmp_path: Path) -> None:
    """The availability trace's gaps (default scenario) as the replay's own capacity rows
    report them: ``spot_available`` is false exactly in the minutes the windows cover."""
    out = tmp_path / "run"
    runner.run(runner.prepare_run("default", days=1), out=out)
    faults = read_run_context(out).faults
    capacity = pd.read_parquet(out / "capacity.parquet")
    spot = capacity[capacity.capacity_type == "spot"]
    assert (~spot.spot_available).any() and spot.spot_available.any()
    for az, rows in spot.groupby("az"):
        windows = [
            (f.start_h, f.end_h) for f in faults if f.kind == "spot_unavailable" and f.azs == (az,)
        ]
        # a row reports the market at its minute's end (the last one: just before the end)
        hours = np.minimum(rows.sim_time_s.to_numpy() / 3600.0 + 1 / 60, 24.0 - 1e-9)
        covered = np.array([any(s <= h < e for s, e in windows) for h in hours])
        assert (covered == ~rows.spot_available.to_numpy()).all(), az


@pytest.mark.parametrize(
    ("scenario", "days", "want"),
    [
        (
            "regime-shift",
            2.1,
            {("workload_shift", 48.0), ("spot_price_shift", 48.0)},
        ),
        ("new-service-account", 2, {("principal_arrival", 24.0), ("attack_campaign", 28.5)}),
        ("bad-model", 1, {("injected_challenger", 12.0)}),
    ],
)
def test_instants_are_the_declared_ones(
    scenario: str, days: float, want: set[tuple[str, float]]
) -> None:
    world = runner.prepare_run(scenario, days=days).world
    got = {(f.kind, f.start_h) for f in fault_spans(world) if f.start_h == f.end_h}
    assert got == want


def test_a_bad_run_context_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        read_run_context(tmp_path)
    assert FILE_NAME in missing.value.one_line()
    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        read_run_context(tmp_path)
    good = {
        "slo_p95_latency_ms": 200,
        "target_utilization": 0.6,
        "pod_rps_at_target": 40,
        "pod_rps_max": 66,
        "faults": [{"kind": "volcano", "label": "x", "start_h": 1, "end_h": 2}],
    }
    (tmp_path / FILE_NAME).write_text(json.dumps(good))
    with pytest.raises(InputError) as bad:
        read_run_context(tmp_path)
    assert "faults.0.kind" in bad.value.one_line()


def test_many_pools_get_distinct_colours_and_idle_ones_no_legend_entry() -> None:
    """A right-sizing fleet is one simulated pool per instance type: fourteen pools must
    not share colours, and a type that never ran a node is not drawn."""
    from bench.plots import POOL_COLOURS, _draw_nodes, pool_colours

    assert pool_colours(3) == list(POOL_COLOURS[:3])
    assert len(set(pool_colours(14))) == 14
    t = np.arange(10.0)
    nodes = pd.DataFrame({"a": np.ones(10), "idle": np.zeros(10), "b": np.full(10, 2.0)})
    fig, ax = plt.subplots()
    try:
        _draw_nodes(ax, t, nodes, "1 min")
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
    finally:
        plt.close(fig)
    assert labels == ["a pool", "b pool"]
