"""The cost policies' registry entries: (name, summary, params model, builder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from agents.cost.policies import (
    CostRLParams,
    CostRLPolicy,
    HindsightParams,
    HindsightPolicy,
    NoParams,
    baseline,
)

COST_POLICIES: tuple[tuple[str, str, type[BaseModel], Callable[[Any], Any]], ...] = (
    (
        "on-demand",
        "cost baseline: the shared capacity plan, all on on-demand",
        NoParams,
        baseline("on-demand"),
    ),
    (
        "spot-greedy",
        "cost baseline: all spot, on-demand only where spot is not on offer",
        NoParams,
        baseline("spot-greedy"),
    ),
    (
        "uniform-progress",
        "Can't-Be-Late's Uniform Progress on the 99.9% SLO line: on-demand "
        "while behind, spot once ahead by a margin",
        NoParams,
        baseline("uniform-progress"),
    ),
    (
        "price-capacity",
        "EC2 Fleet price-capacity-optimized: cheapest of the AZs with the best "
        "recent spot availability",
        NoParams,
        baseline("price-capacity"),
    ),
    (
        "hindsight",
        "the limit: foresees load and spot availability, cheapest capacity that "
        "stays on offer (per-tick LP optimum)",
        HindsightParams,
        HindsightPolicy,
    ),
    (
        "cost-rl",
        "PPO-trained capacity mix (spot share per AZ, on-demand floor, buffer) on the "
        "shared plan, with cost recommendations",
        CostRLParams,
        CostRLPolicy,
    ),
)
