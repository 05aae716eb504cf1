"""Declarations of feature views: what a feature is, what it is keyed by, how long it lives.

Declarations are plain frozen objects, kept apart from the code that computes and
serves them (:mod:`features.store`), as in Feast. A feature is referenced as
``"view:feature"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

#: DuckDB types a feature may have.
FEATURE_TYPES = ("DOUBLE", "BIGINT", "INTEGER", "BOOLEAN", "VARCHAR")


@dataclass(frozen=True, slots=True)
class Feature:
    """One typed feature of a view (``unit`` in the name or stated here)."""

    name: str
    dtype: str  # one of FEATURE_TYPES
    description: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in FEATURE_TYPES:
            raise ValueError(f"feature {self.name}: dtype {self.dtype!r} not in {FEATURE_TYPES}")


@dataclass(frozen=True, slots=True)
class FeatureView:
    """A group of features of one entity, computed from telemetry.

    Parameters
    ----------
    name
        The view's name (``view`` in ``"view:feature"``).
    entity
        Entity key columns, e.g. ``("run_id", "pool")``.
    event_time
        Name of the event-time column (a TIMESTAMP) in the view's rows.
    ttl
        A feature value older than this at the label time is not returned.
    features
        The typed features.
    sources
        Telemetry streams the transformation reads (``metrics``, ``capacity``, ...).
    transformation
        DuckDB SQL computing the view's rows from the raw stream tables. It may refer
        to ``raw_<stream>`` tables and to ``$since``/``$until`` (TIMESTAMP) bounds of
        the event times to produce; window features may read rows before ``$since``.
    lookback
        How much history before ``$since`` the transformation reads (window length).
    available_after
        How long after a source row's timestamp its data exists: 60 s for per-minute
        aggregates stamped with the minute's start. A row's event time is its timestamp
        plus this, so a feature is never dated before the data behind it was complete.
    description
        One line for ``opsbench features list``.
    """

    name: str
    entity: tuple[str, ...]
    event_time: str
    ttl: timedelta
    features: tuple[Feature, ...]
    sources: tuple[str, ...] = ()
    transformation: str = ""
    lookback: timedelta = timedelta(0)
    available_after: timedelta = timedelta(0)
    description: str = ""

    def feature(self, name: str) -> Feature:
        """The feature called ``name`` (KeyError if none)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def computed(self) -> bool:
        """Whether the store computes the view from telemetry (else rows are written to it
        with ``write_features``, e.g. by an agent's feature pipeline)."""
        return bool(self.transformation.strip() and self.sources)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)
