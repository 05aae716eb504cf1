"""Scenario files: the declarative description of one replay.

A scenario (``scenarios/*.yaml``) declares the simulated EKS/EC2 cluster, its
workload, its SLO, its market (on-demand catalogue, spot prices, spot availability),
the control loop and the faults to inject. It is validated into the frozen pydantic
models below (``extra="forbid"``: a typo is an error, never silently ignored).

Units are in the field names: ``_s`` seconds, ``_h`` hours, ``_ms`` milliseconds,
``_rps`` requests per second, ``_usd_per_hour`` US dollars per hour. Relative paths
inside a scenario are resolved against the directory of the scenario file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.lifecycle import Lifecycle

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63)]
Text = Annotated[str, Field(max_length=1024)]
"""A short free-text field (a path, an instance type, an AZ)."""

MAX_NODES_PER_POOL = 5_000
"""Kubernetes' documented limit is 5,000 nodes per cluster; no pool may ask for more."""
MAX_NODES_PER_CLUSTER = 5_000
MAX_POOLS = 20
MAX_INSTANCE_TYPES_PER_POOL = 20
MAX_AZS = 10
MAX_FAULT_WINDOWS = 1_000
"""Per fault list (outages, storms, telemetry gaps): far more than a replay of a year needs."""
MAX_CAMPAIGNS = 100
MAX_TECHNIQUES_PER_CAMPAIGN = 100


class Model(BaseModel):
    """Base of every user-written model: frozen, unknown keys and NaN/inf rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- cluster


class InstanceRequirements(Model):
    """Instance types a pool may launch, as a Karpenter NodePool's requirements:
    every catalogue type of the region whose family (``c5a`` of ``c5a.2xlarge``) is in
    ``families``, whose size (``2xlarge``) is in ``sizes`` (any size when omitted) and
    whose vCPUs lie in [``min_vcpus``, ``max_vcpus``], among those that fit a pod."""

    families: list[Text] = Field(min_length=1, max_length=MAX_INSTANCE_TYPES_PER_POOL)
    sizes: list[Text] | None = Field(default=None, min_length=1, max_length=32)
    min_vcpus: int = Field(default=1, ge=1)
    max_vcpus: int = Field(default=1024, ge=1)

    @model_validator(mode="after")
    def _range(self) -> InstanceRequirements:
        if self.min_vcpus > self.max_vcpus:
            raise ValueError(
                f"min_vcpus(={self.min_vcpus}) must be <= max_vcpus(={self.max_vcpus})"
            )
        return self


class NodePool(Model):
    """A group of EC2 nodes (an EKS managed node group, or a Karpenter NodePool when it
    allows several instance types: ``instance_types`` or ``requirements``).

    Each allowed type is simulated as its own pool (named ``<name>/<type>``): a mix
    policy chooses type x AZ x capacity type by price per pod. ``max_nodes`` bounds each
    type's nodes; ``min_nodes`` are held on the type with the cheapest on-demand node.
    """

    name: Name
    instance_type: Text | None = Field(
        default=None, description="EC2 instance type from the on-demand catalogue"
    )
    instance_types: list[Text] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INSTANCE_TYPES_PER_POOL,
        description="several allowed instance types (right-sizing); instead of instance_type",
    )
    requirements: InstanceRequirements | None = Field(
        default=None, description="allowed types by family, size and vCPUs; instead of a list"
    )
    capacity_type: Literal["on-demand", "spot"]
    azs: list[Text] = Field(
        min_length=1, max_length=MAX_AZS, description="availability zones the pool spans"
    )
    min_nodes: int = Field(ge=0, le=MAX_NODES_PER_POOL)
    max_nodes: int = Field(
        ge=1, le=MAX_NODES_PER_POOL, description="nodes of the pool (of each of its types)"
    )

    @model_validator(mode="after")
    def _bounds(self) -> NodePool:
        if self.min_nodes > self.max_nodes:
            raise ValueError(
                f"min_nodes(={self.min_nodes}) must be <= max_nodes(={self.max_nodes})"
            )
        if len(set(self.azs)) != len(self.azs):
            raise ValueError(f"azs {self.azs} contains duplicates")
        given = [
            k
            for k in ("instance_type", "instance_types", "requirements")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"pool {self.name!r} gives {given or 'none'}: give exactly one of "
                "instance_type, instance_types or requirements"
            )
        if self.instance_types is not None and len(set(self.instance_types)) != len(
            self.instance_types
        ):
            raise ValueError(f"instance_types {self.instance_types} contains duplicates")
        return self


class Cluster(Model):
    """The simulated cluster and the service it runs."""

    region: Text = "us-east-1"
    rps_per_vcpu: float = Field(
        gt=0, description="requests/s one vCPU serves while keeping p95 at the SLO target"
    )
    target_utilization: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="CPU utilisation capacity is planned for (HPA target; defines waste)",
    )
    pod_vcpu: int = Field(default=1, ge=1, description="vCPU request of one pod (its workers)")
    pod_memory_gib: float = Field(default=2.0, gt=0)
    node_overhead_vcpu: float = Field(default=0.5, ge=0, description="kubelet, daemonsets")
    node_overhead_memory_gib: float = Field(default=1.0, ge=0)
    base_latency_ms: float = Field(default=20.0, ge=0, description="network + framework latency")
    queue_limit_per_pod: int = Field(
        default=200, ge=0, description="requests a pod queues before dropping"
    )
    request_timeout_ms: float = Field(default=30_000.0, gt=0)
    bytes_per_request: float = Field(default=20_000.0, ge=0, description="in + out bytes")
    pools: list[NodePool] = Field(min_length=1, max_length=MAX_POOLS)

    @model_validator(mode="after")
    def _unique_pools(self) -> Cluster:
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pool names {names} are not unique")
        return self


# --------------------------------------------------------------------------- workload


class WorkloadShift(Model):
    """A regime change: from ``at_h`` hours after the replay start, a second trace.

    The second trace plays from its own ``start`` (its own clock, so its daily shape is
    the recorded one; pick a ``start`` whose time of day matches the replay's at
    ``at_h`` to keep the hours aligned), normalised on its own replayed part so that
    part's peak is ``peak_rps`` or its mean ``mean_rps``. Gaps are filled as the first
    trace's (``max_interpolate_min`` of the workload). The history before the replay
    comes from the first trace only.
    """

    at_h: float = Field(gt=0, description="hours after the replay start the second trace begins")
    path: Text = Field(description="CSV with columns timestamp,value (the second regime)")
    start: datetime | None = Field(
        default=None, description="the second trace's bucket replayed at at_h (default: its first)"
    )
    peak_rps: float | None = Field(
        default=None, gt=0, description="the second regime's peak maps to this"
    )
    mean_rps: float | None = Field(
        default=None, gt=0, description="the second regime's mean maps to this"
    )

    @model_validator(mode="after")
    def _one_normalisation(self) -> WorkloadShift:
        _check_one_normalisation(self.peak_rps, self.mean_rps)
        return self


def _check_one_normalisation(peak_rps: float | None, mean_rps: float | None) -> None:
    if (peak_rps is None) == (mean_rps is None):
        raise ValueError("set exactly one of peak_rps or mean_rps")


class TraceWorkload(Model):
    """Load replayed from a real trace (CSV ``timestamp,value``).

    With ``shift``, the trace (``path``, normalised on its part before ``shift.at_h``)
    is followed by a second one from ``shift.at_h`` on (see :class:`WorkloadShift`).
    """

    kind: Literal["trace"]
    path: Text = Field(description="CSV with columns timestamp,value")
    peak_rps: float | None = Field(default=None, gt=0, description="trace peak maps to this")
    mean_rps: float | None = Field(default=None, gt=0, description="trace mean maps to this")
    start: datetime | None = Field(default=None, description="first replayed bucket")
    max_interpolate_min: int = Field(
        default=60, ge=0, description="gaps up to this long are interpolated linearly"
    )
    shift: WorkloadShift | None = Field(
        default=None, description="a second trace takes over mid-replay (a regime change)"
    )

    @model_validator(mode="after")
    def _one_normalisation(self) -> TraceWorkload:
        _check_one_normalisation(self.peak_rps, self.mean_rps)
        return self


class FlashCrowds(Model):
    """Sudden bursts: Poisson arrivals, each a multiplicative bump of the load."""

    rate_per_day: float = Field(default=0.5, ge=0)
    magnitude: tuple[float, float] = Field(default=(2.0, 5.0), description="peak multiplier range")
    ramp_min: float = Field(default=5.0, gt=0)
    duration_min: tuple[float, float] = Field(default=(20.0, 90.0))


class SyntheticWorkload(Model):
    """A seeded generator: diurnal + weekly cycles, noise and flash crowds."""

    kind: Literal["synthetic"]
    mean_rps: float = Field(gt=0)
    diurnal_amplitude: float = Field(default=0.5, ge=0, lt=1)
    peak_hour: float = Field(default=14.0, ge=0, lt=24)
    weekly_amplitude: float = Field(default=0.2, ge=0, lt=1)
    noise: float = Field(default=0.05, ge=0, lt=1, description="sd of log-noise (AR(1))")
    flash_crowds: FlashCrowds = FlashCrowds()
    start: datetime = datetime(2024, 1, 1)


Workload = Annotated[TraceWorkload | SyntheticWorkload, Field(discriminator="kind")]


# --------------------------------------------------------------------------- SLO


class Slo(Model):
    """The service-level objective the run is scored against."""

    p95_latency_ms: float = Field(gt=0)
    error_budget: float = Field(
        default=0.001, ge=0, lt=1, description="allowed fraction of failed requests"
    )


# --------------------------------------------------------------------------- pricing


class SpotPriceShift(Model):
    """A spot-price regime change: from ``at_h`` hours after the replay start, every spot
    pool's price follows another series of the same price history file.

    At ``at_h`` the new series is ``offset_h`` hours after the first record of
    ``instance_type`` (over the AZs of the replayed AZ's data source, as for the
    replay's own ``offset_h``); its price then is that AZ's last record at or before
    that instant, else its first record. On-demand prices and availability are unchanged.
    """

    at_h: float = Field(gt=0, description="hours after the replay start the new series begins")
    instance_type: Text | None = Field(
        default=None, description="series to follow; defaults to the replayed series' type"
    )
    az_map: dict[Text, Text] = Field(
        default_factory=dict, max_length=MAX_AZS, description="scenario AZ -> source AZ"
    )
    offset_h: float = Field(
        default=0.0, ge=0, description="hours into the new series' history at at_h"
    )


class ReplayedSpotPrices(Model):
    """Spot prices replayed from a DescribeSpotPriceHistory-shaped CSV (step function)."""

    kind: Literal["replay"]
    path: Text
    instance_type: Text | None = Field(
        default=None, description="series to replay; defaults to each spot pool's type"
    )
    az_map: dict[Text, Text] = Field(
        default_factory=dict, max_length=MAX_AZS, description="scenario AZ -> source AZ"
    )
    offset_h: float = Field(default=0.0, ge=0, description="hours into the history at t=0")
    shift: SpotPriceShift | None = Field(
        default=None, description="another series of the same file takes over mid-replay"
    )
    type_ratio: Literal["none", "cross-section"] = Field(
        default="none",
        description=(
            "with instance_type: a pool of another type replays that series as is (none) or "
            "times the two types' price ratio in a data source both have (cross-section)"
        ),
    )

    @model_validator(mode="after")
    def _ratio_needs_type(self) -> ReplayedSpotPrices:
        if self.type_ratio != "none" and self.instance_type is None:
            raise ValueError(
                "type_ratio scales instance_type's series to other types: set instance_type"
            )
        return self


class ModelledSpotPrices(Model):
    """A seeded mean-reverting price model calibrated on a price-history CSV."""

    kind: Literal["model"]
    calibrate_on: Text
    instance_type: Text | None = None


SpotPrices = Annotated[ReplayedSpotPrices | ModelledSpotPrices, Field(discriminator="kind")]


class ReplayedAvailability(Model):
    """Spot availability replayed from Can't-Be-Late trace JSON files, one per AZ."""

    kind: Literal["replay"]
    files: dict[Text, Text] = Field(
        min_length=1, max_length=MAX_AZS, description="scenario AZ -> trace JSON"
    )
    offset_h: float = Field(default=0.0, ge=0)
    reclaim_fraction: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description=(
            "share of the AZ's spot nodes that get a notice each time the trace drops to 0 "
            "(a 1-node trace records one instance; 1.0 reclaims them all)"
        ),
    )


class AlwaysAvailable(Model):
    """Spot capacity never runs out (interruptions only from faults)."""

    kind: Literal["always"]


SpotAvailability = Annotated[ReplayedAvailability | AlwaysAvailable, Field(discriminator="kind")]


class Pricing(Model):
    """Where prices and spot availability come from."""

    catalogue: Text = Field(description="on-demand price CSV (instance_type, region, ...)")
    spot_prices: SpotPrices | None = None
    spot_availability: SpotAvailability = AlwaysAvailable(kind="always")
    interruption_notice_s: float = Field(default=120.0, ge=0)


# --------------------------------------------------------------------------- control


class UniformDelay(Model):
    kind: Literal["uniform"]
    low_s: float = Field(ge=0)
    high_s: float = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> UniformDelay:
        if self.low_s > self.high_s:
            raise ValueError(f"low_s(={self.low_s}) must be <= high_s(={self.high_s})")
        return self


class LognormalDelay(Model):
    """Lognormal around ``median_s``, clipped to [low_s, high_s] (EKS-like: 60-300 s)."""

    kind: Literal["lognormal"]
    median_s: float = Field(gt=0)
    sigma: float = Field(ge=0)
    low_s: float = Field(ge=0)
    high_s: float = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> LognormalDelay:
        if not self.low_s <= self.median_s <= self.high_s:
            raise ValueError(
                f"need low_s(={self.low_s}) <= median_s(={self.median_s}) <= high_s(={self.high_s})"
            )
        return self


Delay = Annotated[UniformDelay | LognormalDelay, Field(discriminator="kind")]


class Control(Model):
    """The control loop: which policy decides capacity, how often, how fast nodes come."""

    policy: Text = "reactive"
    params: dict[Text, Any] = Field(default_factory=dict, max_length=100)
    interval_s: float = Field(default=60.0, ge=1, le=3600)
    provisioning_delay: Delay = LognormalDelay(
        kind="lognormal", median_s=120.0, sigma=0.35, low_s=60.0, high_s=300.0
    )
    pod_start_delay_s: float = Field(default=15.0, ge=0)
    drain_s: float = Field(default=30.0, ge=0, description="graceful drain before terminate")


# --------------------------------------------------------------------------- faults


class Window(Model):
    start_h: float = Field(ge=0)
    duration_h: float = Field(gt=0)


class AzOutage(Window):
    """Every node in ``az`` fails at the start; nothing launches there until the end."""

    az: Text


class SpotStorm(Window):
    """Spot capacity vanishes in ``azs``: a share of spot nodes get an interruption notice."""

    azs: list[Text] = Field(min_length=1, max_length=MAX_AZS)
    interrupt_fraction: float = Field(default=1.0, gt=0, le=1)


class TelemetryGap(Window):
    """Metrics stop arriving (the controllers see stale data); the world goes on."""


class Faults(Model):
    node_failure_rate_per_node_day: float = Field(default=0.0, ge=0)
    az_outages: list[AzOutage] = Field(default_factory=list, max_length=MAX_FAULT_WINDOWS)
    spot_storms: list[SpotStorm] = Field(default_factory=list, max_length=MAX_FAULT_WINDOWS)
    telemetry_gaps: list[TelemetryGap] = Field(default_factory=list, max_length=MAX_FAULT_WINDOWS)


# --------------------------------------------------------------------------- detection

WatchedMetric = Literal[
    "response_time_p95_ms", "error_rate", "cpu_utilization", "request_rate_rps", "pod_count"
]


WATCHED_METRICS: tuple[WatchedMetric, ...] = (
    "response_time_p95_ms",
    "error_rate",
    "cpu_utilization",
    "request_rate_rps",
)


class Detection(Model):
    """Metric anomaly detection during the replay: one detector per pool and metric."""

    detector: Text = Field(description="streaming anomaly detector name (agents/anomaly)")
    threshold: float = Field(
        default=0.5, gt=0, le=1, description="alert when the detector's score >= threshold"
    )
    metrics: list[WatchedMetric] = Field(
        default_factory=lambda: list(WATCHED_METRICS),
        min_length=1,
    )


# --------------------------------------------------------------------------- audit

AuditEntry = Literal["stolen-access-key", "console-login-without-mfa", "instance-credentials"]


class AuditPopulation(Model):
    """The benign principals of the simulated account, by kind (habits: sim.audit.principals)."""

    admin: int = Field(default=2, ge=0, le=10, description="console + CLI, office hours, MFA")
    developer: int = Field(default=5, ge=0, le=15, description="SDK/CLI reads, Lambda deploys")
    ci: int = Field(default=1, ge=0, le=10, description="Terraform roles, bursts at any hour")
    scanner: int = Field(default=1, ge=0, le=3, description="daily read-only audit burst")
    app: int = Field(default=2, ge=0, le=50, description="instance roles: secrets, KMS")
    service: int = Field(default=3, ge=0, le=6, description="AWS service principals")
    autoscaler: int = Field(
        default=1, ge=0, le=1, description="the cluster autoscaler's polling (Describe calls)"
    )

    @model_validator(mode="after")
    def _names(self) -> AuditPopulation:
        if self.admin + self.developer + self.scanner > 21:
            raise ValueError(
                f"admin + developer + scanner (={self.admin + self.developer + self.scanner}) "
                "must be <= 21 (named users)"
            )
        return self


class AttackCampaign(Model):
    """An intrusion injected on top of normal operations (its calls are labelled malicious
    or suspicious beside the events)."""

    id: Name
    start_h: float = Field(ge=0, description="hours after the replay start")
    entry: AuditEntry = "stolen-access-key"
    techniques: list[Text] = Field(
        min_length=1,
        max_length=MAX_TECHNIQUES_PER_CAMPAIGN,
        description="Stratus Red Team ids of the technique catalogue, in order",
    )
    pace_s: float = Field(default=30.0, gt=0, le=3600, description="mean s between calls")
    insider_network: bool = Field(
        default=False, description="calls come from the victim's own network"
    )
    reuse_user_agent: bool = Field(default=False, description="the victim's own user agent")


ArrivalKind = Literal["service-account"]


class PrincipalArrival(Model):
    """A benign principal that appears mid-replay with habits no other principal has
    (:mod:`sim.audit.arrivals`): a new service account's role calling
    services and APIs nobody else in the account uses, from a network and with a client
    never seen before, at its own hours. Its calls are labelled ``normal`` (principal kind
    ``service-account``) beside the records."""

    id: Name = Field(description="the role's name (its ARN is assumed-role/<id>/...)")
    kind: ArrivalKind = "service-account"
    at_h: float = Field(ge=0, description="hours after the replay start of its first session")
    sessions_per_day: float = Field(default=24.0, gt=0, le=1440)
    calls_per_session: float = Field(default=30.0, ge=1, le=10_000, description="mean")
    gap_s: float = Field(default=2.0, gt=0, le=3600, description="mean s between calls")
    read_apis: int = Field(
        default=60, ge=0, le=200, description="reads across the account's services it also makes"
    )
    networks: int = Field(
        default=40, ge=1, le=1000, description="public addresses its sessions come from"
    )
    hours: tuple[float, float] | None = Field(
        default=None,
        description="its working hours (UTC, start < end, the end may pass 24); none: any hour",
    )

    @model_validator(mode="after")
    def _hours(self) -> PrincipalArrival:
        if self.hours is not None:
            start, end = self.hours
            if not (0 <= start < 24 and start < end <= start + 24):
                raise ValueError(
                    f"hours {list(self.hours)} must be [start, end] with 0 <= start < 24 "
                    "and start < end <= start + 24"
                )
        return self


class Audit(Model):
    """CloudTrail-shaped audit events of the cluster's account during the replay."""

    account_id: str = Field(default="123456789012", pattern=r"^[0-9]{12}$")
    population: AuditPopulation = AuditPopulation()
    activity: float = Field(
        default=1.0, gt=0, le=10, description="multiplies every principal's sessions per day"
    )
    campaigns: list[AttackCampaign] = Field(default_factory=list, max_length=MAX_CAMPAIGNS)
    arrivals: list[PrincipalArrival] = Field(
        default_factory=list,
        max_length=10,
        description="benign principals that appear mid-replay with unfamiliar habits",
    )
    techniques_csv: Text | None = Field(
        default=None,
        description="technique catalogue (default: the shipped data/security one)",
    )
    cluster_calls: bool = Field(
        default=True, description="the autoscaling API calls of the replayed cluster's events"
    )
    watch: bool = Field(
        default=True, description="score events with the security analyser as they happen"
    )

    @model_validator(mode="after")
    def _unique_campaigns(self) -> Audit:
        ids = [c.id for c in self.campaigns]
        if len(set(ids)) != len(ids):
            raise ValueError(f"campaign ids {ids} are not unique")
        arrivals = [a.id for a in self.arrivals]
        if len(set(arrivals)) != len(arrivals):
            raise ValueError(f"arrival ids {arrivals} are not unique")
        return self


# --------------------------------------------------------------------------- scenario


class Scenario(Model):
    """One replay: cluster, workload, SLO, market, control loop, faults, seed, duration."""

    id: Name
    description: str = Field(default="", max_length=10_000)
    seed: int = Field(default=0, ge=0)
    duration_days: float = Field(gt=0, le=366)
    cluster: Cluster
    workload: Workload
    slo: Slo
    pricing: Pricing
    control: Control = Control()
    faults: Faults = Faults()
    detection: Detection | None = None
    audit: Audit | None = None
    lifecycle: Lifecycle | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        azs = {az for pool in self.cluster.pools for az in pool.azs}
        for i, outage in enumerate(self.faults.az_outages):
            if outage.az not in azs:
                raise ValueError(
                    f"faults.az_outages[{i}].az {outage.az!r} is not an AZ of any pool "
                    f"(allowed: {sorted(azs)})"
                )
        for i, storm in enumerate(self.faults.spot_storms):
            unknown = sorted(set(storm.azs) - azs)
            if unknown:
                raise ValueError(
                    f"faults.spot_storms[{i}].azs {unknown} are not AZs of any pool "
                    f"(allowed: {sorted(azs)})"
                )
        hours = self.duration_days * 24.0
        for i, campaign in enumerate(self.audit.campaigns if self.audit else []):
            if campaign.start_h >= hours:
                raise ValueError(
                    f"audit.campaigns[{i}].start_h {campaign.start_h} is not before the end of "
                    f"the replay (allowed: < duration_days * 24 = {hours:g})"
                )
        total = sum(pool.max_nodes for pool in self.cluster.pools)
        if total > MAX_NODES_PER_CLUSTER:
            raise ValueError(
                f"cluster.pools: max_nodes sum to {total} (allowed: at most "
                f"{MAX_NODES_PER_CLUSTER} nodes per cluster, Kubernetes' documented limit)"
            )
        lifecycle = self.lifecycle
        if lifecycle is not None and lifecycle.anomaly is not None and self.detection is None:
            raise ValueError(
                "lifecycle.anomaly monitors the metric anomaly detector: it needs a "
                "detection: section"
            )
        if lifecycle is not None and lifecycle.security is not None and self.audit is None:
            raise ValueError(
                "lifecycle.security runs the security analyser's loop: it needs an audit: section"
            )
        has_spot = any(p.capacity_type == "spot" for p in self.cluster.pools)
        if has_spot and self.pricing.spot_prices is None:
            raise ValueError("pricing.spot_prices is required when a pool is spot")
        return self
