"""The numbers ``report.html`` derives from results.json and the run series: means over
seeds, savings against the ``on-demand`` policy, the Pareto front of cost and SLO
attainment, one series per (scenario, policy).

Costs are US dollars, SLO attainment and savings shares in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from agents.registry import places_on_spot_and_on_demand
from bench.report_data import RunSeries
from sim.errors import InputError

BASELINE_POLICY = "on-demand"
"""The cost policies' savings are measured against this policy's cost."""
BOUND_POLICY = "hindsight"
"""The policy that knows the future prices and interruptions: the savings' bound."""
DOCUMENT_KEYS: dict[str, type | tuple[type, ...]] = {
    "git_commit": str,
    "packages": dict,
    "settings": dict,
    "wall_s": (int, float),
    "runs": list,
    "skipped": list,
}
"""The fields of results.json the report reads, and their JSON types."""
RUN_KEYS = ("scenario", "policy", "seed", "metrics")


class Saving(BaseModel):
    """One cost policy's saving against :data:`BASELINE_POLICY` on one scenario."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: str
    share: float
    """Mean over paired seeds of ``1 - cost / baseline cost``."""
    usd: float
    """Mean over paired seeds of ``baseline cost - cost`` (dollars)."""


class ScenarioSavings(BaseModel):
    """The savings of every cost policy that ran on one scenario, and the bound."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    baseline_usd: float
    """:data:`BASELINE_POLICY`'s mean cost over seeds (dollars)."""
    savings: tuple[Saving, ...]
    bound: Saving | None
    """:data:`BOUND_POLICY`'s saving, when it ran."""
    cheapest_spot_saving: float | None = None
    """What the market allowed: the saving of the cheapest spot price on offer each minute
    (``results.json``'s ``markets``), when the sweep measured it."""
    spot_on_offer_share: float | None = None
    """The share of minutes with spot on offer in some AZ."""


def check_document(document: Mapping[str, Any]) -> None:
    """InputError unless ``document`` has what the report reads of results.json."""
    allowed = "results.json as bench.sweep_results.results_document writes it"
    for key, kind in DOCUMENT_KEYS.items():
        if key not in document:
            raise InputError("results.json", key, "missing", allowed)
        if not isinstance(document[key], kind):
            found = type(document[key]).__name__
            raise InputError("results.json", key, f"a {found}, not a {_names(kind)}", allowed)
    for i, run in enumerate(document["runs"]):
        for key in RUN_KEYS:
            if not isinstance(run, Mapping) or key not in run:
                raise InputError("results.json", f"runs[{i}].{key}", "missing", allowed)


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))


def ordered(values: Sequence[str]) -> list[str]:
    """``values`` without repeats, in their first appearance's order."""
    return list(dict.fromkeys(values))


def scenarios(document: Mapping[str, Any]) -> list[str]:
    """The scenarios of the runs, in the sweep's order."""
    return ordered([run["scenario"] for run in document["runs"]])


def policies(document: Mapping[str, Any]) -> list[str]:
    """The policies of the runs, in the sweep's order."""
    return ordered([run["policy"] for run in document["runs"]])


def runs_of(document: Mapping[str, Any], scenario: str, policy: str) -> list[dict[str, Any]]:
    """The runs (one per seed) of ``policy`` on ``scenario``."""
    return [r for r in document["runs"] if r["scenario"] == scenario and r["policy"] == policy]


def mean_metric(runs: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    """The mean of ``metric`` over ``runs`` that have it (None if none has)."""
    values = [float(r["metrics"][metric]) for r in runs if metric in r["metrics"]]
    return sum(values) / len(values) if values else None


def _costs_by_seed(document: Mapping[str, Any], scenario: str, policy: str) -> dict[int, float]:
    return {
        int(r["seed"]): float(r["metrics"]["cost_usd"])
        for r in runs_of(document, scenario, policy)
        if "cost_usd" in r["metrics"]
    }


def _saving(
    policy: str, costs: Mapping[int, float], baseline: Mapping[int, float]
) -> Saving | None:
    seeds = [s for s in costs if s in baseline and baseline[s] > 0]
    if not seeds:
        return None
    share = sum(1.0 - costs[s] / baseline[s] for s in seeds) / len(seeds)
    usd = sum(baseline[s] - costs[s] for s in seeds) / len(seeds)
    return Saving(policy=policy, share=share, usd=usd)


def savings(document: Mapping[str, Any]) -> list[ScenarioSavings]:
    """Per scenario on which :data:`BASELINE_POLICY` ran (the sweep runs the cost policies
    only where a fleet has spot and on-demand pools), the saving of every cost policy
    (``agents.registry.places_on_spot_and_on_demand``) that ran there, seeds paired."""
    result = []
    for scenario in scenarios(document):
        baseline = _costs_by_seed(document, scenario, BASELINE_POLICY)
        if not baseline or not any(cost > 0 for cost in baseline.values()):
            continue
        rows = []
        bound = None
        for policy in policies(document):
            if policy == BASELINE_POLICY or not places_on_spot_and_on_demand(policy):
                continue
            saving = _saving(policy, _costs_by_seed(document, scenario, policy), baseline)
            if saving is None:
                continue
            if policy == BOUND_POLICY:
                bound = saving
            else:
                rows.append(saving)
        baseline_usd = sum(baseline.values()) / len(baseline)
        market = (document.get("markets") or {}).get(scenario) or {}
        result.append(
            ScenarioSavings(
                scenario=scenario, baseline_usd=baseline_usd, savings=tuple(rows), bound=bound,
                cheapest_spot_saving=market.get("cheapest_spot_saving"),
                spot_on_offer_share=market.get("spot_on_offer_share"),
            )
        )  # fmt: skip
    return result


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, slo) points no other point beats (lower or equal cost and
    higher or equal SLO attainment, one of them strictly), by ascending cost; of equal
    points only the first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    best_slo = float("-inf")
    for i in order:
        if points[i][1] > best_slo:
            front.append(i)
            best_slo = points[i][1]
    return front


def first_seed_series(series: Sequence[RunSeries]) -> dict[str, list[RunSeries]]:
    """Per scenario (in order of appearance), one series per policy: its lowest seed's."""
    chosen: dict[tuple[str, str], RunSeries] = {}
    for s in series:
        key = (s.scenario, s.policy)
        if key not in chosen or s.seed < chosen[key].seed:
            chosen[key] = s
    by_scenario: dict[str, list[RunSeries]] = {}
    for (scenario, _), s in chosen.items():
        by_scenario.setdefault(scenario, []).append(s)
    return by_scenario
