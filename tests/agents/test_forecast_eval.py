"""Tests of bench.forecast_eval: evaluate() on CSV traces, parse_horizon, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.forecast_eval import evaluate, main, parse_horizon
from sim.errors import InputError

KEYS = {
    "trace",
    "model",
    "horizon_min",
    "step_min",
    "native_step_min",
    "split",
    "mase",
    "wape",
    "coverage_p90",
    "n_points",
    "n_train",
    "train_s",
    "excluded_gap_points",
    "excluded_origin_points",
    "scale",
    "baseline",
}
SCORE_KEYS = {"model", "mase", "wape", "coverage_p90", "n_points", "train_s"}


def load_values(n_steps: int, step_s: int, *, seed: int = 0) -> np.ndarray:
    """Requests per bucket: a daily cycle, slowly wandering noise, white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps) * step_s
    daily = 1.0 + 0.6 * np.sin(2 * np.pi * t / 86_400)
    kernel = np.exp(-np.arange(60) / 20.0)
    wander = np.convolve(rng.standard_normal(n_steps + 59), kernel / kernel.sum(), "valid")
    return np.maximum(200.0 * daily * (1.0 + 0.8 * wander) + rng.normal(0, 3, n_steps), 0.0)


def write_trace(
    directory: Path, step_s: int, days: float, *, gaps: tuple[int, ...] = (), name: str = "t.csv"
) -> Path:
    """A ``timestamp,value`` CSV; ``gaps`` are row indices written as empty cells."""
    n = int(days * 86_400 // step_s)
    values = load_values(n, step_s)
    first = np.datetime64("2024-03-04T00:00:00", "s")
    lines = ["timestamp,value"]
    for k, value in enumerate(values):
        cell = "" if k in gaps else f"{value:.3f}"
        lines.append(f"{first + np.timedelta64(k * step_s, 's')},{cell}")
    path = directory / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize(("step_s", "working_min"), [(60, 5), (300, 5), (900, 15)])
def test_evaluate_on_a_trace_with_gaps(tmp_path: Path, step_s: int, working_min: int) -> None:
    n = int(5 * 86_400 // step_s)
    # a few empty cells early (features only) and late (test targets: not scored)
    gaps = (n // 10, n // 10 + 1, n - n // 10, n - n // 10 + 1, n - 3)
    path = write_trace(tmp_path, step_s, 5, gaps=gaps)
    out = evaluate(path, horizon_min=30)
    assert set(out) == KEYS
    assert set(out["baseline"]) == SCORE_KEYS
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["model"] == "gbm-quantile" and out["baseline"]["model"] == "seasonal-naive-1d"
    assert out["step_min"] == working_min and out["native_step_min"] == step_s / 60
    assert out["horizon_min"] == 30
    assert out["excluded_gap_points"] >= 1
    assert out["n_points"] > 0 and out["n_points"] == out["baseline"]["n_points"]
    assert 0 <= out["coverage_p90"] <= 1 and out["wape"] > 0 and out["train_s"] >= 0
    assert out["mase"] < out["baseline"]["mase"]  # the wandering noise is predictable at 30 min
    split = out["split"]
    assert set(split) == {"text", "train", "test"} and split["train"][1] == split["test"][0]
    assert "target" in split["text"] and split["train"][0].startswith("2024-03-04")


def test_baseline_mase_is_consistent_with_itself(tmp_path: Path) -> None:
    path = write_trace(tmp_path, 300, 5)
    out = evaluate(path, model="seasonal-naive-1d")
    assert out["mase"] == out["baseline"]["mase"] and out["wape"] == out["baseline"]["wape"]
    assert 0.5 < out["mase"] < 2.0


@pytest.mark.parametrize("model", ["seed-rf", "seasonal-naive-1w"])
def test_other_models_evaluate(tmp_path: Path, model: str) -> None:
    path = write_trace(tmp_path, 300, 9)
    out = evaluate(path, model=model, horizon_min=60, train_fraction=0.8)
    assert out["model"] == model and out["horizon_min"] == 60 and out["mase"] is not None


# --------------------------------------------------------------------------- horizons


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("30m", 30),
        ("30", 30),
        ("1h", 60),
        ("90min", 90),
        ("1.5h", 90),
        (" 45 min ", 45),
        ("2 hours", 120),
        ("24h", 1440),
    ],
)
def test_parse_horizon(text: str, minutes: int) -> None:
    assert parse_horizon(text) == minutes


@pytest.mark.parametrize("text", ["", "abc", "0", "-5", "30s", "1.01h", "2d", "25h", "30 m m"])
def test_parse_horizon_rejects(text: str) -> None:
    with pytest.raises(InputError, match=r"^--horizon: ") as caught:
        parse_horizon(text)
    assert "\n" not in str(caught.value) and "allowed:" in str(caught.value)


# --------------------------------------------------------------------------- bad input


def one_line_error(exc: pytest.ExceptionInfo[InputError], field: str) -> str:
    text = str(exc.value)
    assert "\n" not in text and field in text and "(allowed: " in text
    return text


def test_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        evaluate(write_trace(tmp_path, 300, 5), model="prophet")
    assert "gbm-quantile" in one_line_error(caught, "--model")


def test_horizon_not_a_multiple_of_the_working_step(tmp_path: Path) -> None:
    path = write_trace(tmp_path, 60, 4)
    with pytest.raises(InputError) as caught:
        evaluate(path, horizon_min=7)
    assert "multiple of the working step (5 min)" in one_line_error(caught, "--horizon")
    with pytest.raises(InputError) as caught:
        evaluate(write_trace(tmp_path, 900, 5, name="q.csv"), horizon_min=20)
    one_line_error(caught, "--horizon")
    with pytest.raises(InputError) as caught:
        evaluate(path, horizon_min=2000)
    one_line_error(caught, "--horizon")


def test_trace_too_short(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        evaluate(write_trace(tmp_path, 300, 2.5))
    assert "1 day of history" in one_line_error(caught, "--trace")


def test_step_above_thirty_minutes(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        evaluate(write_trace(tmp_path, 3600, 30))
    one_line_error(caught, "--trace")


def test_missing_trace(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        evaluate(tmp_path / "nope.csv")
    one_line_error(caught, "--trace")


def test_bad_train_fraction(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        evaluate(write_trace(tmp_path, 300, 5), train_fraction=1.0)
    one_line_error(caught, "--train-fraction")


def test_malformed_trace_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2024-01-01T00:00:00,1\n2024-01-01T00:05:00,NaN\n")
    with pytest.raises(InputError, match="line 3"):
        evaluate(path)


# --------------------------------------------------------------------------- command line


def test_main_prints_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_trace(tmp_path, 300, 5)
    code = main(["--trace", str(path), "--horizon", "1h", "--model", "seasonal-naive-1d"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert json.loads(out)["horizon_min"] == 60


def test_main_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--trace", str(tmp_path / "x.csv"), "--horizon", "soon"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("forecast_eval: error: --horizon: ")
