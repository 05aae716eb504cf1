"""Everything opsbench can build by name, registered one way (:mod:`agents.registration`).

- :data:`POLICIES`: what decides capacity in a replay (``--policy``, ``control.policy``);
  each implements :class:`sim.control.Policy` and declares what it needs on it;
- :data:`MIX_RULES`: how the cost policies split capacity between spot and on-demand;
- :data:`DETECTORS`: streaming metric anomaly detectors (``--detector``,
  ``detection.detector``), river's ``learn_one``/``score_one`` contract; ids contain no
  underscore, as NAB's result files require;
- :data:`FORECASTERS`: load forecasters, scikit-learn estimators.

Entry points are ``"module:attr"`` strings, imported when an entry is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agents.registration import Registry
from sim.errors import InputError

if TYPE_CHECKING:
    from agents.anomaly.base import AnomalyDetector
    from agents.cost.heuristics import MixRule
    from agents.forecasting.models import Forecaster
    from sim.control import Policy

POLICIES: Registry[Policy] = Registry("policy")
MIX_RULES: Registry[MixRule] = Registry("mix rule")
DETECTORS: Registry[AnomalyDetector] = Registry("detector")
FORECASTERS: Registry[Forecaster] = Registry("forecaster")

DEFAULT_DETECTOR = "sequence-memory"
"""The detector ``opsbench anomaly nab``/``cv``, ``opsbench train anomaly``, the ``nab`` and
``latency`` evaluations and the serving benchmark use when none is named: the detector
with the highest cross-validated NAB score on the dev split (``opsbench anomaly cv``,
threshold optimised on the scored fold and chosen on the training folds alike; issue 17)."""
DEFAULT_FORECASTER = "gbm-quantile"

# --------------------------------------------------------------------------- policies
POLICIES.register(
    "static",
    entry_point="agents.baselines.static:StaticPolicy",
    params="agents.baselines.static:StaticParams",
    summary="a fixed fleet sized for the replay's peak load (or given counts)",
)
POLICIES.register(
    "reactive",
    entry_point="agents.baselines.reactive:ReactivePolicy",
    params="agents.baselines.reactive:ReactiveParams",
    summary="Kubernetes HPA rule (10% tolerance, 300 s scale-down stabilisation) "
    "+ Cluster Autoscaler",
)
POLICIES.register(
    "oracle",
    entry_point="agents.baselines.oracle:OraclePolicy",
    params="agents.baselines.oracle:OracleParams",
    summary="perfect foresight of the workload, cheapest feasible capacity one lead time ahead",
)
POLICIES.register(
    "predictive",
    entry_point="agents.scaling.policy:PredictivePolicy",
    params="agents.scaling.policy:PredictiveParams",
    summary="p90 load forecast one lead time ahead (trained on the history before the "
    "replay), reactive rule as a floor, stabilised scale-in",
)
for _rule, _class, _summary in (
    ("on-demand", "OnDemandRule", "cost baseline: the shared capacity plan, all on on-demand"),
    (
        "spot-greedy",
        "SpotGreedyRule",
        "cost baseline: all spot, on-demand only where spot is not on offer",
    ),
    (
        "uniform-progress",
        "UniformProgressRule",
        "Can't-Be-Late's Uniform Progress on the 99.9% SLO line: on-demand while behind, "
        "spot once ahead by a margin",
    ),
    (
        "price-capacity",
        "PriceCapacityRule",
        "EC2 Fleet price-capacity-optimized: cheapest of the AZs with the best recent spot "
        "availability",
    ),
):
    MIX_RULES.register(_rule, entry_point=f"agents.cost.heuristics:{_class}", summary=_summary)
    POLICIES.register(
        _rule,
        entry_point="agents.cost.policies:rule_policy",
        params="agents.cost.policies:NoParams",
        kwargs={"rule": _rule},
        summary=_summary,
    )
POLICIES.register(
    "hindsight",
    entry_point="agents.cost.policies:HindsightPolicy",
    params="agents.cost.policies:HindsightParams",
    summary="the limit: foresees load and spot availability, cheapest capacity that stays on "
    "offer (per-tick LP optimum)",
)
POLICIES.register(
    "cost-rl",
    entry_point="agents.cost.policies:CostRLPolicy",
    params="agents.cost.policies:CostRLParams",
    summary="PPO-trained capacity mix (spot share per AZ, on-demand floor, buffer) on the "
    "shared plan, with cost recommendations",
)

# A composed controller per sizing x mix pair (agents.cost.composed): the sizing policy
# decides how much capacity, the mix policy where it goes.
SIZING_POLICIES = ("reactive", "predictive", "oracle")
"""Policies that can size a composed controller (they expose ``last_target_pods``)."""
MIX_POLICIES = (
    "on-demand", "spot-greedy", "price-capacity", "uniform-progress", "cost-rl", "hindsight",
)  # fmt: skip
"""Policies that can place a composed controller's capacity (the cost policies)."""


def places_on_spot_and_on_demand(policy: str) -> bool:
    """Whether ``policy`` (a single id or ``SIZING+MIX``) is, or ends in, a mix policy: it
    splits capacity between spot and on-demand pools, so a fleet needs both."""
    return policy.rpartition("+")[2] in MIX_POLICIES


for _sizing in SIZING_POLICIES:
    for _mix in MIX_POLICIES:
        POLICIES.register(
            f"{_sizing}+{_mix}",
            entry_point="agents.cost.composed:composed_policy",
            params="agents.cost.composed:ComposedParams",
            kwargs={"sizing": _sizing, "mix": _mix},
            summary=f"composed: {_sizing} sizes the capacity, {_mix} places it (spot / "
            "on-demand, AZ)",
        )

# --------------------------------------------------------------------------- detectors
DETECTORS.register(
    "novelty-ensemble",
    entry_point="agents.anomaly.novelty:NoveltyEnsemble",
    summary="range novelty of value, 1 h average and day-over-day change; one alert per episode",
)
DETECTORS.register(
    "robust-spike",
    entry_point="agents.anomaly.spike:RobustSpike",
    summary="robust z-score against the last hour's median and MAD; one alert per episode",
)
DETECTORS.register(
    "ops-ensemble",
    entry_point="agents.anomaly.spike:OpsEnsemble",
    summary="the larger of novelty-ensemble and robust-spike (for replay metrics)",
)
DETECTORS.register(
    "windowed-gaussian",
    entry_point="agents.anomaly.gaussian:WindowedGaussian",
    summary="baseline: Gaussian tail of the value against the last 6,400 values",
)
DETECTORS.register(
    "seasonal-residual",
    entry_point="agents.anomaly.seasonal:SeasonalResidual",
    summary="robust z of the residual of an online daily (or weekly) profile; one alert per "
    "episode",
)
DETECTORS.register(
    "contextual",
    entry_point="agents.anomaly.contextual:ContextualNovelty",
    summary="novelty of a value's level after the previous rows' levels (in the spirit of "
    "CAD OSE); one alert per episode",
)
DETECTORS.register(
    "sequence-memory",
    entry_point="agents.anomaly.sequence_memory:SequenceMemory",
    summary="the default: HTM-like, share of a value's encoding its context (and time of "
    "day) did not predict, through Numenta's anomaly likelihood; one alert per episode",
)
DETECTORS.register(
    "rank-ensemble",
    entry_point="agents.anomaly.rank_ensemble:RankEnsemble",
    summary="mean or max of the ranks of registered detectors' scores; one alert per episode",
)
# library baselines: the anomaly-baselines extra (river, pysad), imported when built
DETECTORS.register(
    "river-hst",
    entry_point="agents.anomaly.library:RiverHalfSpaceTrees",
    summary="baseline: river HalfSpaceTrees behind river's MinMaxScaler",
)
DETECTORS.register(
    "river-gaussian",
    entry_point="agents.anomaly.library:RiverGaussianScorer",
    summary="baseline: river GaussianScorer (Gaussian tail of the value)",
)
DETECTORS.register(
    "pysad-loda",
    entry_point="agents.anomaly.library:PysadLODA",
    summary="baseline: pysad LODA on shingles of 4 values",
)

# --------------------------------------------------------------------------- forecasters
FORECASTERS.register(
    "gbm-quantile",
    entry_point="agents.forecasting.models:QuantileGBMForecaster",
    summary="histogram gradient boosting per quantile (pinball loss) relative to the recent "
    "level; calibrated upper quantiles",
)
FORECASTERS.register(
    "seasonal-naive-1d",
    entry_point="agents.forecasting.models:SeasonalNaiveForecaster",
    kwargs={"season": "1d"},
    summary="the value one day earlier, with residual quantiles",
)
FORECASTERS.register(
    "seasonal-naive-1w",
    entry_point="agents.forecasting.models:SeasonalNaiveForecaster",
    kwargs={"season": "1w"},
    summary="the value one week earlier (one day where the week is missing), with residual "
    "quantiles",
)
FORECASTERS.register(
    "seed-rf",
    entry_point="agents.forecasting.models:RandomForestForecaster",
    summary="the seed's random forest on the raw features; quantiles from out-of-bag residuals",
)


def make_policy(name: str, params: Mapping[str, Any], *, source: str, field: str) -> Policy:
    """Build policy ``name`` with ``params`` (bad names or parameters raise InputError;
    a composed ``SIZING+MIX`` with an unknown part names the part and what it allows)."""
    if "+" not in name:
        if name not in POLICIES:  # the single policies, and the rule for the pairs
            single = ", ".join(sorted(p for p in POLICIES if "+" not in p))
            raise InputError(
                source or "--policy", field, f"unknown policy {name!r}",
                f"{single}, or SIZING+MIX with SIZING one of {', '.join(SIZING_POLICIES)} and "
                f"MIX one of {', '.join(MIX_POLICIES)}",
            )  # fmt: skip
        return POLICIES.make(name, params, source=source, field=field,
                             params_field="control.params")  # fmt: skip
    from agents.cost.composed import ComposedParams, composed_policy, split_name

    sizing, mix = split_name(name, source=source, field=field)
    validated = POLICIES.validated_params(name, params, source=source,
                                          params_field="control.params")  # fmt: skip
    assert isinstance(validated, ComposedParams)
    return composed_policy(validated, sizing=sizing, mix=mix, source=source)


def make_detector(name: str, *, source: str = "--detector", field: str = "") -> AnomalyDetector:
    """A fresh detector ``name``; an unknown name raises InputError."""
    return DETECTORS.make(name, source=source, field=field)


def make_forecaster(name: str, **params: Any) -> Forecaster:
    """An unfitted forecaster ``name``, hyper-parameters overriding its defaults."""
    return FORECASTERS.make(name, params, source="--model")
