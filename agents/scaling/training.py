"""Training the scaling model from the load history, through the feature store.

The history (requests/s per minute before the replay, gaps marked) becomes a working
series (5-minute means, :mod:`agents.forecasting.series`). For each horizon the
forecaster's features of every usable origin are written to the ``load_forecast`` view
of the DuckDB feature store (event time: the end of the origin's bucket, when its value
became known), and the training set is read back with
:meth:`~features.store.FeatureStore.get_historical_features`: labels ``(series,
horizon, time, y(t + H))`` joined point-in-time to the features, so no row can carry a
value from after its origin.

Targets: for the *forecast* model the mean load of the bucket ``H`` ahead (what MASE
scores); for the *plan* model the busiest minute of the plan window (the minutes a node
launched at the origin serves before the next plan's nodes do, :func:`plan_window_min`),
since the SLO is kept or lost minute by minute and a bucket's mean hides its busiest
minute.

Usable origins: one day of history before them, features not depending on filled data
after them (``clean_origin``), and target buckets that are not gaps.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sklearn
from filelock import FileLock

from agents.forecasting.features import feature_names, make_features
from agents.forecasting.metrics import coverage, mase, seasonal_naive_scale
from agents.lifecycle.drift import DriftReference, load_drift_features
from agents.forecasting.models import Forecaster
from agents.forecasting.series import DAY_S, WorkingSeries
from agents.registry import FORECASTERS, make_forecaster
from agents.scaling.history import MINUTE_S, VIEW, history_series
from agents.scaling.model import ScalingModel, load_model, save_model
from sim.errors import InputError

if TYPE_CHECKING:  # DuckDB is imported only when a model is trained
    from features.store import FeatureStore

DEFAULT_FORECAST_HORIZON_MIN = 30


PLAN_QUANTILES: tuple[float, ...] = (0.5, 0.75, 0.9)
"""Levels the scaling model's forecasters give (the policy plans from one of them)."""


def plan_window_min(serve_delay_s: float, hold_s: float) -> tuple[int, int]:
    """Minutes ``[first, end)`` after a forecast origin that its capacity plan must cover.

    Nodes launched at the origin serve ``serve_delay_s`` later (median provisioning
    delay + pod start); the plan holds until the next plan's nodes serve, ``hold_s``
    (the working step, or the control interval if longer) after that.
    """
    first = int(serve_delay_s // MINUTE_S)
    end = math.ceil((serve_delay_s + hold_s) / MINUTE_S)
    return first, max(end, first + 1)


def plan_horizon_min(window: tuple[int, int], step_s: int) -> int:
    """Feature horizon (minutes) of the plan model: the working bucket holding the end
    of the plan window (its calendar and seasonal features describe that time)."""
    return int(math.ceil(window[1] * MINUTE_S / step_s) * step_s // MINUTE_S)


def model_key(series: WorkingSeries, *, forecaster: str, settings: object, source: str) -> str:
    """A digest of everything the model depends on (data, settings, library versions)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(series.values).tobytes())
    digest.update(np.ascontiguousarray(series.gap).tobytes())
    settings = {
        "first": str(series.timestamps[0]),
        "step_s": series.step_s,
        "forecaster": forecaster,
        "settings": repr(settings),
        "quantiles": list(PLAN_QUANTILES),
        "features": list(feature_names()),
        "scikit-learn": sklearn.__version__,
        "source": source,
        "targets": {"plan": "busiest minute of the plan window", "forecast": "bucket mean"},
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def mean_targets(series: WorkingSeries, horizon_steps: int) -> np.ndarray:
    """Per origin ``i``: the bucket mean ``y[i + h]`` (``NaN`` past the end or on a gap)."""
    n, h = series.values.size, horizon_steps
    out = np.full(n, np.nan)
    if n > h:
        out[: n - h] = np.where(series.gap[h:], np.nan, series.values[h:])
    return out


def peak_targets(
    series: WorkingSeries,
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    start: datetime,
    window: tuple[int, int],
) -> np.ndarray:
    """Per origin ``i``: the busiest minute in ``window`` (minutes after the end of the
    origin's bucket) of the per-minute history; ``NaN`` past its end or over a gap."""
    n_min = history_rps.size
    first_s = int(np.datetime64(start, "s").astype(np.int64)) - n_min * MINUTE_S
    ends_s = series.timestamps.astype("datetime64[s]").astype(np.int64) + series.step_s
    first = (ends_s - first_s) // MINUTE_S + window[0]
    width = window[1] - window[0]
    values = np.where(np.asarray(history_gap, dtype=bool), np.nan, history_rps)
    out = np.full(series.values.size, np.nan)
    ok = (first >= 0) & (first + width <= n_min)
    if ok.any():
        rows = values[first[ok, None] + np.arange(width)[None, :]]
        out[ok] = rows.max(axis=1)  # NaN if any minute was a gap
    return out


def training_set(
    store: FeatureStore,
    series: WorkingSeries,
    target: np.ndarray,
    *,
    series_id: str,
    horizon_min: int,
    origins_from: np.datetime64 | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Write the features of every usable origin to the store, read the point-in-time
    training set back. Returns ``(X, y)`` (features in :func:`feature_names` order;
    ``target`` per origin, ``NaN`` where unusable). With ``origins_from``, origins whose
    event time (the end of their bucket) is earlier are not used (the older minutes still
    feed the lag features of the later ones)."""
    step = series.step_s
    h = horizon_min * MINUTE_S // step
    day = DAY_S // step
    n = series.values.size
    frame = make_features(series.values, series.timestamps, step_s=step, horizon_steps=h)
    origins = np.arange(day, n)
    origins = origins[series.clean_origin[origins] & np.isfinite(target[origins])]
    if origins_from is not None:
        ends = series.timestamps[origins] + np.timedelta64(step, "s")
        origins = origins[ends >= origins_from]
    if origins.size == 0:
        raise InputError(
            series.source, "workload.start", "no usable training origin", "more history"
        )
    event_time = pd.to_datetime(series.timestamps[origins] + np.timedelta64(step, "s"))
    rows = frame.iloc[origins].reset_index(drop=True)
    entity = f"{series_id}:h{horizon_min}"
    rows.insert(0, "event_time", event_time)
    rows.insert(0, "series", entity)
    store.write_features(VIEW, rows)
    labels = pd.DataFrame(
        {
            "series": entity,
            "timestamp": event_time,
            "target": target[origins],
        }
    )
    columns = feature_names()
    joined = store.get_historical_features(labels, [f"{VIEW}:{c}" for c in columns])
    X = joined[[f"{VIEW}__{c}" for c in columns]].astype(np.float64)
    X.columns = list(columns)
    X.index = pd.DatetimeIndex(joined["timestamp"], name="event_time")
    return X, joined["target"].to_numpy(dtype=np.float64)


VALIDATION_FRACTION = 0.2
"""The latest share of the forecast model's training origins held back to validate it."""


@dataclass(frozen=True, slots=True)
class TrainingInputs:
    """What one training run reads: the working series, the plan targets and the key."""

    series: WorkingSeries
    peaks: np.ndarray
    key: str


@dataclass(frozen=True, slots=True)
class TrainedScaling:
    """A trained scaling model with what its registration records.

    ``metrics``: the forecast model refitted on the earlier 80% of its origins and scored on
    the latest 20% (``val_mase``: MASE of the median against the seasonal-naive scale of the
    series before the held-back part; ``val_p90_coverage``: share of targets at or below the
    p90). ``training_sha256``: digest of the point-in-time training sets read from the
    feature store (the snapshot the model was trained on). ``reference``: the forecast
    model's training features, the reference drift is measured against
    (:mod:`agents.lifecycle.drift`).
    """

    model: ScalingModel
    metrics: dict[str, float]
    training_sha256: str
    reference: DriftReference


def training_inputs(
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    start: datetime,
    *,
    source: str,
    forecaster: str,
    plan_window: tuple[int, int],
    forecast_horizon: int = DEFAULT_FORECAST_HORIZON_MIN,
) -> TrainingInputs:
    """The working series, plan targets and :func:`model_key` of a per-minute history."""
    series = history_series(history_rps, history_gap, start, source=source)
    peaks = peak_targets(series, history_rps, history_gap, start, plan_window)
    key = model_key(
        series, forecaster=forecaster, settings=(plan_window, forecast_horizon), source=source
    )
    return TrainingInputs(series, peaks, key)


def held_back_fit(
    X: pd.DataFrame,
    y_fit: np.ndarray,
    forecaster: str,
    params: dict[str, object],
    levels: tuple[float, ...],
) -> tuple[Forecaster, int] | None:
    """The forecaster refitted on the earlier origins (all but the latest
    :data:`VALIDATION_FRACTION`, time order: no held-back row precedes a training row),
    for the quantile ``levels`` the validation reads, and the first held-back row; None
    when too few rows to validate."""
    cut = round(y_fit.size * (1 - VALIDATION_FRACTION))
    if cut < 10 or y_fit.size - cut < 5:
        return None
    settings = {**params, "quantiles": levels} if "quantiles" in params else params
    return make_forecaster(forecaster, **settings).fit(X.iloc[:cut], y_fit[:cut]), cut


def validate_forecast(
    series: WorkingSeries, X: pd.DataFrame, y: np.ndarray, held: Forecaster, cut: int
) -> dict[str, float]:
    """``held`` (:func:`held_back_fit`) on the held-back origins from ``cut``: MASE of the
    median against the seasonal-naive scale of the series before them, and p90 coverage.
    ``X`` is indexed by event time; ``y`` are the true targets."""
    q = held.predict_quantiles(X.iloc[cut:], (0.5, 0.9))
    day = DAY_S // series.step_s
    ends = series.timestamps + np.timedelta64(series.step_s, "s")  # an origin's event time
    stop = int(np.searchsorted(ends, X.index[cut].to_datetime64()))  # buckets before it
    scale = seasonal_naive_scale(series.values, period=day, stop=stop, gap=series.gap)
    return {
        "val_mase": mase(y[cut:], q[:, 0], scale),
        "val_p90_coverage": coverage(y[cut:], q[:, 1]),
        "val_rows": float(y.size - cut),
    }


def pinball(y: np.ndarray, q_pred: np.ndarray, level: float) -> np.ndarray:
    """Pinball (quantile) loss of each forecast ``q_pred`` of level ``level`` (same unit
    as ``y``): ``level * (y - q)`` when under, ``(1 - level) * (q - y)`` when over."""
    diff = y - q_pred
    return np.maximum(level * diff, (level - 1.0) * diff)


def validate_against(
    champion: ScalingModel,
    role: str,
    X: pd.DataFrame,
    y: np.ndarray,
    held: Forecaster,
    cut: int,
    level: float,
) -> dict[str, float]:
    """The candidate refitted on the earlier origins (``held``, :func:`held_back_fit`)
    against ``champion``'s ``role`` forecaster on the held-back origins from ``cut`` (rows
    neither was fitted on: the champion's training ended before them). Mean pinball loss
    at ``level`` (requests/s) and the relative difference, keyed ``val_<role>_pinball``,
    ``champion_val_<role>_pinball`` and ``val_<role>_pinball_gain`` (> 0: the candidate's
    loss is lower); ``y`` are the true targets."""
    ours = held.predict_quantiles(X.iloc[cut:], (level,))[:, 0]
    theirs = champion.forecasters[role].predict_quantiles(X.iloc[cut:], (level,))[:, 0]
    mine = float(pinball(y[cut:], ours, level).mean())
    base = float(pinball(y[cut:], theirs, level).mean())
    return {
        f"val_{role}_pinball": mine,
        f"champion_val_{role}_pinball": base,
        f"val_{role}_pinball_gain": (base - mine) / base if base > 0 else 0.0,
    }


def train_model(
    series: WorkingSeries,
    peaks: np.ndarray,
    *,
    store: FeatureStore,
    folder: Path,
    source: str,
    forecaster: str,
    plan_window: tuple[int, int],
    forecast_horizon: int = DEFAULT_FORECAST_HORIZON_MIN,
    progress: Callable[[str], None] | None = None,
    series_id: str | None = None,
    origins_from: np.datetime64 | None = None,
    shuffle_seed: int | None = None,
    champion: ScalingModel | None = None,
    plan_quantile: float = 0.75,
) -> TrainedScaling:
    """Fit the plan model (``peaks``: :func:`peak_targets`) and the forecast model (the
    mean ``forecast_horizon`` minutes ahead), save them to ``folder``, and validate the
    forecast model on its latest origins (:class:`TrainedScaling`).

    ``series_id`` names the rows in the store (default: the folder's name); the other
    parameters: see :func:`fit_model`."""
    fitted = fit_model(
        series, peaks, store=store, source=source, forecaster=forecaster,
        plan_window=plan_window, forecast_horizon=forecast_horizon, progress=progress,
        series_id=series_id or folder.name, origins_from=origins_from,
        shuffle_seed=shuffle_seed, champion=champion, plan_quantile=plan_quantile,
    )  # fmt: skip
    return fitted.save(folder)


@dataclass(frozen=True, slots=True)
class FittedScaling:
    """A scaling model fitted but not yet saved (:func:`fit_model`): its forecasters per
    role, the metadata :func:`~agents.scaling.model.save_model` completes, and what
    :class:`TrainedScaling` records."""

    forecasters: dict[str, Forecaster]
    metadata: dict[str, object]
    metrics: dict[str, float]
    training_sha256: str
    reference: DriftReference

    def save(self, folder: Path) -> TrainedScaling:
        """Write the model to ``folder`` (serialising it is most of a small model's
        training time, which is why a refused candidate need not be saved)."""
        model = save_model(self.forecasters, self.metadata, folder)
        return TrainedScaling(model, self.metrics, self.training_sha256, self.reference)


def fit_model(
    series: WorkingSeries,
    peaks: np.ndarray,
    *,
    store: FeatureStore,
    source: str,
    forecaster: str,
    plan_window: tuple[int, int],
    series_id: str,
    forecast_horizon: int = DEFAULT_FORECAST_HORIZON_MIN,
    progress: Callable[[str], None] | None = None,
    origins_from: np.datetime64 | None = None,
    shuffle_seed: int | None = None,
    champion: ScalingModel | None = None,
    plan_quantile: float = 0.75,
) -> FittedScaling:
    """Fit the plan model (``peaks``: :func:`peak_targets`) and the forecast model (the
    mean ``forecast_horizon`` minutes ahead) from the feature store, and validate the
    forecast model on its latest origins; nothing is written but the store's rows.

    ``series_id`` names the rows in the store; ``origins_from``: see
    :func:`training_set`. ``shuffle_seed`` trains a deliberately broken model: the
    targets read from the store are shuffled (seeded) before fitting. With ``champion``,
    the validation also scores it on the same held-back rows (:func:`validate_against`),
    plan model included (pinball loss at ``plan_quantile``)."""
    plan_horizon = plan_horizon_min(plan_window, series.step_s)
    FORECASTERS.spec(forecaster, source="--model")  # an unknown name: before any work
    fitted: dict[str, Forecaster] = {}
    counts: dict[str, int] = {}
    metrics: dict[str, float] = {}
    reference: DriftReference | None = None
    read = hashlib.sha256()
    for role, horizon in (("plan", plan_horizon), ("forecast", forecast_horizon)):
        if progress is not None:
            progress(f"training {forecaster} ({role}, {horizon} min ahead) on {source}")
        target = (
            peaks
            if role == "plan"
            else mean_targets(series, forecast_horizon * MINUTE_S // series.step_s)
        )
        X, y = training_set(
            store,
            series,
            target,
            series_id=f"{series_id}:{role}",
            horizon_min=horizon,
            origins_from=origins_from,
        )
        params: dict[str, object] = (
            {"quantiles": PLAN_QUANTILES} if forecaster == "gbm-quantile" else {}
        )
        read.update(np.ascontiguousarray(X.to_numpy(dtype=np.float64)).tobytes())
        read.update(np.ascontiguousarray(y).tobytes())
        y_fit = y if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(y)
        fitted[role] = make_forecaster(forecaster, **params).fit(X, y_fit)
        counts[role] = int(y.size)
        levels = {0.5, 0.9} if role == "forecast" else set()
        if champion is not None:
            levels.add(plan_quantile)
        found = (
            held_back_fit(X, y_fit, forecaster, params, tuple(sorted(levels))) if levels else None
        )
        if role == "forecast":
            reference = DriftReference.from_frame(load_drift_features(X))
        if found is not None:
            held, cut = found
            if role == "forecast":
                metrics.update(validate_forecast(series, X, y, held, cut))
            if champion is not None:
                metrics.update(validate_against(champion, role, X, y, held, cut, plan_quantile))
    end = series.timestamps[-1] + np.timedelta64(series.step_s, "s")
    assert reference is not None  # the forecast role always trains
    return FittedScaling(
        fitted,
        {
            "forecaster": forecaster,
            "step_s": series.step_s,
            "forecast_horizon_min": forecast_horizon,
            "plan_horizon_min": plan_horizon,
            "plan_window_min": plan_window,
            "quantiles": PLAN_QUANTILES,
            "feature_columns": feature_names(),
            "training": {
                "source": source,
                "first_bucket": str(series.timestamps[0]),
                "end": str(end),
                "n_samples": counts,
            },
        },
        metrics,
        read.hexdigest(),
        reference,
    )


def training_store(store_path: Path) -> FeatureStore:
    """The feature store training reads and writes through (created, its lake beside it);
    use it as a context manager."""
    from features.store import FeatureStore
    from features.views import VIEWS

    store_path.parent.mkdir(parents=True, exist_ok=True)
    return FeatureStore(store_path, views=VIEWS, lake=store_path.parent / "lake")


def load_or_train(
    history_rps: np.ndarray,
    history_gap: np.ndarray,
    start: datetime,
    *,
    models_dir: Path,
    store_path: Path,
    name: str,
    source: str,
    forecaster: str,
    plan_window: tuple[int, int],
    forecast_horizon: int = DEFAULT_FORECAST_HORIZON_MIN,
    retrain: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[ScalingModel, Path, bool]:
    """A model folder cached by :func:`model_key` under ``models_dir/scaling/`` (outside
    the registry: what tests and benchmarks train their small models with), trained first
    if there is none (or ``retrain``). Returns ``(model, folder, trained_now)``."""
    inputs = training_inputs(
        history_rps, history_gap, start, source=source, forecaster=forecaster,
        plan_window=plan_window, forecast_horizon=forecast_horizon,
    )  # fmt: skip
    folder = models_dir / "scaling" / f"{name}-{inputs.key}"
    if folder.exists() and not retrain:
        return load_model(folder), folder, False
    folder.parent.mkdir(parents=True, exist_ok=True)
    # one trainer per folder: a second process waits, then loads what the first wrote
    with FileLock(str(folder.parent / f".{folder.name}.lock")):
        if folder.exists() and not retrain:
            return load_model(folder), folder, False
        return _train_into(inputs, folder, store_path, source, forecaster, plan_window,
                           forecast_horizon, progress)  # fmt: skip


def _train_into(
    inputs: TrainingInputs,
    folder: Path,
    store_path: Path,
    source: str,
    forecaster: str,
    plan_window: tuple[int, int],
    forecast_horizon: int,
    progress: Callable[[str], None] | None,
) -> tuple[ScalingModel, Path, bool]:
    """Train on ``inputs`` into ``folder`` (the caller holds its lock)."""
    with training_store(store_path) as store:
        trained = train_model(
            inputs.series,
            inputs.peaks,
            store=store,
            folder=folder,
            source=source,
            forecaster=forecaster,
            plan_window=plan_window,
            forecast_horizon=forecast_horizon,
            progress=progress,
        )
    return trained.model, folder, True
