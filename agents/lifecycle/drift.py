"""Feature drift against a model's training reference: PSI on bins fixed from the training
quantiles, and the two-sample Kolmogorov-Smirnov test.

A :class:`DriftReference` is computed once, when a model is trained, from the feature
rows it was trained on, and kept beside the model (``drift_reference.json`` in its
artefact folder, JSON only). For each feature it holds

- ``edges``: the inner cut points of ``bins`` equal-frequency bins of the training values
  (duplicates merged, so a feature with few distinct values gets fewer bins), with an open
  bin below the first and above the last;
- ``expected``: the share of training values in each bin;
- ``sample``: ``sample_size`` evenly spaced quantiles of the training values, the
  reference sample of the KS test (deterministic: no random subsampling).

:func:`drift` compares a window of recent rows with it, per feature:
``PSI = sum((a - e) * ln(a / e))`` over the bins (shares floored at ``EPS`` so an empty bin
stays finite), and KS's statistic and p-value (``scipy.stats.ks_2samp``). A feature
drifts when its PSI exceeds ``psi_threshold`` (a small window's PSI uses coarser bins,
:func:`_bins_for`) **and** KS rejects equality at ``ks_alpha``: PSI alone flags small
windows by chance, KS alone flags tiny but consistent shifts in large ones. KS assumes
independent values, so the features judged should be per-interval ones, not rolling means
(whose consecutive values are nearly equal: a window of them is one observation, not
twelve). Missing values (NaN) are left out of both and counted.

:class:`DriftMonitor` judges a rolling window on every row and alarms when the window
drifts under its ``agreement`` rule (``all``: every feature with a verdict drifted;
``any``: one did) on ``confirm_rows`` consecutive rows. :func:`rolling_drift` computes the
same statistics for every window of a whole series at once, to replay a monitor.

How the defaults were chosen (``python -m bench.drift_cv``, which documents the rule):
leave-one-trace-out cross-validation over the four shipped real traces, on a grid of
4,410 settings (window 12-48 rows, PSI threshold 0.05-2, KS level 5e-2-1e-8, confirmation
1-10 rows, ``any``/``all``), scoring alarm episodes per day on 3-day spans watched against
the 7 days before them, and the detection within 12 rows (60 minutes) of injected level
shifts (x1.5, x0.6) and of the daily profile rotated by 12 hours. No setting detects 90% of
the injected changes within 12 rows on real traces, so the selection maximises
``detection - 0.1 x alarms per day``. On all four traces it picks a 12-row window,
``psi_threshold`` 0.75, ``ks_alpha`` 1e-8, ``agreement="all"``, ``confirm_rows`` 1 (the
defaults): both ratios (now against a day and a week ago) must sit in the training tails
for the whole hour. Held out, each fold's choice was the same kind (12 rows, ``all``, KS
1e-6-1e-8). The earlier defaults (PSI 0.2, KS 1e-4, ``any``), picked on one synthetic
seed, alarmed 0.3-7.3 times a day on the same spans.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import InputError

EPS = 1e-4
"""Floor of a bin's share in PSI (an empty bin would make ``ln(a / e)`` infinite)."""
DEFAULT_BINS = 10
DEFAULT_SAMPLE = 1_000
DEFAULT_WINDOW_ROWS = 12
DEFAULT_PSI_THRESHOLD = 0.75
DEFAULT_KS_ALPHA = 1e-8
DEFAULT_AGREEMENT = "all"
DEFAULT_CONFIRM_ROWS = 1
MIN_WINDOW_ROWS = 12
"""Fewer finite values in a window than this: no verdict for that feature."""
ROWS_PER_BIN = 5
"""A window's PSI uses at most one bin per this many values (see :func:`_bins_for`)."""
REFERENCE_FILE = "drift_reference.json"
AGREEMENTS = ("any", "all")
"""Which features must drift for the window to: any one, or all those with a verdict."""


@dataclass(frozen=True, slots=True)
class FeatureReference:
    """One feature's training distribution (see the module)."""

    name: str
    edges: tuple[float, ...]
    expected: tuple[float, ...]
    sample: tuple[float, ...]
    n_train: int


@dataclass(frozen=True, slots=True)
class DriftReference:
    """The training reference of every feature a model reads."""

    features: tuple[FeatureReference, ...]

    @classmethod
    def from_frame(
        cls, rows: pd.DataFrame, *, bins: int = DEFAULT_BINS, sample_size: int = DEFAULT_SAMPLE
    ) -> DriftReference:
        """The reference of ``rows`` (one column per feature, finite or NaN values)."""
        if bins < 2 or sample_size < 2:
            raise ValueError("bins and sample_size must be at least 2")
        out = []
        for name in rows.columns:
            values = _finite(rows[name].to_numpy(dtype=np.float64))
            if values.size == 0:
                out.append(FeatureReference(str(name), (), (1.0,), (), 0))
                continue
            inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
            edges = np.unique(inner)
            counts = np.bincount(np.searchsorted(edges, values, side="right"),
                                 minlength=edges.size + 1)  # fmt: skip
            sample = np.quantile(values, np.linspace(0, 1, min(sample_size, values.size)))
            out.append(
                FeatureReference(
                    str(name),
                    tuple(float(e) for e in edges),
                    tuple(float(c) for c in counts / values.size),
                    tuple(float(s) for s in sample),
                    int(values.size),
                )
            )
        return cls(tuple(out))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema_version": 1,
                "features": [
                    {
                        "name": f.name,
                        "edges": list(f.edges),
                        "expected": list(f.expected),
                        "sample": list(f.sample),
                        "n_train": f.n_train,
                    }
                    for f in self.features
                ],
            }
        )

    @classmethod
    def from_json(cls, text: str, *, source: str | Path) -> DriftReference:
        """Parse what :meth:`to_json` wrote; InputError naming ``source`` otherwise."""
        allowed = "a drift reference written by opsbench (retrain the model to rewrite it)"
        try:
            doc = json.loads(text)
            if doc.get("schema_version") != 1:
                raise ValueError("schema_version must be 1")
            features = tuple(_feature(item) for item in doc["features"])
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            problem = " ".join(f"not a drift reference ({type(exc).__name__}: {exc})".split())
            raise InputError(source, "", problem, allowed) from None
        return cls(features)

    def save(self, folder: Path) -> Path:
        path = folder / REFERENCE_FILE
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> DriftReference:
        path = folder / REFERENCE_FILE
        if not path.is_file():
            raise InputError(path, "", "no such file", "a model trained with its drift reference")
        return cls.from_json(path.read_text(encoding="utf-8"), source=path)


def _feature(item: Mapping[str, Any]) -> FeatureReference:
    edges = tuple(float(x) for x in item["edges"])
    expected = tuple(float(x) for x in item["expected"])
    sample = tuple(float(x) for x in item["sample"])
    if len(expected) != len(edges) + 1 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError(f"feature {item['name']!r}: edges must increase, one share per bin")
    if not all(math.isfinite(x) for x in (*edges, *expected, *sample)):
        raise ValueError(f"feature {item['name']!r}: values must be finite")
    if abs(sum(expected) - 1.0) > 1e-6:
        raise ValueError(f"feature {item['name']!r}: shares must sum to 1")
    return FeatureReference(str(item["name"]), edges, expected, sample, int(item["n_train"]))


def _bins_for(ref: FeatureReference, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's bins, merged to at most ``n // ROWS_PER_BIN`` (at least 2) for a
    window of ``n`` values: PSI over more bins than a small window can fill is large by
    chance alone (about ``(bins - 1) / n`` when nothing changed). Coarser bins are
    equal-frequency bins of the reference sample."""
    fine = np.asarray(ref.edges)
    k = max(2, min(fine.size + 1, n // ROWS_PER_BIN))
    if k >= fine.size + 1 or len(ref.sample) < 2:
        return fine, np.asarray(ref.expected)
    sample = np.asarray(ref.sample)
    edges = np.unique(np.quantile(sample, np.linspace(0, 1, k + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, sample, side="right"), minlength=edges.size + 1)
    return edges, counts / sample.size


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two share vectors over the same bins (each floored
    at :data:`EPS`)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPS)
    a = np.maximum(np.asarray(actual, dtype=np.float64), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's verdict on one window (``None``: too few finite values to judge)."""

    name: str
    n: int
    missing: int
    psi: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Every feature's verdict on one window. ``alarm``: a :class:`DriftMonitor`'s decision
    (its agreement and confirmation rules), ``None`` from :func:`drift` alone.
    ``drifted``: the names of the features that drifted, empty when ``alarm`` is False (so
    ``report.drifted`` is truthy exactly when the monitor alarms)."""

    features: tuple[FeatureDrift, ...]
    alarm: bool | None = None

    @property
    def window_drifted(self) -> tuple[str, ...]:
        """The features that drifted in this window, whatever the monitor decided."""
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def drifted(self) -> tuple[str, ...]:
        return () if self.alarm is False else self.window_drifted

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features if f.psi is not None), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "drifted": list(self.drifted),
            "max_psi": self.max_psi,
            "features": {
                f.name: {"n": f.n, "missing": f.missing, "psi": f.psi,
                         "ks_statistic": f.ks_statistic, "ks_pvalue": f.ks_pvalue,
                         "drifted": f.drifted}
                for f in self.features
            },
        }  # fmt: skip


def window_drifts(features: Sequence[FeatureDrift], agreement: str) -> bool:
    """Whether a window drifts under ``agreement`` (:data:`AGREEMENTS`): ``any`` feature
    drifted, or ``all`` the features with a verdict did (and at least one has one)."""
    judged = [f for f in features if f.psi is not None]
    if agreement == "any":
        return any(f.drifted for f in judged)
    return bool(judged) and all(f.drifted for f in judged)


def drift(
    reference: DriftReference,
    window: pd.DataFrame,
    *,
    psi_threshold: float = DEFAULT_PSI_THRESHOLD,
    ks_alpha: float = DEFAULT_KS_ALPHA,
) -> DriftReport:
    """Compare ``window`` (rows of recent features, every reference feature as a column)
    with ``reference``; see the module for the rule."""
    from scipy.stats import ks_2samp

    missing_columns = [n for n in reference.names if n not in window.columns]
    if missing_columns:
        raise ValueError(f"the window lacks features {missing_columns}")
    out = []
    for ref in reference.features:
        raw = window[ref.name].to_numpy(dtype=np.float64)
        values = _finite(raw)
        missing = int(raw.size - values.size)
        if values.size < MIN_WINDOW_ROWS or not ref.sample:
            out.append(FeatureDrift(ref.name, int(values.size), missing, None, None, None, False))
            continue
        edges, expected = _bins_for(ref, values.size)
        counts = np.bincount(np.searchsorted(edges, values, side="right"),
                             minlength=edges.size + 1)  # fmt: skip
        index = psi(expected, counts / values.size)
        test = ks_2samp(np.asarray(ref.sample), values, method="asymp")
        statistic, pvalue = float(test.statistic), float(test.pvalue)
        drifted = index > psi_threshold and pvalue < ks_alpha
        out.append(
            FeatureDrift(ref.name, int(values.size), missing, index, statistic, pvalue, drifted)
        )
    return DriftReport(tuple(out))


def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` where the denominator is positive, NaN elsewhere."""
    den = denominator.to_numpy(dtype=np.float64)
    num = numerator.to_numpy(dtype=np.float64)
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return pd.Series(out, index=numerator.index)


def load_drift_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The seasonality-free, per-interval views of the load forecaster's features that
    drift is judged on. A window shorter than a day always looks unlike a whole day of
    training rows in the raw level and calendar features (night is not noon), and rolling
    means repeat themselves from row to row; what must stay stable while the regime holds
    is the load now against the load at the same time of an earlier day:

    - ``now_vs_day_ago``: ``lag_0 / origin_1d``;
    - ``now_vs_week_ago``: ``lag_0 / origin_1w`` (NaN without a week of history).
    """
    return pd.DataFrame(
        {
            "now_vs_day_ago": ratio(rows["lag_0"], rows["origin_1d"]),
            "now_vs_week_ago": ratio(rows["lag_0"], rows["origin_1w"]),
        },
        index=rows.index,
    )


class DriftMonitor:
    """Drift over a rolling window of the last ``window_rows`` rows, judged on every row
    once the window is full (:func:`drift`). The monitor alarms when the window drifts
    under ``agreement`` (:func:`window_drifts`) on each of the last ``confirm_rows`` rows."""

    def __init__(
        self,
        reference: DriftReference,
        *,
        window_rows: int = DEFAULT_WINDOW_ROWS,
        psi_threshold: float = DEFAULT_PSI_THRESHOLD,
        ks_alpha: float = DEFAULT_KS_ALPHA,
        agreement: str = DEFAULT_AGREEMENT,
        confirm_rows: int = DEFAULT_CONFIRM_ROWS,
    ) -> None:
        if window_rows < MIN_WINDOW_ROWS:
            raise ValueError(f"window_rows must be at least {MIN_WINDOW_ROWS}")
        if agreement not in AGREEMENTS:
            raise ValueError(f"agreement must be one of {AGREEMENTS}, not {agreement!r}")
        if confirm_rows < 1:
            raise ValueError(f"confirm_rows(={confirm_rows}) must be at least 1")
        from collections import deque

        self.reference = reference
        self.window_rows = window_rows
        self.psi_threshold = psi_threshold
        self.ks_alpha = ks_alpha
        self.agreement = agreement
        self.confirm_rows = confirm_rows
        self.rows: deque[tuple[float, ...]] = deque(maxlen=window_rows)
        self.drifting_rows = 0
        """Consecutive rows, up to this one, whose window drifted."""

    def add(self, row: Mapping[str, float]) -> DriftReport | None:
        """Add one row (every reference feature by name); the report once the window is
        full (``report.drifted`` truthy when the monitor alarms), None before."""
        self.rows.append(tuple(float(row[name]) for name in self.reference.names))
        if len(self.rows) < self.window_rows:
            return None
        window = pd.DataFrame(list(self.rows), columns=list(self.reference.names))
        report = drift(
            self.reference, window, psi_threshold=self.psi_threshold, ks_alpha=self.ks_alpha
        )
        drifts = window_drifts(report.features, self.agreement)
        self.drifting_rows = self.drifting_rows + 1 if drifts else 0
        return DriftReport(report.features, alarm=self.drifting_rows >= self.confirm_rows)


@dataclass(frozen=True, slots=True)
class RollingDrift:
    """:func:`drift`'s statistics for every window of ``window_rows`` consecutive rows of a
    series at once: row ``i`` of each array is the window ending at row ``i`` (NaN where
    the window is incomplete or a feature has no verdict). Arrays are ``(features, rows)``."""

    names: tuple[str, ...]
    psi: np.ndarray
    ks_pvalue: np.ndarray

    def drifted(self, *, psi_threshold: float, ks_alpha: float) -> np.ndarray:
        """Per feature and row, :func:`drift`'s verdict (False where there is none)."""
        with np.errstate(invalid="ignore"):
            return (self.psi > psi_threshold) & (self.ks_pvalue < ks_alpha)


def rolling_drift(
    reference: DriftReference, rows: pd.DataFrame, *, window_rows: int
) -> RollingDrift:
    """:func:`drift` on ``rows.iloc[i - window_rows + 1 : i + 1]`` for every ``i``, vectorised
    (the same numbers: PSI on the same bins, KS's statistic from the same empirical CDFs
    and its asymptotic p-value). For replaying a monitor over a whole series."""
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.stats import kstwo

    n_rows = len(rows)
    psi_out = np.full((len(reference.features), n_rows), np.nan)
    p_out = np.full((len(reference.features), n_rows), np.nan)
    if n_rows < window_rows:
        return RollingDrift(reference.names, psi_out, p_out)
    for f, ref in enumerate(reference.features):
        windows = sliding_window_view(rows[ref.name].to_numpy(dtype=np.float64), window_rows)
        finite = np.isfinite(windows)
        sizes = finite.sum(axis=1)
        sample = np.asarray(ref.sample)
        for n in np.unique(sizes):
            if n < MIN_WINDOW_ROWS or sample.size == 0:
                continue
            which = np.flatnonzero(sizes == n)
            values, ok = windows[which], finite[which]
            edges, expected = _bins_for(ref, int(n))
            bins = np.where(ok, np.searchsorted(edges, values, side="right"), edges.size + 1)
            counts = (bins[:, :, None] == np.arange(edges.size + 1)).sum(axis=1)
            e = np.maximum(expected, EPS)
            a = np.maximum(counts / n, EPS)
            psi_out[f, which + window_rows - 1] = np.sum((a - e) * np.log(a / e), axis=1)
            # KS: both empirical CDFs (right-continuous) at each window value and just below
            # it; between window values the window's CDF is flat, so the largest gap is at
            # one of these points (as ks_2samp's evaluation at every pooled value finds).
            m = sample.size
            ref_le = np.searchsorted(sample, values, side="right") / m
            ref_lt = np.searchsorted(sample, values, side="left") / m
            below = ok[:, None, :] & (values[:, None, :] <= values[:, :, None])
            strictly = ok[:, None, :] & (values[:, None, :] < values[:, :, None])
            win_le = below.sum(axis=2) / n
            win_lt = strictly.sum(axis=2) / n
            gaps = np.maximum(np.abs(ref_le - win_le), np.abs(ref_lt - win_lt))
            statistic = np.where(ok, gaps, 0.0).max(axis=1)
            big, small = max(float(m), float(n)), min(float(m), float(n))
            # Windows share few distinct statistics, and the exact small-sample p-value
            # is what costs: one per distinct statistic.
            distinct, index = np.unique(statistic, return_inverse=True)
            pvalues = np.clip(kstwo.sf(distinct, np.round(big * small / (big + small))), 0, 1)
            p_out[f, which + window_rows - 1] = pvalues[index]
    return RollingDrift(reference.names, psi_out, p_out)
