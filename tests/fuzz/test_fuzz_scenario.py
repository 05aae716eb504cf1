"""Fuzz: malformed scenario files (``scenarios show FILE``, ``replay FILE``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fuzz.mutations import yaml_mutations
from fuzz.outcomes import Result, Tally, fuzz_command, replay_output, write_file
from fuzz.seeds import Seeds


def shown(result: Result) -> None:
    """``scenarios show`` printed the file name and the whole validated scenario."""
    header, _, body = result.stdout.partition("\n")
    assert header.startswith("# ")
    assert set(yaml.safe_load(body)) >= {"id", "cluster", "workload", "pricing", "control"}


def test_scenarios_show(capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path) -> None:
    tally = Tally("scenario (show)")
    fuzz_command(capsys, tmp_path, tally, yaml_mutations(seeds.scenario.read_bytes()),
                 prepare=write_file("scenario.yaml"), args=["scenarios", "show", "scenario.yaml"],
                 examples=300, complete=shown)  # fmt: skip
    # free text (description, names) and optional sections take most values: edits there,
    # and deleting an optional key, stay valid
    tally.assert_mostly(at_least=0.6)


@pytest.mark.usefixtures("one_thread")
def test_replay_scenario(capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path) -> None:
    tally = Tally("scenario (replay)")
    args = ["replay", "scenario.yaml", "--days", "0.01", "--out", "out", "--json"]
    fuzz_command(capsys, tmp_path, tally, yaml_mutations(seeds.scenario.read_bytes()),
                 prepare=write_file("scenario.yaml"), args=args, examples=30, outputs=["out"],
                 complete=replay_output("out"))  # fmt: skip
    tally.assert_mostly(at_least=0.6)  # as for show
