"""A sliding window of numbers kept sorted, for order statistics and ranks of recent values."""

from __future__ import annotations

import bisect
from collections import deque


class SortedWindow:
    """The last ``size`` numbers, in arrival order and sorted (insort: O(size) memmove).

    Parameters
    ----------
    size
        Numbers kept.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size(={size}) must be >= 1")
        self.size = size
        self._order: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._order)

    def add(self, v: float) -> None:
        """Append ``v``, forgetting the oldest number beyond ``size``."""
        self._order.append(v)
        bisect.insort(self._sorted, v)
        if len(self._order) > self.size:
            old = self._order.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (nearest rank below, q in [0, 1]); the window must not be empty."""
        s = self._sorted
        return s[min(len(s) - 1, int(q * (len(s) - 1)))]

    def below(self, v: float) -> float:
        """The fraction of the numbers kept that are strictly below ``v`` (0 when empty)."""
        n = len(self._sorted)
        return bisect.bisect_left(self._sorted, v) / n if n else 0.0
