"""Fuzz: a malformed NAB corpus (``anomaly nab``): data CSVs, the folder, the windows JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import strategies as st

from agents.registry import DEFAULT_DETECTOR, DETECTORS
from fuzz.mutations import (
    DEEP_TEXT,
    FileMutation,
    copy_folder,
    csv_mutations,
    folder_mutations,
    json_mutations,
)
from fuzz.outcomes import Result, Tally, fuzz_command
from fuzz.seeds import Seeds

Change = tuple[str, FileMutation] | bytes
"""A data file and its mutation, or the windows JSON's new bytes."""


def _stray_csv(folder: Path) -> None:
    """A CSV outside the ``<category>/<file>.csv`` layout."""
    (folder / "stray.csv").write_bytes(b"timestamp,value\n2014-04-01 00:00:00,1\n")


def results_written(result: Result) -> None:
    """One NAB results file per data file, each with one row per data row."""
    summary = json.loads(result.stdout)
    written = sorted((result.workdir / summary["results_dir"]).rglob("*.csv"))
    assert len(written) == summary["files"] >= 1
    # csv rows, not str.splitlines: a timestamp cell is echoed as written, and splitlines
    # would split one at a \x0b or \x1c the mutation put in it
    tables = [list(csv.reader(io.StringIO(p.read_text("utf-8"), newline=""))) for p in written]
    rows = sum(len(table) - 1 for table in tables)
    assert rows == summary["rows"]


def test_nab_corpus(capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path) -> None:
    tally = Tally("NAB corpus")
    data = folder_mutations(seeds.nab_data, lambda _path, seed: csv_mutations(seed))
    windows = json_mutations(seeds.nab_windows.read_bytes())
    # a data file mutated (or the folder given a stray CSV), else the windows JSON
    change = st.one_of(data, data, windows, st.just(("", _stray_csv)))

    def prepare(work: Path, drawn: tuple[Change, str]) -> None:
        what, _detector = drawn
        copy_folder(seeds.nab_data, work / "data")
        (work / "windows.json").write_bytes(seeds.nab_windows.read_bytes())
        if isinstance(what, bytes):
            (work / "windows.json").write_bytes(what)
        else:
            name, mutate = what
            mutate(work / "data" / name)

    def args(drawn: tuple[Change, str]) -> list[str]:
        return ["anomaly", "nab", "--data", "data", "--windows", "windows.json", "--out", "out",
                "--detector", drawn[1], "--json"]  # fmt: skip

    fuzz_command(capsys, tmp_path, tally, st.tuples(change, st.sampled_from(sorted(DETECTORS))),
                 prepare=prepare, args=args, examples=200, outputs=["out"],
                 complete=results_written,
                 # was a RecursionError traceback (bench/nab.py load_windows)
                 explicit=[(DEEP_TEXT.encode(), DEFAULT_DETECTOR)])  # fmt: skip
    tally.assert_mostly()
