"""The simulator's adapters (sim/adapters.py) beyond the shared contract: what the replay
observes through them during an AZ outage, reconciling by zone, and their refusals."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from opsbench_testing import Recorded, shipped_doc

from agents.registry import make_policy
from sim.engine import Replay
from sim.scenario_files import load_scenario_file
from sim.telemetry import MemorySink
from sim.world import World, prepare

DOWN = "us-east-1d"
OUTAGE_H = (1.0, 1.5)


@cache
def outage_world() -> World:
    """Two hours of the default cluster (on-demand + spot, spot always on offer, spot's
    minimum 3) with us-east-1d down from 1 h to 1.5 h; no audit section."""
    doc: dict[str, Any] = shipped_doc("credential-theft")
    del doc["audit"]
    doc["id"] = "adapter-outage"
    doc["duration_days"] = 2.0 / 24.0
    doc["cluster"]["pools"][1]["min_nodes"] = 3
    doc["pricing"]["spot_availability"] = {"kind": "always"}
    start, end = OUTAGE_H
    doc["faults"] = {"az_outages": [{"az": DOWN, "start_h": start, "duration_h": end - start}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adapter-outage.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return prepare(load_scenario_file(path), source=path)


def run(policy: Any = None) -> Replay:
    inner = make_policy("reactive", {}, source="test", field="policy")
    replay = Replay(outage_world(), policy or inner, MemorySink())
    replay.run()
    return replay


def test_outage_zone_is_not_launchable_yet_spot_stays_on_offer() -> None:
    recorded = Recorded(make_policy("reactive", {}, source="test", field="policy"))
    run(recorded)
    during = [o for o in recorded.observations if 3600 < o.sim_time_s < 5400]
    after = [o for o in recorded.observations if o.sim_time_s > 5400]
    assert during and after
    for obs in during:
        for state in obs.pools.values():
            assert DOWN not in state.launchable_azs
        # the zone's outage is no spot market event: spot there is still on offer
        assert obs.pools["spot"].spot_available[DOWN] is True
        assert obs.pools["on-demand"].spot_available[DOWN] is True
    assert all(DOWN in o.pools["spot"].launchable_azs for o in after)


def test_offerings_during_an_outage() -> None:
    replay = Replay(
        outage_world(),
        make_policy("reactive", {}, source="test", field="policy"),
        MemorySink(),
    )
    replay.az_down[DOWN] = 1  # as the outage process sets it
    offers = {
        (o.az, o.capacity_type): o for o in replay.spot_market.offerings(["c5a.2xlarge"], [DOWN])
    }
    assert not offers[(DOWN, "on-demand")].available
    assert not offers[(DOWN, "spot")].available
    assert offers[(DOWN, "spot")].capacity_on_offer is True


def test_a_type_without_spot_pool_is_not_on_offer_and_unknown_types_raise() -> None:
    replay = run()
    spot = replay.node_groups.describe("spot")
    on_demand_price = replay.world.pools[0].on_demand_usd_per_hour
    assert spot.instance_types == ("c5a.2xlarge",)
    with pytest.raises(KeyError, match=r"m5\.large"):
        replay.spot_market.offerings(["m5.large"], spot.azs)
    # an AZ no spot pool runs in: no spot market for the type there
    offers = replay.spot_market.offerings(["c5a.2xlarge"], ["us-east-1a"])
    spot_offer = next(o for o in offers if o.capacity_type == "spot")
    assert not spot_offer.available and spot_offer.price_usd_per_hour == on_demand_price


def test_set_desired_by_zone_reconciles_each_zone() -> None:
    replay = run()
    groups = replay.node_groups
    before = groups.describe("on-demand")
    running = dict(before.nodes_by_state_az.get("running", {}))
    pending = dict(before.nodes_by_state_az.get("pending", {}))
    zone = "us-east-1f"
    have = running.get(zone, 0) + pending.get(zone, 0)
    groups.set_desired("on-demand", before.desired_size + 2, by_az={zone: have + 2})
    after = groups.describe("on-demand")
    assert after.desired_size == before.desired_size + 2
    assert after.nodes_by_state_az["pending"][zone] == pending.get(zone, 0) + 2


def test_metrics_cannot_be_read_in_the_past() -> None:
    replay = run()
    with pytest.raises(ValueError, match="at its clock or later"):
        replay.metrics_source.read(["spot"], replay.start + timedelta(minutes=30))
    later = replay.metrics_source.read(["spot"], replay.clock() + timedelta(minutes=5))
    assert later.metrics is None and later.age_s == pytest.approx(300.0, abs=1e-3)


def test_audit_log_without_audit_and_bad_cursors() -> None:
    replay = run()
    batch = replay.audit_log.read(None, replay.clock())
    assert (list(batch.records), batch.cursor, dict(batch.kinds)) == ([], "0", {})
    for bad in ("-1", "1", "x", "٣"):
        with pytest.raises(ValueError, match="audit cursor"):
            replay.audit_log.read(bad, replay.clock())


class CheckingPolicy:
    """Reactive, checking at every tick that each cached description is what a fresh
    one says (every change of a pool books a cluster event, which the cache keys on)."""

    def __init__(self) -> None:
        self.inner = make_policy("reactive", {}, source="test", field="policy")
        self.name, self.needs = self.inner.name, self.inner.needs
        self.replay: Replay | None = None
        self.checked = 0

    def reset(self, context: Any) -> None:
        self.inner.reset(context)

    def decide(self, observation: Any) -> Any:
        assert self.replay is not None
        groups = self.replay.node_groups
        for name in groups.list():
            cached = groups.describe(name)
            del groups._described[name]
            assert groups.describe(name) == cached
            self.checked += 1
        return self.inner.decide(observation)


def test_cached_descriptions_are_always_current() -> None:
    policy = CheckingPolicy()
    replay = Replay(outage_world(), policy, MemorySink())
    policy.replay = replay
    replay.run()
    assert policy.checked == 2 * 120  # two pools, a tick a minute for two hours
