"""The forecasts ``predictive`` holds at every control tick of a replay, for a whole load
series at once: the batch twin of :class:`~agents.scaling.policy.PredictivePolicy`'s
streaming forecast, for environments that size capacity as the policy would (the cost
agent's) and cannot afford the online store per step.

In a replay the policy re-forecasts at reset (the origin ending at ``start``) and at
every tick ``k >= 1`` whose minute ``k - 1`` has metrics: its pipeline
(:class:`~agents.scaling.pipeline.LoadPipeline`) adds the minute (and, first, every
minute before it without metrics, as the last value known), builds the feature row of
the origin ending now (:func:`~agents.forecasting.features.origin_features` of the
5-minute means of the minutes it holds), and the model forecasts from it. A tick whose
minute has no metrics keeps the forecast it held.

Here the same rows are built for every origin together (:func:`feature_rows`,
:func:`origin_rows`: the bucket means of each of the 5 bucket alignments are computed
once, and every window statistic by the same numpy reductions over the same contiguous
values) and forecast in blocks (:func:`predict_rows`: the gradient-boosting forecaster's
compiled trees walked for many rows at once, every step the one-row path's element by
element; any other forecaster row by row). The result equals the policy's forecast bit
for bit (``tests/agents/test_plan_forecast.py`` replays the policy and compares).

Ticks are 60 s apart (``control.interval_s: 60``). The load is what the policy's metrics
report: in a simulator replay the sum of the pools' ``request_rate_rps``, each pool's
share of the minute's offered requests; that sum may differ from the workload's
``offered_rps`` in the last bit (forecasts then differ by ~1e-16 relative).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from agents.forecasting.compiled import CompiledTrees
from agents.forecasting.features import DAY_S, DEFAULT_N_LAGS, HOUR_S, WEEK_S, feature_names
from agents.forecasting.models import QuantileGBMForecaster
from agents.scaling.history import MIN_HISTORY_DAYS
from agents.scaling.model import ScalingModel
from agents.scaling.pipeline import LoadPipeline

MINUTE_S = 60
ORIGIN_BLOCK = 1024
"""Origins whose window statistics are computed together (bounds the (origins, window)
temporaries: 1,024 x 288 buckets x 8 bytes = 2.4 MB)."""
TREE_BLOCK = 128
"""Rows walked through the compiled trees together (the (split nodes, rows) decisions and
(trees, rows) walk stay in cache: 64 to 256 rows were equally fast, 512 half as fast, for
3 x 300 depth-3 trees)."""


def plan_forecasts(
    model: ScalingModel,
    *,
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    start: datetime,
    offered_rps: np.ndarray,
    observed: np.ndarray | None = None,
    role: str = "plan",
) -> np.ndarray:
    """The quantile forecasts (requests/s) ``PredictivePolicy.forecast[role]`` holds at
    every control tick of a replay (60-s ticks) of ``offered_rps``.

    Parameters
    ----------
    model
        The policy's trained scaling model.
    history_rps
        Offered load (requests/s) per minute before ``start``, oldest first (at least
        :data:`~agents.scaling.history.MIN_HISTORY_DAYS` days, as the policy needs).
    history_gap
        ``bool``, True where a history minute was a gap (its value is not read).
    start
        Wall-clock time of tick 0 (naive UTC).
    offered_rps
        Offered load (requests/s, finite, ``>= 0``) of each replay minute ``k = 0..n-1``:
        what the policy's metrics report, summed over pools.
    observed
        ``bool`` ``(n,)``, False where the policy saw no metrics for minute ``k`` (a
        telemetry gap); None: every minute observed.
    role
        ``"plan"`` (the busiest minute of the plan window) or ``"forecast"`` (the mean
        load at the reported horizon).

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(n + 1, len(model.metadata.quantiles))``, quantiles in the
        metadata's order: row 0 the forecast after reset (origin ``start``); row ``k``
        the forecast held after deciding at tick ``k`` (sim time ``60 k`` s), having seen
        minutes ``0..k-1`` (unchanged from row ``k - 1`` when minute ``k - 1`` had no
        metrics).

    Raises
    ------
    ValueError
        Inputs of the wrong shape or type, a load that is negative or not finite, too
        little history, or an unknown role.
    """
    rows, in_force = feature_rows(
        model,
        history_rps=history_rps,
        history_gap=history_gap,
        start=start,
        offered_rps=offered_rps,
        observed=observed,
        role=role,
    )
    out: np.ndarray = predict_rows(model, role, rows)[in_force]
    return out


def feature_rows(
    model: ScalingModel,
    *,
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    start: datetime,
    offered_rps: np.ndarray,
    observed: np.ndarray | None = None,
    role: str = "plan",
) -> tuple[np.ndarray, np.ndarray]:
    """The feature rows the policy forecasts ``role`` from in a replay, and which of them
    each tick's forecast comes from (parameters and errors: :func:`plan_forecasts`).

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        ``rows``: ``float64`` ``(1 + minutes observed, n_features)``, the rows the
        policy reads back from its online store, in time order (row 0: at reset);
        ``in_force``: ``int64`` ``(n + 1,)``, the row whose forecast tick ``k`` holds.
    """
    history, gap, offered, seen = _checked_inputs(history_rps, history_gap, offered_rps, observed)
    meta = model.metadata
    horizons = {"plan": meta.plan_horizon_min, "forecast": meta.forecast_horizon_min}
    if role not in horizons:
        raise ValueError(f"plan_forecasts: role {role!r} is not one of {sorted(horizons)}")
    if meta.step_s % MINUTE_S:
        raise ValueError(f"plan_forecasts: model step_s {meta.step_s} is not whole minutes")
    if meta.feature_columns != feature_names():
        raise ValueError("plan_forecasts: the model's feature columns are not this version's")
    pipeline = LoadPipeline(history, gap, start, step_s=meta.step_s)  # the policy's at reset
    minutes, held_before = replay_minutes(history, gap, offered, seen, keep=pipeline.keep)
    origin_ticks = np.concatenate(([0], np.flatnonzero(seen) + 1))  # ticks that re-forecast
    rows = origin_rows(
        minutes,
        held_before + origin_ticks,
        pipeline.origin_end_s + MINUTE_S * origin_ticks,
        keep=pipeline.keep,
        step_s=meta.step_s,
        horizon_steps=horizons[role] * MINUTE_S // meta.step_s,
    )
    in_force = np.concatenate(([0], np.cumsum(seen)))
    return rows, in_force


def _checked_inputs(
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    offered_rps: np.ndarray,
    observed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inputs as ``float64`` / ``bool`` 1-D arrays, or ValueError naming the bad one."""
    history = np.asarray(history_rps, dtype=np.float64)
    gap = np.asarray(history_gap)
    offered = np.asarray(offered_rps, dtype=np.float64)
    if history.ndim != 1 or gap.shape != history.shape or gap.dtype != bool:
        raise ValueError(
            f"plan_forecasts: history_rps {history.shape} and history_gap {gap.shape} "
            f"({gap.dtype}) must be 1-D of one length, history_gap bool"
        )
    known = history[~gap]
    if not np.all(np.isfinite(known) & (known >= 0)):
        raise ValueError("plan_forecasts: history_rps must be finite and >= 0 outside gaps")
    minimum = int(MIN_HISTORY_DAYS * DAY_S // MINUTE_S)
    if history.size < minimum:
        raise ValueError(
            f"plan_forecasts: history_rps has {history.size} minutes; the policy needs at "
            f"least {minimum} ({MIN_HISTORY_DAYS:g} days)"
        )
    if offered.ndim != 1:
        raise ValueError(f"plan_forecasts: offered_rps must be 1-D, not shape {offered.shape}")
    if not np.all(np.isfinite(offered) & (offered >= 0)):
        bad = int(np.flatnonzero(~(np.isfinite(offered) & (offered >= 0)))[0])
        raise ValueError(
            f"plan_forecasts: offered_rps[{bad}] = {offered[bad]}: a load must be finite "
            "and >= 0 (requests/s)"
        )
    if observed is None:
        seen = np.ones(offered.size, dtype=bool)
    else:
        seen = np.asarray(observed)
        if seen.shape != offered.shape or seen.dtype != bool:
            raise ValueError(
                f"plan_forecasts: observed must be bool of offered_rps's shape "
                f"{offered.shape}, not {seen.dtype} {seen.shape}"
            )
    return history, gap, offered, seen


def replay_minutes(
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    offered_rps: np.ndarray,
    observed: np.ndarray,
    *,
    keep: int,
) -> tuple[np.ndarray, int]:
    """The per-minute load the policy's pipeline holds (requests/s): the last ``keep``
    minutes of the history (gaps interpolated from the history alone), then every
    replay minute, one without metrics repeating the last value known before it.
    Returns ``(minutes, history minutes kept)``: after the minutes of ticks
    ``0..k-1`` the pipeline holds ``minutes[: kept + k]``."""
    history = history_rps.copy()
    if history_gap.any() and not history_gap.all():  # as LoadPipeline.__init__
        known = np.flatnonzero(~history_gap)
        history[history_gap] = np.interp(np.flatnonzero(history_gap), known, history[known])
    tail = history[-keep:]
    before = float(tail[-1]) if tail.size else 0.0
    latest = np.maximum.accumulate(np.where(observed, np.arange(observed.size), -1))
    replay = np.where(latest >= 0, offered_rps[np.maximum(latest, 0)], before)
    return np.concatenate((tail, replay)), int(tail.size)


def origin_rows(
    minutes: np.ndarray,
    held: np.ndarray,
    origin_end_s: np.ndarray,
    *,
    keep: int,
    step_s: int,
    horizon_steps: int,
) -> np.ndarray:
    """The feature row (:func:`~agents.forecasting.features.feature_names` order) of
    each origin ``o``: the row ``LoadPipeline.features`` gives when the pipeline holds
    ``minutes[: held[o]]`` and its origin ends at ``origin_end_s[o]`` (epoch seconds),
    the working series being the bucket means of the last whole buckets of at most
    ``keep`` of those minutes. ``float64`` ``(len(held), n_features)``."""
    per = step_s // MINUTE_S
    out = np.full((held.size, len(feature_names())), np.nan)
    for phase in range(per):  # origins whose buckets start at minutes = phase (mod per)
        chosen = np.flatnonzero(held % per == phase)
        if chosen.size == 0:
            continue
        count = (minutes.size - phase) // per
        buckets = minutes[phase : phase + count * per].reshape(-1, per).mean(axis=1)
        last = (held[chosen] - phase) // per - 1  # the origin's bucket
        first = last - np.minimum(held[chosen], keep) // per + 1  # the series' first
        for block in range(0, chosen.size, ORIGIN_BLOCK):
            part = slice(block, block + ORIGIN_BLOCK)
            out[chosen[part]] = _phase_rows(
                buckets,
                first[part],
                last[part],
                origin_end_s[chosen[part]] - step_s,
                step_s=step_s,
                horizon_steps=horizon_steps,
            )
    return out


def _phase_rows(
    buckets: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    origin_start_s: np.ndarray,
    *,
    step_s: int,
    horizon_steps: int,
) -> np.ndarray:
    """:func:`~agents.forecasting.features.origin_features` of ``buckets[first[o] :
    last[o] + 1]`` for every origin ``o`` (bucket indices into ``buckets``), cell for cell:
    a value before the series' first bucket or after its last is NaN, a window not
    wholly inside it too; every statistic is numpy's reduction over the same contiguous
    values. ``n_lags`` is the default one (as the pipeline's)."""
    day, week = DAY_S // step_s, WEEK_S // step_s
    h = horizon_steps
    hour = max(1, HOUR_S // step_s)

    def at(index: np.ndarray) -> np.ndarray:
        inside = (index >= first) & (index <= last)
        if buckets.size == 0:
            return np.full(index.shape, np.nan)
        return np.where(inside, buckets[np.clip(index, 0, buckets.size - 1)], np.nan)

    def window(end: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The values of each origin's window (rows) and where it lies inside the series."""
        inside = (end - length + 1 >= first) & (end <= last)
        if buckets.size < length or not inside.any():
            return None
        starts = np.clip(end - length + 1, 0, buckets.size - length)
        return sliding_window_view(buckets, length)[starts], inside

    def stats(end: np.ndarray, length: int, kinds: tuple[str, ...]) -> list[np.ndarray]:
        found = window(end, length)
        if found is None:
            return [np.full(end.shape, np.nan) for _ in kinds]
        values, inside = found
        reduce = {"mean": np.mean, "max": np.max, "std": np.std}
        return [np.where(inside, reduce[kind](values, axis=-1), np.nan) for kind in kinds]

    columns = [at(last - k) for k in range(DEFAULT_N_LAGS)]
    columns += [at(last + h - day), at(last + h - week), at(last - day), at(last - week)]
    columns += stats(last + h - day, hour, ("mean",))
    for seconds in (HOUR_S, 6 * HOUR_S, DAY_S):
        columns += stats(last, max(1, seconds // step_s), ("mean", "max", "std"))
    columns += stats(last - day, max(1, DAY_S // step_s), ("mean",))
    target_s = origin_start_s + h * step_s
    columns += [(target_s % DAY_S) / HOUR_S, ((target_s // DAY_S + 3) % 7).astype(np.float64)]
    return np.column_stack(columns)


def predict_rows(model: ScalingModel, role: str, rows: np.ndarray) -> np.ndarray:
    """``model.predict_row(role, row)`` of every row, stacked: ``float64`` ``(n_rows,
    n_quantiles)``. A gradient-boosting forecaster's one-row path is repeated for
    blocks of rows (:func:`gbm_rows`); any other forecaster predicts row by row."""
    forecaster = model.forecasters[role]
    levels = tuple(float(q) for q in model.metadata.quantiles)
    if (
        type(forecaster).predict_quantiles_row is QuantileGBMForecaster.predict_quantiles_row
        and isinstance(forecaster, QuantileGBMForecaster)
        and levels == tuple(sorted(forecaster.models_))
    ):
        return gbm_rows(forecaster, rows)
    out = np.empty((rows.shape[0], len(levels)))
    for i, row in enumerate(rows):
        out[i] = model.predict_row(role, row)
    return out


def gbm_rows(forecaster: QuantileGBMForecaster, rows: np.ndarray) -> np.ndarray:
    """:meth:`QuantileGBMForecaster.predict_quantiles_row` (fitted levels, ascending) of
    every row, element for element the same operations: ``float64`` ``(n_rows,
    n_levels)``, requests/s."""
    offsets = np.asarray([forecaster.offsets_[q] for q in sorted(forecaster.models_)])
    trees = SplitFirst.of(forecaster.compiled_)
    out = np.empty((rows.shape[0], offsets.size))
    for block in range(0, rows.shape[0], TREE_BLOCK):
        x = rows[block : block + TREE_BLOCK]
        level = np.maximum(np.nan_to_num(x[:, forecaster.level_index_], nan=0.0), 0.0)
        level = level + forecaster.floor_
        design = x.copy()
        design[:, forecaster.scaled_mask_] /= level[:, None]
        z = trees.raw_predictions(design[:, forecaster.used_columns_]) + offsets
        quantiles = np.exp(z) * level[:, None] - forecaster.floor_
        out[block : block + TREE_BLOCK] = np.maximum(np.maximum.accumulate(quantiles, axis=1), 0.0)
    return out


@dataclass(frozen=True, slots=True)
class SplitFirst:
    """:class:`~agents.forecasting.compiled.CompiledTrees` renumbered so that the split
    nodes come first (``0 .. n_splits - 1``), for walking many rows at once: only split
    nodes need a decision per row.

    Attributes
    ----------
    feature, threshold, missing_left
        Per split node: its feature, threshold and where ``NaN`` goes.
    children
        ``[2 node]``: right child, ``[2 node + 1]``: left child (a leaf: itself, twice).
    roots, starts, value, depth, baselines
        As in :class:`~agents.forecasting.compiled.CompiledTrees`, renumbered.
    """

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    children: np.ndarray
    roots: np.ndarray
    starts: np.ndarray
    value: np.ndarray
    depth: int
    baselines: np.ndarray

    @classmethod
    def of(cls, trees: CompiledTrees) -> SplitFirst:
        """Renumber ``trees`` (a leaf is a node that is its own left child)."""
        own = np.arange(trees.feature.size)
        split = trees.left != own
        order = np.concatenate((own[split], own[~split]))  # new number -> old
        new = np.empty_like(order)
        new[order] = own
        splits = order[: int(split.sum())]
        return cls(
            feature=trees.feature[splits],
            threshold=trees.threshold[splits],
            missing_left=trees.missing_left[splits],
            children=np.stack((new[trees.right[order]], new[trees.left[order]]), axis=1).ravel(),
            roots=new[trees.roots],
            starts=trees.starts,
            value=trees.value[order],
            depth=trees.depth,
            baselines=trees.baselines,
        )

    def raw_predictions(self, design: np.ndarray) -> np.ndarray:
        """:meth:`CompiledTrees.predict_one` of every row of ``design`` (``(n_rows,
        n_features)``): ``(n_rows, n_boosters)``, each the same sum of the same leaves
        (the same decisions: ``x <= threshold``, ``NaN`` as ``missing_left``)."""
        n_rows, n_splits = design.shape[0], self.feature.size
        values = np.ascontiguousarray(design.T)[self.feature]  # (splits, rows)
        goes_left = values <= self.threshold[:, None]  # False on NaN
        missing = np.isnan(values)
        if missing.any():
            goes_left |= missing & self.missing_left[:, None]
        decisions = goes_left.ravel()
        nodes = np.repeat(self.roots[:, None], n_rows, axis=1)  # (trees, rows)
        row = np.arange(n_rows)
        for _ in range(self.depth):  # a leaf's decision is any (both its children: itself)
            went_left = decisions[np.minimum(nodes, n_splits - 1) * n_rows + row]
            nodes = self.children[2 * nodes + went_left]
        leaves = np.ascontiguousarray(self.value[nodes].T)  # (rows, trees)
        sums: np.ndarray = np.add.reduceat(leaves, self.starts, axis=1) + self.baselines
        return sums
