"""A chronological train/test backtest of one forecaster on one working series.

Split
    The working series has ``n`` buckets; the first ``cut = floor(train_fraction * n)``
    are the *train part* and the rest the *test part*. A sample is an origin ``i`` with
    target ``i + h``; it belongs to the part its **target** falls in. So the model is
    fitted only on targets before ``cut`` (it never sees a test target), and an origin
    near the end of the train part whose target lies in the test part is a test sample.
    Features of any origin read only buckets ``<= i`` (see
    :mod:`agents.forecasting.features`).

Usable samples
    An origin needs one day of history (``i >= day``). Origins whose features would
    depend, through gap filling, on data after the origin (``clean_origin`` false: the
    origin lies inside a gap) are dropped from both parts. Samples whose target bucket
    was a gap are dropped from training and not scored (counted in
    ``excluded_gap_points``).

Scores
    MASE: MAE on the test part over the in-sample MAE of the one-day seasonal naive on
    the train part (the M4 convention, :func:`~agents.forecasting.metrics.seasonal_naive_scale`).
    WAPE: ``sum|e| / sum|y|`` on the test part. Coverage: share of test targets
    ``<=`` the p90 forecast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from agents.forecasting.features import make_features
from agents.forecasting.metrics import coverage, mase, seasonal_naive_scale, wape
from agents.forecasting.models import Forecaster
from agents.forecasting.series import DAY_S, WorkingSeries
from sim.errors import InputError

MIN_TEST_S = DAY_S
"""The test part must span at least one day."""
MIN_TRAIN_TARGETS_S = DAY_S
"""After one day of history, the train part must hold at least one day of targets."""


@dataclass(frozen=True, slots=True)
class Split:
    """Where the train part ends.

    Attributes
    ----------
    cut
        Index of the first test bucket.
    train
        ``(first, end)`` ISO times of the train part (end exclusive).
    test
        ``(first, end)`` ISO times of the test part (end exclusive).
    text
        The rule in one sentence.
    """

    cut: int
    train: tuple[str, str]
    test: tuple[str, str]
    text: str

    def as_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {"text": self.text, "train": list(self.train), "test": list(self.test)}


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Forecasts and scores of one backtest.

    Attributes
    ----------
    origins
        Indices of the scored test origins; the targets are ``origins + horizon_steps``.
    y_true, p50, p90
        Targets and forecasts at the scored origins (series' unit).
    mase, wape, coverage_p90
        Scores (see the module docstring); ``nan`` when undefined.
    n_points
        Number of scored test targets.
    n_train
        Number of training samples.
    excluded_gap_points
        Test samples not scored because their target was a gap.
    excluded_origin_points
        Test samples dropped because their origin's features would see filled data
        that depends on later data (the origin lies inside a gap), target not a gap.
    train_s
        Wall time of ``fit`` in seconds.
    scale
        The MASE scale (series' unit).
    split
        The split.
    """

    origins: np.ndarray
    y_true: np.ndarray
    p50: np.ndarray
    p90: np.ndarray
    mase: float
    wape: float
    coverage_p90: float
    n_points: int
    n_train: int
    excluded_gap_points: int
    excluded_origin_points: int
    train_s: float
    scale: float
    split: Split


def make_split(series: WorkingSeries, *, horizon_steps: int, train_fraction: float) -> Split:
    """The chronological split of ``series``.

    Parameters
    ----------
    series
        The working series.
    horizon_steps
        ``h``, the horizon in working steps.
    train_fraction
        Share of the buckets in the train part, in ``(0, 1)``.

    Returns
    -------
    Split

    Raises
    ------
    InputError
        ``train_fraction`` outside ``(0, 1)`` (field ``--train-fraction``), or the
        trace is too short for one day of history, one day of training targets after
        it, the horizon and one day of test (field ``--trace``).
    """
    if not 0.0 < train_fraction < 1.0:
        raise InputError("--train-fraction", "", f"{train_fraction!r}", "a fraction in (0, 1)")
    n, step, day = series.values.size, series.step_s, series.period_day
    cut = int(np.floor(train_fraction * n))
    need_train = day + horizon_steps + MIN_TRAIN_TARGETS_S // step
    need_test = MIN_TEST_S // step
    if cut < need_train or n - cut < need_test:
        span_h = n * step / 3600
        problem = (
            f"{n} steps of {step // 60} min ({span_h:.1f} h) give {cut} train and "
            f"{n - cut} test steps with train_fraction {train_fraction:g}"
        )
        allowed = (
            f">= {need_train} train steps (1 day of history + horizon + 1 day of targets) "
            f"and >= {need_test} test steps (1 day)"
        )
        raise InputError(series.source, "--trace", problem, allowed)
    stamps = series.timestamps
    end = stamps[-1] + np.timedelta64(step, "s")
    train = (str(stamps[0]), str(stamps[cut]))
    test = (str(stamps[cut]), str(end))
    text = (
        f"chronological: the first {train_fraction:.0%} of the {n} working steps "
        f"({train[0]} to {train[1]}, exclusive) hold the training targets, the rest "
        f"({test[0]} to {test[1]}) the test targets; a sample belongs to the part its "
        f"target falls in, and features use only values at or before the origin"
    )
    return Split(cut=cut, train=train, test=test, text=text)


@dataclass(frozen=True, slots=True)
class Samples:
    """The usable origins of each part.

    Attributes
    ----------
    train, test
        Origin indices (ascending) of the training samples and of the scored test
        samples; targets are ``origin + horizon_steps``.
    excluded_gap
        Test samples whose target was a gap (not scored).
    excluded_origin
        Test samples with a target but an origin that is not clean (not scored).
    """

    train: np.ndarray
    test: np.ndarray
    excluded_gap: int
    excluded_origin: int


def make_samples(series: WorkingSeries, *, horizon_steps: int, cut: int) -> Samples:
    """Split the origins with one day of history into training and scored test samples.

    Parameters
    ----------
    series
        The working series.
    horizon_steps
        ``h``, the horizon in working steps.
    cut
        Index of the first test bucket.

    Returns
    -------
    Samples

    Raises
    ------
    InputError
        No training or no scored test sample (field ``--trace``).
    """
    h, n, day = horizon_steps, series.values.size, series.period_day
    origins = np.arange(day, n - h)
    target_gap = series.gap[origins + h]
    in_test = origins + h >= cut
    usable = series.clean_origin[origins] & ~target_gap
    train, test = origins[~in_test & usable], origins[in_test & usable]
    excluded_gap = int(np.count_nonzero(in_test & target_gap))
    excluded_origin = int(np.count_nonzero(in_test & ~target_gap)) - int(test.size)
    if train.size == 0 or test.size == 0:
        part = "train" if train.size == 0 else "test"
        problem = f"no {part} target with data (all gaps)"
        raise InputError(series.source, "--trace", problem, "a trace with data in both parts")
    return Samples(train, test, excluded_gap, excluded_origin)


def run_backtest(
    series: WorkingSeries,
    forecaster: Forecaster,
    *,
    horizon_steps: int,
    train_fraction: float = 0.7,
) -> BacktestResult:
    """Fit a clone of ``forecaster`` on the train part and score it on the test part.

    Parameters
    ----------
    series
        The working series.
    forecaster
        An unfitted (or fitted: it is cloned) forecaster.
    horizon_steps
        ``h >= 1`` working steps, ``h * step <= 1 day``.
    train_fraction
        Share of the buckets in the train part.

    Returns
    -------
    BacktestResult

    Raises
    ------
    InputError
        See :func:`make_split`; or no usable train or test sample (field ``--trace``).
    """
    split = make_split(series, horizon_steps=horizon_steps, train_fraction=train_fraction)
    h = horizon_steps
    features = make_features(
        series.values, series.timestamps, step_s=series.step_s, horizon_steps=h
    )
    samples = make_samples(series, horizon_steps=h, cut=split.cut)
    train_rows, test_rows = samples.train, samples.test
    model = clone(forecaster)
    started = time.perf_counter()
    model.fit(_rows(features, train_rows), series.values[train_rows + h])
    train_s = time.perf_counter() - started
    quantiles = model.predict_quantiles(_rows(features, test_rows), quantiles=(0.5, 0.9))
    y_true = series.values[test_rows + h]
    scale = seasonal_naive_scale(
        series.values, period=series.period_day, stop=split.cut, gap=series.gap
    )
    return BacktestResult(
        origins=test_rows,
        y_true=y_true,
        p50=quantiles[:, 0],
        p90=quantiles[:, 1],
        mase=mase(y_true, quantiles[:, 0], scale),
        wape=wape(y_true, quantiles[:, 0]),
        coverage_p90=coverage(y_true, quantiles[:, 1]),
        n_points=int(test_rows.size),
        n_train=int(train_rows.size),
        excluded_gap_points=samples.excluded_gap,
        excluded_origin_points=samples.excluded_origin,
        train_s=train_s,
        scale=scale,
        split=split,
    )


def _rows(features: pd.DataFrame, index: np.ndarray) -> pd.DataFrame:
    """The feature rows of the given origins, re-indexed from 0."""
    return features.iloc[index].reset_index(drop=True)
