"""Online stores: the latest row of each entity, served while it is fresh.

:class:`OnlineStore` is the contract: a row is pushed for (view, entity) with its event
time; a lookup at time ``now`` returns the latest row pushed for the entity (the
greatest event time; of equal event times, the one pushed last) if its event time is
not after ``now`` and at most the view's ``ttl`` before it, else None. Two stores keep
it (``tests/features/test_online_contract.py`` holds both to it):

:class:`MemoryOnlineStore`
    In process, for features pushed by a streaming pipeline: the closed loop of a
    replay needs the latest features every working step, and a durable write costs
    tens of milliseconds (a transaction and a lake file), too slow to push a row every
    few simulated minutes. Feast's push sources feed an online store the same way.
:class:`features.store.FeatureStore`
    The durable ``online_<view>`` table (:mod:`features.online_table`), which every
    write and materialisation of the view keeps current.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

from features.errors import FeatureInputError
from features.schema import FeatureView

#: The feature values of one pushed row, in declared order.
Values = Sequence[Any] | np.ndarray[Any, Any]

#: Feature types an online row holds as float64 (nulls as NaN; booleans as 0.0 / 1.0).
NUMERIC_TYPES = frozenset({"DOUBLE", "BIGINT", "INTEGER", "BOOLEAN"})


@runtime_checkable
class OnlineStore(Protocol):
    """Latest row per (view, entity), served within the view's ttl."""

    @property
    def views(self) -> Mapping[str, FeatureView]:
        """The views rows may be pushed to, by name."""
        ...

    def push(
        self, view: str, entity: Sequence[object], event_time: datetime, values: Values
    ) -> None:
        """Store ``values`` (one per feature of ``view``, in declared order) for
        ``entity`` (its key values, in the view's entity order) at ``event_time``.

        A row older than the one held is kept but never served (late data never
        overwrites newer); a row with the same event time replaces it.

        Raises
        ------
        FeatureInputError
            An unknown view, or an entity / values of the wrong length or type.
        """
        ...

    def get_online_row(
        self, view: str, entity: Sequence[object], *, now: datetime
    ) -> np.ndarray[Any, Any] | None:
        """The latest row of ``entity`` in ``view`` (declared feature order; float64 when
        every feature is numeric, else object), or None when there is none, it is dated
        after ``now``, or it is older than the view's ``ttl`` at ``now``."""
        ...


def online_row(view: FeatureView, values: Values) -> np.ndarray[Any, Any]:
    """``values`` as an online row of ``view``: float64 (None -> NaN) when every feature is
    numeric or boolean, else an object array.

    Raises
    ------
    FeatureInputError
        Not one value per feature, or a value that is not a number where one is needed.
    """
    numeric = all(f.dtype in NUMERIC_TYPES for f in view.features)
    try:
        row = np.array(values, dtype=np.float64 if numeric else object)  # a copy
    except (TypeError, ValueError):
        for feature, value in zip(view.features, values, strict=False):
            try:
                np.float64(np.nan if value is None else value)
            except (TypeError, ValueError):
                raise FeatureInputError(
                    view.name, f"feature {view.name}:{feature.name}", f"{value!r}", "a number"
                ) from None
        raise FeatureInputError(
            view.name, "values", "not numbers", "one number per feature"
        ) from None
    if row.shape != (len(view.features),):
        raise FeatureInputError(
            view.name,
            "values",
            f"{row.size} values",
            f"one per feature: {len(view.features)} ({', '.join(view.feature_names)})",
        )
    return row


def fresh(view: FeatureView, event_time: datetime, now: datetime) -> bool:
    """Whether a row dated ``event_time`` may be served at ``now`` (not after it, and at
    most the view's ttl before it)."""
    return event_time <= now and now - event_time <= view.ttl


class MemoryOnlineStore:
    """Latest pushed row per (view, entity key), checked against the view's schema.

    Parameters
    ----------
    views
        The views rows may be pushed to, by name.
    """

    def __init__(self, views: Mapping[str, FeatureView]) -> None:
        self._views = dict(views)
        self._rows: dict[tuple[str, tuple[object, ...]], tuple[datetime, np.ndarray[Any, Any]]] = {}

    @property
    def views(self) -> Mapping[str, FeatureView]:
        return self._views

    def push(
        self, view: str, entity: Sequence[object], event_time: datetime, values: Values
    ) -> None:
        """See :meth:`OnlineStore.push`."""
        spec = self._view(view)
        key = tuple(entity)
        if len(key) != len(spec.entity):
            raise FeatureInputError(
                view, "entity", f"{len(key)} key values", f"values for {', '.join(spec.entity)}"
            )
        row = online_row(spec, values)
        held = self._rows.get((view, key))
        if held is None or held[0] <= event_time:
            self._rows[(view, key)] = (event_time, row)

    def get_online_row(
        self, view: str, entity: Sequence[object], *, now: datetime
    ) -> np.ndarray[Any, Any] | None:
        """See :meth:`OnlineStore.get_online_row`."""
        spec = self._view(view)
        held = self._rows.get((view, tuple(entity)))
        if held is None or not fresh(spec, held[0], now):
            return None
        return held[1]

    def _view(self, view: str) -> FeatureView:
        spec = self._views.get(view)
        if spec is None:
            raise FeatureInputError(view, "view", "unknown view", ", ".join(sorted(self._views)))
        return spec
