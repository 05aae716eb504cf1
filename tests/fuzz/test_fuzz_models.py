"""Fuzz: a malformed trained-model artefact registered as the model a replay uses: the
predictive scaling model and the cost-rl model, each registered honestly (its digest
recomputed, as whoever could write the registry could) and promoted to champion."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import Agent, ModelCard, folder_digest
from fuzz.mutations import FileMutation, by_suffix, copy_folder, folder_mutations
from fuzz.outcomes import Result, Tally, fuzz_command
from fuzz.seeds import Seeds

REGISTRY = Path(".opsbench", "models")


def registered_mutation(
    seeds: Seeds, seed: Path, name: str, agent: Agent
) -> Callable[[Path, tuple[str, FileMutation]], None]:
    """``prepare``: ``seed`` copied, one of its files mutated, the copy registered as the
    champion of ``name`` in the working folder's registry."""

    def prepare(work: Path, change: tuple[str, FileMutation]) -> None:
        file, mutate = change
        candidate = copy_folder(seed, work / "candidate")
        mutate(candidate / file)
        shutil.copytree(seeds.empty_registry, work / REGISTRY)
        registry = open_registry(work / REGISTRY)
        card = ModelCard(agent=agent, artefact_sha256=folder_digest(candidate))
        registry.promote(name, registry.register(name, candidate, card).version)

    return prepare


def decided_with(name: str) -> Callable[[Result], None]:
    """Checks the replay decided with the registered version, not another one."""

    def complete(result: Result) -> None:
        summary = json.loads(result.stdout)
        assert summary["model_version"] == f"{name}/1"
        assert summary["run_id"] and summary["telemetry_sha256"]

    return complete


@pytest.mark.usefixtures("one_thread")
def test_scaling_model_folder(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    tally = Tally("scaling model folder")
    fuzz_command(capsys, tmp_path, tally, folder_mutations(seeds.scaling_model, by_suffix),
                 prepare=registered_mutation(seeds, seeds.scaling_model, "scaling-fuzz", "scaling"),
                 args=["replay", str(seeds.predictive_scenario), "--model", "scaling-fuzz",
                       "--json"],
                 examples=30, complete=decided_with("scaling-fuzz"))  # fmt: skip
    tally.assert_mostly()


@pytest.mark.usefixtures("one_thread")
def test_cost_model_folder(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    tally = Tally("cost model folder")
    args = ["replay", str(seeds.scenario), "--policy", "cost-rl", "--days", "0.01", "--model",
            "cost-rl-fuzz", "--json"]  # fmt: skip
    fuzz_command(capsys, tmp_path, tally, folder_mutations(seeds.cost_model, by_suffix),
                 prepare=registered_mutation(seeds, seeds.cost_model, "cost-rl-fuzz", "cost-rl"),
                 args=args, examples=30, complete=decided_with("cost-rl-fuzz"))  # fmt: skip
    tally.assert_mostly()
