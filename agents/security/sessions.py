"""Log-session anomaly detection by next-key prediction (DeepLog-style, classical).

A session is a sequence of log-key ids (e.g. one HDFS block's log lines parsed into
templates). :class:`NextKeyModel` learns, from normal sessions only, which keys follow
each context of up to ``history`` previous keys (n-gram counts with back-off to
shorter contexts seen at least ``min_count`` times). A session is anomalous when any
of its keys is not among the ``top_k`` most frequent successors of its context — the
DeepLog decision rule (Du et al., CCS 2017: h = 10, g = 9) with counts in place of an
LSTM. A start marker pads the first context and an end marker closes the session, so
truncated sessions are caught too. Scikit-learn contract: keyword-only
hyper-parameters, ``fit`` returns ``self``, fitted attributes end in ``_``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

Session = Sequence[int]
START = -1
END = -2


class NextKeyModel(BaseEstimator):  # type: ignore[misc]
    """Next-key n-gram model; ``predict`` returns 1 for an anomalous session.

    Parameters
    ----------
    history
        Longest context (number of previous keys), DeepLog's ``h``.
    top_k
        Successors accepted per context, DeepLog's ``g``.
    min_count
        Occurrences a context needs before it is trusted (else back off).
    """

    def __init__(self, *, history: int = 10, top_k: int = 9, min_count: int = 1) -> None:
        self.history = history
        self.top_k = top_k
        self.min_count = min_count

    def fit(self, X: Sequence[Session], y: object = None) -> NextKeyModel:
        """Learn successor counts from normal sessions ``X``."""
        counts: dict[tuple[int, ...], Counter[int]] = {}
        for session in X:
            seq = [START] * self.history + [int(k) for k in session] + [END]
            for i in range(self.history, len(seq)):
                for n in range(0, self.history + 1):
                    ctx = tuple(seq[i - n : i])
                    counts.setdefault(ctx, Counter())[seq[i]] += 1
        self.allowed_ = {
            ctx: frozenset(k for k, _ in c.most_common(self.top_k))
            for ctx, c in counts.items()
            if sum(c.values()) >= self.min_count or len(ctx) == 0
        }
        self.n_sessions_ = len(X)
        return self

    def surprises(self, session: Session) -> int:
        """How many keys of ``session`` fall outside their context's top-k."""
        check_is_fitted(self, "allowed_")
        seq = [START] * self.history + [int(k) for k in session] + [END]
        misses = 0
        for i in range(self.history, len(seq)):
            allowed = None
            for n in range(self.history, -1, -1):
                allowed = self.allowed_.get(tuple(seq[i - n : i]))
                if allowed is not None:
                    break
            if allowed is None or seq[i] not in allowed:
                misses += 1
        return misses

    def decision_function(self, X: Sequence[Session]) -> np.ndarray:
        """Surprising keys per session (``float64``; > 0 means anomalous)."""
        return np.asarray([self.surprises(s) for s in X], dtype=np.float64)

    def predict(self, X: Sequence[Session]) -> np.ndarray:
        """1 for anomalous sessions, 0 for normal ones."""
        return (self.decision_function(X) > 0).astype(np.int64)


def parse_sessions(lines: Sequence[str]) -> tuple[list[list[int]], list[tuple[int, str]]]:
    """Sessions from text lines (space-separated non-negative integer keys) and the
    malformed lines as (line number, problem). Blank lines are skipped."""
    sessions: list[list[int]] = []
    bad: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            keys = [int(p) for p in parts]
        except ValueError:
            bad.append((number, f"line {number}: not integer log keys"))
            continue
        if min(keys) < 0:
            bad.append((number, f"line {number}: negative log key"))
            continue
        sessions.append(keys)
    return sessions, bad
