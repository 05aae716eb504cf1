"""The replay summary's ``lifecycle`` block (issue 14's schema).

``{models: [{name, drift_detections, retrains, rollouts, promotions, rollbacks,
max_challenger_share, phases}], drift_detection_delay_min, post_promotion_slo_attainment}``:
one entry per model run by a lifecycle loop; ``phases`` are the stretches of the replay
between its rollout stages (champion alone, shadow, canary), each with its SLO attainment
(the summary's definition: minutes whose p95 met the target with nothing dropped), node
hours and cost (the billing line items of those hours; an hour a phase shares with the
next is split by minutes). ``drift_detection_delay_min``: minutes from the scenario's
regime shift (``workload.shift``) to the first drift detection at or after it (null
without a shift or a detection); ``post_promotion_slo_attainment``: SLO attainment from
the first promotion to the end (null without a promotion); ``hourly``: per clock hour,
cost, minutes and minutes within the SLO (any window of whole hours can be compared
between runs, as ``opsbench bench lifecycle`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from sim.engine import Replay, Truth


class LifecycleLoop(Protocol):
    """What a loop gives the report: its block and its phase marks."""

    phase_marks: list[tuple[int, str, str]]

    def report(self) -> dict[str, Any]: ...


def slo_ok(replay: Replay, truth: Truth) -> np.ndarray:
    """Per minute: whether the SLO held (as in :func:`sim.summary.summarise`)."""
    slo = replay.world.scenario.slo
    return (truth.p95_ms <= slo.p95_latency_ms) & (truth.dropped < 0.5)


def window_cost_usd(by_hour: Mapping[int, float], from_min: int, to_min: int) -> float:
    """Cost (USD) of ``[from_min, to_min)`` from per-hour billing totals (partial hours
    split by minutes)."""
    total = 0.0
    for hour in range(from_min // 60, -(-to_min // 60)):
        lo, hi = max(from_min, hour * 60), min(to_min, hour * 60 + 60)
        if hi > lo:
            total += by_hour.get(hour, 0.0) * (hi - lo) / 60.0
    return total


def phases(
    marks: Sequence[tuple[int, str, str]], replay: Replay, truth: Truth
) -> list[dict[str, Any]]:
    """Each stretch between marks with its SLO attainment, node hours and cost."""
    end = replay.n_minutes
    ok = slo_ok(replay, truth)
    out = []
    for i, (start, stage, model) in enumerate(marks):
        stop = min(marks[i + 1][0] if i + 1 < len(marks) else end, end)
        if stop <= start:
            continue
        out.append(
            {
                "stage": stage,
                "model": model,
                "from_min": start,
                "to_min": stop,
                "slo_attainment": round(float(ok[start:stop].mean()), 6),
                "node_hours": round(float(truth.billed_nodes[start:stop].sum() / 60.0), 3),
                "cost_usd": round(window_cost_usd(replay.cluster.cost_usd_by_hour, start, stop), 4),
            }
        )
    return out


def shift_minute(replay: Replay) -> int | None:
    """Minute of the scenario's declared regime shift, if any."""
    shift = getattr(replay.world.scenario.workload, "shift", None)
    at_h = getattr(shift, "at_h", None)
    return None if at_h is None else round(float(at_h) * 60)


def lifecycle_block(replay: Replay, truth: Truth, loops: Sequence[object]) -> dict[str, Any]:
    """The summary's ``lifecycle`` block for the loops among ``loops``."""
    models = []
    for loop in loops:
        report = getattr(loop, "report", None)
        if report is None:
            continue
        block = report()
        marks = getattr(loop, "phase_marks", None)
        if marks is not None:
            block["phases"] = phases(marks, replay, truth)
        models.append(block)
    shift = shift_minute(replay)
    delay = None
    if shift is not None:
        after = [
            d["t_min"] for m in models for d in m.get("drift_detections", []) if d["t_min"] >= shift
        ]
        delay = float(min(after) - shift) if after else None
    promoted = [
        s["t_min"]
        for m in models
        for r in m.get("rollouts", [])
        for s in r.get("stages", [])
        if s.get("stage") == "promoted"
    ]
    post = None
    if promoted:
        ok = slo_ok(replay, truth)[min(promoted) :]
        post = round(float(ok.mean()), 6) if ok.size else None
    return {
        "models": models,
        "drift_detection_delay_min": delay,
        "post_promotion_slo_attainment": post,
        "hourly": hourly(replay, truth),
    }


def hourly(replay: Replay, truth: Truth) -> dict[str, list[float]]:
    """Per clock hour of the replay: cost (USD), minutes and minutes within the SLO, so a
    script can compare any window of hours between runs."""
    ok = slo_ok(replay, truth)
    n = replay.n_minutes
    hours = range(-(-n // 60))
    by_hour = replay.cluster.cost_usd_by_hour
    return {
        "cost_usd": [round(by_hour.get(h, 0.0), 6) for h in hours],
        "minutes": [min(60, n - 60 * h) for h in hours],
        "slo_ok_minutes": [int(ok[60 * h : 60 * h + 60].sum()) for h in hours],
    }
