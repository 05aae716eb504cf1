"""``opsbench bench lifecycle``: the lifecycle scenarios against their baselines, in one run.

For each scenario with a ``lifecycle:`` section, three replays of the same world and seed:

- ``lifecycle``: the section as written (monitors, retrains, rollouts);
- ``never retrain``: ``--lifecycle monitor`` (the same monitors, nothing retrained, no
  challenger injected: the model trained before the replay decides to the end);
- ``reactive``: the HPA baseline, for a scaling scenario.

Figures: the whole replay's SLO attainment and cost; the same over the *after* window
(from the first whole hour after the first promotion in the lifecycle run to the end; for
a scenario without a promotion, from its regime shift, or else from the first rollout's
end) for all three, from the summary's ``lifecycle.hourly`` figures; the lifecycle run's
drift detection delay, retrains (count, longest wall time), rollouts (outcome, time from
arrival, the challenger's largest share of decisions), and the replay's wall time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import runner

SCENARIOS: tuple[str, ...] = ("regime-shift", "bad-model", "new-service-account")
"""The lifecycle scenarios of issue 14."""


def _run(
    scenario: str, *, policy: str | None, mode: runner.LifecycleMode, models_dir: Path | str,
    store: Path,
) -> dict[str, Any]:  # fmt: skip
    prepared = runner.prepare_run(scenario, policy=policy, lifecycle=mode)
    runner.attach_model(prepared, models_dir=models_dir, store=store)
    started = time.perf_counter()
    summary = runner.run(prepared)
    summary["replay_wall_s"] = round(time.perf_counter() - started, 3)
    return summary


def window(hourly: dict[str, list[float]], from_hour: int) -> dict[str, float | None]:
    """SLO attainment and cost (USD) over the hours from ``from_hour`` to the end."""
    minutes = sum(hourly["minutes"][from_hour:])
    if minutes <= 0:
        return {"slo_attainment": None, "cost_usd": None, "hours": 0}
    return {
        "slo_attainment": round(sum(hourly["slo_ok_minutes"][from_hour:]) / minutes, 6),
        "cost_usd": round(math.fsum(hourly["cost_usd"][from_hour:]), 4),
        "hours": len(hourly["minutes"]) - from_hour,
    }


def after_hour(block: dict[str, Any], shift_min: int | None) -> int | None:
    """The first whole hour of the *after* window (see the module)."""
    stages = [s for m in block["models"] for r in m.get("rollouts", []) for s in r["stages"]]
    promoted = [s["t_min"] for s in stages if s["stage"] == "promoted"]
    if promoted:
        return -(-min(promoted) // 60)
    if shift_min is not None:
        return -(-shift_min // 60)
    ended = [s["t_min"] for s in stages if s["stage"] == "rolled back"]
    return -(-min(ended) // 60) if ended else None


def evaluate(
    scenario: str,
    *,
    models_dir: Path | str,
    store: Path,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The three replays of ``scenario`` and their comparison (see the module)."""
    say = progress or (lambda _: None)
    scenario_obj, _ = runner.load(scenario)
    scaling = scenario_obj.lifecycle is not None and scenario_obj.lifecycle.scaling is not None
    runs: dict[str, dict[str, Any]] = {}
    for label, policy, mode in (
        ("lifecycle", None, "on"),
        ("never retrain", None, "monitor"),
        *((("reactive", "reactive", "monitor"),) if scaling else ()),
    ):
        say(f"{scenario}: {label}")
        runs[label] = _run(scenario, policy=policy, mode=mode, models_dir=models_dir, store=store)
    block = runs["lifecycle"]["lifecycle"]
    shift = getattr(getattr(scenario_obj.workload, "shift", None), "at_h", None)
    shift_min = None if shift is None else round(float(shift) * 60)
    start = after_hour(block, shift_min)
    models = []
    for model in block["models"]:
        retrains = model.get("retrains", [])
        rollouts = []
        for r in model.get("rollouts", []):
            first, last = r["stages"][0], r["stages"][-1]
            rollouts.append(
                {
                    "challenger": r["challenger"],
                    "trigger": r["trigger"],
                    "outcome": last["stage"],
                    "minutes_from_arrival": last["t_min"] - first["t_min"],
                    "challenger_share": round(r["challenger_ticks"] / r["canary_ticks"], 4)
                    if r.get("canary_ticks")
                    else 0.0,
                }
            )
        models.append(
            {
                "name": model["name"],
                "drift_detections": len(model.get("drift_detections", [])),
                "retrains": len(retrains),
                "retrain_wall_s_max": max((r["wall_s"] for r in retrains), default=None),
                "rollouts": rollouts,
                "promotions": model.get("promotions", 0),
                "rollbacks": model.get("rollbacks", 0),
                "max_challenger_share": model.get("max_challenger_share", 0.0),
            }
        )
    return {
        "scenario": scenario,
        "drift_detection_delay_min": block.get("drift_detection_delay_min"),
        "after_from_hour": start,
        "models": models,
        "runs": {
            label: {
                "slo_attainment": s["slo_attainment"],
                "cost_usd": s["cost_usd"],
                "replay_wall_s": s["replay_wall_s"],
                "after": window(s["lifecycle"]["hourly"], start) if start is not None else None,
                **({"security": s["security"]} if "security" in s else {}),
            }
            for label, s in runs.items()
        },
    }


def evaluate_all(
    scenarios: Sequence[str],
    *,
    models_dir: Path | str,
    store: Path,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`evaluate` for every scenario."""
    return [evaluate(s, models_dir=models_dir, store=store, progress=progress) for s in scenarios]
