"""A fast change monitor: Page's two-sided CUSUM on the log of each drift feature,
standardised by the model's training reference.

Why beside :class:`~agents.lifecycle.drift.DriftMonitor`: a window test (PSI/KS over the
last 12 rows) needs its window to fill with rows of the new regime before it can tell,
while a sequential test on the per-row statistic accumulates evidence from the first
changed row on and alarms as soon as it suffices.

The statistic. Each feature is a ratio of loads (``now_vs_day_ago``, ``now_vs_week_ago``:
:func:`~agents.lifecycle.drift.load_drift_features`), so a change of level is a shift of
its logarithm. Per row and feature, ``x = ln(max(ratio, RATIO_FLOOR))`` (a zero-load
interval would be ``-inf``) is standardised, ``z = (x - centre) / scale``, by the
reference's location and spread of ``x``: ``centre`` is the median of ``ln`` of the
reference ``sample`` and ``scale`` is ``MAD_TO_SD`` x the median absolute deviation from
it (the normal sd for normal data; robust to the traces' outages and launch days). The
sample holds ``DEFAULT_SAMPLE`` evenly spaced quantiles of the training values, so its
median and MAD are the training values' own (to the quantile spacing): they are computed
from it directly, and ``drift_reference.json`` keeps its format. A feature whose MAD is 0
falls back to the sample's standard deviation; a feature with no sample or no spread at
all is not judged (its statistic stays ``None``).

Two one-sided statistics per feature, in sd units::

    S+ = max(0, S+ + z - k)      (upward shift)
    S- = max(0, S- - z - k)      (downward shift)

``k`` (the slack) is about half the shift the monitor is tuned to; ``h`` (the threshold)
sets how much evidence an alarm needs. A feature alarms when either side exceeds ``h``;
the monitor alarms under ``agreement``: ``any`` alarmed feature, or ``all`` the features
that are judged (have a scale and have had a finite value). A row whose value of a feature
is NaN (no load a day or a week ago) leaves that feature's statistics as they were.
After the monitor alarms, every feature's statistics restart from 0 (the next alarm needs
fresh evidence: a change that persists alarms again after about ``h / (shift - k)`` rows,
and the lifecycle loop counts consecutive alarmed rows as one episode only if they touch,
so a persisting change shows as a run of short episodes, not one alarm that never ends).
Each row costs O(features), whatever the history.

How the defaults were chosen (``python -m bench.cusum_cv``, which documents the rule):
the drift monitor's leave-one-trace-out cross-validation over the four shipped traces
(``bench.drift_cv``: its spans, injected changes, scoring and objective ``detection -
0.1 x alarms per day``), on a grid of 352 settings (``k`` 0-5 sd, ``h`` 0.25-40 sd,
``any``/``all``), a change counting only when the CUSUM alarms before the unchanged
series would. On all four traces it picks ``k`` = 2.5, ``h`` = 0.25, ``agreement="all"``
(the defaults): a feature is over its threshold once one row's ``|z|`` exceeds 2.75, or
a few consecutive rows exceed 2.5 on one side, and the monitor alarms when both features
are over at once. That is nearly a one-row rule: real 5-minute ratios stay high or low
for hours (a busy hour, an outage), so evidence accumulated over many rows (small
``k``, large ``h``, the textbook CUSUM) alarms on the traces as they are as often as on
injected changes. Held
out, the folds chose ``k`` 2-2.5 and ``h`` 0.25-0.5, ``all``; the CUSUM detects within 1-8
rows (median) what it detects, where the window test needs 10-12, but it does not
detect more: on NASA held out x1.5 0%, x0.6 6%, shape 38% (window test 0%, 6%, 25%) at
2.2 alarm episodes a day (0.3). Alongside the window test (an alarm when either alarms),
the same selection switches the CUSUM off (``k`` 3, ``h`` 25: it never alarms first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.lifecycle.drift import AGREEMENTS, DriftReference, FeatureReference

RATIO_FLOOR = 1e-3
"""A ratio below this is taken as this before the logarithm (zero load would be -inf)."""
MAD_TO_SD = 1.4826
"""The normal distribution's sd per median absolute deviation."""
DEFAULT_SLACK = 2.5
DEFAULT_THRESHOLD = 0.25
DEFAULT_AGREEMENT = "all"
SIDES = ("up", "down")


@dataclass(frozen=True, slots=True)
class LogScale:
    """Where ``ln(feature)`` sits in training: median (``centre``) and robust sd (``scale``)."""

    centre: float
    scale: float

    def standardise(self, ratios: np.ndarray) -> np.ndarray:
        """``z`` of each ratio (NaN stays NaN; see the module)."""
        values = np.asarray(ratios, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            logs = np.log(np.maximum(values, RATIO_FLOOR))
        return np.where(np.isfinite(values), (logs - self.centre) / self.scale, np.nan)


def log_scale(feature: FeatureReference) -> LogScale | None:
    """The location and scale of ``ln`` of ``feature``'s reference sample (None: not judged)."""
    if not feature.sample:
        return None
    logs = np.log(np.maximum(np.asarray(feature.sample, dtype=np.float64), RATIO_FLOOR))
    centre = float(np.median(logs))
    scale = MAD_TO_SD * float(np.median(np.abs(logs - centre)))
    if scale <= 0:
        scale = float(np.std(logs))
    return LogScale(centre, scale) if scale > 0 else None


def check_parameters(k: float, h: float, agreement: str) -> None:
    if not (np.isfinite(k) and k >= 0):
        raise ValueError(f"k(={k}) must be a finite slack >= 0 (in sd)")
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"h(={h}) must be a finite threshold > 0 (in sd)")
    if agreement not in AGREEMENTS:
        raise ValueError(f"agreement must be one of {AGREEMENTS}, not {agreement!r}")


@dataclass(frozen=True, slots=True)
class FeatureCusum:
    """One feature after a row: both one-sided statistics (sd units, before any reset),
    the larger one and its ``side`` (``None`` when the feature is not judged), and whether
    it exceeds the threshold (``alarm``; also as ``drifted``, like a window's verdict)."""

    name: str
    upper: float | None
    lower: float | None
    alarm: bool

    @property
    def statistic(self) -> float | None:
        if self.upper is None or self.lower is None:
            return None
        return max(self.upper, self.lower)

    @property
    def side(self) -> str | None:
        if self.upper is None or self.lower is None:
            return None
        return SIDES[0] if self.upper >= self.lower else SIDES[1]

    @property
    def drifted(self) -> bool:
        return self.alarm


@dataclass(frozen=True, slots=True)
class CusumReport:
    """Every feature after one row; ``alarm``: the monitor's decision (its agreement rule).
    ``drifted``: the features that alarmed, empty when the monitor does not (truthy exactly
    when it alarms, as :class:`~agents.lifecycle.drift.DriftReport`'s)."""

    features: tuple[FeatureCusum, ...]
    alarm: bool

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.alarm) if self.alarm else ()

    @property
    def max_statistic(self) -> float:
        return max((f.statistic for f in self.features if f.statistic is not None), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "drifted": list(self.drifted),
            "max_statistic": self.max_statistic,
            "features": {
                f.name: {"statistic": f.statistic, "side": f.side, "upper": f.upper,
                         "lower": f.lower, "alarm": f.alarm}
                for f in self.features
            },
        }  # fmt: skip


class CusumMonitor:
    """Page's two-sided CUSUM per feature of ``reference`` (see the module): slack ``k``
    and threshold ``h`` in reference sd, ``agreement`` over the features."""

    def __init__(
        self,
        reference: DriftReference,
        *,
        k: float = DEFAULT_SLACK,
        h: float = DEFAULT_THRESHOLD,
        agreement: str = DEFAULT_AGREEMENT,
    ) -> None:
        check_parameters(k, h, agreement)
        self.reference = reference
        self.k = float(k)
        self.h = float(h)
        self.agreement = agreement
        self.scales = tuple(log_scale(f) for f in reference.features)
        n = len(self.scales)
        self.upper = np.zeros(n)
        self.lower = np.zeros(n)
        self.seen = np.zeros(n, dtype=bool)
        """Features that have had a finite value (those ``all`` asks to agree)."""

    def add(self, row: Mapping[str, float]) -> CusumReport:
        """Add one row (every reference feature by name, a ratio or NaN); the report of
        the statistics after it (``report.drifted`` truthy when the monitor alarms)."""
        for f, (name, scale) in enumerate(zip(self.reference.names, self.scales, strict=True)):
            if scale is None:
                continue
            z = float(scale.standardise(np.array([float(row[name])]))[0])
            if np.isnan(z):
                continue
            self.seen[f] = True
            self.upper[f] = max(0.0, self.upper[f] + z - self.k)
            self.lower[f] = max(0.0, self.lower[f] - z - self.k)
        over = np.maximum(self.upper, self.lower) > self.h
        judged = self.seen & np.array([s is not None for s in self.scales], dtype=bool)
        if self.agreement == "any":
            alarm = bool(over.any())
        else:
            alarm = bool(judged.any()) and bool(over[judged].all())
        report = CusumReport(
            tuple(
                FeatureCusum(name, float(self.upper[f]), float(self.lower[f]), bool(over[f]))
                if self.scales[f] is not None
                else FeatureCusum(name, None, None, False)
                for f, name in enumerate(self.reference.names)
            ),
            alarm,
        )
        if alarm:
            self.upper[:] = 0.0
            self.lower[:] = 0.0
        return report
