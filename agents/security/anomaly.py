"""A histogram-based outlier score (HBOS) over behaviour features.

Each feature gets a histogram of the benign training events (quantile bins); an event's
score is the sum over features of ``-log`` of its bin's probability (with a floor for
values never seen), so a higher score means rarer behaviour. Per-feature terms are kept
so the analyser can say *which* behaviour was rare. Vectorised numpy; no downloaded
weights; fitted attributes end in ``_`` (scikit-learn contract).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted


class HistogramOutlierScorer(BaseEstimator):  # type: ignore[misc]
    """HBOS (Goldstein & Dengel 2012) with quantile bins.

    Parameters
    ----------
    n_bins
        Bins per feature (at most; ties merge quantiles).
    floor
        Probability given to a bin no training value fell in.
    """

    def __init__(self, *, n_bins: int = 12, floor: float = 1e-4) -> None:
        self.n_bins = n_bins
        self.floor = floor

    def fit(self, X: np.ndarray, y: object = None) -> HistogramOutlierScorer:
        """Learn one histogram per column of ``X`` (benign events)."""
        X = np.asarray(X, dtype=np.float64)
        self.n_features_in_ = X.shape[1]
        edges: list[np.ndarray] = []
        logp: list[np.ndarray] = []
        qs = np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]
        for j in range(X.shape[1]):
            col = X[:, j]
            cuts = np.unique(np.quantile(col, qs)) if len(col) else np.zeros(0)
            # a value equal to a cut belongs to the bin it opens (right=False in digitize)
            bins = np.digitize(col, cuts)
            counts = np.bincount(bins, minlength=len(cuts) + 1).astype(np.float64)
            p = np.maximum(counts / max(1, len(col)), self.floor)
            edges.append(cuts)
            logp.append(-np.log(p))
        self.edges_ = edges
        self.neg_log_p_ = logp
        terms = self.terms(X)
        self.train_scores_ = terms.sum(axis=1)
        return self

    def terms(self, X: np.ndarray) -> np.ndarray:
        """Per-feature ``-log p`` terms, ``(n, n_features)``."""
        check_is_fitted(self, "edges_")
        X = np.asarray(X, dtype=np.float64)
        out = np.empty_like(X)
        for j, (cuts, nlp) in enumerate(zip(self.edges_, self.neg_log_p_, strict=True)):
            out[:, j] = nlp[np.digitize(X[:, j], cuts)]
        return out

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Outlier score per row (higher = rarer)."""
        return np.asarray(self.terms(X).sum(axis=1), dtype=np.float64)
