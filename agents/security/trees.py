"""Batch prediction of fitted binary :class:`HistGradientBoostingClassifier` models,
exactly as ``predict_proba(X)[:, 1]`` computes it, but faster on large batches.

The columns are first coded once for all the models: per feature, the sorted distinct
thresholds the models' splits use (the *cuts*), and a value's code is how many cuts lie
below it (``np.searchsorted(cuts, x, side="left")``). A split ``x <= cuts[r]`` is then
exactly ``code(x) <= r + 0.5`` for any non-missing ``x``. Each tree is copied into a
:class:`sklearn.tree._tree.Tree` with those thresholds (its leaves keep their values) and
walked with ``Tree.apply`` over the ``float32`` codes (small integers: exact), which
releases the GIL and is leaner than the booster's own walk; the leaf values are added in
the library's order to the same baseline and passed through the same link: the same
probabilities (a test holds them equal). Rows with NaN in a used column take
``predict_proba``. Large batches are walked in an order that groups alike rows (for the
branch predictor) and the results put back in the rows' own order.

:func:`predict_many` predicts several models, in parallel threads when more than one
core is available.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

try:  # the library's tree class (private module): without it, predict_proba is used
    from sklearn.tree._tree import NODE_DTYPE, Tree
except ImportError:  # pragma: no cover - depends on the scikit-learn version
    NODE_DTYPE, Tree = None, None

#: Rows below which threads are not worth starting.
PARALLEL_MIN_ROWS = 4096
#: Rows below which ordering them for the branch predictor is not worth it.
SORT_MIN_ROWS = 2048
_LEAF, _UNDEFINED = -1, -2  # sklearn.tree's markers of a leaf's children and feature


def _tree(nodes: np.ndarray, rank: dict[int, dict[float, int]], column: dict[int, int]) -> Any:
    """A booster tree (``PREDICTOR_RECORD_DTYPE`` nodes) as a ``Tree`` over the codes."""
    m = len(nodes)
    leaf = nodes["is_leaf"].astype(bool)
    out = np.zeros(m, dtype=NODE_DTYPE)
    out["left_child"] = np.where(leaf, _LEAF, nodes["left"].astype(np.int64))
    out["right_child"] = np.where(leaf, _LEAF, nodes["right"].astype(np.int64))
    features = nodes["feature_idx"].tolist()
    thresholds = nodes["num_threshold"].tolist()
    out["feature"] = [
        _UNDEFINED if is_leaf else column[f]
        for is_leaf, f in zip(leaf.tolist(), features, strict=True)
    ]
    out["threshold"] = [
        float(_UNDEFINED) if is_leaf else rank[f][t] + 0.5
        for is_leaf, f, t in zip(leaf.tolist(), features, thresholds, strict=True)
    ]
    out["n_node_samples"] = 1
    out["weighted_n_node_samples"] = 1.0
    tree = Tree(len(column), np.ones(1, dtype=np.intp), 1)
    tree.__setstate__(
        {
            "max_depth": int(nodes["depth"].max()),
            "node_count": m,
            "nodes": out,
            "values": nodes["value"].astype(np.float64).reshape(m, 1, 1),
        }
    )
    return tree


class CodedForest:
    """Fitted binary, numeric-feature classifiers over the same columns, their trees
    re-coded to shared per-feature cuts.

    Raises
    ------
    ValueError
        If a model has several trees per iteration, categorical features or another
        number of columns.
    """

    def __init__(self, models: Sequence[HistGradientBoostingClassifier]) -> None:
        if Tree is None or not models:
            raise ValueError("nothing to compile")
        width = int(models[0].n_features_in_)
        used: dict[int, set[float]] = {}
        for model in models:
            if model.n_trees_per_iteration_ != 1:
                raise ValueError("only binary classifiers are supported")
            categorical = getattr(model, "is_categorical_", None)
            if categorical is not None and np.asarray(categorical).any():
                raise ValueError("categorical features are not supported")
            if int(model.n_features_in_) != width:
                raise ValueError("the models read different columns")
            for (predictor,) in model._predictors:
                nodes = predictor.nodes
                inner = ~nodes["is_leaf"].astype(bool)
                if nodes["is_categorical"][inner].any():
                    raise ValueError("categorical splits are not supported")
                for f, t in zip(
                    nodes["feature_idx"][inner].tolist(),
                    nodes["num_threshold"][inner].tolist(),
                    strict=True,
                ):
                    used.setdefault(f, set()).add(t)
        self.models = tuple(models)
        self.predictors = tuple(m._predictors for m in models)  # to notice a refit
        self.width = width
        self.features = sorted(used)  # the columns coded (code column k: features[k])
        self.cuts = [np.asarray(sorted(used[f]), dtype=np.float64) for f in self.features]
        rank = {f: {t: r for r, t in enumerate(sorted(used[f]))} for f in self.features}
        column = {f: k for k, f in enumerate(self.features)}
        self.trees = [
            [(_tree(p.nodes, rank, column), p.nodes["value"].astype(np.float64))
             for (p,) in model._predictors]
            for model in models
        ]  # fmt: skip

    def row_order(self, columns: Sequence[np.ndarray]) -> np.ndarray:
        """An order of the rows that groups equal values of the (up to 62) one-cut
        features (mostly the one-hot event facts): walked in this order, neighbouring
        rows take the same branches more often, which the CPU predicts (~10% faster).
        Any order gives the same values."""
        n = len(columns[0]) if columns else 0
        key = np.zeros(n, dtype=np.int64)
        ones = [(f, c[0]) for f, c in zip(self.features, self.cuts, strict=True) if len(c) == 1]
        for bit, (f, cut) in enumerate(ones[:62]):
            key |= (columns[f] > cut).astype(np.int64) << bit
        return np.argsort(key, kind="stable")

    def codes(
        self, columns: Sequence[np.ndarray], order: np.ndarray | None = None
    ) -> np.ndarray | None:
        """The codes of the rows (taken in ``order`` if given; ``float32``, column-major,
        one column per coded feature), None if a coded column has NaN."""
        n = len(columns[0]) if columns else 0
        coded = np.empty((n, len(self.features)), dtype=np.float32, order="F")
        for k, (f, cuts) in enumerate(zip(self.features, self.cuts, strict=True)):
            x = columns[f] if order is None else columns[f][order]
            if np.isnan(x).any():
                return None
            if len(cuts) == 1:  # (0/1 features) whether x is above the cut, directly
                np.greater(x, cuts[0], out=coded[:, k], casting="unsafe")
            else:
                coded[:, k] = np.searchsorted(cuts, x, side="left")
        return coded

    def proba(self, i: int, coded: np.ndarray) -> np.ndarray:
        """``P(class 1)`` of model ``i`` for coded rows."""
        model = self.models[i]
        # as BaseHistGradientBoosting._raw_predict: the baseline, then each tree in turn
        raw = np.zeros((coded.shape[0], 1), dtype=model._baseline_prediction.dtype, order="F")
        raw += model._baseline_prediction
        total = raw[:, 0]
        for tree, values in self.trees[i]:
            total += values[tree.apply(coded)]
        return np.asarray(model._loss.predict_proba(raw)[:, 1])


_FORESTS: weakref.WeakKeyDictionary[HistGradientBoostingClassifier, CodedForest] = (
    weakref.WeakKeyDictionary()
)


def forest(models: Sequence[HistGradientBoostingClassifier]) -> CodedForest | None:
    """The (cached) :class:`CodedForest` of ``models``, None if they are not supported."""
    if not models or not all(isinstance(m, HistGradientBoostingClassifier) for m in models):
        return None
    found = _FORESTS.get(models[0])
    if (
        found is not None
        and len(found.models) == len(models)
        and all(a is b for a, b in zip(found.models, models, strict=True))
        and all(p is m._predictors for p, m in zip(found.predictors, models, strict=True))
    ):
        return found
    try:
        found = CodedForest(models)
    except (ValueError, AttributeError, KeyError, TypeError):
        return None
    _FORESTS[models[0]] = found
    return found


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _library(
    models: Sequence[HistGradientBoostingClassifier], columns: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """``predict_proba`` on one OpenMP thread (faster on a loaded 2-core machine)."""
    from threadpoolctl import threadpool_limits

    X = np.column_stack(list(columns))
    with threadpool_limits(limits=1):
        return [np.asarray(m.predict_proba(X)[:, 1]) for m in models]


def predict_many(
    models: Sequence[HistGradientBoostingClassifier], X: np.ndarray | Sequence[np.ndarray]
) -> list[np.ndarray]:
    """``P(class 1)`` of each binary model for the rows of ``X`` (a matrix or its
    columns, e.g. views), equal to ``model.predict_proba(X)[:, 1]``; the models run in
    parallel threads when the batch is large and more than one core is available."""
    columns = _columns(X)
    compiled = forest(models)
    if compiled is None or len(columns) != compiled.width:
        return _library(models, columns)
    n = len(columns[0]) if columns else 0
    order = compiled.row_order(columns) if n >= SORT_MIN_ROWS else None
    coded = compiled.codes(columns, order)
    if coded is None:
        return _library(models, columns)
    k = len(models)
    if k < 2 or n < PARALLEL_MIN_ROWS or _cores() < 2:
        return [_unsort(compiled.proba(i, coded), order) for i in range(k)]
    results: list[np.ndarray | None] = [None] * k
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = compiled.proba(i, coded)
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, k)]
    for th in threads:
        th.start()
    run(0)
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return [_unsort(r, order) for r in results if r is not None]


def _unsort(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """Values computed for the rows taken in ``order``, back in the rows' own order."""
    if order is None:
        return values
    out = np.empty_like(values)
    out[order] = values
    return out


def _columns(X: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError("X must be 2-d")
        columns = [X[:, j] for j in range(X.shape[1])]
    else:
        columns = list(X)
    if len({len(c) for c in columns}) > 1:
        raise ValueError("the columns of X differ in length")
    return [np.asarray(c, dtype=np.float64) for c in columns]
