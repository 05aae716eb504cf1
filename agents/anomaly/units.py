"""A series' own unit: the power of two of its first non-zero value (exact, scale-free).

Detectors that keep sums, squares or library models of the values work on
``value / unit`` instead of the value, so that multiplying a stream by a power of two
changes no score and the largest floats cannot overflow their arithmetic. The unit is
``2**e`` where ``e`` is the binary exponent of the first non-zero value learnt (before one
is learnt, of the value being scored), so dividing by it is exact; the result is clamped to
``[-LIMIT, LIMIT]`` (a value ``LIMIT`` times its series' first value is saturated).
"""

from __future__ import annotations

import math

LIMIT = 2.0**50
"""Largest magnitude, in units, handed on (about 1.1e15): squares and long sums stay finite."""
LIMIT_EXPONENT = 51
"""Binary exponent (``frexp``) of the smallest magnitudes beyond LIMIT."""


class UnitScale:
    """The unit of one series, fixed by the first non-zero value learnt."""

    __slots__ = ("exponent",)

    def __init__(self) -> None:
        self.exponent: int | None = None

    def scaled(self, v: float) -> float:
        """``v`` in units of the series (clamped to +-LIMIT); changes nothing."""
        e = self.exponent
        if e is None:
            if v == 0.0:
                return 0.0
            e = math.frexp(v)[1]
        if math.frexp(v)[1] - e > LIMIT_EXPONENT:  # beyond LIMIT (ldexp could overflow)
            return LIMIT if v > 0 else -LIMIT
        u = math.ldexp(v, -e)
        return LIMIT if u > LIMIT else -LIMIT if u < -LIMIT else u

    def learn(self, v: float) -> None:
        """Fix the unit at the first non-zero value."""
        if self.exponent is None and v != 0.0:
            self.exponent = math.frexp(v)[1]
