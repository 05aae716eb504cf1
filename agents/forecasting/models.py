"""Load forecasters following the scikit-learn estimator contract.

Every forecaster takes the feature frame of :func:`agents.forecasting.features.make_features`
(one row per forecast origin) and the targets ``y(t + H)`` in the series' unit. Hyper-
parameters are keyword-only and stored verbatim by ``__init__``; :meth:`fit` learns
everything (attributes ending in ``_``) and returns ``self``; :meth:`predict` returns
the median forecast and :meth:`Forecaster.predict_quantiles` an ``(n, len(quantiles))``
array of quantile forecasts, non-decreasing along the quantile axis.

Named models (registered in :data:`agents.registry.FORECASTERS`)
    ``seasonal-naive-1d`` / ``seasonal-naive-1w``
        The target's value one day / one week earlier (the week falls back to the day
        where the week is before the series' start). Other quantiles add the empirical
        quantile of the training residuals.
    ``seed-rf``
        The seed's random forest (200 trees, ``max_depth=15``, ``min_samples_split=10``,
        ``min_samples_leaf=5``, ``random_state=0``) on the raw features and targets;
        quantiles from its out-of-bag residuals.
    ``gbm-quantile`` (the default)
        One histogram gradient-boosting model per quantile (pinball loss) on features
        and target divided by the recent level, see :class:`QuantileGBMForecaster`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from agents.forecasting.compiled import CompiledTrees
from agents.forecasting.features import CALENDAR_COLUMNS, LEVEL_COLUMN, SEASONAL_COLUMNS

Quantiles = Sequence[float]
DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9)


class Forecaster(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Base class: a median forecast plus quantile forecasts of ``y(t + H)``.

    Subclasses implement :meth:`fit` and :meth:`_quantiles`. Inputs are feature frames
    (``pandas.DataFrame`` with the columns of ``make_features``); the columns seen by
    ``fit`` are required, in the same order, by the prediction methods.
    """

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The median forecast.

        Parameters
        ----------
        X
            Feature frame, one row per origin.

        Returns
        -------
        numpy.ndarray
            ``float64`` ``(n,)``, in the series' unit.
        """
        return self.predict_quantiles(X, quantiles=(0.5,))[:, 0]

    def predict_quantiles(self, X: pd.DataFrame, quantiles: Quantiles = (0.5, 0.9)) -> np.ndarray:
        """Quantile forecasts.

        Parameters
        ----------
        X
            Feature frame, one row per origin.
        quantiles
            Levels in ``(0, 1)``.

        Returns
        -------
        numpy.ndarray
            ``float64`` ``(n, len(quantiles))`` in the series' unit, ``>= 0``;
            non-decreasing in the level within each row.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            A level outside ``(0, 1)`` or one the model cannot give, or columns that
            differ from those seen in ``fit``.
        """
        check_is_fitted(self)
        levels = _check_levels(quantiles)
        frame = self._check_frame(X, reset=False)
        order = np.argsort(levels, kind="stable")
        raw = self._quantiles(frame, tuple(float(q) for q in levels[order]))
        ordered = np.maximum(np.maximum.accumulate(raw, axis=1), 0.0)
        out = np.empty_like(ordered)
        out[:, order] = ordered
        return out

    def predict_quantiles_row(self, row: np.ndarray, quantiles: Quantiles) -> np.ndarray:
        """:meth:`predict_quantiles` for one feature row (columns as seen in ``fit``).

        Returns ``float64`` ``(len(quantiles),)``. Subclasses may answer faster.
        """
        check_is_fitted(self)
        frame = pd.DataFrame(
            np.asarray(row, dtype=np.float64).reshape(1, -1),
            columns=list(self.feature_names_in_),
        )
        out: np.ndarray = self.predict_quantiles(frame, quantiles=quantiles)[0]
        return out

    def _quantiles(self, X: pd.DataFrame, levels: tuple[float, ...]) -> np.ndarray:
        """Quantile forecasts for ascending ``levels`` (unordered is fine)."""
        raise NotImplementedError

    def _required_columns(self) -> tuple[str, ...]:
        """Columns the model reads by name."""
        return ()

    def _check_frame(self, X: pd.DataFrame, *, reset: bool) -> pd.DataFrame:
        """Validate ``X``; on ``reset`` record ``feature_names_in_`` and ``n_features_in_``."""
        if not isinstance(X, pd.DataFrame):
            raise ValueError(f"X must be a pandas DataFrame of features, not {type(X).__name__}")
        names = np.asarray(X.columns, dtype=object)
        if reset:
            missing = [c for c in self._required_columns() if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks the columns {missing}")
            self.feature_names_in_ = names
            self.n_features_in_ = int(names.size)
        elif names.tolist() != self.feature_names_in_.tolist():
            raise ValueError("X has other columns than the frame seen in fit")
        return X


class SeasonalNaiveForecaster(Forecaster):
    """The target's value one season earlier.

    Parameters
    ----------
    season
        ``"1d"`` (column ``target_1d``) or ``"1w"`` (``target_1w``, falling back to
        ``target_1d`` where it is ``NaN``).

    Attributes
    ----------
    residuals_
        ``float64`` training residuals ``y - seasonal value`` (series' unit), sorted.
    n_features_in_, feature_names_in_
        As in scikit-learn.

    Notes
    -----
    The seasonal value is the median forecast. A level ``q != 0.5`` adds the empirical
    ``q``-quantile of ``residuals_``, clipped to ``>= 0`` above the median and ``<= 0``
    below it.
    """

    def __init__(self, *, season: Literal["1d", "1w"] = "1d") -> None:
        self.season = season

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> SeasonalNaiveForecaster:
        """Record the training residuals.

        Parameters
        ----------
        X
            Feature frame with ``target_1d`` (and ``target_1w``).
        y
            Targets ``y(t + H)``, series' unit.

        Returns
        -------
        SeasonalNaiveForecaster
            ``self``.
        """
        if self.season not in SEASONAL_COLUMNS:
            raise ValueError(f"season(={self.season!r}) must be one of {sorted(SEASONAL_COLUMNS)}")
        frame = self._check_frame(X, reset=True)
        target = _check_target(y, len(frame))
        residuals = target - self._point(frame)
        self.residuals_ = np.sort(residuals[np.isfinite(residuals)])
        return self

    def _required_columns(self) -> tuple[str, ...]:
        return tuple(SEASONAL_COLUMNS.values())

    def _point(self, X: pd.DataFrame) -> np.ndarray:
        point: np.ndarray = X[SEASONAL_COLUMNS["1d"]].to_numpy(dtype=np.float64)
        if self.season == "1w":
            week = X[SEASONAL_COLUMNS["1w"]].to_numpy(dtype=np.float64)
            point = np.where(np.isnan(week), point, week)
        return point

    def _quantiles(self, X: pd.DataFrame, levels: tuple[float, ...]) -> np.ndarray:
        return _add_residual_quantiles(self._point(X), self.residuals_, levels)


class RandomForestForecaster(Forecaster):
    """A random forest on the raw features (the seed's model).

    Parameters
    ----------
    n_estimators, max_depth, min_samples_split, min_samples_leaf, n_jobs
        Passed to :class:`sklearn.ensemble.RandomForestRegressor`.
    random_state
        Seed of the forest (an ``int`` makes it deterministic).

    Attributes
    ----------
    forest_
        The fitted forest (``oob_score=True``).
    residuals_
        ``float64`` out-of-bag residuals ``y - oob prediction`` (series' unit), sorted.
    used_columns_
        ``bool`` mask of the columns with at least one value in training (the others,
        e.g. one-week lags on a trace shorter than a week, are ignored).

    Notes
    -----
    The forest's mean is the median forecast; a level ``q != 0.5`` adds the empirical
    ``q``-quantile of the out-of-bag residuals (clipped as in
    :class:`SeasonalNaiveForecaster`). Out-of-bag residuals are honest about unseen
    rows, unlike in-sample ones, though neighbours in time make them a little optimistic.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        max_depth: int | None = 15,
        min_samples_split: int = 10,
        min_samples_leaf: int = 5,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> RandomForestForecaster:
        """Fit the forest and record its out-of-bag residuals.

        Parameters
        ----------
        X
            Feature frame (``NaN`` cells allowed).
        y
            Targets ``y(t + H)``, series' unit.

        Returns
        -------
        RandomForestForecaster
            ``self``.
        """
        frame = self._check_frame(X, reset=True)
        target = _check_target(y, len(frame))
        forest = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_split=self.min_samples_split,
            min_samples_leaf=self.min_samples_leaf,
            oob_score=True,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        self.used_columns_ = _columns_with_data(frame)
        forest.fit(frame.to_numpy(dtype=np.float64)[:, self.used_columns_], target)
        residuals = target - np.asarray(forest.oob_prediction_, dtype=np.float64)
        self.forest_ = forest
        self.residuals_ = np.sort(residuals[np.isfinite(residuals)])
        return self

    def _quantiles(self, X: pd.DataFrame, levels: tuple[float, ...]) -> np.ndarray:
        design = X.to_numpy(dtype=np.float64)[:, self.used_columns_]
        point = np.asarray(self.forest_.predict(design), dtype=np.float64)
        return _add_residual_quantiles(point, self.residuals_, levels)


class QuantileGBMForecaster(Forecaster):
    """Histogram gradient boosting with the pinball loss, one model per quantile.

    The model works relative to the recent level ``L = mean_1h + c`` (the mean of the
    last hour, plus a floor ``c``): every feature in the series' unit is divided by
    ``L`` and the target is ``log((y + c) / L)``. Quantiles survive both monotone maps,
    so each model's output maps back to a quantile of ``y``. Working in ratios lets
    trees, which cannot extrapolate, follow a level never seen in training (e.g. the
    World Cup's growth), and shares the daily shape across levels.

    Levels other than 0.5 are calibrated (conformalised quantile regression): their
    boosters are first fitted on the first ``1 - calibration_fraction`` of the rows,
    and the empirical ``q``-quantile of ``z - prediction`` on the remaining rows is
    added to the final booster's output (fitted on all rows), so that a share ``q`` of
    recent, unseen targets falls below the level-``q`` forecast. **Rows must be in time
    order** for that hold-out to be the most recent part.

    Parameters
    ----------
    quantiles
        Levels to fit, each in ``(0, 1)``; :meth:`predict` needs ``0.5`` among them.
    max_iter, learning_rate, max_depth, min_samples_leaf, l2_regularization
        Passed to :class:`sklearn.ensemble.HistGradientBoostingRegressor` (no early
        stopping, so no internal random split).
    level_floor
        ``c`` as a fraction of the mean training target (``>= 0``): keeps ratios finite
        on near-zero load.
    calibration_fraction
        Share of the (last) rows held out to calibrate levels other than 0.5, in
        ``[0, 1)``; 0 disables calibration.
    random_state
        Passed to every booster.
    n_threads
        OpenMP threads while fitting and predicting (``None``: the library default, all
        cores). One thread is the default: the data are small, and oversubscribed
        cores slow OpenMP down by an order of magnitude.

    Attributes
    ----------
    models_
        ``{level: fitted HistGradientBoostingRegressor}`` (on log-ratios).
    offsets_
        ``{level: calibration offset}`` added to that booster's log-ratio output.
    floor_
        ``c`` in the series' unit.
    scaled_columns_
        The columns divided by the level (all but the calendar ones).
    used_columns_
        ``bool`` mask of the columns with at least one value in training (e.g. the
        one-week lags are all ``NaN`` on a trace shorter than a week); the others are
        ignored.
    compiled_
        Every level's booster as flat arrays (:class:`~agents.forecasting.compiled.
        CompiledTrees`), levels ascending: the one-row path of
        :meth:`predict_quantiles_row`, equal to the boosters' ``predict``.
    """

    def __init__(
        self,
        *,
        quantiles: Quantiles = DEFAULT_QUANTILES,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_depth: int | None = 3,
        min_samples_leaf: int = 100,
        l2_regularization: float = 1.0,
        level_floor: float = 0.01,
        calibration_fraction: float = 0.2,
        random_state: int | None = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.quantiles = quantiles
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.level_floor = level_floor
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> QuantileGBMForecaster:
        """Fit (and calibrate) one booster per level of ``quantiles``.

        Parameters
        ----------
        X
            Feature frame with ``mean_1h`` (``NaN`` cells allowed elsewhere), rows in
            time order.
        y
            Targets ``y(t + H)`` (``>= 0``), series' unit.

        Returns
        -------
        QuantileGBMForecaster
            ``self``.
        """
        levels = sorted({float(q) for q in _check_levels(self.quantiles)})
        if self.level_floor < 0:
            raise ValueError(f"level_floor(={self.level_floor}) must be >= 0")
        if not 0 <= self.calibration_fraction < 1:
            raise ValueError(f"calibration_fraction(={self.calibration_fraction}) not in [0, 1)")
        frame = self._check_frame(X, reset=True)
        target = _check_target(y, len(frame))
        mean_target = float(np.mean(np.abs(target))) if target.size else 0.0
        self.floor_ = max(self.level_floor * mean_target, 1e-12)
        self.scaled_columns_ = [c for c in frame.columns if c not in CALENDAR_COLUMNS]
        self.used_columns_ = _columns_with_data(frame)
        design, level = self._design(frame)
        z = np.log((np.maximum(target, 0.0) + self.floor_) / level)
        n_fit = len(frame) - int(self.calibration_fraction * len(frame))
        self.models_, self.offsets_ = {}, {}
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            for q in levels:
                self.offsets_[q] = 0.0
                if q != 0.5 and n_fit < len(frame):
                    first = _zero_empty_columns(design[:n_fit])
                    held_out = self._booster(q).fit(first, z[:n_fit])
                    scores = z[n_fit:] - held_out.predict(design[n_fit:])
                    self.offsets_[q] = float(np.quantile(scores, q))
                self.models_[q] = self._booster(q).fit(design, z)
        self.compiled_ = CompiledTrees.from_boosters([self.models_[q] for q in levels])
        self.scaled_mask_ = np.isin(np.asarray(frame.columns, dtype=object), self.scaled_columns_)
        self.level_index_ = int(list(frame.columns).index(LEVEL_COLUMN))
        return self

    def predict_quantiles_row(self, row: np.ndarray, quantiles: Quantiles) -> np.ndarray:
        """One row through the compiled trees (no pandas, no thread pool): the levels
        must be exactly the fitted ones, ascending; other requests take the frame path."""
        check_is_fitted(self)
        levels = tuple(float(q) for q in quantiles)
        if levels != tuple(sorted(self.models_)):
            return super().predict_quantiles_row(row, quantiles)
        x = np.asarray(row, dtype=np.float64)
        if x.shape != (self.n_features_in_,):
            raise ValueError(f"row must have {self.n_features_in_} features, not {x.shape}")
        level = max(float(np.nan_to_num(x[self.level_index_], nan=0.0)), 0.0) + self.floor_
        design = x.copy()
        design[self.scaled_mask_] /= level
        z = self.compiled_.predict_one(design[self.used_columns_])
        z = z + np.asarray([self.offsets_[q] for q in levels])
        out: np.ndarray = np.maximum(np.maximum.accumulate(np.exp(z) * level - self.floor_), 0.0)
        return out

    def _booster(self, q: float) -> HistGradientBoostingRegressor:
        """An unfitted pinball-loss booster for level ``q``."""
        return HistGradientBoostingRegressor(
            loss="quantile",
            quantile=q,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        )

    def _required_columns(self) -> tuple[str, ...]:
        return (LEVEL_COLUMN,)

    def _design(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The level-relative design matrix and the level ``L`` per row."""
        level = np.nan_to_num(X[LEVEL_COLUMN].to_numpy(dtype=np.float64), nan=0.0)
        level = np.maximum(level, 0.0) + self.floor_
        design = X.to_numpy(dtype=np.float64, copy=True)
        scaled = np.isin(np.asarray(X.columns, dtype=object), self.scaled_columns_)
        design[:, scaled] /= level[:, None]
        return design[:, self.used_columns_], level

    def _quantiles(self, X: pd.DataFrame, levels: tuple[float, ...]) -> np.ndarray:
        unknown = [q for q in levels if q not in self.models_]
        if unknown:
            raise ValueError(
                f"quantiles {unknown} were not fitted (fitted: {sorted(self.models_)})"
            )
        design, level = self._design(X)
        columns = []
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            for q in levels:
                z = self.models_[q].predict(design) + self.offsets_[q]
                columns.append(np.exp(z) * level - self.floor_)
        return np.column_stack(columns) if columns else np.empty((len(X), 0))


def _check_levels(quantiles: Quantiles) -> np.ndarray:
    """The levels as ``float64``; each must lie in ``(0, 1)``."""
    levels = np.asarray(list(quantiles), dtype=np.float64)
    if levels.ndim != 1 or not np.all((levels > 0) & (levels < 1)):
        raise ValueError(f"quantiles(={list(quantiles)}) must be levels in (0, 1)")
    return levels


def _columns_with_data(X: pd.DataFrame) -> np.ndarray:
    """``bool`` mask of the columns of ``X`` with at least one non-``NaN`` value."""
    return np.asarray(X.notna().any(axis=0).to_numpy(), dtype=bool)


def _zero_empty_columns(design: np.ndarray) -> np.ndarray:
    """``design`` with its all-``NaN`` columns set to 0 (a booster cannot bin them)."""
    empty = np.isnan(design).all(axis=0)
    if not empty.any():
        return design
    out = design.copy()
    out[:, empty] = 0.0
    return out


def _check_target(y: np.ndarray, n_rows: int) -> np.ndarray:
    """``y`` as finite ``float64`` of length ``n_rows``."""
    target = np.asarray(y, dtype=np.float64).reshape(-1)
    if target.size != n_rows:
        raise ValueError(f"y has {target.size} values but X has {n_rows} rows")
    if not np.all(np.isfinite(target)):
        raise ValueError("y must be finite")
    return target


def _add_residual_quantiles(
    point: np.ndarray, residuals: np.ndarray, levels: tuple[float, ...]
) -> np.ndarray:
    """``point`` (the median) plus the empirical residual quantile at each other level.

    Offsets are clipped to ``>= 0`` above the median and ``<= 0`` below it.
    """
    columns = []
    for q in levels:
        offset = float(np.quantile(residuals, q)) if residuals.size and q != 0.5 else 0.0
        offset = max(offset, 0.0) if q > 0.5 else min(offset, 0.0)
        columns.append(point + offset)
    return np.column_stack(columns) if columns else np.empty((point.size, 0))
