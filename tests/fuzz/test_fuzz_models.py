"""Fuzz: a malformed trained-model folder where a replay looks for it: the predictive
scaling model (``.opsbench/models/scaling/<scenario>-<key>/``) and the cost-rl model
(``.opsbench/models/cost/<scenario>/``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fuzz.mutations import by_suffix, folder_mutations
from fuzz.outcomes import Result, Tally, fuzz_command, mutated_copy
from fuzz.seeds import SEED_SCENARIO_ID, Seeds

OWN_COST_MODEL = Path(".opsbench", "models", "cost", SEED_SCENARIO_ID)


def decided_with(folder: Path) -> Callable[[Result], None]:
    """Checks the replay decided with the model in ``folder``, not another one."""

    def complete(result: Result) -> None:
        summary = json.loads(result.stdout)
        meta_path = result.workdir / folder / "metadata.json"
        assert meta_path.is_file(), f"decided with {summary['model_version']}, not {folder}"
        assert summary["model_version"] == json.loads(meta_path.read_text())["model_version"]
        assert summary["run_id"] and summary["telemetry_sha256"]

    return complete


@pytest.mark.usefixtures("one_thread")
def test_scaling_model_folder(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    tally = Tally("scaling model folder")
    (trained,) = (p for p in seeds.scaling_models.iterdir() if not p.name.startswith("."))
    target = Path(".opsbench", "models", "scaling", trained.name)
    fuzz_command(capsys, tmp_path, tally, folder_mutations(trained, by_suffix),
                 prepare=mutated_copy(trained, target),
                 args=["replay", str(seeds.predictive_scenario), "--json"],
                 examples=30, complete=decided_with(target))  # fmt: skip
    tally.assert_mostly()


@pytest.mark.usefixtures("one_thread")
def test_cost_model_folder(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    tally = Tally("cost model folder")
    args = ["replay", str(seeds.scenario), "--policy", "cost-rl", "--days", "0.01", "--json"]
    fuzz_command(capsys, tmp_path, tally, folder_mutations(seeds.cost_model, by_suffix),
                 prepare=mutated_copy(seeds.cost_model, OWN_COST_MODEL), args=args,
                 examples=30, complete=decided_with(OWN_COST_MODEL))  # fmt: skip
    tally.assert_mostly()
