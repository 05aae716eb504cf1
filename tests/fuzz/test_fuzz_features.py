"""Fuzz: a malformed replay folder (``features build``) and labels CSV
(``features training-set``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from fuzz.mutations import by_suffix, csv_mutations, folder_mutations
from fuzz.outcomes import Result, Tally, fuzz_command, mutated_copy
from fuzz.seeds import Seeds


def store_built(result: Result) -> None:
    """The store exists and the command listed the rows of every view for the run."""
    assert (result.workdir / "store" / "store.duckdb").is_file()
    assert "rows for this run" in result.stdout


@pytest.mark.usefixtures("one_thread")
def test_features_build(capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path) -> None:
    tally = Tally("replay folder")
    fuzz_command(capsys, tmp_path, tally, folder_mutations(seeds.run, by_suffix),
                 prepare=mutated_copy(seeds.run, Path("run")),
                 args=["features", "build", "run", "--store", "store/store.duckdb"],
                 examples=50, outputs=["store"], complete=store_built)  # fmt: skip
    # 3 of the 8 files are rarely read: overview.png and run_context.json never, and
    # audit.parquet holds no row group (the default scenario has no audit stream), so most
    # edits to them stay valid
    tally.assert_mostly(at_least=0.5)


def training_set_written(result: Result) -> str | None:
    """One row per label row, the view's features beside the labels; ``"reported"`` when the
    command counted label rows without features (every seed row has some)."""
    table = pd.read_parquet(result.workdir / "set.parquet")
    rows, found = re.match(r"([\d,]+) label rows, ([\d,]+) with features", result.stdout).groups()
    assert len(table) == int(rows.replace(",", ""))
    assert any(c.startswith("infrastructure_metrics__") for c in table.columns)
    return "reported" if found != rows else None


@pytest.mark.usefixtures("one_thread")
def test_features_training_set(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    tally = Tally("training labels")

    def prepare(work: Path, data: bytes) -> None:
        shutil.copy(seeds.store, work / "store.duckdb")
        (work / "labels.csv").write_bytes(data)

    args = ["features", "training-set", "--view", "infrastructure_metrics", "--labels",
            "labels.csv", "--out", "set.parquet", "--store", "store.duckdb"]  # fmt: skip
    fuzz_command(capsys, tmp_path, tally, csv_mutations(seeds.training_labels.read_bytes()),
                 prepare=prepare, args=args, examples=60, outputs=["set.parquet"],
                 complete=training_set_written)  # fmt: skip
    # label columns are free (edits there stay valid), and a row for an unknown entity or time
    # is kept without features, which the command reports ("N label rows, M with features")
    tally.assert_mostly(noticed=("error", "reported"), at_least=0.6)
