"""Load forecasters following the scikit-learn estimator contract.

Every forecaster takes the feature frame of :func:`agents.forecasting.features.make_features`
(one row per forecast origin) and the targets ``y(t + H)`` in the series' unit. Hyper-
parameters are keyword-only and stored verbatim by ``__init__``; :meth:`fit` learns
everything (attributes ending in ``_``) and returns ``self``; :meth:`predict` returns
the median forecast and :meth:`Forecaster.predict_quantiles` an ``(n, len(quantiles))``
array of quantile forecasts, non-decreasing along the quantile axis and ``>= 0`` (a load
is never negative).

Inputs are validated as scikit-learn's own estimators validate them (``validate_data``):
any 2-D numeric array-like is accepted, ``NaN`` cells are allowed (history before the
series' start), infinities, complex numbers and sparse matrices are refused with
scikit-learn's messages. A model that reads a column by its role (the recent level, the
seasonal value) names it in a hyper-parameter, by name (the default: the columns of
``make_features``, so ``X`` must be a frame with those names) or by position (so ``X``
may be any array); the whole scikit-learn estimator check suite runs on the positional
form (``tests/agents/test_forecaster_checks.py``).

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
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from agents.forecasting.compiled import CompiledTrees
from agents.forecasting.features import CALENDAR_COLUMNS, LEVEL_COLUMN, SEASONAL_COLUMNS

Quantiles = Sequence[float]
DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9)
Column = str | int
"""A column of ``X``: its name (``X`` must then be a frame with string column names) or
its position (any ``X``)."""


class Forecaster(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Base class: a median forecast plus quantile forecasts of ``y(t + H)``.

    Subclasses implement :meth:`fit` (starting with :meth:`_validate_fit`) and
    :meth:`_quantiles`. The prediction methods require the number of columns seen by
    ``fit``, and, if ``fit`` saw column names, the same names in the same order.
    """

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # Feature cells whose history lies before the series' start are NaN.
        tags.input_tags.allow_nan = True
        # Forecasts are loads, clipped at 0: a negative target has no meaning.
        tags.target_tags.positive_only = True
        return tags

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The median forecast.

        Parameters
        ----------
        X
            Features, one row per origin: a frame from ``make_features`` or any 2-D
            numeric array-like with the columns seen in ``fit``.

        Returns
        -------
        numpy.ndarray
            ``float64`` ``(n,)``, in the series' unit.
        """
        return self.predict_quantiles(X, quantiles=(0.5,))[:, 0]

    def predict_quantiles(self, X: ArrayLike, quantiles: Quantiles = (0.5, 0.9)) -> np.ndarray:
        """Quantile forecasts.

        Parameters
        ----------
        X
            Features, one row per origin (as in :meth:`predict`).
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
            A level outside ``(0, 1)`` or one the model cannot give, infinite cells, or
            columns that differ from those seen in ``fit``.
        """
        check_is_fitted(self)
        levels = _check_levels(quantiles)
        design = validate_data(
            self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan"
        )
        order = np.argsort(levels, kind="stable")
        raw = self._quantiles(design, tuple(float(q) for q in levels[order]))
        ordered = np.maximum(np.maximum.accumulate(raw, axis=1), 0.0)
        out = np.empty_like(ordered)
        out[:, order] = ordered
        return out

    def predict_quantiles_row(self, row: np.ndarray, quantiles: Quantiles) -> np.ndarray:
        """:meth:`predict_quantiles` for one feature row (columns as seen in ``fit``).

        Returns ``float64`` ``(len(quantiles),)``. Subclasses may answer faster.
        """
        check_is_fitted(self)
        values = np.asarray(row, dtype=np.float64).reshape(1, -1)
        names = getattr(self, "feature_names_in_", None)
        X = values if names is None else pd.DataFrame(values, columns=list(names))
        out: np.ndarray = self.predict_quantiles(X, quantiles=quantiles)[0]
        return out

    def _quantiles(self, X: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
        """Quantile forecasts for ascending ``levels`` from validated ``float64`` features."""
        raise NotImplementedError

    def _validate_fit(self, X: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``X`` as ``float64`` (``NaN`` allowed) and ``y`` as finite ``float64`` ``(n,)``.

        Records ``n_features_in_`` and, when ``X`` has string column names,
        ``feature_names_in_``.
        """
        design, target = validate_data(
            self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True
        )
        return design, np.asarray(target, dtype=np.float64)

    def _column_index(self, column: Column, parameter: str) -> int:
        """The position in the ``X`` seen by ``fit`` of ``column`` (hyper-parameter
        ``parameter``), a name or a position."""
        if isinstance(column, str):
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                raise ValueError(
                    f"{parameter} names the column {column!r}, so X must be a DataFrame with "
                    "string column names (give a position to read arrays)"
                )
            hits = np.flatnonzero(names == column)
            if hits.size == 0:
                raise ValueError(f"X lacks the column {column!r} ({parameter})")
            return int(hits[0])
        if isinstance(column, int | np.integer) and not isinstance(column, bool):
            n = self.n_features_in_
            if not -n <= column < n:
                raise ValueError(
                    f"{parameter}: position {column} is not a column of X, which has {n} feature(s)"
                )
            return int(column) % n
        raise ValueError(f"{parameter}: {column!r} must be a column name (str) or position (int)")


SEASONAL_FALLBACK: dict[str, tuple[str, ...]] = {
    "1d": (SEASONAL_COLUMNS["1d"],),
    "1w": (SEASONAL_COLUMNS["1w"], SEASONAL_COLUMNS["1d"]),
}
"""The columns each season of :class:`SeasonalNaiveForecaster` reads, most preferred first."""


class SeasonalNaiveForecaster(Forecaster):
    """The target's value one season earlier.

    Parameters
    ----------
    season
        ``"1d"`` (column ``target_1d``) or ``"1w"`` (``target_1w``, falling back to
        ``target_1d`` where it is ``NaN``).
    columns
        Where the seasonal value is read, most preferred first: a row takes the first of
        these columns that is not ``NaN``. ``None`` (the default): the season's columns
        above. Positions let the model read arrays without column names.

    Attributes
    ----------
    residuals_
        ``float64`` training residuals ``y - seasonal value`` (series' unit), sorted.
    column_indices_
        The positions of ``columns`` in ``X``.
    n_features_in_, feature_names_in_
        As in scikit-learn.

    Notes
    -----
    The seasonal value is the median forecast. A level ``q != 0.5`` adds the empirical
    ``q``-quantile of ``residuals_``, clipped to ``>= 0`` above the median and ``<= 0``
    below it.
    """

    def __init__(
        self, *, season: Literal["1d", "1w"] = "1d", columns: tuple[Column, ...] | None = None
    ) -> None:
        self.season = season
        self.columns = columns

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # It learns nothing but residual quantiles: its median is an input column.
        tags.regressor_tags.poor_score = True
        return tags

    def fit(self, X: ArrayLike, y: ArrayLike) -> SeasonalNaiveForecaster:
        """Record the training residuals.

        Parameters
        ----------
        X
            Features with ``columns`` (by default the season's: ``target_1d``, and
            ``target_1w`` for ``"1w"``).
        y
            Targets ``y(t + H)``, series' unit.

        Returns
        -------
        SeasonalNaiveForecaster
            ``self``.
        """
        if self.season not in SEASONAL_COLUMNS:
            raise ValueError(f"season(={self.season!r}) must be one of {sorted(SEASONAL_COLUMNS)}")
        columns = self.columns if self.columns is not None else SEASONAL_FALLBACK[self.season]
        if len(columns) == 0:
            raise ValueError("columns must name at least one column")
        design, target = self._validate_fit(X, y)
        self.column_indices_ = [self._column_index(c, "columns") for c in columns]
        residuals = target - self._point(design)
        self.residuals_ = np.sort(residuals[np.isfinite(residuals)])
        return self

    def _point(self, X: np.ndarray) -> np.ndarray:
        first, *fallbacks = self.column_indices_
        point: np.ndarray = X[:, first]
        for index in fallbacks:
            point = np.where(np.isnan(point), X[:, index], point)
        return point

    def _quantiles(self, X: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
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

    def fit(self, X: ArrayLike, y: ArrayLike) -> RandomForestForecaster:
        """Fit the forest and record its out-of-bag residuals.

        Parameters
        ----------
        X
            Features (``NaN`` cells allowed), any columns.
        y
            Targets ``y(t + H)``, series' unit.

        Returns
        -------
        RandomForestForecaster
            ``self``.
        """
        design, target = self._validate_fit(X, y)
        forest = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_split=self.min_samples_split,
            min_samples_leaf=self.min_samples_leaf,
            oob_score=True,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        self.used_columns_ = _columns_with_data(design)
        forest.fit(design[:, self.used_columns_], target)
        residuals = target - np.asarray(forest.oob_prediction_, dtype=np.float64)
        self.forest_ = forest
        self.residuals_ = np.sort(residuals[np.isfinite(residuals)])
        return self

    def _quantiles(self, X: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
        point = np.asarray(self.forest_.predict(X[:, self.used_columns_]), dtype=np.float64)
        return _add_residual_quantiles(point, self.residuals_, levels)


class QuantileGBMForecaster(Forecaster):
    """Histogram gradient boosting with the pinball loss, one model per quantile.

    The model works relative to the recent level ``L = mean_1h + c`` (the mean of the
    last hour, plus a floor ``c``): every feature in the series' unit (all but the
    calendar columns) is divided by ``L`` and the target is ``log((y + c) / L)``.
    Quantiles survive both monotone maps, so each model's output maps back to a quantile
    of ``y``. Working in ratios lets trees, which cannot extrapolate, follow a level
    never seen in training (e.g. the World Cup's growth), and shares the daily shape
    across levels.

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
    level_column
        The column holding the recent level (series' unit; ``NaN`` counts as 0).
    unscaled_columns
        The columns not in the series' unit, left undivided (the calendar ones).

    Attributes
    ----------
    models_
        ``{level: fitted HistGradientBoostingRegressor}`` (on log-ratios).
    offsets_
        ``{level: calibration offset}`` added to that booster's log-ratio output.
    n_iter_
        ``int`` boosting iterations of each level's final booster, levels ascending.
    floor_
        ``c`` in the series' unit.
    level_index_
        The position of ``level_column``.
    scaled_mask_
        ``bool`` mask of the columns divided by the level (all but ``unscaled_columns``).
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
        level_column: Column = LEVEL_COLUMN,
        unscaled_columns: tuple[Column, ...] = CALENDAR_COLUMNS,
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
        self.level_column = level_column
        self.unscaled_columns = unscaled_columns

    def fit(self, X: ArrayLike, y: ArrayLike) -> QuantileGBMForecaster:
        """Fit (and calibrate) one booster per level of ``quantiles``.

        Parameters
        ----------
        X
            Features with ``level_column`` and ``unscaled_columns`` (``NaN`` cells
            allowed), rows in time order.
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
        features, target = self._validate_fit(X, y)
        self.level_index_ = self._column_index(self.level_column, "level_column")
        self.scaled_mask_ = np.ones(self.n_features_in_, dtype=bool)
        for column in self.unscaled_columns:
            self.scaled_mask_[self._column_index(column, "unscaled_columns")] = False
        mean_target = float(np.mean(np.abs(target)))
        self.floor_ = max(self.level_floor * mean_target, 1e-12)
        self.used_columns_ = _columns_with_data(features)
        design, level = self._design(features)
        z = np.log((np.maximum(target, 0.0) + self.floor_) / level)
        n_rows = len(features)
        n_fit = n_rows - int(self.calibration_fraction * n_rows)
        self.models_, self.offsets_ = {}, {}
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            for q in levels:
                self.offsets_[q] = 0.0
                if q != 0.5 and n_fit < n_rows:
                    first = _zero_empty_columns(design[:n_fit])
                    held_out = self._booster(q).fit(first, z[:n_fit])
                    scores = z[n_fit:] - held_out.predict(design[n_fit:])
                    self.offsets_[q] = float(np.quantile(scores, q))
                self.models_[q] = self._booster(q).fit(design, z)
        self.n_iter_ = np.asarray([self.models_[q].n_iter_ for q in levels], dtype=np.int64)
        self.compiled_ = CompiledTrees.from_boosters([self.models_[q] for q in levels])
        return self

    def predict_quantiles_row(self, row: np.ndarray, quantiles: Quantiles) -> np.ndarray:
        """One row through the compiled trees (no pandas, no thread pool): the levels
        must be exactly the fitted ones, ascending; other requests take the general path."""
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

    def _design(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The level-relative design matrix and the level ``L`` per row."""
        level = np.nan_to_num(X[:, self.level_index_], nan=0.0)
        level = np.maximum(level, 0.0) + self.floor_
        design = X.copy()
        design[:, self.scaled_mask_] /= level[:, None]
        return design[:, self.used_columns_], level

    def _quantiles(self, X: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
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


def _columns_with_data(X: np.ndarray) -> np.ndarray:
    """``bool`` mask of the columns of ``X`` with at least one non-``NaN`` value."""
    return np.asarray(~np.isnan(X).all(axis=0), dtype=bool)


def _zero_empty_columns(design: np.ndarray) -> np.ndarray:
    """``design`` with its all-``NaN`` columns set to 0 (a booster cannot bin them)."""
    empty = np.isnan(design).all(axis=0)
    if not empty.any():
        return design
    out = design.copy()
    out[:, empty] = 0.0
    return out


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
