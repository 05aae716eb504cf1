"""How the drift monitor's defaults behave on the shipped real traces against one long
reference: ``python -m bench.drift_traces``. (The defaults were chosen on these traces by
``python -m bench.drift_cv``, which watches 3-day spans against the week before each;
this is the simpler, older view, kept for comparison.)

For each trace (5-minute means, gaps carried forward), the reference is the first half
(from day 2: the features need a day of history); the monitor then watches the second
half as it is (alarm episodes per day: runs of consecutive alarmed rows) and again with
its load multiplied by 1.5 from one day into that half (rows until the shift is confirmed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from agents.forecasting.features import make_features
from agents.lifecycle.drift import DriftMonitor, DriftReference, load_drift_features
from scenarios import data_path

STEP_S = 300
DAY = 86_400 // STEP_S
TRACES = (
    "google2019_mean_instance_cpu_5min.csv",
    "nab_aws_elb_request_count_5min.csv",
    "nasa_http_1995_requests_per_min.csv",
    "worldcup98_requests_per_min.csv",
)
SHIFT = 1.5


def alarms(values: np.ndarray, stamps: np.ndarray, reference_end: int) -> list[int]:
    """Rows (from ``reference_end``) at which the monitor confirms drift."""
    rows = load_drift_features(make_features(values, stamps, step_s=STEP_S, horizon_steps=6))
    monitor = DriftMonitor(DriftReference.from_frame(rows.iloc[DAY:reference_end]), window_rows=12)
    out = []
    for i in range(reference_end - monitor.window_rows + 1, values.size):
        report = monitor.add(rows.iloc[i].to_dict())
        if report is not None and report.drifted:
            out.append(i)
    return out


def measure(name: str) -> dict[str, float | None]:
    raw = pd.read_csv(data_path("traces", name), parse_dates=["timestamp"])
    series = raw.set_index("timestamp")["value"].resample("5min").mean().ffill()
    values = series.to_numpy(dtype=np.float64)
    stamps = series.index.to_numpy().astype("datetime64[s]")
    reference_end = (values.size // DAY // 2) * DAY
    found = alarms(values, stamps, reference_end)
    episodes = sum(1 for k, i in enumerate(found) if k == 0 or found[k - 1] != i - 1)
    shift_at = reference_end + DAY
    shifted = values.copy()
    shifted[shift_at:] *= SHIFT
    after = [i - shift_at for i in alarms(shifted, stamps, reference_end) if i >= shift_at]
    return {
        "monitored_days": (values.size - reference_end) / DAY,
        "alarm_episodes_per_day": episodes / ((values.size - reference_end) / DAY),
        "rows_to_confirm_shift": float(after[0]) if after else None,
    }


def main() -> None:
    for name in TRACES:
        print(name, measure(name))


if __name__ == "__main__":
    main()
