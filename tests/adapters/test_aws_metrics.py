"""CloudWatchMetrics: get_metric_data against moto (basic statistics) and, for the p95
percentile and pagination moto does not serve, through botocore's Stubber."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import ANY, Stubber

from adapters.aws.metrics import CloudWatchMetrics, CloudWatchMetricsConfig, parse_metrics_config
from adapters.protocols import MetricsSource
from sim.errors import InputError

pytestmark = pytest.mark.aws

NOW = datetime(2024, 5, 1, 12, 0, 30)  # naive UTC
LB = "app/web/50dc6c495c0c9188"
TARGET_GROUPS = {
    "web": "targetgroup/web/73e2d6bc24d8a067",
    "api": "targetgroup/api/0f3c2b1a9d8e7f60",
}


def pool_queries(pool: str, *, latency_stat: str = "Maximum") -> dict:
    """An ALB target group's requests, latency and 5xx; Container Insights CPU and pods."""
    alb = {"LoadBalancer": LB, "TargetGroup": TARGET_GROUPS[pool]}
    service = {"ClusterName": "prod", "Namespace": "default", "Service": pool}
    return {
        "request_rate_rps": {"namespace": "AWS/ApplicationELB", "metric_name": "RequestCount",
                             "dimensions": alb, "stat": "Sum", "scale": 1 / 60},
        "cpu_utilization": {"metric_name": "pod_cpu_utilization", "dimensions": service},
        "response_time_p95_ms": {"namespace": "AWS/ApplicationELB",
                                 "metric_name": "TargetResponseTime", "dimensions": alb,
                                 "stat": latency_stat, "scale": 1000},
        "error_rate": {"namespace": "AWS/ApplicationELB",
                       "metric_name": "HTTPCode_Target_5XX_Count", "dimensions": alb,
                       "stat": "Sum", "per_request": True, "missing_as": 0},
        "pod_count": {"dimensions": service},
    }  # fmt: skip


def config(**overrides) -> CloudWatchMetricsConfig:
    data = {"pools": {pool: pool_queries(pool) for pool in TARGET_GROUPS}, **overrides}
    return parse_metrics_config(data, source="metrics.yaml")


def put_minute(
    cloudwatch, pool: str, minute: datetime, *, rps: float, cpu_pct: float, p95_s: float,
    errors: int | None, pods: int, skip: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """One minute of ``pool``'s metrics, as ALB and Container Insights publish them."""
    alb = [{"Name": "LoadBalancer", "Value": LB},
           {"Name": "TargetGroup", "Value": TARGET_GROUPS[pool]}]  # fmt: skip
    service = [{"Name": "ClusterName", "Value": "prod"}, {"Name": "Namespace", "Value": "default"},
               {"Name": "Service", "Value": pool}]  # fmt: skip
    stamp = (minute + timedelta(seconds=20)).replace(tzinfo=UTC)
    data = {
        "AWS/ApplicationELB": [
            ("RequestCount", alb, rps * 60, "Count"),
            ("TargetResponseTime", alb, p95_s, "Seconds"),
        ]
        + ([] if errors is None else [("HTTPCode_Target_5XX_Count", alb, errors, "Count")]),
        "ContainerInsights": [
            ("pod_cpu_utilization", service, cpu_pct, "Percent"),
            ("service_number_of_running_pods", service, pods, "Count"),
        ],
    }
    for namespace, metrics in data.items():
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": unit,
                 "Timestamp": stamp}
                for name, dims, value, unit in metrics
                if name not in skip
            ],
        )  # fmt: skip


MINUTE = datetime(2024, 5, 1, 11, 59)  # the last complete minute before NOW


@pytest.fixture
def published(boto_client):
    cloudwatch = boto_client("cloudwatch")
    for back in range(3):
        minute = MINUTE - timedelta(minutes=back)
        put_minute(cloudwatch, "web", minute, rps=120.0 + back, cpu_pct=55.0, p95_s=0.180,
                   errors=6 if back == 0 else None, pods=12)  # fmt: skip
        put_minute(cloudwatch, "api", minute, rps=30.0, cpu_pct=20.0, p95_s=0.050, errors=None,
                   pods=4)  # fmt: skip
    return cloudwatch


def test_freshest_complete_minute_is_read_and_scaled(aws, published) -> None:
    source = CloudWatchMetrics(aws, config())
    assert isinstance(source, MetricsSource)
    reading = source.read(["web", "api"], NOW)
    assert reading.minute_end == datetime(2024, 5, 1, 12, 0)
    assert reading.age_s == 30.0
    web, api = reading.metrics["web"], reading.metrics["api"]
    assert web.request_rate_rps == pytest.approx(120.0)
    assert web.cpu_utilization == pytest.approx(0.55)
    assert web.response_time_p95_ms == pytest.approx(180.0)
    assert web.error_rate == pytest.approx(6 / (120 * 60))
    assert (web.pod_count, web.queue_depth) == (12.0, 0.0)
    assert api.error_rate == 0.0  # no 5xx datapoint: missing_as 0
    assert api.cpu_utilization == pytest.approx(0.20)


def test_a_minute_missing_a_metric_is_not_complete(aws, published) -> None:
    put_minute(published, "web", MINUTE + timedelta(minutes=1), rps=999.0, cpu_pct=99.0,
               p95_s=1.0, errors=None, pods=12, skip=("pod_cpu_utilization",))  # fmt: skip
    put_minute(published, "api", MINUTE + timedelta(minutes=1), rps=999.0, cpu_pct=99.0,
               p95_s=1.0, errors=None, pods=4)  # fmt: skip
    reading = CloudWatchMetrics(aws, config()).read(["web", "api"], NOW + timedelta(minutes=1))
    assert reading.minute_end == datetime(2024, 5, 1, 12, 0)  # 12:00 lacks web's CPU
    assert reading.age_s == 90.0
    assert reading.metrics["web"].request_rate_rps == pytest.approx(120.0)


def test_stale_metrics_are_none_with_their_age(aws, published) -> None:
    source = CloudWatchMetrics(aws, config(max_age_s=300, lookback_min=15))
    reading = source.read(["web"], NOW + timedelta(minutes=10))
    assert reading.metrics is None
    assert reading.age_s == 630.0
    assert reading.minute_end == datetime(2024, 5, 1, 12, 0)


def test_no_data_in_the_lookback_is_none_of_infinite_age(aws, published) -> None:
    reading = CloudWatchMetrics(aws, config()).read(["web"], NOW + timedelta(hours=1))
    assert (reading.metrics, reading.age_s, reading.minute_end) == (None, float("inf"), None)


def test_a_pool_without_data_makes_the_reading_none(aws, boto_client) -> None:
    put_minute(boto_client("cloudwatch"), "web", MINUTE, rps=1.0, cpu_pct=1.0, p95_s=0.1,
               errors=0, pods=1)  # fmt: skip
    reading = CloudWatchMetrics(aws, config()).read(["web", "api"], NOW)
    assert reading.metrics is None


def test_a_pool_without_queries_is_a_key_error(aws) -> None:
    with pytest.raises(KeyError, match="batch"):
        CloudWatchMetrics(aws, config()).read(["web", "batch"], NOW)


def _result(query_id: str, label: str, values: dict[datetime, float]) -> dict:
    ordered = sorted(values, reverse=True)
    return {"Id": query_id, "Label": label, "StatusCode": "Complete",
            "Timestamps": [t.replace(tzinfo=UTC) for t in ordered],
            "Values": [values[t] for t in ordered]}  # fmt: skip


def test_p95_and_pages_through_the_stubber(aws) -> None:
    # get_metric_data with a percentile answers 500 on moto: the real API is stubbed,
    # its requests checked against the service model, and its answer split over two pages
    data = {"pools": {"web": pool_queries("web", latency_stat="p95")}}
    source = CloudWatchMetrics(aws, parse_metrics_config(data, source="metrics.yaml"))
    cloudwatch = aws.client("cloudwatch")
    end = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    expected = {"MetricDataQueries": ANY, "StartTime": end - timedelta(minutes=10),
                "EndTime": end, "ScanBy": "TimestampDescending"}  # fmt: skip
    first, second = MINUTE, MINUTE - timedelta(minutes=1)
    with Stubber(cloudwatch) as stub:
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [
                _result("q0", "RequestCount", {first: 7200.0, second: 6000.0}),
                _result("q1", "pod_cpu_utilization", {first: 61.5}),
                _result("q2", "TargetResponseTime", {first: 0.2417}),
             ], "NextToken": "eyJwYWdlIjogMn0=", "Messages": []},
            expected,
        )  # fmt: skip
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [
                _result("q1", "pod_cpu_utilization", {second: 58.0}),
                _result("q2", "TargetResponseTime", {second: 0.2204}),
                _result("q3", "HTTPCode_Target_5XX_Count", {first: 36.0}),
                _result("q4", "service_number_of_running_pods", {first: 14.0, second: 14.0}),
             ], "Messages": []},
            {**expected, "NextToken": "eyJwYWdlIjogMn0="},
        )  # fmt: skip
        sent: list[dict] = []
        cloudwatch.meta.events.register(
            "provide-client-params.cloudwatch.GetMetricData",
            lambda params, **_: sent.append(params),
        )
        reading = source.read(["web"], NOW)
        stub.assert_no_pending_responses()
    stats = {q["Id"]: q["MetricStat"]["Stat"] for q in sent[0]["MetricDataQueries"]}
    assert stats["q2"] == "p95"
    web = reading.metrics["web"]
    assert web.response_time_p95_ms == pytest.approx(241.7)
    assert web.request_rate_rps == pytest.approx(120.0)
    assert web.cpu_utilization == pytest.approx(0.615)
    assert web.error_rate == pytest.approx(36 / 7200)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["pools"]["web"].update(colour="red"), "pools.web.colour"),
        (lambda d: d["pools"]["web"]["cpu_utilization"].update(stat="median"),
         "pools.web.cpu_utilization.stat"),
        (lambda d: d["pools"]["web"]["request_rate_rps"].update(scale=0), 
         "pools.web.request_rate_rps.scale"),
        (lambda d: d["pools"]["web"].pop("pod_count"), "pools.web.pod_count"),
        (lambda d: d.update(max_age_s=-1), "max_age_s"),
    ],
)  # fmt: skip
def test_a_bad_config_is_one_input_error_naming_the_field(mutate, field) -> None:
    data = {"pools": {"web": pool_queries("web")}}
    mutate(data)
    with pytest.raises(InputError) as caught:
        parse_metrics_config(data, source="metrics.yaml")
    assert caught.value.source == "metrics.yaml"
    assert caught.value.field == field
    assert "\n" not in str(caught.value)


def test_history_sums_the_pools_request_rate_per_minute_with_gaps(aws, boto_client) -> None:
    """``history``: every minute of the range, the pools' request rates summed (requests/s);
    a minute one pool lacks is a gap (load 0); minutes outside the range are left out."""
    from adapters.protocols import MetricsHistory

    cloudwatch = boto_client("cloudwatch")
    start = datetime(2024, 5, 1, 10, 0)
    for minute in range(6):
        at = start + timedelta(minutes=minute)
        put_minute(cloudwatch, "web", at, rps=100.0 + minute, cpu_pct=50.0, p95_s=0.1,
                   errors=None, pods=10)  # fmt: skip
        if minute != 3:
            put_minute(cloudwatch, "api", at, rps=20.0, cpu_pct=20.0, p95_s=0.1, errors=None,
                       pods=4)  # fmt: skip
    put_minute(cloudwatch, "web", start - timedelta(minutes=1), rps=999.0, cpu_pct=1.0,
               p95_s=0.1, errors=None, pods=1)  # fmt: skip
    source = CloudWatchMetrics(aws, config())
    assert isinstance(source, MetricsHistory)
    got = source.history(["web", "api"], start, start + timedelta(minutes=5))
    assert (got.start, got.end) == (start, start + timedelta(minutes=5))
    assert got.gap.tolist() == [False, False, False, True, False]
    assert got.offered_rps == pytest.approx([120.0, 121.0, 122.0, 0.0, 124.0])
    only_web = source.history(["web"], start, start + timedelta(minutes=6))
    assert only_web.offered_rps == pytest.approx([100.0 + m for m in range(6)])
    assert not only_web.gap.any()


def test_history_over_several_requests_keeps_every_minute_once(aws, boto_client) -> None:
    """A range longer than one request (6 hours) is read piece by piece: the minutes on
    either side of a piece's edge are both there, each once, at its own index."""
    from adapters.aws.metrics import HISTORY_REQUEST_MIN

    cloudwatch = boto_client("cloudwatch")
    start = datetime(2024, 5, 1, 0, 0)
    edges = [0, HISTORY_REQUEST_MIN - 1, HISTORY_REQUEST_MIN, 2 * HISTORY_REQUEST_MIN + 5]
    for minute in edges:
        at = start + timedelta(minutes=minute)
        for pool in ("web", "api"):
            put_minute(cloudwatch, pool, at, rps=float(minute), cpu_pct=1.0, p95_s=0.1,
                       errors=None, pods=1)  # fmt: skip
    end = start + timedelta(minutes=2 * HISTORY_REQUEST_MIN + 10)
    got = CloudWatchMetrics(aws, config()).history(["web", "api"], start, end)
    assert len(got.gap) == 2 * HISTORY_REQUEST_MIN + 10
    assert sorted(int(i) for i in (~got.gap).nonzero()[0]) == edges
    assert got.offered_rps[edges] == pytest.approx([2.0 * m for m in edges])
