"""A run's identity comes from its content: two replays share a run id exactly when they
replay the same inputs with the same policy (the defect: a replay with
``--spot-availability`` used to get the same run id as the plain one, so the feature
store silently kept the first one's rows)."""

from __future__ import annotations

import pytest

from bench import runner
from scenarios import data_path

PREEMPTION = data_path("spot", "traces", "preemption", "1-node", "aws-04-22-2023")


def run_id(**overrides: object) -> str:
    return runner.prepare_run("default", policy="reactive", days=0.5, **overrides).run_id  # type: ignore[arg-type]


def test_same_inputs_same_run_id() -> None:
    assert run_id() == run_id()


def test_an_override_file_changes_the_run_id() -> None:
    plain = run_id()
    other_availability = run_id(spot_availability=PREEMPTION)
    assert plain != other_availability
    assert plain.startswith("default-reactive-s42-0.5d-")
    assert other_availability.startswith("default-reactive-s42-0.5d-")


def test_seed_length_policy_and_parameters_change_the_run_id() -> None:
    base = run_id()
    assert run_id(seed=7) != base
    assert runner.prepare_run("default", policy="reactive", days=1.0).run_id != base
    assert runner.prepare_run("default", policy="static", days=0.5).run_id != base
    tolerant = runner.prepare_run(
        "default", policy="reactive", params={"tolerance": 0.2}, days=0.5
    ).run_id
    assert tolerant != base


def test_the_summary_carries_the_run_id() -> None:
    prepared = runner.prepare_run("default", policy="reactive", days=0.1)
    assert runner.run(prepared)["run_id"] == prepared.run_id


def test_the_security_model_that_watches_audit_events_is_part_of_the_run_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import security_model

    base = runner.prepare_run("credential-theft", days=0.5).run_id
    monkeypatch.setattr(security_model, "SHIPPED_PARAMS", {"max_iter": 7})
    assert runner.prepare_run("credential-theft", days=0.5).run_id != base
