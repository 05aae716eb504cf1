"""Tests of sim.traces: trace validation, gap filling, resampling, scaling, synthetic load."""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sim.errors import InputError
from sim.scenario import FlashCrowds, SyntheticWorkload, TraceWorkload
from sim.traces import (
    Trace,
    WorkloadSeries,
    _ar1,
    fill_gaps,
    load_trace,
    synthetic_rps_per_minute,
    trace_rps_per_minute,
    workload_rps_per_minute,
)

TRACES = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "traces"
NASA = TRACES / "nasa_http_1995_requests_per_min.csv"
WORLDCUP = TRACES / "worldcup98_requests_per_min.csv"
GOOGLE = TRACES / "google2019_mean_instance_cpu_5min.csv"
ELB = TRACES / "nab_aws_elb_request_count_5min.csv"
DAY_MIN = 1440
T0 = np.datetime64("2024-01-01T00:00:00", "s")


# --------------------------------------------------------------------------- helpers


def write_csv(directory: Path, text: str, name: str = "trace.csv") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def csv_text(values: list[float | None], step_s: int = 60, start: str = "2024-01-01") -> str:
    first = np.datetime64(start, "s")
    lines = ["timestamp,value"]
    for k, value in enumerate(values):
        cell = "" if value is None else repr(float(value))
        lines.append(f"{first + np.timedelta64(k * step_s, 's')},{cell}")
    return "\n".join(lines) + "\n"


def make_trace(values: np.ndarray, step_s: int = 60, keep: np.ndarray | None = None) -> Trace:
    """An in-memory trace on a regular grid; ``keep`` drops rows (missing buckets)."""
    values = np.asarray(values, dtype=np.float64)
    stamps = T0 + np.arange(values.size) * np.timedelta64(step_s, "s")
    if keep is not None:
        stamps, values = stamps[keep], values[keep]
    return Trace(path=Path("memory.csv"), timestamps=stamps, values=values, step_s=step_s)


def peak_workload(peak_rps: float, **extra: object) -> TraceWorkload:
    return TraceWorkload(kind="trace", path="memory.csv", peak_rps=peak_rps, **extra)


def assert_one_line_error(
    excinfo: pytest.ExceptionInfo[InputError], path: Path, field: str
) -> None:
    text = str(excinfo.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {field}: "), text
    assert excinfo.value.field == field


# --------------------------------------------------------------------------- load_trace: bad input

GOOD_ROWS = "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,2\n2024-01-01T00:02:00,3\n"
HEADER = "timestamp,value\n"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("", "header", "empty"),
        ("\n\n", "header", "empty"),
        ("time,value\n" + GOOD_ROWS, "header", "'time,value'"),
        ("timestamp,value,extra\n" + GOOD_ROWS, "header", "header is"),
        ("value,timestamp\n" + GOOD_ROWS, "header", "header is"),
        (HEADER, "rows", "no data rows"),
        (HEADER + "2024-01-01T00:00:00,1\n", "rows", "only 1 data row"),
        (HEADER + "2024-01-01T00:00:00,1\nyesterday,2\n", "line 3", "'yesterday'"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-13-01T00:00:00,2\n", "line 3", "ISO 8601"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-02-30T00:00:00,2\n", "line 3", "ISO 8601"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00Z,2\n", "line 3", "zone"),
        (HEADER + "2024-01-01T00:00:00,1\n01/01/2024 00:01,2\n", "line 3", "ISO 8601"),
        (
            HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:00:00,2\n",
            "line 3",
            "duplicates the previous timestamp 2024-01-01T00:00:00",
        ),
        (
            HEADER + GOOD_ROWS + "2024-01-01T00:01:00,4\n",
            "line 5",
            "is before the previous timestamp 2024-01-01T00:02:00",
        ),
        (
            HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,2\n"
            "2024-01-01T00:02:30,3\n2024-01-01T00:03:00,4\n",
            "line 4",
            "off the 60 s grid",
        ),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,NaN\n", "line 3", "'NaN'"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,nan\n", "line 3", "'nan'"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,inf\n", "line 3", "'inf'"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,1e999\n", "line 3", "finite"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,-1\n", "line 3", ">= 0"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,abc\n", "line 3", "'abc'"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00,1,2\n", "line 3", "found 3"),
        (HEADER + "2024-01-01T00:00:00,1\n2024-01-01T00:01:00\n", "line 3", "found 1"),
        (HEADER + "2024-01-01T00:00:00,1\n\n2024-01-01T00:02:00,3\n", "line 3", "blank line"),
        (HEADER + "2024-01-01T00:00:00,\n2024-01-01T00:01:00,\n", "value", "every value"),
    ],
)
def test_bad_trace_raises_one_line_input_error(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    path = write_csv(tmp_path, text)
    with pytest.raises(InputError) as excinfo:
        load_trace(path)
    assert_one_line_error(excinfo, path, field)
    assert words in str(excinfo.value)


def test_first_bad_line_is_reported(tmp_path: Path) -> None:
    rows = [
        "2024-01-01T00:01:00,2",
        "2024-01-01T00:00:00,1",  # line 3: before the previous timestamp
        "bad,3",  # line 4: not a timestamp
        "2024-01-01T00:03:00,x",  # line 5: not a number
    ]
    path = write_csv(tmp_path, HEADER + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as excinfo:
        load_trace(path)
    assert_one_line_error(excinfo, path, "line 3")


def test_bad_line_number_in_a_large_file(tmp_path: Path) -> None:
    values: list[float | None] = [1.0] * 50_000
    lines = csv_text(values).splitlines()
    lines[40_001] = lines[40_001].replace(",1.0", ",-3")
    path = write_csv(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as excinfo:
        load_trace(path)
    assert_one_line_error(excinfo, path, "line 40002")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    with pytest.raises(InputError) as excinfo:
        load_trace(path)
    assert_one_line_error(excinfo, path, "path")
    assert "not found" in str(excinfo.value)


def test_directory_is_not_a_trace(tmp_path: Path) -> None:
    with pytest.raises(InputError) as excinfo:
        load_trace(tmp_path)
    assert_one_line_error(excinfo, tmp_path, "path")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"timestamp,value\n2024-01-01T00:00:00,1\xe9\n2024-01-01T00:01:00,2\n")
    with pytest.raises(InputError) as excinfo:
        load_trace(path)
    assert_one_line_error(excinfo, path, "path")
    assert "UTF-8" in str(excinfo.value)


# --------------------------------------------------------------------------- load_trace: good input


def test_crlf_bom_spaces_and_trailing_blank_lines_are_accepted(tmp_path: Path) -> None:
    text = "\ufefftimestamp,value\r\n2024-01-01T00:00:00, 1.5\r\n2024-01-01 00:01,\r\n"
    text += "2024-01-01T00:04:00,+2e1\r\n\r\n\r\n"
    trace = load_trace(write_csv(tmp_path, text))
    assert trace.step_s == 60
    assert trace.timestamps.dtype == np.dtype("datetime64[s]")
    assert trace.timestamps.tolist() == [
        datetime(2024, 1, 1, 0, 0),
        datetime(2024, 1, 1, 0, 1),
        datetime(2024, 1, 1, 0, 4),
    ]
    np.testing.assert_array_equal(trace.values, [1.5, np.nan, 20.0])
    assert not trace.values.flags.writeable


def test_step_is_the_median_difference(tmp_path: Path) -> None:
    values: list[float | None] = [1.0, 2.0, 3.0, 4.0, 5.0]
    lines = csv_text(values, step_s=300).splitlines()
    del lines[3]  # one missing 5-minute bucket: one 600 s difference among 300 s ones
    trace = load_trace(write_csv(tmp_path, "\n".join(lines)))
    assert trace.step_s == 300
    assert trace.values.size == 4


@pytest.mark.parametrize(
    ("path", "rows", "step_s", "empty_cells"),
    [
        (NASA, 89_280, 60, 7_210),
        (WORLDCUP, 125_310, 60, 0),
        (GOOGLE, 8_064, 300, 0),
        (ELB, 4_032, 300, 0),
    ],
)
def test_shipped_traces_load_and_fill(path: Path, rows: int, step_s: int, empty_cells: int) -> None:
    trace = load_trace(path)
    assert trace.values.size == rows
    assert trace.step_s == step_s
    assert int(np.isnan(trace.values).sum()) == empty_cells
    assert np.all(np.diff(trace.timestamps.astype(np.int64)) > 0)
    filled, was_filled = fill_gaps(trace, max_interpolate_min=60)
    span = int((trace.timestamps[-1] - trace.timestamps[0]).astype(np.int64))
    assert filled.size == span // step_s + 1
    assert not np.isnan(filled).any()
    assert np.all(filled >= 0)
    assert int(was_filled.sum()) == empty_cells + (filled.size - rows)


def test_elb_missing_buckets_become_gaps() -> None:
    trace = load_trace(ELB)
    filled, was_filled = fill_gaps(trace, max_interpolate_min=60)
    assert filled.size > trace.values.size  # the source skips whole 5-minute buckets
    gap = np.flatnonzero(was_filled)
    assert gap.size == filled.size - trace.values.size
    # each missing bucket is a 5-minute gap between two present ones: linear interpolation
    np.testing.assert_allclose(filled[gap], (filled[gap - 1] + filled[gap + 1]) / 2)


def test_largest_trace_loads_fast() -> None:
    best = math.inf
    for _ in range(3):
        began = time.perf_counter()
        load_trace(WORLDCUP)
        best = min(best, time.perf_counter() - began)
    assert best < 0.5


# --------------------------------------------------------------------------- fill_gaps


def random_values(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(10.0, 100.0, size=n)


def test_short_gap_is_interpolated_exactly() -> None:
    values = random_values(3 * DAY_MIN)
    values[100:130] = np.nan  # 30 minutes <= 60
    filled, was_filled = fill_gaps(make_trace(values), max_interpolate_min=60)
    left, right = values[99], values[130]
    expected = left + (right - left) * np.arange(1, 31) / 31
    np.testing.assert_allclose(filled[100:130], expected, rtol=1e-12)
    assert int(was_filled.sum()) == 30
    assert np.array_equal(filled[~was_filled], values[~was_filled])


def test_gap_of_exactly_the_limit_is_interpolated_and_one_more_is_seasonal() -> None:
    values = random_values(3 * DAY_MIN)
    values[DAY_MIN + 100 : DAY_MIN + 160] = np.nan  # 60 minutes
    filled, _ = fill_gaps(make_trace(values), max_interpolate_min=60)
    assert not np.array_equal(filled[DAY_MIN + 100 : DAY_MIN + 160], values[100:160])
    filled, _ = fill_gaps(make_trace(values), max_interpolate_min=59)
    assert np.array_equal(filled[DAY_MIN + 100 : DAY_MIN + 160], values[100:160])


def test_long_gap_takes_the_value_one_day_earlier() -> None:
    values = random_values(4 * DAY_MIN)
    gap = slice(DAY_MIN + 300, DAY_MIN + 600)  # 5 hours on day 2
    values[gap] = np.nan
    filled, was_filled = fill_gaps(make_trace(values), max_interpolate_min=60)
    assert np.array_equal(filled[gap], values[300:600])
    assert int(was_filled.sum()) == 300
    assert not np.isnan(filled).any()


def test_gap_longer_than_a_day_repeats_the_filled_day() -> None:
    values = random_values(5 * DAY_MIN)
    start, stop = 2 * DAY_MIN - 60, int(3.5 * DAY_MIN)
    values[start:stop] = np.nan
    filled, _ = fill_gaps(make_trace(values), max_interpolate_min=60)
    index = np.arange(start, stop)
    assert np.array_equal(filled[index], filled[index - DAY_MIN])
    assert np.array_equal(
        filled[start:stop],
        np.concatenate(
            (values[start - DAY_MIN : start], values[start - DAY_MIN : stop - DAY_MIN - DAY_MIN])
        ),
    )


def test_long_gap_on_the_first_day_takes_the_value_one_day_later() -> None:
    values = random_values(3 * DAY_MIN)
    values[200:400] = np.nan
    filled, _ = fill_gaps(make_trace(values), max_interpolate_min=60)
    assert np.array_equal(filled[200:400], values[200 + DAY_MIN : 400 + DAY_MIN])


def test_leading_and_trailing_gaps_hold_the_nearest_value() -> None:
    values = random_values(3 * DAY_MIN)
    values[:500] = np.nan
    values[-700:] = np.nan
    filled, was_filled = fill_gaps(make_trace(values), max_interpolate_min=60)
    assert np.all(filled[:500] == values[500])
    assert np.all(filled[-700:] == values[-701])
    assert int(was_filled.sum()) == 1200


def test_missing_buckets_are_inserted_as_gaps() -> None:
    values = np.arange(20, dtype=np.float64)
    keep = np.ones(20, dtype=bool)
    keep[[5, 6, 12]] = False
    filled, was_filled = fill_gaps(
        make_trace(values, step_s=300, keep=keep), max_interpolate_min=60
    )
    assert np.array_equal(np.flatnonzero(was_filled), [5, 6, 12])
    np.testing.assert_allclose(filled, values)


def test_negative_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_interpolate_min"):
        fill_gaps(make_trace(random_values(10)), max_interpolate_min=-1)


def test_nasa_outages_are_filled_seasonally() -> None:
    trace = load_trace(NASA)
    filled, was_filled = fill_gaps(trace, max_interpolate_min=60)
    gap = np.flatnonzero(was_filled)
    assert gap.size == 7_210
    assert np.array_equal(filled[gap], filled[gap - DAY_MIN])


# --------------------------------------------------------------------------- trace replay


def test_five_minute_trace_keeps_values_at_bucket_timestamps() -> None:
    values = np.array([10.0, 20.0, 5.0, 40.0, 30.0])
    trace = make_trace(values, step_s=300)
    series = trace_rps_per_minute(trace, peak_workload(40.0), duration_s=25 * 60)
    assert series.offered_rps.size == 25
    np.testing.assert_allclose(series.offered_rps[::5], values, rtol=1e-12)
    np.testing.assert_allclose(series.offered_rps[1:5], [12.0, 14.0, 16.0, 18.0])
    np.testing.assert_allclose(series.offered_rps[20:], 30.0)  # held after the last bucket
    assert series.start == datetime(2024, 1, 1)
    assert series.filled_minutes == 0


def test_elb_resampled_to_minutes_keeps_bucket_values() -> None:
    trace = load_trace(ELB)
    series = trace_rps_per_minute(trace, peak_workload(500.0), duration_s=2 * 86_400)
    filled, _ = fill_gaps(trace, max_interpolate_min=60)
    scale = series.offered_rps[0] / filled[0]  # one linear factor for the whole window
    np.testing.assert_allclose(series.offered_rps[::5], filled[: 2 * 288] * scale, rtol=1e-12)
    assert series.offered_rps.max() == 500.0
    assert series.start == datetime(2014, 4, 10, 0, 4)


def test_one_minute_trace_is_replayed_as_is() -> None:
    values = random_values(120)
    series = trace_rps_per_minute(
        make_trace(values), peak_workload(float(values.max())), duration_s=7200
    )
    np.testing.assert_allclose(series.offered_rps, values, rtol=1e-12)


def test_sub_minute_trace_is_averaged_per_minute() -> None:
    values = np.array([1.0, 3.0, 10.0, 20.0, 0.0, 4.0])
    series = trace_rps_per_minute(
        make_trace(values, step_s=30), peak_workload(15.0), duration_s=180
    )
    np.testing.assert_allclose(series.offered_rps, [2.0, 15.0, 2.0])


def test_window_start_and_length() -> None:
    values = random_values(DAY_MIN)
    workload = peak_workload(100.0, start=datetime(2024, 1, 1, 1, 0))
    series = trace_rps_per_minute(make_trace(values), workload, duration_s=90)
    assert series.start == datetime(2024, 1, 1, 1, 0)
    assert series.offered_rps.size == 2  # ceil(90 s / 60 s)
    series = trace_rps_per_minute(
        make_trace(values), workload, duration_s=600, start=datetime(2024, 1, 1, 2, 0)
    )
    assert series.start == datetime(2024, 1, 1, 2, 0)
    np.testing.assert_allclose(
        series.offered_rps / series.offered_rps.max(), values[120:130] / values[120:130].max()
    )


def test_peak_normalisation_is_exact_over_the_window() -> None:
    values = random_values(DAY_MIN)
    values[0] = 1e6  # outside the replayed window: must not set the scale
    series = trace_rps_per_minute(
        make_trace(values), peak_workload(250.0), duration_s=3600, start=datetime(2024, 1, 1, 6)
    )
    assert series.offered_rps.max() == 250.0
    np.testing.assert_allclose(series.offered_rps, values[360:420] * 250.0 / values[360:420].max())


def test_mean_normalisation() -> None:
    trace = load_trace(NASA)
    workload = TraceWorkload(kind="trace", path=str(NASA), mean_rps=80.0)
    series = trace_rps_per_minute(
        trace, workload, duration_s=14 * 86_400, start=datetime(1995, 7, 25)
    )
    assert series.offered_rps.mean() == pytest.approx(80.0, rel=1e-12)
    assert series.filled_minutes == 7_210  # both outages lie inside the window
    assert not np.isnan(series.offered_rps).any()
    assert series.source == str(NASA)


@pytest.mark.parametrize(
    ("values", "workload"),
    [
        # history 1, window 1e-310: scaled to peak_rps the history overflows
        ([1.0] * 120 + [1e-310] * 120, peak_workload(6000.0)),
        # the window's mean overflows: scaled by it, every minute would be 0 requests/s
        ([1.0] * 120 + [1.7e308] * 120, TraceWorkload(kind="trace", path="m.csv", mean_rps=9.0)),
    ],
    ids=["history", "window-mean"],
)
def test_values_float64_cannot_scale_are_an_input_error(
    values: list[float], workload: TraceWorkload
) -> None:
    with np.errstate(all="raise"), pytest.raises(InputError) as excinfo:
        trace_rps_per_minute(
            make_trace(np.array(values)), workload, duration_s=3600, start=datetime(2024, 1, 1, 2)
        )
    assert_one_line_error(excinfo, Path("memory.csv"), "value")
    assert "overflows" in str(excinfo.value)


def test_start_outside_the_trace_is_an_input_error() -> None:
    trace = make_trace(random_values(DAY_MIN))
    for start in (datetime(2023, 12, 31, 23, 59), datetime(2024, 1, 2)):
        with pytest.raises(InputError) as excinfo:
            trace_rps_per_minute(trace, peak_workload(10.0, start=start), duration_s=60)
        assert_one_line_error(excinfo, trace.path, "workload.start")
        assert "outside the trace" in str(excinfo.value)


def test_window_past_the_end_is_an_input_error() -> None:
    trace = make_trace(random_values(2 * DAY_MIN))
    with pytest.raises(InputError) as excinfo:
        trace_rps_per_minute(
            trace, peak_workload(10.0), duration_s=3 * 86_400, start=datetime(2024, 1, 1, 12)
        )
    assert_one_line_error(excinfo, trace.path, "duration_days")
    text = str(excinfo.value)
    assert "needs data until 2024-01-04T12:00:00" in text
    assert "the trace ends at 2024-01-03T00:00:00" in text
    assert "at most 1.5 days from 2024-01-01T12:00:00" in text


def test_window_exactly_to_the_end_is_allowed() -> None:
    series = trace_rps_per_minute(
        make_trace(random_values(DAY_MIN)), peak_workload(10.0), duration_s=86_400
    )
    assert series.offered_rps.size == DAY_MIN


def test_all_zero_window_is_an_input_error() -> None:
    values = random_values(DAY_MIN)
    values[:120] = 0.0
    trace = make_trace(values)
    with pytest.raises(InputError) as excinfo:
        trace_rps_per_minute(trace, peak_workload(10.0), duration_s=3600)
    assert_one_line_error(excinfo, trace.path, "workload.start")
    assert "zero load" in str(excinfo.value)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.lists(
        st.tuples(st.floats(min_value=0.001, max_value=1e6), st.booleans()),
        min_size=2,
        max_size=400,
    ),
    step_s=st.sampled_from([30, 60, 300, 900]),
    limit_min=st.integers(min_value=0, max_value=120),
    fraction=st.floats(min_value=0.01, max_value=1.0),
)
def test_property_replay_is_complete_and_non_negative(
    tmp_path: Path,
    data: list[tuple[float, bool]],
    step_s: int,
    limit_min: int,
    fraction: float,
) -> None:
    assume(not all(empty for _, empty in data))
    cells: list[float | None] = [None if empty else value for value, empty in data]
    trace = load_trace(write_csv(tmp_path, csv_text(cells, step_s=step_s)))
    assert np.array_equal(np.isnan(trace.values), [c is None for c in cells])
    filled, was_filled = fill_gaps(trace, max_interpolate_min=limit_min)
    assert filled.size == len(cells)
    assert not np.isnan(filled).any()
    assert np.all(filled >= 0)
    assert int(was_filled.sum()) == sum(c is None for c in cells)
    span_min = len(cells) * step_s // 60
    assume(span_min >= 1)
    n_minutes = max(1, int(span_min * fraction))
    workload = TraceWorkload(
        kind="trace", path="x.csv", peak_rps=123.0, max_interpolate_min=limit_min
    )
    series = trace_rps_per_minute(trace, workload, duration_s=n_minutes * 60 - 0.5)
    assert series.offered_rps.size == n_minutes
    assert not np.isnan(series.offered_rps).any()
    assert np.all(series.offered_rps >= 0)
    assert series.offered_rps.max() == 123.0
    assert 0 <= series.filled_minutes <= n_minutes


# --------------------------------------------------------------------------- synthetic


def synthetic(**extra: object) -> SyntheticWorkload:
    return SyntheticWorkload(kind="synthetic", mean_rps=200.0, **extra)


def test_synthetic_is_deterministic_per_seed() -> None:
    workload = synthetic(flash_crowds=FlashCrowds(rate_per_day=2.0))
    one = synthetic_rps_per_minute(workload, duration_s=3 * 86_400, rng=np.random.default_rng(1))
    two = synthetic_rps_per_minute(workload, duration_s=3 * 86_400, rng=np.random.default_rng(1))
    other = synthetic_rps_per_minute(workload, duration_s=3 * 86_400, rng=np.random.default_rng(2))
    assert np.array_equal(one.offered_rps, two.offered_rps)
    assert not np.array_equal(one.offered_rps, other.offered_rps)
    assert one.offered_rps.size == 3 * DAY_MIN
    assert np.all(one.offered_rps >= 0)
    assert one.start == workload.start
    assert one.source == "synthetic"
    assert one.filled_minutes == 0


def test_synthetic_mean_over_two_weeks() -> None:
    workload = synthetic(noise=0.2, flash_crowds=FlashCrowds(rate_per_day=0.0))
    series = synthetic_rps_per_minute(
        workload, duration_s=14 * 86_400, rng=np.random.default_rng(1)
    )
    assert series.offered_rps.mean() == pytest.approx(200.0, rel=0.15)


def test_synthetic_cycles_without_noise() -> None:
    workload = synthetic(
        noise=0.0,
        weekly_amplitude=0.35,
        diurnal_amplitude=0.5,
        peak_hour=14.0,
        flash_crowds=FlashCrowds(rate_per_day=0.0),
    )
    rate = synthetic_rps_per_minute(
        workload, duration_s=7 * 86_400, rng=np.random.default_rng(1)
    ).offered_rps
    assert rate.mean() == pytest.approx(200.0, rel=1e-9)  # 2024-01-01 is a Monday
    weekday_peak = 200.0 * 1.5 * (1 + 2 * 0.35 / 7)
    assert rate[14 * 60] == pytest.approx(weekday_peak)
    assert rate[5 * DAY_MIN + 14 * 60] == pytest.approx(200.0 * 1.5 * (1 - 5 * 0.35 / 7))
    assert rate.max() == pytest.approx(weekday_peak)
    assert rate[2 * 60] == pytest.approx(200.0 * 0.5 * (1 + 2 * 0.35 / 7))


def test_synthetic_noise_has_the_requested_spread() -> None:
    workload = synthetic(
        noise=0.3,
        diurnal_amplitude=0.0,
        weekly_amplitude=0.0,
        flash_crowds=FlashCrowds(rate_per_day=0.0),
    )
    rate = synthetic_rps_per_minute(
        workload, duration_s=60 * 86_400, rng=np.random.default_rng(3)
    ).offered_rps
    log_noise = np.log(rate / 200.0)
    assert log_noise.std() == pytest.approx(0.3, rel=0.15)
    lag1 = np.corrcoef(log_noise[1:], log_noise[:-1])[0, 1]
    assert lag1 == pytest.approx(0.98, abs=0.01)


def test_flash_crowds_only_add_load() -> None:
    calm = synthetic(flash_crowds=FlashCrowds(rate_per_day=0.0))
    busy = synthetic(flash_crowds=FlashCrowds(rate_per_day=3.0, magnitude=(4.0, 6.0)))
    quiet = synthetic_rps_per_minute(calm, duration_s=7 * 86_400, rng=np.random.default_rng(5))
    loud = synthetic_rps_per_minute(busy, duration_s=7 * 86_400, rng=np.random.default_rng(5))
    ratio = loud.offered_rps / quiet.offered_rps
    assert np.all(ratio >= 1.0 - 1e-12)
    assert ratio.max() >= 4.0  # at least one crowd reached its plateau
    assert np.mean(ratio > 1.0) > 0.05


def test_ar1_matches_the_recursion() -> None:
    shocks = np.random.default_rng(0).standard_normal(1000)
    expected = np.empty_like(shocks)
    previous = 0.0
    for t, shock in enumerate(shocks):
        previous = 0.98 * previous + shock
        expected[t] = previous
    np.testing.assert_allclose(_ar1(shocks, 0.98), expected, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- dispatch


def test_relative_trace_path_is_resolved_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_csv(tmp_path / "data", csv_text([1.0, 2.0, 4.0]), name="t.csv")
    workload = TraceWorkload(kind="trace", path="data/t.csv", peak_rps=8.0)
    series = workload_rps_per_minute(
        workload, base_dir=tmp_path, duration_s=180, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(series.offered_rps, [2.0, 4.0, 8.0])
    assert series.source == str(tmp_path / "data" / "t.csv")


def test_absolute_trace_path_ignores_base_dir(tmp_path: Path) -> None:
    path = write_csv(tmp_path, csv_text([1.0, 2.0, 4.0]))
    workload = TraceWorkload(kind="trace", path=str(path), mean_rps=7.0)
    series = workload_rps_per_minute(
        workload, base_dir=tmp_path / "elsewhere", duration_s=180, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(series.offered_rps, [3.0, 6.0, 12.0])


def test_synthetic_dispatch_uses_the_generator() -> None:
    workload = synthetic()
    got = workload_rps_per_minute(
        workload, base_dir=Path("."), duration_s=86_400, rng=np.random.default_rng(1)
    )
    want = synthetic_rps_per_minute(workload, duration_s=86_400, rng=np.random.default_rng(1))
    assert np.array_equal(got.offered_rps, want.offered_rps)


def test_override_replaces_a_synthetic_workload(tmp_path: Path) -> None:
    path = write_csv(tmp_path, csv_text([1.0, 5.0, 2.0, 4.0], start="2020-06-01T10:00"))
    workload = synthetic(diurnal_amplitude=0.5, weekly_amplitude=0.2)
    series = workload_rps_per_minute(
        workload,
        base_dir=Path("/nonexistent"),
        duration_s=240,
        rng=np.random.default_rng(0),
        trace_override=path,
    )
    assert isinstance(series, WorkloadSeries)
    assert series.offered_rps.max() == pytest.approx(200.0 * 1.5 * 1.2)
    assert series.start == datetime(2020, 6, 1, 10, 0)
    assert series.source == str(path)


def test_override_replaces_the_trace_and_ignores_its_start(tmp_path: Path) -> None:
    path = write_csv(tmp_path, csv_text([1.0, 5.0, 2.0, 4.0], start="2020-06-01T10:00"))
    workload = TraceWorkload(
        kind="trace", path="missing.csv", peak_rps=50.0, start=datetime(1995, 7, 3)
    )
    series = workload_rps_per_minute(
        workload,
        base_dir=tmp_path,
        duration_s=240,
        rng=np.random.default_rng(0),
        trace_override=path,
    )
    np.testing.assert_allclose(series.offered_rps, [10.0, 50.0, 20.0, 40.0])
    assert series.start == datetime(2020, 6, 1, 10, 0)


def test_missing_scenario_trace_is_an_input_error(tmp_path: Path) -> None:
    workload = TraceWorkload(kind="trace", path="nope.csv", peak_rps=5.0)
    with pytest.raises(InputError) as excinfo:
        workload_rps_per_minute(
            workload, base_dir=tmp_path, duration_s=60, rng=np.random.default_rng(0)
        )
    assert_one_line_error(excinfo, tmp_path / "nope.csv", "path")
