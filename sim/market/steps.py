"""What the market's step functions share: change times and run lengths, validated.

A step function of simulated time (seconds from ``t = 0``) is a pair of equally long
1-D arrays: strictly increasing change times starting at 0.0, and the value in force
from each change on. :class:`~sim.market.prices.PriceSeries` and
:class:`~sim.market.availability.AvailabilitySeries` keep both arrays as read-only
copies (:func:`frozen_array`) checked by :func:`check_step_times`.
"""

from __future__ import annotations

import math

import numpy as np


def frozen_array(values: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """A read-only 1-D copy of ``values`` as ``dtype``."""
    arr = np.array(values, dtype=dtype, copy=True)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"expected a non-empty 1-D array, got shape {arr.shape}")
    arr.flags.writeable = False
    return arr


def check_step_times(times: np.ndarray, name: str) -> None:
    """``times`` starts at 0.0, is finite and strictly increasing."""
    if times.ndim != 1 or times.size == 0 or times[0] != 0.0:
        raise ValueError(f"{name} must be 1-D, non-empty and start at 0.0")
    if not (np.all(np.isfinite(times)) and np.all(np.diff(times) > 0)):
        raise ValueError(f"{name} must be finite and strictly increasing")


def check_duration(duration_s: float) -> None:
    """``duration_s`` is a finite number of seconds > 0."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s(={duration_s}) must be finite and > 0")
