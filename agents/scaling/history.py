"""The load history as the scaling model sees it, shared by training and the policy.

- :data:`VIEW`: the feature view (``load_forecast``) the model's features live in;
- :func:`history_series`: the per-minute history before a replay as a working series
  (5-minute means, gaps refilled by the documented rule), refusing less than
  :data:`MIN_HISTORY_DAYS` of it.

Kept apart from :mod:`.training` so that deciding with a loaded model imports neither
the training code nor DuckDB.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from agents.forecasting.series import DAY_S, WorkingSeries, to_working_series
from sim.errors import InputError
from sim.traces import Trace

VIEW = "load_forecast"
MINUTE_S = 60
MIN_HISTORY_DAYS = 2.0
"""One day of features plus one day of training targets."""


def history_series(
    history_rps: np.ndarray, history_gap: np.ndarray, start: datetime, *, source: str
) -> WorkingSeries:
    """The history (requests/s per minute before ``start``, ``history_gap`` marking
    missing minutes) as a working series (gaps refilled by the documented rule).

    Raises
    ------
    InputError
        Less than :data:`MIN_HISTORY_DAYS` of history (field ``workload.start``).
    """
    n = int(history_rps.size)
    if n * MINUTE_S < MIN_HISTORY_DAYS * DAY_S:
        raise InputError(
            source,
            "workload.start",
            f"the predictive policy trains on the load before the replay window and there "
            f"are only {n * MINUTE_S / DAY_S:.2f} days of it",
            f"a window starting >= {MIN_HISTORY_DAYS:g} days after the trace's first "
            "timestamp, or --trace FILE (trains on its first 70%, replays the rest)",
        )
    end = np.datetime64(start, "s")
    stamps = end - np.timedelta64(n * MINUTE_S, "s") + np.arange(n) * np.timedelta64(MINUTE_S, "s")
    values = np.where(np.asarray(history_gap, dtype=bool), np.nan, history_rps)
    values.setflags(write=False)
    stamps.setflags(write=False)
    trace = Trace(path=Path(source), timestamps=stamps, values=values, step_s=MINUTE_S)
    return to_working_series(trace)
