"""``opsbench anomaly nab``: NAB-format results (round trip), scores, and bad input.

Uses small corpora built in tmp_path from the shipped dev split (``scenarios/data/nab``):
one row per input row, in input order, even when a file repeats a timestamp or steps back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.registry import DEFAULT_DETECTOR
from bench.nab_run import run_detector
from bench.nab import score_corpus
from bench.nab_data import load_corpus, read_results, result_path
from opsbench_testing import make_nab_corpus, run_nab

KEYS = [
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv",  # repeats timestamps
    "artificialNoAnomaly/art_flatline.csv",
]


def make_corpus(root: Path, keys: list[str] = KEYS) -> tuple[Path, Path]:
    return make_nab_corpus(root, keys)


nab = run_nab


@pytest.mark.parametrize(
    "detector", sorted({DEFAULT_DETECTOR, "novelty-ensemble", "windowed-gaussian"})
)
def test_results_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], detector: str
) -> None:
    data, wfile = make_corpus(tmp_path)
    # a step back in time and a repeated timestamp, kept as they are
    stepback = data / "artificialNoAnomaly" / "art_flatline.csv"
    lines = stepback.read_text().splitlines()
    lines[300], lines[301] = lines[301], lines[300]
    lines.insert(500, lines[499])
    stepback.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    code, stdout, stderr = nab(capsys, data, wfile, out, "--detector", detector, "--json")
    assert code == 0, stderr
    result = json.loads(stdout)
    corpus, unused = load_corpus(data, wfile)
    assert unused == [] and result["files"] == len(KEYS)
    files = []
    for s in corpus:
        path = result_path(out, detector, s.key)
        assert path.name == f"{detector}_{s.file_name}"
        rows = path.read_text().splitlines()
        assert rows[0] == "timestamp,value,anomaly_score,label"
        body = [r.split(",") for r in rows[1:]]
        assert [b[0] for b in body] == list(s.timestamps_text)  # input order, no dedup
        assert [b[1] for b in body] == list(s.values_text)
        assert [int(b[3]) for b in body] == s.labels()
        scored = read_results(path, s)
        np.testing.assert_array_equal(scored.scores, run_detector(detector, s))
        files.append(scored)
    assert len(corpus[0].values) == 4033  # art_flatline: 4032 rows + the repeated one
    again = score_corpus(files)
    for name, r in again.items():
        assert result["profiles"][name]["score"] == pytest.approx(r.normalised, abs=1e-4)
    assert not list(out.glob(".*"))  # no partial folder left behind


def test_table_output_and_rerun_replaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, wfile = make_corpus(tmp_path, KEYS[:1])
    out = tmp_path / "out"
    (out / DEFAULT_DETECTOR / "stale").mkdir(parents=True)
    code, stdout, _ = nab(capsys, data, wfile, out)  # no --detector: the default
    assert code == 0
    assert f"NAB: {DEFAULT_DETECTOR} on 1 files" in stdout
    assert (
        "standard" in stdout and "reward_low_FP_rate" in stdout and "reward_low_FN_rate" in stdout
    )
    assert not (out / DEFAULT_DETECTOR / "stale").exists()


def bad(capsys: pytest.CaptureFixture[str], data: Path, wfile: Path, out: Path, *extra: str) -> str:
    code, stdout, stderr = nab(capsys, data, wfile, out, *extra)
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsbench: error: ")
    assert not out.exists()
    return lines[0]


def test_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, wfile = make_corpus(tmp_path, KEYS[:1])
    out = tmp_path / "out"
    assert "unknown detector 'nope'" in bad(capsys, data, wfile, out, "--detector", "nope")
    assert "not a folder" in bad(capsys, tmp_path / "missing", wfile, out)
    assert "windows file not found" in bad(capsys, data, tmp_path / "none.json", out)
    wfile.write_text("{not json")
    assert "cannot read windows JSON" in bad(capsys, data, wfile, out)
    wfile.write_text(json.dumps({}))
    assert "no windows for this data file" in bad(capsys, data, wfile, out)
    wfile.write_text(json.dumps({KEYS[0]: [["2099-01-01 00:00:00", "2099-01-02 00:00:00"]]}))
    assert "is not a timestamp of any row" in bad(capsys, data, wfile, out)
    wfile.write_text(json.dumps({KEYS[0]: []}))
    csv = data / KEYS[0]
    lines = csv.read_text().splitlines()
    lines[7] = "2014-04-10 00:00:00,NaN"
    csv.write_text("\n".join(lines) + "\n")
    assert "line 8" in bad(capsys, data, wfile, out) and "finite" in bad(capsys, data, wfile, out)
    csv.write_text("time,val\n2014-04-10 00:00:00,1\n")
    assert "timestamp or value" in bad(capsys, data, wfile, out)
    csv.unlink()
    (data / "stray.csv").write_text("timestamp,value\n")
    assert "outside the NAB layout" in bad(capsys, data, wfile, out)
