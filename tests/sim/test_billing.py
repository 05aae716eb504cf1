"""Per-second billing with EC2's 60-second minimum, at the price in force."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.cluster import Cluster
from sim.control import PoolSpec
from sim.market.prices import PriceSeries, constant_price
from sim.telemetry import MemorySink, TelemetryWriter


def _cluster(
    prices: PriceSeries, *, delay_s: float = 100.0
) -> tuple[simpy.Environment, Cluster, MemorySink, TelemetryWriter]:
    env = simpy.Environment()
    sink = MemorySink()
    writer = TelemetryWriter(sink)
    spec = PoolSpec(
        name="p",
        instance_type="c5a.2xlarge",
        capacity_type="spot",
        azs=("a",),
        min_nodes=0,
        max_nodes=10,
        vcpus=8,
        memory_gib=16,
        pods_per_node=7,
        on_demand_usd_per_hour=0.308,
        rps_per_node_at_target=100.0,
    )
    cluster = Cluster(
        env,
        (spec,),
        {(0, "a"): prices},
        provisioning_delay=lambda: delay_s,
        pod_start_delay_s=10.0,
        drain_s=30.0,
        notice_s=120.0,
        telemetry=writer,
        epoch_s=0,
    )
    return env, cluster, sink, writer


def _bills(sink: MemorySink, writer: TelemetryWriter) -> list[dict[str, object]]:
    writer.flush("billing")
    return sink.table("billing").to_pylist()


def test_short_life_is_billed_sixty_seconds() -> None:
    env, cluster, sink, writer = _cluster(constant_price(3.6))
    env.run(until=10)
    node = cluster.launch(0, "a")
    env.run(until=30)
    cluster.fail(node, "test")
    (bill,) = _bills(sink, writer)
    assert bill["usage_s"] == pytest.approx(20.0)
    assert bill["billed_s"] == pytest.approx(60.0)
    assert bill["cost_usd"] == pytest.approx(60.0 * 3.6 / 3600)


def test_price_change_is_integrated_and_split_by_clock_hour() -> None:
    prices = PriceSeries(np.array([0.0, 1800.0]), np.array([1.0, 2.0]))
    env, cluster, sink, writer = _cluster(prices)
    node = cluster.launch(0, "a")
    env.run(until=5400)  # 1.5 h: 0.5 h at $1, 1 h at $2, over two clock hours
    cluster.fail(node, "test")
    bills = _bills(sink, writer)
    assert [b["usage_s"] for b in bills] == [3600.0, 1800.0]
    assert bills[0]["cost_usd"] == pytest.approx(0.5 * 1.0 + 0.5 * 2.0)
    assert bills[1]["cost_usd"] == pytest.approx(0.5 * 2.0)
    assert cluster.cost_usd["spot"] == pytest.approx(2.5)


def test_interrupted_node_serves_through_notice_then_stops_billing() -> None:
    env, cluster, sink, writer = _cluster(constant_price(1.0), delay_s=50.0)
    node = cluster.launch(0, "a")
    env.run(until=100)  # ready at 50, serving at 60
    pool = cluster.pools[0]
    assert pool.serving.count == 1
    cluster.notice(node, "test")
    env.run(until=219)
    assert pool.serving.count == 1  # still serving during the 2-minute notice
    env.run(until=221)
    assert pool.serving.count == 0
    (bill,) = _bills(sink, writer)
    assert bill["usage_s"] == pytest.approx(220.0)  # launch at 0, reclaimed at 100 + 120


def test_scale_in_drains_then_terminates() -> None:
    env, cluster, sink, writer = _cluster(constant_price(1.0), delay_s=50.0)
    cluster.launch(0, "a")
    env.run(until=100)
    cluster.scale_in(0, 1)
    assert cluster.pools[0].serving.count == 0  # cordoned and drained: serves no more
    env.run(until=200)
    (bill,) = _bills(sink, writer)
    assert bill["usage_s"] == pytest.approx(130.0)  # billed through the 30 s drain
