"""``opsbench bench right-sizing``: what choosing among instance types saves (issue 16).

The ``right-sizing`` scenario is the ``default`` week (same load, spot availability and
spot price series, same SLO) on node pools that may launch any c5a or c5 type of up to 36
vCPUs, on-demand and spot (Karpenter-style ``requirements``; see :mod:`sim.node_pools`),
where ``default`` has c5a.2xlarge only. Every policy of :data:`POLICIES` replays both; the
table gives each policy's cost and SLO attainment on both and the saving right-sizing
brings, with the episode-level optimum of each world
(:func:`agents.cost.episode_optimum.world_optimum` at :data:`~bench.cost.SLO_TARGET`)
and each policy's gap to it, and what the market allowed
(:func:`bench.cost.market_figures`).

Caveat, stated with the figures: the shipped price history holds a long series for
c5a.2xlarge only; the other types' spot prices are that series times their price ratio
in the history's cross-section (``type_ratio: cross-section``), and spot availability is
per AZ for every type (a drop takes every type of the AZ at once, so diversifying over
types buys nothing against it here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agents.cost.episode_optimum import world_optimum
from bench import runner
from bench.cost import SLO_TARGET, market_figures
from bench.executors import Executor, SerialExecutor

SCENARIOS: tuple[str, str] = ("default", "right-sizing")
POLICIES: tuple[str, ...] = (
    "on-demand",
    "spot-greedy",
    "price-capacity",
    "uniform-progress",
    "hindsight",
    "reactive",
    "predictive+spot-greedy",
)
OPTIMUM = "optimum"
"""The policy name of a cell that solves the episode optimum instead of replaying."""


@dataclass(frozen=True, slots=True)
class CellSpec:
    """One replay of ``policy`` on ``scenario`` (or its optimum), ``days`` None = all."""

    scenario: str
    policy: str
    days: float | None
    models_dir: str
    store: str


@dataclass(frozen=True, slots=True)
class Cell:
    """A replay's (or the optimum's) cost in USD and SLO attainment (share of minutes)."""

    scenario: str
    policy: str
    cost_usd: float
    slo_attainment: float
    extra: dict[str, Any]


def specs(
    days: float | None,
    models_dir: str,
    store: str,
    policies: Sequence[str] = POLICIES,
) -> list[CellSpec]:
    """Every cell: each scenario's optimum first (the longest), then the replays."""
    out = [CellSpec(s, OPTIMUM, days, models_dir, store) for s in reversed(SCENARIOS)]
    out += [CellSpec(s, p, days, models_dir, store) for s in SCENARIOS for p in policies]
    return out


def run_cell(spec: CellSpec) -> Cell:
    """Replay one :class:`CellSpec`, or solve its world's episode optimum."""
    policy = "on-demand" if spec.policy == OPTIMUM else spec.policy
    prepared = runner.prepare_run(spec.scenario, policy=policy, days=spec.days)
    if spec.policy == OPTIMUM:
        opt = world_optimum(prepared.world, slo_attainment=SLO_TARGET)
        extra = {"kind": opt.kind, "solve_s": round(opt.solve_s, 2)}
        extra |= market_figures(prepared.world)
        return Cell(spec.scenario, OPTIMUM, float(opt.cost_usd), SLO_TARGET, extra)
    runner.attach_model(prepared, models_dir=spec.models_dir, store=Path(spec.store))
    summary = runner.run(prepared)
    return Cell(
        spec.scenario,
        spec.policy,
        float(summary["cost_usd"]),
        float(summary["slo_attainment"]),
        {"sim_days": float(summary["sim_days"])},
    )


def prepare_models(
    models_dir: str, store: str, days: float | None, policies: Sequence[str] = POLICIES
) -> None:
    """Train and register the scaling model each scenario's predictive policies need,
    here, before the replays fan out (workers then only read)."""
    if not any(p.startswith("predictive") for p in policies):
        return
    for scenario in SCENARIOS:
        prepared = runner.prepare_run(scenario, policy="predictive", days=days)
        runner.attach_model(prepared, models_dir=models_dir, store=Path(store))


def compare(cells: Sequence[Cell]) -> dict[str, Any]:
    """The table: per policy both scenarios, the saving, the gaps to the optima."""
    by = {(c.scenario, c.policy): c for c in cells}
    base, sized = SCENARIOS
    optima = {s: by[s, OPTIMUM] for s in SCENARIOS}
    rows = []
    for policy in dict.fromkeys(c.policy for c in cells if c.policy != OPTIMUM):
        one, many = by[base, policy], by[sized, policy]
        rows.append(
            {
                "policy": policy,
                "one_type_usd": one.cost_usd,
                "one_type_slo": one.slo_attainment,
                "right_sized_usd": many.cost_usd,
                "right_sized_slo": many.slo_attainment,
                "saving": 1.0 - many.cost_usd / one.cost_usd,
                "one_type_gap_to_optimum": one.cost_usd / optima[base].cost_usd - 1.0,
                "right_sized_gap_to_optimum": many.cost_usd / optima[sized].cost_usd - 1.0,
            }
        )
    return {
        "scenarios": list(SCENARIOS),
        "slo_target": SLO_TARGET,
        "optimum": {s: {"cost_usd": o.cost_usd, **o.extra} for s, o in optima.items()},
        "policies": rows,
    }


def right_sizing(
    *,
    days: float | None = None,
    executor: Executor | None = None,
    models_dir: str = str(runner.MODELS_DIR),
    store: str = str(runner.DEFAULT_STORE),
    policies: Sequence[str] = POLICIES,
    progress: Callable[[str], None] | None = None,
    on_cell: Callable[[int, object], None] | None = None,
) -> dict[str, Any]:
    """Run every cell (models trained first, serially) and compare."""
    if progress is not None:
        progress("training the scaling models the predictive policies need")
    prepare_models(models_dir, store, days, policies)
    ex = executor or SerialExecutor()
    cells = ex.map(
        run_cell, specs(days, models_dir, store, policies), on_cell or (lambda _i, _r: None)
    )
    result = compare(cells)
    result["cells"] = [asdict(c) for c in cells]
    return result
