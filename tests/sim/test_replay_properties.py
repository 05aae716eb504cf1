"""Properties of every replay, over random scenarios and policies (hypothesis)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opsbench_testing import Recorded, scenarios, write_scenario

from agents.registry import make_policy
from sim.engine import Replay
from sim.scenario_files import load_scenario_file
from sim.summary import summarise
from sim.telemetry import MemorySink
from sim.world import World, prepare

POLICIES = ["static", "reactive", "oracle"]


def run(
    tmp: Path, data: dict[str, Any], policy: str
) -> tuple[World, Replay, Any, MemorySink, Recorded]:
    path = write_scenario(tmp, data)
    world = prepare(load_scenario_file(path), source=path)
    watched = Recorded(make_policy(policy, {}, source="test", field="policy"))
    sink = MemorySink()
    replay = Replay(world, watched, sink)
    truth = replay.run()
    return world, replay, truth, sink, watched


settings.register_profile(
    "replay", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@settings.get_profile("replay")
@given(data=scenarios(), policy=st.sampled_from(POLICIES))
def test_replay_invariants(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any], policy: str
) -> None:
    tmp = tmp_path_factory.mktemp("replay")
    world, replay, truth, sink, watched = run(tmp, data, policy)
    summary = summarise(replay, truth, policy=policy, wall_s=0.0)

    # cost >= 0 and equal to the sum of the billing records
    billing = sink.table("billing")
    assert summary["cost_usd"] >= 0
    assert math.isclose(
        summary["cost_usd"], pc.sum(billing["cost_usd"]).as_py() or 0.0, rel_tol=1e-9, abs_tol=1e-6
    )
    assert min(billing["cost_usd"].to_pylist(), default=0.0) >= 0

    # node counts within [min, max] at every control tick
    for obs in watched.observations:
        for spec in world.pools:
            assert obs.pools[spec.name].nodes_active <= spec.max_nodes

    # served never exceeds offered: requests are conserved (served + dropped + queued)
    offered, served, dropped = truth.offered, truth.served, truth.dropped
    assert np.all(np.cumsum(served) <= np.cumsum(offered) + 1e-6 * np.cumsum(offered) + 1e-6)
    backlog = offered.sum() - served.sum() - dropped.sum()
    assert backlog >= -1e-6 * max(1.0, offered.sum())

    # nothing is served by a node that is not running (serving capacity bounds service)
    capacity = truth.serving_pods * replay.service.pod_rate_rps * 60.0
    assert np.all(served <= capacity * (1 + 1e-9) + 1e-6)
    assert np.all(served[truth.serving_pods == 0] == 0)

    # an interrupted spot node stops billing when it is terminated
    events = sink.table("events").to_pandas()
    noticed = events[events.event == "interruption_notice"]
    if len(noticed):
        bills = billing.to_pandas().groupby("node_id").period_end.max()
        ends = events[events.event == "terminated"].set_index("node_id").timestamp
        for node_id, notice in zip(noticed.node_id, noticed.timestamp, strict=True):
            if node_id in ends.index:  # reclaimed before the end of the replay
                end = ends[node_id]
                assert (
                    end - notice
                ).total_seconds() <= world.scenario.pricing.interruption_notice_s + 1
                assert bills[node_id] <= end + np.timedelta64(1, "s")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=scenarios())
def test_pool_minimum_held_without_faults(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    data["faults"] = {}
    data["pricing"].pop("spot_availability", None)
    tmp = tmp_path_factory.mktemp("minimum")
    world, _, _, _, watched = run(tmp, data, "reactive")
    for obs in watched.observations:
        for spec in world.pools:
            assert obs.pools[spec.name].nodes_active >= spec.min_nodes
