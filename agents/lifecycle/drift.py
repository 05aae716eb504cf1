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
drifts when its PSI exceeds ``psi_threshold`` (default 0.2, the usual "significant shift"
line; a small window's PSI uses coarser bins, :func:`_bins_for`) **and** KS rejects
equality at ``ks_alpha`` (default 1e-4: a monitor judges every interval, so a per-test
1% would alarm several times a day by chance): PSI alone flags small windows by chance,
KS alone flags tiny but consistent shifts in large ones. KS assumes independent values,
so the features judged should be per-interval ones, not rolling means (whose
consecutive values are nearly equal: a window of them is one observation, not twelve).
Missing values (NaN) are left out of both and counted. The defaults are provisional:
the lifecycle issue chooses them by cross-validation across the shipped traces.
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
DEFAULT_PSI_THRESHOLD = 0.2
DEFAULT_KS_ALPHA = 1e-4
MIN_WINDOW_ROWS = 12
"""Fewer finite values in a window than this: no verdict for that feature."""
ROWS_PER_BIN = 5
"""A window's PSI uses at most one bin per this many values (see :func:`_bins_for`)."""
REFERENCE_FILE = "drift_reference.json"


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
    """Every feature's verdict; ``drifted``: the names of those that drifted."""

    features: tuple[FeatureDrift, ...]

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features if f.psi is not None), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": list(self.drifted),
            "max_psi": self.max_psi,
            "features": {
                f.name: {"n": f.n, "missing": f.missing, "psi": f.psi,
                         "ks_statistic": f.ks_statistic, "ks_pvalue": f.ks_pvalue,
                         "drifted": f.drifted}
                for f in self.features
            },
        }  # fmt: skip


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
    once the window is full (:func:`drift`)."""

    def __init__(
        self,
        reference: DriftReference,
        *,
        window_rows: int,
        psi_threshold: float = DEFAULT_PSI_THRESHOLD,
        ks_alpha: float = DEFAULT_KS_ALPHA,
    ) -> None:
        if window_rows < MIN_WINDOW_ROWS:
            raise ValueError(f"window_rows must be at least {MIN_WINDOW_ROWS}")
        from collections import deque

        self.reference = reference
        self.window_rows = window_rows
        self.psi_threshold = psi_threshold
        self.ks_alpha = ks_alpha
        self.rows: deque[tuple[float, ...]] = deque(maxlen=window_rows)

    def add(self, row: Mapping[str, float]) -> DriftReport | None:
        """Add one row (every reference feature by name); the report once the window is
        full, None before."""
        self.rows.append(tuple(float(row[name]) for name in self.reference.names))
        if len(self.rows) < self.window_rows:
            return None
        window = pd.DataFrame(list(self.rows), columns=list(self.reference.names))
        return drift(
            self.reference, window, psi_threshold=self.psi_threshold, ks_alpha=self.ks_alpha
        )
