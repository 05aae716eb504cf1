"""A fitted histogram-gradient-boosting regressor as flat arrays, for fast small batches.

scikit-learn predicts one tree at a time through Cython and OpenMP: right for large
batches, but one row through 300 trees costs milliseconds, mostly per-tree overhead.
In the control loop a forecast is one row, so the trees are flattened into arrays and
walked level by level for every tree at once with numpy. The decision rule is
scikit-learn's (``x <= num_threshold`` goes left, ``NaN`` follows
``missing_go_to_left``); a test holds the outputs equal to ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor


@dataclass(frozen=True, slots=True)
class CompiledTrees:
    """The trees of one or more single-output boosters, concatenated.

    Attributes
    ----------
    roots
        ``int64`` index of each tree's root node (boosters one after the other).
    starts
        ``int64`` index into ``roots`` of each booster's first tree.
    feature, threshold, missing_left, left, right, value
        Per node: split feature, numeric threshold, where ``NaN`` goes, children
        (global indices; a leaf points to itself) and leaf value.
    depth
        The deepest leaf's depth: the number of steps every row takes.
    baselines
        Each booster's baseline prediction (added to the sum of its leaves).
    """

    roots: np.ndarray
    starts: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    depth: int
    baselines: np.ndarray

    @classmethod
    def from_boosters(cls, boosters: list[HistGradientBoostingRegressor]) -> CompiledTrees:
        """Flatten fitted single-output, numeric-feature boosters (same features)."""
        nodes: list[np.ndarray] = []
        starts: list[int] = []
        for booster in boosters:
            if booster.n_trees_per_iteration_ != 1:
                raise ValueError("only single-output boosters can be compiled")
            starts.append(len(nodes))
            nodes.extend(iteration[0].nodes for iteration in booster._predictors)
        if any(n["is_categorical"].any() for n in nodes):
            raise ValueError("categorical splits are not supported")
        sizes = [n.size for n in nodes]
        offsets = np.cumsum([0, *sizes[:-1]]).astype(np.int64)
        allnodes = np.concatenate(nodes)
        shift = np.repeat(offsets, sizes)
        leaf = allnodes["is_leaf"].astype(bool)
        own = np.arange(allnodes.size)
        return cls(
            roots=offsets,
            starts=np.asarray(starts, dtype=np.int64),
            feature=np.where(leaf, 0, allnodes["feature_idx"]).astype(np.int64),
            threshold=allnodes["num_threshold"].astype(np.float64),
            missing_left=allnodes["missing_go_to_left"].astype(bool),
            left=np.where(leaf, own, allnodes["left"].astype(np.int64) + shift),
            right=np.where(leaf, own, allnodes["right"].astype(np.int64) + shift),
            value=allnodes["value"].astype(np.float64),
            depth=int(allnodes["depth"].max()) if allnodes.size else 0,
            baselines=np.asarray(
                [float(np.ravel(b._baseline_prediction)[0]) for b in boosters], dtype=np.float64
            ),
        )

    def predict_one(self, x: np.ndarray) -> np.ndarray:
        """Every booster's raw prediction for one row ``x`` (``float64``, ``(n_features,)``).

        Returns ``(n_boosters,)``.
        """
        nodes = self.roots
        for _ in range(self.depth):
            value = x[self.feature[nodes]]
            go_left = np.where(
                np.isnan(value), self.missing_left[nodes], value <= self.threshold[nodes]
            )
            nodes = np.where(go_left, self.left[nodes], self.right[nodes])
        sums: np.ndarray = np.add.reduceat(self.value[nodes], self.starts) + self.baselines
        return sums
