"""Errors raised by the feature store.

:class:`FeatureStoreError` is a broken store invariant or a view definition the store
cannot serve (e.g. a store file created for an older declaration of a view).
:class:`FeatureInputError` is bad input from the caller (an unknown view or feature, a
malformed ``"view:feature"`` reference, a batch or frame whose columns do not match);
it is both an :class:`~sim.errors.InputError` (one line: ``source: field: problem
(allowed: ...)``) and a :class:`FeatureStoreError`, so either ``except`` catches it.
"""

from __future__ import annotations

from sim.errors import InputError, OpsbenchError


class FeatureStoreError(OpsbenchError):
    """The store cannot do what was asked (a definition or storage problem)."""


class FeatureInputError(InputError, FeatureStoreError):
    """Bad input to the store; nothing was written.

    Parameters
    ----------
    source
        What the bad input is, e.g. ``"features"``, ``"view 'cpu'"`` or
        ``"stream metrics (run r1, seq 3)"``.
    field
        The offending reference or column, e.g. ``"'cpu:util'"`` or ``"column pool"``.
    problem
        What is wrong, including the bad value.
    allowed
        What would be accepted.
    """
