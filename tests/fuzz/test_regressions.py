"""Minimal reproducers of the defects the fuzz found (issue #12), kept as regression tests:
each failed with a traceback, a silent fallback or output left behind before its fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import Agent, ModelCard, folder_digest

from fuzz.mutations import DEEP_TEXT
from fuzz.seeds import Seeds
from opsbench_testing import assert_nothing_written, assert_one_line_error, run_main

DEEP = DEEP_TEXT.encode()


def refused(capsys: pytest.CaptureFixture[str], args: list[str], *needles: str) -> None:
    """One line on stderr, exit 2 (a traceback fails the test with the exception)."""
    code, stdout, stderr = run_main(capsys, args)
    assert_one_line_error(code, stdout, stderr, *needles)


SECURITY_CASES = [
    pytest.param(DEEP + b"\n", None, "events.jsonl", id="events-deep"),
    pytest.param(
        None,
        b"eventID,label\n\xff,normal\n",
        "labels.csv",
        id="labels-not-utf8",
    ),
]


@pytest.mark.parametrize(("events", "labels", "culprit"), SECURITY_CASES)
@pytest.mark.usefixtures("scored_by_small_model")
def test_security_score_input(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path,
    events: bytes | None, labels: bytes | None, culprit: str,
) -> None:  # fmt: skip
    """The events file or the labels file is malformed (the other is the seed)."""
    (tmp_path / "events.jsonl").write_bytes(events or seeds.events.read_bytes())
    (tmp_path / "labels.csv").write_bytes(labels or seeds.event_labels.read_bytes())
    out = tmp_path / "scores.csv"
    args = ["security", "score", "--events", str(tmp_path / "events.jsonl"), "--labels",
            str(tmp_path / "labels.csv"), "--out", str(out)]  # fmt: skip
    refused(capsys, args, culprit)
    assert not out.exists()


def test_availability_nested_too_deeply(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    trace = tmp_path / "availability.json"
    trace.write_bytes(DEEP)
    out = tmp_path / "out"
    args = ["replay", str(seeds.scenario), "--spot-availability", str(trace), "--days", "0.01",
            "--out", str(out)]  # fmt: skip
    refused(capsys, args, str(trace))
    assert_nothing_written(out)


def _register(seeds: Seeds, workdir: Path, folder: Path, name: str, agent: Agent) -> None:
    """``folder`` registered honestly (digest recomputed) as the champion of ``name``."""
    shutil.copytree(seeds.empty_registry, workdir / ".opsbench" / "models")
    registry = open_registry(workdir / ".opsbench" / "models")
    card = ModelCard(agent=agent, artefact_sha256=folder_digest(folder))
    registry.promote(name, registry.register(name, folder, card).version)


@pytest.mark.parametrize("metadata", [b"\xff", DEEP], ids=["not-utf8", "deep-nesting"])
def test_model_metadata_unreadable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, seeds: Seeds,
    tmp_path: Path, metadata: bytes,
) -> None:  # fmt: skip
    folder = Path(shutil.copytree(seeds.scaling_model, tmp_path / "candidate"))
    (folder / "metadata.json").write_bytes(metadata)
    _register(seeds, tmp_path, folder, "scaling-fuzz", "scaling")
    monkeypatch.chdir(tmp_path)
    args = ["replay", str(seeds.predictive_scenario), "--model", "scaling-fuzz", "--json"]
    refused(capsys, args, "scaling-fuzz/1: metadata.json")


def test_cost_model_folder_without_metadata(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, seeds: Seeds,
    tmp_path: Path,
) -> None:  # fmt: skip
    folder = tmp_path / "candidate"
    folder.mkdir(parents=True)
    shutil.copy(seeds.cost_model / "model.zip", folder / "model.zip")
    _register(seeds, tmp_path, folder, "cost-rl-fuzz", "cost-rl")
    monkeypatch.chdir(tmp_path)
    args = ["replay", str(seeds.scenario), "--policy", "cost-rl", "--days", "0.01", "--model",
            "cost-rl-fuzz", "--json"]  # fmt: skip
    refused(capsys, args, "metadata.json")


def _broken_run(seeds: Seeds, workdir: Path, name: str, data: bytes | None) -> Path:
    """A copy of the seed replay folder with ``name`` replaced by ``data`` (None: removed)."""
    run = Path(shutil.copytree(seeds.run, workdir / "run"))
    (run / name).unlink()
    if data is not None:
        (run / name).write_bytes(data)
    return run


def _wrong_schema(seeds: Seeds) -> bytes:
    """metrics.parquet, well-formed, its first column turned to text."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(seeds.run / "metrics.parquet")
    table = table.set_column(0, table.field(0).name, table.column(0).cast(pa.string()))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.mark.parametrize(
    "case",
    [
        "truncated",
        "wrong-schema",
        "summary-deep-nesting",
        "missing-stream",
    ],
)
def test_features_build_refuses_broken_replay_folder(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path, case: str
) -> None:
    metrics = (seeds.run / "metrics.parquet").read_bytes()
    name, data = {
        "truncated": ("metrics.parquet", metrics[: len(metrics) // 2]),
        "wrong-schema": ("metrics.parquet", _wrong_schema(seeds)),
        "summary-deep-nesting": ("summary.json", DEEP),
        "missing-stream": ("events.parquet", None),
    }[case]
    run = _broken_run(seeds, tmp_path, name, data)
    store = tmp_path / "store" / "store.duckdb"
    refused(capsys, ["features", "build", str(run), "--store", str(store)], name)
    assert not store.parent.exists()


def test_training_label_beyond_int64(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    rows = seeds.training_labels.read_text().splitlines()
    rows[1] = rows[1].rsplit(",", 1)[0] + ",123456789012345678901234567890"
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    store = Path(shutil.copy(seeds.store, tmp_path / "store.duckdb"))
    out = tmp_path / "set.parquet"
    args = ["features", "training-set", "--view", "infrastructure_metrics", "--labels",
            str(labels), "--out", str(out), "--store", str(store)]  # fmt: skip
    refused(capsys, args, str(labels), "column label")
    assert not out.exists()


def test_windowed_gaussian_huge_value(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    data = Path(shutil.copytree(seeds.nab_data, tmp_path / "data"))
    csv_file = sorted(data.rglob("*.csv"))[0]
    lines = csv_file.read_text().splitlines()
    lines[50] = lines[50].split(",")[0] + ",1e200"
    csv_file.write_text("\n".join(lines) + "\n")
    args = ["anomaly", "nab", "--data", str(data), "--windows", str(seeds.nab_windows),
            "--out", str(tmp_path / "out"), "--detector", "windowed-gaussian"]  # fmt: skip
    code, stdout, stderr = run_main(capsys, args)
    if code != 0:
        assert_one_line_error(code, stdout, stderr, str(csv_file))
