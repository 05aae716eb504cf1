"""``opsbench security score`` / ``logs``: I/O contract, malformed lines, metrics, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from opsbench_testing import run_main

from bench.security_data import TrainingSpec, simulate_accounts

Data = tuple[list[dict[str, Any]], list[str]]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    """A held-out simulated account (another seed) as JSON lines + labels CSV."""
    records, labels = simulate_accounts(
        TrainingSpec(seed=99, accounts=1, days=0.5, campaigns_per_account=3)
    )
    d = tmp_path_factory.mktemp("events")
    ev = d / "events.jsonl"
    ev.write_text("".join(json.dumps(r) + "\n" for r in records))
    lab = d / "labels.csv"
    with lab.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["eventID", "label"])
        for r, x in zip(records, labels, strict=True):
            w.writerow([r["eventID"], x.label])
    return ev, lab, records


def test_score_writes_csv_and_metrics_beside_sigma(
    capsys: pytest.CaptureFixture[str], small_shipped: Path, events: Any, tmp_path: Path
) -> None:
    ev, lab, records = events
    out = tmp_path / "scores.csv"
    code, stdout, stderr = run_main(
        capsys,
        [
            "security",
            "score",
            "--events",
            str(ev),
            "--labels",
            str(lab),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["scored"] == len(records) and result["malformed"] == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["eventID", "risk_score", "threat_category", "is_alert", "reasons"]
    assert {r["eventID"] for r in rows} == {r["eventID"] for r in records}
    m = result["metrics"]
    assert m["malicious"] > 0 and m["normal"] > 0 and 0 <= m["fpr"] <= 1
    truth = {r["eventID"]: r["label"] for r in csv.DictReader(lab.open())}
    risk: dict[str, list[float]] = {}
    for r in rows:
        risk.setdefault(truth[r["eventID"]], []).append(float(r["risk_score"]))
    mean = {k: sum(v) / len(v) for k, v in risk.items()}
    assert mean["malicious"] > 5 * mean["normal"]  # a held-out account: attacks rank high
    assert m["tp"] + m["fn"] == m["malicious"]
    assert set(result["sigma"]) == {"sigma>=low", "sigma>=medium", "sigma>=high"}
    assert (small_shipped).exists()  # the model was cached with its metadata
    metas = list(small_shipped.glob("security-*.json"))
    assert metas and len(json.loads(metas[0].read_text())["sha256"]) == 64
    # the same file scored again gives the same CSV (cached model, deterministic)
    out2 = tmp_path / "again.csv"
    run_main(capsys, ["security", "score", "--events", str(ev), "--out", str(out2)])
    assert out2.read_bytes() == out.read_bytes()


def test_malformed_lines_are_reported_and_the_rest_scored(
    capsys: pytest.CaptureFixture[str], small_shipped: Path, events: Any, tmp_path: Path
) -> None:
    _, _, records = events
    lines = [json.dumps(r) for r in records[:50]]
    lines.insert(3, "{not json")
    lines.insert(10, json.dumps({"eventName": "ListUsers"}))  # no eventTime
    lines.insert(20, "[1, 2]")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.csv"
    code, stdout, stderr = run_main(
        capsys, ["security", "score", "--events", str(bad), "--out", str(out), "--json"]
    )
    assert code == 0
    result = json.loads(stdout)
    assert result["malformed"] == 3 and result["scored"] == 50
    assert [m["line"] for m in result["malformed_lines"]] == [4, 11, 21]
    assert "line 4" in stderr and "line 11" in stderr and "line 21" in stderr
    assert len(list(csv.DictReader(out.open()))) == 50


def test_records_object_is_accepted(
    capsys: pytest.CaptureFixture[str], small_shipped: Path, events: Any, tmp_path: Path
) -> None:
    _, _, records = events
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": records[:40]}))
    code, stdout, _ = run_main(
        capsys,
        ["security", "score", "--events", str(path), "--out", str(tmp_path / "o.csv"), "--json"],
    )
    assert code == 0 and json.loads(stdout)["scored"] == 40


@pytest.mark.parametrize(
    ("content", "labels", "needle"),
    [
        (None, None, "no such file"),
        ("{bad\n", None, "no readable CloudTrail record"),
        ("ok", "eventID,label\nx,evil\n", "line 2"),
        ("ok", "id,kind\nx,normal\n", "eventID,label"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    events: Any,
    tmp_path: Path,
    content: str | None,
    labels: str | None,
    needle: str,
) -> None:
    ev_path, _, _ = events
    ev = tmp_path / "e.jsonl"
    if content == "ok":
        ev = ev_path
    elif content is not None:
        ev.write_text(content)
    args = ["security", "score", "--events", str(ev), "--out", str(tmp_path / "o.csv")]
    if labels is not None:
        lab = tmp_path / "l.csv"
        lab.write_text(labels)
        args += ["--labels", str(lab)]
    code, _, stderr = run_main(capsys, args)
    assert code == 2
    assert needle in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "o.csv").exists()


def test_logs_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("5 5 5 22 11 9 11 9 11 9 26 26 26 23 23 23 21 21 21\nx y\n\n1 1 1 1\n")
    code, stdout, stderr = run_main(capsys, ["security", "logs", "--sessions", str(path), "--json"])
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["sessions"] == 2 and result["malformed"] == 1
    assert result["malformed_lines"][0]["line"] == 2
    assert result["split"]["f1"] >= 0.95


def test_logs_out_a_folder_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("5 5 5 22 11 9\n")
    folder = tmp_path / "results"
    folder.mkdir()
    args = ["security", "logs", "--sessions", str(path), "--out", str(folder)]
    code, stdout, stderr = run_main(capsys, args)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "--out" in stderr and "is a folder" in stderr
    assert list(folder.iterdir()) == []
