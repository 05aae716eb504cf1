"""The feature views, declared in one place: what each feature is and how it is computed.

Each view is computed by DuckDB SQL from the raw telemetry tables (``raw_<stream>``,
one row per telemetry row plus ``run_id``). The SQL receives ``$run_id`` and the
event-time bounds ``$since`` (exclusive) and ``$until`` (inclusive) of the rows to
produce; window features read up to 24 hours of older rows, so incremental
materialisation gives the same values as a full recomputation (up to the last bits of
floating-point window aggregates, whose order of addition depends on the rows a query
reads; a finished run is recomputed whole, see :mod:`features.materialization`). Every
window ends at the row's own event time: a feature never sees the future.

Per-minute telemetry is stamped with the minute's start; its event time here is the
minute's end, when its data became available. Rolling windows are ``(t - w, t]`` over
the rows present (a telemetry gap shortens them rather than filling them). ``trend``
is the least-squares slope per hour, ``volatility`` the coefficient of variation
(standard deviation / mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from features.schema import Feature, FeatureView

DOUBLE, INT, BOOL = "DOUBLE", "INTEGER", "BOOLEAN"
WINDOWS = {"1h": 3599, "6h": 6 * 3600 - 1, "24h": 24 * 3600 - 1}  # seconds before t, inclusive
ROLLED = {
    "request_rate": ("request_rate_rps", "offered load, requests/s"),
    "cpu": ("cpu_utilization", "pod CPU utilisation, 0..1"),
    "latency_p95": ("response_time_p95_ms", "p95 response time, ms"),
}
STATS = {
    "avg": "avg({x}) OVER {w}",
    "max": "max({x}) OVER {w}",
    "trend": "regr_slope({x}, epoch(event_time) / 3600.0) OVER {w}",
    "volatility": "stddev_samp({x}) OVER {w} / nullif(avg({x}) OVER {w}, 0)",
}
STAT_UNITS = {
    "avg": "mean",
    "max": "maximum",
    "trend": "least-squares slope per hour",
    "volatility": "coefficient of variation",
}

TIME_FEATURES = (
    Feature("hour_of_day", INT, "0..23, the trace's clock"),
    Feature("day_of_week", INT, "0 = Monday .. 6 = Sunday"),
    Feature("month", INT, "1..12"),
    Feature("is_weekend", BOOL, "Saturday or Sunday"),
    Feature("is_business_hour", BOOL, "Monday-Friday, 09:00-17:00"),
    Feature("time_to_business_hours_h", DOUBLE, "hours until business hours start; 0 inside them"),
)

TIME_SQL = """
    hour(event_time) AS hour_of_day,
    isodow(event_time) - 1 AS day_of_week,
    month(event_time) AS month,
    isodow(event_time) >= 6 AS is_weekend,
    isodow(event_time) <= 5 AND hour(event_time) BETWEEN 9 AND 16 AS is_business_hour,
    CASE
        WHEN isodow(event_time) <= 5 AND hour(event_time) BETWEEN 9 AND 16 THEN 0.0
        ELSE epoch(
            CASE
                WHEN isodow(event_time) <= 5 AND hour(event_time) < 9
                    THEN date_trunc('day', event_time) + INTERVAL 9 HOUR
                WHEN isodow(event_time) <= 4
                    THEN date_trunc('day', event_time) + INTERVAL 33 HOUR
                ELSE date_trunc('day', event_time)
                    + to_days(CAST(8 - isodow(event_time) AS INTEGER)) + INTERVAL 9 HOUR
            END - event_time
        ) / 3600.0
    END AS time_to_business_hours_h"""


def _window_clause(partition: str) -> str:
    """The 1 h, 6 h and 24 h windows, per ``partition`` (the entity without ``run_id``:
    a transformation reads one run, so partitioning by it too would change nothing but
    how DuckDB hashes the partitions, and with it the order in which a window's
    floating-point values are added: the same telemetry under another run id would give
    other last bits)."""
    return ", ".join(
        f"w{name} AS (PARTITION BY {partition} ORDER BY event_time "
        f"RANGE BETWEEN INTERVAL {seconds} SECONDS PRECEDING AND CURRENT ROW)"
        for name, seconds in WINDOWS.items()
    )


def _rolled_features() -> tuple[tuple[Feature, ...], str]:
    features, sql = [], []
    for short, (column, meaning) in ROLLED.items():
        for window in WINDOWS:
            for stat, template in STATS.items():
                name = f"{short}_{stat}_{window}"
                meaning_here = f"{STAT_UNITS[stat]} of {meaning} over {window}"
                features.append(Feature(name, DOUBLE, meaning_here))
                sql.append(template.format(x=column, w=f"w{window}") + f" AS {name}")
    return tuple(features), ",\n    ".join(sql)


_ROLLED_FEATURES, _ROLLED_SQL = _rolled_features()

INFRASTRUCTURE_METRICS = FeatureView(
    name="infrastructure_metrics",
    entity=("run_id", "pool"),
    event_time="event_time",
    ttl=timedelta(minutes=10),
    description="per node pool and minute: utilisation, load, latency, rolling stats, time",
    sources=("metrics",),
    lookback=timedelta(hours=24),
    available_after=timedelta(seconds=60),
    features=(
        Feature("cpu_utilization", DOUBLE, "pod CPU utilisation, 0..1"),
        Feature("memory_utilization", DOUBLE, "node memory utilisation, 0..1"),
        Feature("network_bytes_per_s", DOUBLE, "bytes/s in + out"),
        Feature("pod_count", DOUBLE, "serving pods (time-weighted over the minute)"),
        Feature("node_count", INT, "running nodes"),
        Feature("request_rate_rps", DOUBLE, "offered load, requests/s"),
        Feature("response_time_p95_ms", DOUBLE, "p95 response time, ms"),
        Feature("error_rate", DOUBLE, "dropped / offered requests"),
        Feature("queue_depth", DOUBLE, "requests queued at the end of the minute"),
        *TIME_FEATURES,
        *_ROLLED_FEATURES,
        Feature("cpu_memory_ratio", DOUBLE, "cpu_utilization / memory_utilization"),
        Feature("pod_density", DOUBLE, "pods per running node"),
        Feature("request_per_pod", DOUBLE, "requests/s per serving pod"),
        Feature("error_impact", DOUBLE, "failed requests/s (error_rate x request_rate)"),
    ),
    transformation=f"""
WITH base AS (
    SELECT run_id, pool, "timestamp" + INTERVAL 60 SECOND AS event_time, cpu_utilization,
           memory_utilization, network_bytes_per_s, pod_count, node_count, request_rate_rps,
           response_time_p95_ms, error_rate, queue_depth
    FROM raw_metrics
    WHERE run_id = $run_id
      AND "timestamp" > $since - INTERVAL 25 HOUR AND "timestamp" <= $until
),
computed AS (
    SELECT run_id, pool, event_time, cpu_utilization, memory_utilization, network_bytes_per_s,
    pod_count, node_count, request_rate_rps, response_time_p95_ms, error_rate, queue_depth,
    {TIME_SQL},
    {_ROLLED_SQL},
    cpu_utilization / nullif(memory_utilization, 0) AS cpu_memory_ratio,
    pod_count / nullif(node_count, 0) AS pod_density,
    request_rate_rps / nullif(pod_count, 0) AS request_per_pod,
    error_rate * request_rate_rps AS error_impact
    FROM base
    WINDOW {_window_clause("pool")}
)
SELECT * FROM computed WHERE event_time > $since AND event_time <= $until
""",
)

COST_OPTIMIZATION = FeatureView(
    name="cost_optimization",
    entity=("run_id", "pool", "az"),
    event_time="event_time",
    ttl=timedelta(minutes=10),
    description="per pool, AZ and minute: prices, spot savings, interruptions, availability",
    sources=("capacity", "events", "metrics"),
    lookback=timedelta(hours=24),
    available_after=timedelta(seconds=60),
    features=(
        Feature("instance_type", "VARCHAR", "EC2 instance type of the pool"),
        Feature("capacity_type", "VARCHAR", "on-demand or spot"),
        Feature("nodes", INT, "pending + running + draining nodes (all billed)"),
        Feature("hourly_cost_usd", DOUBLE, "USD/hour the AZ's nodes cost at the price in force"),
        Feature("price_usd_per_hour", DOUBLE, "price in force (spot price for spot pools)"),
        Feature("on_demand_usd_per_hour", DOUBLE, "on-demand price of the type"),
        Feature("spot_to_on_demand_ratio", DOUBLE, "price / on-demand price"),
        Feature("price_volatility_24h", DOUBLE, "coefficient of variation of the price over 24 h"),
        Feature("interruption_rate_1h", DOUBLE, "interruption notices per node-hour over 1 h"),
        Feature("interruption_rate_24h", DOUBLE, "interruption notices per node-hour over 24 h"),
        Feature("unavailability_rate_1h", DOUBLE, "share of minutes without spot capacity, 1 h"),
        Feature("unavailability_rate_24h", DOUBLE, "share of minutes without spot capacity, 24 h"),
        Feature("spot_savings_usd_per_hour", DOUBLE, "(on-demand - price) x nodes, USD/hour"),
        Feature("unused_capacity", DOUBLE, "idle share of the pool's serving pods, 0..1"),
    ),
    transformation=f"""
WITH cap AS (
    SELECT run_id, pool, az, "timestamp" + INTERVAL 60 SECOND AS event_time, instance_type,
           capacity_type,
           nodes_pending + nodes_running + nodes_draining AS nodes,
           price_usd_per_hour, on_demand_usd_per_hour, spot_available
    FROM raw_capacity
    WHERE run_id = $run_id
      AND "timestamp" > $since - INTERVAL 25 HOUR AND "timestamp" <= $until
),
notices AS (
    SELECT pool, az, date_trunc('minute', "timestamp") + INTERVAL 60 SECOND AS event_time,
           count(*) AS notices
    FROM raw_events
    WHERE run_id = $run_id AND event = 'interruption_notice'
      AND "timestamp" > $since - INTERVAL 25 HOUR AND "timestamp" <= $until
    GROUP BY ALL
),
load AS (
    SELECT pool, "timestamp" + INTERVAL 60 SECOND AS event_time, cpu_utilization
    FROM raw_metrics
    WHERE run_id = $run_id AND "timestamp" > $since - INTERVAL 60 SECOND
      AND "timestamp" <= $until
),
joined AS (
    SELECT cap.*, coalesce(notices.notices, 0) AS notices
    FROM cap LEFT JOIN notices USING (pool, az, event_time)
),
computed AS (
    SELECT run_id, pool, az, event_time, instance_type, capacity_type, nodes,
    nodes * price_usd_per_hour AS hourly_cost_usd,
    price_usd_per_hour, on_demand_usd_per_hour,
    price_usd_per_hour / nullif(on_demand_usd_per_hour, 0) AS spot_to_on_demand_ratio,
    stddev_samp(price_usd_per_hour) OVER w24h
        / nullif(avg(price_usd_per_hour) OVER w24h, 0) AS price_volatility_24h,
    sum(notices) OVER w1h / nullif(sum(nodes) OVER w1h / 60.0, 0) AS interruption_rate_1h,
    sum(notices) OVER w24h / nullif(sum(nodes) OVER w24h / 60.0, 0) AS interruption_rate_24h,
    avg(CASE WHEN spot_available THEN 0.0 ELSE 1.0 END) OVER w1h AS unavailability_rate_1h,
    avg(CASE WHEN spot_available THEN 0.0 ELSE 1.0 END) OVER w24h AS unavailability_rate_24h,
    (on_demand_usd_per_hour - price_usd_per_hour) * nodes AS spot_savings_usd_per_hour
    FROM joined
    WINDOW {_window_clause("pool, az")}
)
SELECT computed.*, 1.0 - load.cpu_utilization AS unused_capacity
FROM computed LEFT JOIN load USING (pool, event_time)
WHERE computed.event_time > $since AND computed.event_time <= $until
""",
)

SECURITY_ANALYTICS = FeatureView(
    name="security_analytics",
    entity=("run_id", "principal"),
    event_time="event_time",
    ttl=timedelta(hours=24),
    description="per principal and audit event: rates, variety, errors, off-hours activity",
    sources=("audit",),
    lookback=timedelta(hours=24),
    features=(
        Feature("events_1h", INT, "audit events in the last hour"),
        Feature("events_24h", INT, "audit events in the last 24 h"),
        Feature("distinct_actions_1h", INT, "distinct eventNames in the last hour"),
        Feature("distinct_actions_24h", INT, "distinct eventNames in the last 24 h"),
        Feature("distinct_source_ips_24h", INT, "distinct source IPs in the last 24 h"),
        Feature("distinct_user_agents_24h", INT, "distinct user agents in the last 24 h"),
        Feature("error_rate_1h", DOUBLE, "share of events with an errorCode, last hour"),
        Feature("error_rate_24h", DOUBLE, "share of events with an errorCode, last 24 h"),
        Feature("off_hours_share_24h", DOUBLE, "share of events outside Mon-Fri 08-19, 24 h"),
    ),
    transformation=f"""
WITH base AS (
    SELECT run_id, principal_arn AS principal, "eventTime" AS event_time, "eventName" AS action,
           "sourceIPAddress" AS source_ip, "userAgent" AS user_agent,
           CASE WHEN coalesce("errorCode", '') <> '' THEN 1.0 ELSE 0.0 END AS failed,
           CASE WHEN isodow("eventTime") >= 6 OR hour("eventTime") NOT BETWEEN 8 AND 18
                THEN 1.0 ELSE 0.0 END AS off_hours
    FROM raw_audit
    WHERE run_id = $run_id
      AND "eventTime" > $since - INTERVAL 24 HOUR AND "eventTime" <= $until
),
computed AS (
    SELECT run_id, principal, event_time,
    count(*) OVER w1h AS events_1h,
    count(*) OVER w24h AS events_24h,
    count(DISTINCT action) OVER w1h AS distinct_actions_1h,
    count(DISTINCT action) OVER w24h AS distinct_actions_24h,
    count(DISTINCT source_ip) OVER w24h AS distinct_source_ips_24h,
    count(DISTINCT user_agent) OVER w24h AS distinct_user_agents_24h,
    avg(failed) OVER w1h AS error_rate_1h,
    avg(failed) OVER w24h AS error_rate_24h,
    avg(off_hours) OVER w24h AS off_hours_share_24h
    FROM base
    WINDOW {_window_clause("principal")}
)
SELECT * FROM computed WHERE event_time > $since AND event_time <= $until
""",
)

_LOAD_FORECAST_COLUMNS = (
    *(f"lag_{k}" for k in range(6)),
    "target_1d",
    "target_1w",
    "origin_1d",
    "origin_1w",
    "target_1d_mean_1h",
    *(f"{stat}_{w}" for w in ("1h", "6h", "24h") for stat in ("mean", "max", "std")),
    "mean_24h_1d",
    "hour_of_day",
    "day_of_week",
)

LOAD_FORECAST = FeatureView(
    name="load_forecast",
    entity=("series",),
    event_time="event_time",
    ttl=timedelta(minutes=10),
    description=(
        "per load series and horizon (series id ends with :h<minutes>) and forecast origin: "
        "the load forecaster's inputs "
        "(pushed by the scaling agent's feature pipeline, not computed from telemetry)"
    ),
    features=tuple(
        Feature(name, DOUBLE, "see agents.forecasting.features (series' unit: requests/s)")
        for name in _LOAD_FORECAST_COLUMNS
    ),
)
"""Written by :mod:`agents.scaling.training` (event time: the end of the origin's
working bucket, when its value became known); column for column the frame of
:func:`agents.forecasting.features.make_features` (a test holds them equal)."""

VIEWS: Mapping[str, FeatureView] = {
    view.name: view
    for view in (INFRASTRUCTURE_METRICS, COST_OPTIMIZATION, SECURITY_ANALYTICS, LOAD_FORECAST)
}
