"""CloudWatch ``get_metric_data`` as a :class:`~adapters.protocols.MetricsSource`.

Which metric feeds which :class:`~sim.control.PoolMetrics` field is the user's
:class:`CloudWatchMetricsConfig` (one :class:`PoolQueries` per pool): a namespace, metric
name, dimensions, statistic and a scale to the field's unit. CPU and pod counts default to
Container Insights (namespace ``ContainerInsights``); request rate, latency and errors
usually come from a load balancer, e.g. for an ALB target group::

    request_rate_rps:     {namespace: AWS/ApplicationELB, metric_name: RequestCount,
                           stat: Sum, scale: 0.016666666666666666,   # per minute -> per s
                           dimensions: {LoadBalancer: app/web/50dc6c495c0c9188,
                                        TargetGroup: targetgroup/web/73e2d6bc24d8a067}}
    response_time_p95_ms: {namespace: AWS/ApplicationELB, metric_name: TargetResponseTime,
                           stat: p95, scale: 1000, dimensions: {...}}    # s -> ms
    error_rate:           {namespace: AWS/ApplicationELB, metric_name: HTTPCode_Target_5XX_Count,
                           stat: Sum, per_request: true, missing_as: 0, dimensions: {...}}
    cpu_utilization:      {dimensions: {ClusterName: prod}}   # node_cpu_utilization, % -> 0..1

Reading: one paginated ``get_metric_data`` over the last ``lookback_min`` whole minutes
(period 60 s); the freshest minute every query of every pool has a datapoint for (a query
with ``missing_as`` fills its gaps) is the reading. No such minute, or one older than
``max_age_s``, gives ``metrics=None`` with its age: the controller holds.

History (:class:`~adapters.protocols.MetricsHistory`): the pools' ``request_rate_rps``
queries over a range (paginated ``get_metric_data``, period 60 s, 6 hours a request;
CloudWatch keeps 1-minute data for 15 days), summed per minute: the offered load a
forecasting policy learns from before it starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.aws.clients import AwsClients
from adapters.protocols import LoadHistory, MetricsReading
from adapters.times import minute_floor, naive_utc
from sim.control import PoolMetrics
from sim.errors import InputError

PERIOD_S = 60
HISTORY_REQUEST_MIN = 360
"""History is read 6 hours per request: CloudWatch answers any range (up to 100,800
datapoints a request), but moto's ``get_metric_data`` rescans every datapoint of the range
once per period (14 days in one request: minutes; in 6-hour requests: seconds). The cost
is a few more requests (56 for 14 days), each billed by the metrics it asks for."""
_STAT = re.compile(
    r"^(Average|Sum|Minimum|Maximum|SampleCount|(p|tm|wm|tc|ts)\d{1,2}(\.\d{1,2})?)$"
)


class MetricQuery(BaseModel):
    """One CloudWatch metric of one pool, scaled to the field's unit.

    ``scale`` multiplies every value (e.g. ``1000`` for seconds -> ms, ``1/60`` for a
    per-minute Sum -> per second). ``missing_as``: the value of a minute without a
    datapoint (CloudWatch omits count metrics such as ``HTTPCode_Target_5XX_Count`` in
    minutes when they are zero); ``None`` makes such a minute incomplete.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(min_length=1)
    metric_name: str = Field(min_length=1)
    dimensions: dict[str, str] = Field(default_factory=dict)
    stat: str = "Average"
    scale: float = 1.0
    missing_as: float | None = None

    @field_validator("stat")
    @classmethod
    def _known_stat(cls, value: str) -> str:
        if not _STAT.match(value):
            raise ValueError(
                f"statistic {value!r} is not one of Average, Sum, Minimum, Maximum, "
                "SampleCount or a percentile such as p95"
            )
        return value

    @field_validator("scale")
    @classmethod
    def _finite_positive(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"scale {value} must be a finite number > 0")
        return value


class CpuQuery(MetricQuery):
    """CPU utilisation (0..1): Container Insights ``node_cpu_utilization`` (%) by default."""

    namespace: str = Field(default="ContainerInsights", min_length=1)
    metric_name: str = Field(default="node_cpu_utilization", min_length=1)
    scale: float = 0.01


class PodCountQuery(MetricQuery):
    """Running pods: Container Insights ``service_number_of_running_pods`` by default."""

    namespace: str = Field(default="ContainerInsights", min_length=1)
    metric_name: str = Field(default="service_number_of_running_pods", min_length=1)


class ErrorRateQuery(MetricQuery):
    """Errors: a ratio (0..1) as is, or with ``per_request`` a count per minute divided
    by the minute's requests (``request_rate_rps`` x 60; no requests: rate 0)."""

    per_request: bool = False


class PoolQueries(BaseModel):
    """The metrics of one pool (node group). ``queue_depth`` is optional: without a
    query it reads 0.0 (no queue in front of the pool)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_rate_rps: MetricQuery
    cpu_utilization: CpuQuery
    response_time_p95_ms: MetricQuery
    error_rate: ErrorRateQuery
    pod_count: PodCountQuery
    queue_depth: MetricQuery | None = None

    def queries(self) -> dict[str, MetricQuery]:
        """Field name -> its query, for the configured fields."""
        named = {name: getattr(self, name) for name in type(self).model_fields}
        return {name: query for name, query in named.items() if query is not None}


class CloudWatchMetricsConfig(BaseModel):
    """Which CloudWatch metrics are each pool's, and when a reading is too old."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pools: dict[str, PoolQueries] = Field(min_length=1)
    max_age_s: float = Field(default=300.0, gt=0)
    lookback_min: int = Field(default=10, ge=1, le=1440)


def parse_metrics_config(data: Any, *, source: str) -> CloudWatchMetricsConfig:
    """Validate ``data`` (parsed YAML/JSON) as a config; a bad field raises one
    :class:`~sim.errors.InputError` naming ``source`` and the field."""
    try:
        return CloudWatchMetricsConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        allowed = ", ".join(PoolQueries.model_fields) if "pools" in where else ""
        raise InputError(source, where, str(err["msg"]), allowed) from None


class CloudWatchMetrics:
    """Per-pool, per-minute metrics from CloudWatch ``get_metric_data`` (paginated).

    Parameters
    ----------
    clients
        The client factory (``cloudwatch``).
    config
        The pools' metric queries and the staleness limit.
    """

    def __init__(self, clients: AwsClients, config: CloudWatchMetricsConfig) -> None:
        self._cloudwatch = clients.client("cloudwatch")
        self.config = config

    def read(self, pools: Sequence[str], now: datetime) -> MetricsReading:
        """The freshest complete minute before ``now`` (naive UTC) for every pool."""
        self._check_pools(pools)
        end = minute_floor(now)
        start = end - timedelta(minutes=self.config.lookback_min)
        plan = {
            f"q{index}": (pool, name, query)
            for index, (pool, name, query) in enumerate(
                (pool, name, query)
                for pool in pools
                for name, query in self.config.pools[pool].queries().items()
            )
        }
        series = self._fetch(plan, start, end)
        minute = _freshest_complete(plan, series, start, end)
        if minute is None:
            return MetricsReading(metrics=None, age_s=math.inf)
        minute_end = minute + timedelta(seconds=PERIOD_S)
        age_s = (now - minute_end).total_seconds()
        if age_s > self.config.max_age_s:
            return MetricsReading(metrics=None, age_s=age_s, minute_end=minute_end)
        values: dict[str, dict[str, float]] = {pool: {} for pool in pools}
        for query_id, (pool, name, query) in plan.items():
            raw = series[query_id].get(minute, query.missing_as)
            assert raw is not None  # _freshest_complete chose a minute every query has
            values[pool][name] = raw * query.scale
        metrics = {pool: self._pool_metrics(pool, values[pool]) for pool in pools}
        return MetricsReading(metrics=metrics, age_s=age_s, minute_end=minute_end)

    def history(self, pools: Sequence[str], start: datetime, end: datetime) -> LoadHistory:
        """The pools' request rate (requests/s, summed) of each minute in [start, end)
        (naive UTC, minute boundaries). A minute is a gap (load 0) when a pool's query
        has no datapoint there and no ``missing_as``."""
        self._check_pools(pools)
        start, end = minute_floor(start), minute_floor(end)
        minutes = max(0, int((end - start).total_seconds()) // PERIOD_S)
        plan = {
            f"h{index}": (pool, "request_rate_rps", self.config.pools[pool].request_rate_rps)
            for index, pool in enumerate(pools)
        }
        series: dict[str, dict[datetime, float]] = {query_id: {} for query_id in plan}
        for first in range(0, minutes, HISTORY_REQUEST_MIN):
            since = start + timedelta(minutes=first)
            until = min(end, since + timedelta(minutes=HISTORY_REQUEST_MIN))
            for query_id, points in self._fetch(plan, since, until).items():
                series[query_id].update(points)
        offered = np.zeros(minutes)
        gap = np.zeros(minutes, dtype=bool)
        for query_id, (_, _, query) in plan.items():
            values = np.full(minutes, np.nan)
            for stamp, value in series[query_id].items():
                index = int((stamp - start).total_seconds()) // PERIOD_S
                if 0 <= index < minutes:
                    values[index] = value
            if query.missing_as is not None:
                values[np.isnan(values)] = query.missing_as
            gap |= np.isnan(values)
            offered += np.nan_to_num(values) * query.scale
        offered[gap] = 0.0
        return LoadHistory(offered_rps=offered, gap=gap, start=start)

    def _check_pools(self, pools: Sequence[str]) -> None:
        unknown = [p for p in pools if p not in self.config.pools]
        if unknown:
            raise KeyError(f"no metric queries configured for pool(s) {', '.join(unknown)}")

    def _pool_metrics(self, pool: str, values: Mapping[str, float]) -> PoolMetrics:
        rate = values["request_rate_rps"]
        errors = values["error_rate"]
        if self.config.pools[pool].error_rate.per_request:
            requests = rate * PERIOD_S
            errors = errors / requests if requests > 0 else 0.0
        return PoolMetrics(
            request_rate_rps=rate,
            cpu_utilization=values["cpu_utilization"],
            response_time_p95_ms=values["response_time_p95_ms"],
            error_rate=errors,
            queue_depth=values.get("queue_depth", 0.0),
            pod_count=values["pod_count"],
        )

    def _fetch(
        self,
        plan: Mapping[str, tuple[str, str, MetricQuery]],
        start: datetime,
        end: datetime,
    ) -> dict[str, dict[datetime, float]]:
        """Query id -> {minute start (naive UTC): value} over [start, end)."""
        series: dict[str, dict[datetime, float]] = {query_id: {} for query_id in plan}
        queries = [_metric_data_query(query_id, query) for query_id, (_, _, query) in plan.items()]
        paginator = self._cloudwatch.get_paginator("get_metric_data")
        for chunk in _chunks(queries, 500):  # the API's limit per request
            pages = paginator.paginate(
                MetricDataQueries=chunk,
                StartTime=start.replace(tzinfo=UTC),
                EndTime=end.replace(tzinfo=UTC),
                ScanBy="TimestampDescending",
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    points = series[result["Id"]]
                    for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                        points[naive_utc(stamp)] = float(value)
        return series


def _metric_data_query(query_id: str, query: MetricQuery) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": query.namespace,
                "MetricName": query.metric_name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in query.dimensions.items()],
            },
            "Period": PERIOD_S,
            "Stat": query.stat,
        },
        "ReturnData": True,
    }


def _freshest_complete(
    plan: Mapping[str, tuple[str, str, MetricQuery]],
    series: Mapping[str, Mapping[datetime, float]],
    start: datetime,
    end: datetime,
) -> datetime | None:
    """The latest minute start in [start, end) that every query has a value for."""
    minute = end - timedelta(seconds=PERIOD_S)
    while minute >= start:
        if all(
            minute in series[query_id] or query.missing_as is not None
            for query_id, (_, _, query) in plan.items()
        ) and any(minute in points for points in series.values()):
            return minute
        minute -= timedelta(seconds=PERIOD_S)
    return None


def _chunks(items: Sequence[dict[str, Any]], size: int) -> list[Sequence[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
