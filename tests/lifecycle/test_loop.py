"""The scaling forecaster's lifecycle loop in a replay: a broken challenger is caught and
rolled back, the rollback restores exactly the previous champion, the same scenario and
seed give the same lifecycle decisions and telemetry, and no retrain reads the future."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import CHALLENGER, CHAMPION, ModelRef
from agents.lifecycle.sequential import SequentialTest
from agents.scaling.training import training_inputs, training_set, training_store
from bench.runner import attach_model, prepare_run, run
from opsbench_testing import assert_one_line_error, run_main, write_scenario
from sim.lifecycle_events import LIFECYCLE_EVENT

DATA = Path(__file__).resolve().parents[2] / "scenarios" / "data"


def scenario(lifecycle: dict[str, Any] | None) -> dict[str, Any]:
    """One day of synthetic load on one on-demand pool, predictive, with ``lifecycle``."""
    data: dict[str, Any] = {
        "id": "loop-test",
        "seed": 3,
        "duration_days": 0.5,
        "cluster": {
            "rps_per_vcpu": 50.0,
            "pools": [
                {
                    "name": "od",
                    "instance_type": "c5a.2xlarge",
                    "capacity_type": "on-demand",
                    "azs": ["us-east-1c", "us-east-1d"],
                    "min_nodes": 1,
                    "max_nodes": 40,
                }
            ],
        },
        "workload": {"kind": "synthetic", "mean_rps": 1500.0, "noise": 0.05},
        "slo": {"p95_latency_ms": 200.0},
        "pricing": {"catalogue": str(DATA / "spot" / "on_demand_prices.csv")},
        "control": {"policy": "predictive"},
    }
    if lifecycle is not None:
        data["lifecycle"] = lifecycle
    return data


BROKEN = {
    "scaling": {
        "retrain_on_drift": False,
        "injected_challengers": [{"at_h": 1, "training": "shuffled-targets"}],
        "rollout": {
            "shadow_min": 30,
            "block_min": 15,
            "min_blocks": 4,
            "canary_min": 30,
            "evaluation_window_min": 240,
        },
    }
}


def replay(tmp: Path, models: Path, lifecycle: dict[str, Any] | None) -> dict[str, Any]:
    path = write_scenario(tmp, scenario(lifecycle))
    prepared = prepare_run(str(path))
    attach_model(prepared, models_dir=models, store=tmp / "store" / "features.duckdb")
    return run(prepared, out=tmp / "out")


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same replay twice (two registries), and the registry of the first."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    first = replay(one, one / "models", BROKEN)
    second = replay(two, two / "models", BROKEN)
    return {"first": first, "second": second, "models": one / "models", "out": one / "out"}


def test_a_broken_challenger_is_rolled_back_within_the_window_and_never_decides_more_than_its_share(
    broken: dict[str, Any],
) -> None:
    block = broken["first"]["lifecycle"]
    (model,) = block["models"]
    assert model["promotions"] == 0 and model["rollbacks"] == 1
    (rollout,) = model["rollouts"]
    stages = [s["stage"] for s in rollout["stages"]]
    assert stages[0] == "shadow" and stages[-1] == "rolled back"
    arrived, ended = rollout["stages"][0]["t_min"], rollout["stages"][-1]["t_min"]
    assert ended - arrived <= BROKEN["scaling"]["rollout"]["evaluation_window_min"]
    assert "mean gain -" in rollout["stages"][-1]["reason"]  # the test found it worse
    share = 0.1  # the default canary share
    assert rollout["challenger_ticks"] <= share * rollout["canary_ticks"] + 1
    retrain = model["retrains"][0]
    assert retrain["trigger"].startswith("injected") and retrain["accepted"]
    assert retrain["metrics"]["val_plan_pinball_gain"] < 0  # validation would have refused it
    assert block["post_promotion_slo_attainment"] is None


def test_a_rollback_restores_exactly_the_previous_champion(broken: dict[str, Any]) -> None:
    registry = open_registry(broken["models"])
    (model,) = broken["first"]["lifecycle"]["models"]
    name = model["name"]
    champion = registry.resolve(ModelRef(name))
    assert champion.version == 1 and champion.ref == broken["first"]["model_version"]
    assert model["champion"] == champion.ref
    challenger = registry.resolve(ModelRef(name, None, 2))
    assert CHALLENGER not in challenger.aliases and CHAMPION not in challenger.aliases
    assert challenger.card.parent == champion.ref
    assert challenger.card.params["shuffled_targets"] is True
    assert challenger.card.data_end is not None and challenger.card.data_start is not None
    rollback = [e for e in events(broken["out"]) if e["kind"] == "rollback"]
    assert rollback and rollback[0]["champion_sha256"] == champion.card.artefact_sha256


def events(out: Path) -> list[dict[str, Any]]:
    table = pd.read_parquet(out / "events.parquet")
    rows = table[table["event"] == LIFECYCLE_EVENT]
    return [json.loads(r) for r in rows["reason"]]


def test_same_scenario_and_seed_same_lifecycle_decisions_and_telemetry(
    broken: dict[str, Any],
) -> None:
    first, second = broken["first"], broken["second"]
    assert first["telemetry_sha256"] == second["telemetry_sha256"]
    strip = ("wall_s", "version")

    def decisions(summary: dict[str, Any]) -> Any:
        model = dict(summary["lifecycle"]["models"][0])
        model["retrains"] = [
            {k: v for k, v in r.items() if k not in strip} for r in model["retrains"]
        ]
        return model

    assert decisions(first) == decisions(second)


def test_the_lifecycle_block_is_absent_without_the_section(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, {**scenario(None), "control": {"policy": "reactive"}})
    summary = run(prepare_run(str(path)))
    assert "lifecycle" not in summary


def test_a_bad_lifecycle_section_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {"scaling": {"rollout": {"canary_share": 0.9}}}
    path = write_scenario(tmp_path, scenario(bad))
    code, out, err = run_main(capsys, ["replay", str(path)])
    assert_one_line_error(code, out, err, "lifecycle.scaling.rollout.canary_share")


# ---------------------------------------------------------------- no look-ahead


def minute_load(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    day = 1 + 0.5 * np.sin(2 * np.pi * t / 1440.0)
    return 1000.0 * day * np.exp(rng.normal(0, 0.05, n))


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut_h=st.integers(52, 90), seed=st.integers(0, 3))
def test_no_training_row_comes_from_after_the_trigger(
    tmp_path: Path, cut_h: int, seed: int
) -> None:
    """A retrain at ``trigger`` reads only minutes before it (the loop hands it no more),
    and what it reads from the feature store point-in-time — features and targets — is
    what the full data gives at the same origins: nothing after the trigger is needed,
    and no target window reaches past it."""
    full = minute_load(96 * 60, seed)
    start = datetime(2024, 3, 1)
    trigger = start + timedelta(hours=cut_h)
    known = full[: cut_h * 60]
    window = (2, 7)
    inputs = training_inputs(
        known, np.zeros(known.size, bool), trigger, source="t", forecaster="gbm-quantile",
        plan_window=window,
    )  # fmt: skip
    end_of = inputs.series.timestamps + np.timedelta64(inputs.series.step_s, "s")
    store_path = tmp_path / f"s{cut_h}-{seed}" / "features.duckdb"
    with training_store(store_path) as store:
        X, y = training_set(
            store, inputs.series, inputs.peaks, series_id=f"p{cut_h}-{seed}", horizon_min=10,
            origins_from=np.datetime64(trigger - timedelta(hours=6)),
        )  # fmt: skip
    assert X.index.max() <= pd.Timestamp(trigger)
    assert len(y) > 0
    target_end = X.index + pd.Timedelta(minutes=window[1])  # a plan window's last minute
    assert (target_end <= pd.Timestamp(trigger)).all()
    assert (X.index >= pd.Timestamp(trigger - timedelta(hours=6))).all()
    # the same origins' targets from the whole four days: identical
    whole = training_inputs(
        full, np.zeros(full.size, bool), start + timedelta(hours=96), source="t",
        forecaster="gbm-quantile", plan_window=window,
    )  # fmt: skip
    stamps = whole.series.timestamps + np.timedelta64(whole.series.step_s, "s")
    at = np.searchsorted(stamps, X.index.to_numpy().astype("datetime64[s]"))
    assert np.allclose(whole.peaks[at], y)
    assert end_of.size  # the series was built


def test_a_retrain_in_the_replay_ends_its_data_at_the_trigger(broken: dict[str, Any]) -> None:
    (model,) = broken["first"]["lifecycle"]["models"]
    retrain = model["retrains"][0]
    assert retrain["data_end"] == retrain["time"]  # trained on nothing after the trigger
    start = datetime.fromisoformat(retrain["data_start"])
    assert datetime.fromisoformat(retrain["data_end"]) - start == timedelta(days=7)


# ---------------------------------------------------------------- the sequential test


def test_the_sequential_test_finds_clear_effects_and_rarely_errs_on_none() -> None:
    rng = np.random.default_rng(0)
    better = SequentialTest(0.05, 4)
    worse = SequentialTest(0.05, 4)
    for _ in range(30):
        better.add(float(rng.normal(1.0, 1.0)))
        worse.add(float(rng.normal(-1.0, 1.0)))
    assert better.verdict == "better" and worse.verdict == "worse"
    false = 0
    for seed in range(400):
        null = SequentialTest(0.05, 4)
        r = np.random.default_rng(seed)
        for _ in range(60):
            if null.add(float(r.normal(0.0, 3.0))) is not None:
                false += 1
                break
    assert false / 400 <= 0.05  # always valid: looking 60 times keeps the rate <= alpha


def test_the_sequential_test_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        SequentialTest(0.0, 4)
    with pytest.raises(ValueError):
        SequentialTest(0.05, 1)
    with pytest.raises(ValueError):
        SequentialTest(0.05, 4).add(float("nan"))


def test_the_scenario_drift_defaults_are_the_monitors() -> None:
    from agents.lifecycle import drift
    from sim.lifecycle import DriftSettings

    d = DriftSettings()
    assert (d.window_rows, d.psi_threshold, d.ks_alpha, d.agreement, d.confirm_rows) == (
        drift.DEFAULT_WINDOW_ROWS,
        drift.DEFAULT_PSI_THRESHOLD,
        drift.DEFAULT_KS_ALPHA,
        drift.DEFAULT_AGREEMENT,
        drift.DEFAULT_CONFIRM_ROWS,
    )


# ---------------------------------------------------------------- triggers and retries


def _bare_loop() -> Any:
    """The loop's trigger state alone (defaults: settle 360 min, window 7 days, cooldown
    12 h), no replay behind it."""
    from agents.lifecycle.loop import ManagedPredictive
    from sim.lifecycle import ScalingLifecycle

    loop = object.__new__(ManagedPredictive)
    loop.settings = ScalingLifecycle()
    loop.rollout, loop.retrain_due = None, None
    loop.open_trigger_min, loop.last_retrain_min = None, None
    return loop


def test_a_refused_candidate_retries_every_settle_until_the_window_since_the_trigger() -> None:
    loop = _bare_loop()
    loop._trigger(100, "drift lag_0 psi=2.000")
    assert loop.retrain_due == (460, "drift lag_0 psi=2.000") and loop.open_trigger_min == 100
    due, why = loop.retrain_due
    tries = []
    while True:  # every candidate refused
        loop.retrain_due = None
        loop._retry(due, why)
        if loop.retrain_due is None:
            break
        due, why = loop.retrain_due
        tries.append(due)
    assert tries[0] == 820 and all(b - a == 360 for a, b in itertools.pairwise(tries))
    assert tries[-1] <= 100 + 7 * 1440 < tries[-1] + 360  # the window since the trigger
    assert why == "retry after a refused candidate: drift lag_0 psi=2.000"  # not nested
    assert loop.open_trigger_min is None and loop.last_retrain_min is None  # no cooldown
    loop._trigger(tries[-1] + 10, "drift again")  # a new episode opens a new trigger
    assert loop.retrain_due == (tries[-1] + 370, "drift again")


def test_a_trigger_within_the_cooldown_of_an_accepted_candidate_is_ignored() -> None:
    loop = _bare_loop()
    loop.last_retrain_min = 1000  # a candidate became challenger then
    loop._trigger(1000 + 12 * 60 - 1, "drift")
    assert loop.retrain_due is None
    loop._trigger(1000 + 12 * 60, "drift")
    assert loop.retrain_due == (1000 + 12 * 60 + 360, "drift")
