"""One alert per episode: a raw score counts only when it beats every raw score of the
previous ``rows`` rows (the rule ``novelty-ensemble`` applies, as a reusable part).

``novelty-ensemble`` keeps its own copy of this rule fused into its one-pass step (the
shipped default; its replay goldens pin every alert), rather than calling this class."""

from __future__ import annotations

from collections import deque


class Refractory:
    """The largest raw score of the last ``rows`` rows, kept as a decreasing deque (O(1)
    amortised per row).

    Parameters
    ----------
    rows
        Rows an output must beat (0: every positive raw score passes).
    """

    def __init__(self, rows: int) -> None:
        if rows < 0:
            raise ValueError(f"refractory rows(={rows}) must be >= 0")
        self.rows = rows
        self._recent: deque[tuple[int, float]] = deque()  # (row, raw), decreasing raw

    def output(self, row: int, raw: float) -> float:
        """``raw`` if it beats every raw score of rows ``row - rows .. row - 1``, else 0."""
        first = row - self.rows
        best = 0.0
        for r, score in self._recent:
            if r >= first:
                best = score
                break
        return raw if raw > best else 0.0

    def commit(self, row: int, raw: float) -> None:
        """Record row ``row``'s raw score."""
        recent = self._recent
        first = row + 1 - self.rows
        while recent and recent[0][0] < first:
            recent.popleft()
        while recent and recent[-1][1] <= raw:
            recent.pop()
        if self.rows:
            recent.append((row, raw))
