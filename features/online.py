"""An in-process online store for features pushed by a streaming pipeline.

The closed loop of a replay needs the latest features every working step; the DuckDB
store's durable online table costs tens of milliseconds per write (a transaction and a
lake file), too slow to push a row every few simulated minutes. This store keeps the
same contract as :meth:`features.store.FeatureStore.get_online_features` (the latest
row per entity, nothing older than the view's ``ttl``) in memory, as Feast's push
sources feed an online store directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from features.errors import FeatureInputError
from features.schema import FeatureView


class MemoryOnlineStore:
    """Latest pushed row per (view, entity key), checked against the view's schema.

    Parameters
    ----------
    views
        The views rows may be pushed to, by name.
    """

    def __init__(self, views: Mapping[str, FeatureView]) -> None:
        self.views = dict(views)
        self._rows: dict[tuple[str, tuple[object, ...]], tuple[datetime, np.ndarray]] = {}

    def push(
        self, view: str, entity: Sequence[object], event_time: datetime, values: np.ndarray
    ) -> None:
        """Store ``values`` (one per feature of ``view``, in declared order) for ``entity``.

        A row older than the one held is ignored (late data never overwrites newer).

        Raises
        ------
        FeatureInputError
            An unknown view, or an entity / values of the wrong length.
        """
        spec = self._view(view)
        key = tuple(entity)
        if len(key) != len(spec.entity):
            raise FeatureInputError(
                view, "entity", f"{len(key)} key values", f"values for {', '.join(spec.entity)}"
            )
        row = np.asarray(values, dtype=np.float64)
        if row.shape != (len(spec.features),):
            raise FeatureInputError(
                view,
                "values",
                f"{row.size} values",
                f"one per feature: {len(spec.features)} ({', '.join(spec.feature_names)})",
            )
        held = self._rows.get((view, key))
        if held is None or held[0] <= event_time:
            self._rows[(view, key)] = (event_time, row)

    def get_online_row(
        self, view: str, entity: Sequence[object], *, now: datetime
    ) -> np.ndarray | None:
        """The latest row of ``entity`` in ``view`` (declared feature order), or ``None``
        when there is none or it is older than the view's ``ttl`` at ``now``."""
        spec = self._view(view)
        held = self._rows.get((view, tuple(entity)))
        if held is None or now - held[0] > spec.ttl or held[0] > now:
            return None
        return held[1]

    def _view(self, view: str) -> FeatureView:
        spec = self.views.get(view)
        if spec is None:
            raise FeatureInputError(view, "view", "unknown view", ", ".join(sorted(self.views)))
        return spec
