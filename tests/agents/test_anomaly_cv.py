"""``opsbench anomaly cv``: folds by file, selection on the other folds only, NAB's scores.

Small synthetic corpora in NAB layout (tmp dirs, 600 rows a file) keep every test to
seconds. What is checked: folds are a stratified, seeded partition; the selection for a
fold reads none of its files (instrumented) and does not change when the held-out files
change (although a selection that saw them would); a fold's scores are bench.nab's scores
of the same files; every registered detector's search space builds; bad input is one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.anomaly.base import AnomalyDetector, Observation, value_of
from agents.registry import DETECTORS
from bench import anomaly_cv
from bench.anomaly_cv import (
    DetectorSpace,
    Params,
    ScoreTable,
    assign_folds,
    cross_validate,
    kind_of,
    prequential_scores,
    select,
)
from bench.nab import PROFILES, ScoredFile, optimise, score_at, score_corpus
from bench.nab_data import NabSeries, load_corpus
from bench.nab_run import run_detector
from opsbench_testing import assert_one_line_error, run_main

ROWS = 600
START = datetime(2014, 1, 1)
STEP = timedelta(minutes=5)
FORMAT = "%Y-%m-%d %H:%M:%S"

# category -> files; windows: spikes at these rows get a window of rows [spike - 5, spike + 20]
CORPUS: dict[str, dict[str, list[int]]] = {
    "artificialNoAnomaly": {"flat.csv": [], "noisy.csv": []},
    "artificialWithAnomaly": {"jump.csv": [300], "spike.csv": [450]},
    "realOps": {"cpu_a.csv": [250], "cpu_b.csv": [400], "net_a.csv": [200, 500]},
}


def stamp(row: int) -> str:
    return (START + row * STEP).strftime(FORMAT)


def write_corpus(
    root: Path,
    spikes: Mapping[str, list[int]] | None = None,
    window_offset: Mapping[str, int] | None = None,
    heights: Mapping[str, float] | None = None,
) -> tuple[Path, Path]:
    """A NAB-layout folder and windows JSON: a daily sine with noise per file, a spike (of
    +40 unless ``heights`` says otherwise) at each listed row and a window
    ``[row - 5, row + 20]`` (shifted by ``window_offset``)."""
    data = root / "data"
    windows: dict[str, list[list[str]]] = {}
    rng = np.random.default_rng(7)
    for category, files in CORPUS.items():
        for name, default_spikes in files.items():
            key = f"{category}/{name}"
            rows = (spikes or {}).get(key, default_spikes)
            values = 10 + 3 * np.sin(2 * np.pi * np.arange(ROWS) / 288) + rng.normal(0, 0.3, ROWS)
            for r in rows:
                values[r] += (heights or {}).get(key, 40.0)
            shift = (window_offset or {}).get(key, 0)
            windows[key] = [[stamp(r - 5 + shift), stamp(r + 20 + shift)] for r in rows]
            (data / category).mkdir(parents=True, exist_ok=True)
            lines = ["timestamp,value", *(f"{stamp(i)},{v:.4f}" for i, v in enumerate(values))]
            (data / key).write_text("\n".join(lines) + "\n")
    wfile = root / "windows.json"
    wfile.write_text(json.dumps(windows))
    return data, wfile


def cv_cli(
    capsys: pytest.CaptureFixture[str], data: Path, wfile: Path, *extra: str
) -> tuple[int, str, str]:
    args = ["anomaly", "cv", "--data", str(data), "--windows", str(wfile), *extra]
    return run_main(capsys, args)


# ------------------------------------------------------------------------------- folds

NAB_LIKE = (
    [f"artificialNoAnomaly/n{i}.csv" for i in range(5)]
    + [f"artificialWithAnomaly/a{i}.csv" for i in range(6)]
    + [f"realAWSCloudwatch/r{i:02d}.csv" for i in range(17)]
)


@pytest.mark.parametrize("folds", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_folds_are_a_stratified_seeded_partition(folds: int, seed: int) -> None:
    split = assign_folds(NAB_LIKE, folds, seed)
    assert len(split) == folds
    assert sorted(k for fold in split for k in fold) == sorted(NAB_LIKE)  # a partition
    for fold in split:
        assert {kind_of(k) for k in fold} == {"artificial", "real"}
    for category in ("artificialNoAnomaly", "artificialWithAnomaly", "realAWSCloudwatch"):
        counts = [sum(k.startswith(category) for k in fold) for fold in split]
        assert max(counts) - min(counts) <= 1  # each category spread evenly
    assert assign_folds(list(reversed(NAB_LIKE)), folds, seed) == split  # deterministic
    assert any(assign_folds(NAB_LIKE, folds, s) != split for s in range(seed + 1, seed + 4))


def test_folds_of_a_corpus_without_artificial_files() -> None:
    keys = [f"mine/m{i}.csv" for i in range(6)]
    split = assign_folds(keys, 3, 0)
    assert sorted(len(f) for f in split) == [2, 2, 2]


# ---------------------------------------------------------------------- selection is blind


class LaggedSpike(AnomalyDetector):
    """Fires (score 1) ``lag`` rows after a value of 30 or more; 0 elsewhere."""

    name = "lagged-spike"

    def __init__(self, *, lag: int = 0) -> None:
        self.lag = lag
        self._n = 0
        self._spikes: set[int] = set()

    def get_params(self) -> dict[str, Any]:
        return {"lag": self.lag}

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        return {"lag": [0, 30]}

    def score_one(self, x: Observation) -> float:
        if self.lag == 0:
            return 1.0 if value_of(x) >= 30 else 0.0
        return 1.0 if self._n - self.lag in self._spikes else 0.0

    def learn_one(self, x: Observation) -> None:
        if value_of(x) >= 30:
            self._spikes.add(self._n)
        self._n += 1


def build_lagged(params: Mapping[str, Any]) -> AnomalyDetector:
    return LaggedSpike(**params)


LAGGED = DetectorSpace("lagged-spike", build_lagged, LaggedSpike.search_space(), {"lag": 0})


def cv_lagged(root: Path, **perturb: Any) -> tuple[list[NabSeries], Any, ScoreTable]:
    data, wfile = write_corpus(root, **perturb)
    corpus, _ = load_corpus(data, wfile)
    table = ScoreTable.run(LAGGED, corpus)
    folds = assign_folds([s.key for s in corpus], 2, 0)
    return corpus, cross_validate(table, LAGGED.candidates(), folds, detector="lag"), table


def test_selection_does_not_change_with_the_held_out_fold(tmp_path: Path) -> None:
    """Rewrite fold 1's files (more spikes, windows where only ``lag=30`` hits them): fold 1's
    selection, made on fold 2, is unchanged; a selection that saw fold 1 would change."""
    keys = [f"{c}/{f}" for c, files in CORPUS.items() for f in files]
    held_out = assign_folds(keys, 2, 0)[0]
    spikes = {k: [150, 300, 450] for k in held_out}
    _, base, _ = cv_lagged(tmp_path / "base")
    _, moved, table = cv_lagged(
        tmp_path / "moved", spikes=spikes, window_offset=dict.fromkeys(held_out, 28)
    )
    assert base.folds[0].files == moved.folds[0].files == held_out
    assert base.folds[0].selection == moved.folds[0].selection
    assert dict(moved.folds[0].selection.params) == {"lag": 0}
    std = "standard"
    assert moved.folds[0].optimised[std].normalised != base.folds[0].optimised[std].normalised
    # Seeing the held-out files would have chosen otherwise (the shipped selection sees all).
    assert dict(select(table, LAGGED.candidates()).params) == {"lag": 30}
    assert dict(moved.shipped.params) == {"lag": 30}


def test_selection_never_reads_the_scored_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record every file the selection step reads scores of; the scored fold is never one."""
    reads: list[set[str]] = []  # per call of select: the files it read
    current: set[str] | None = None
    real_select, real_files = anomaly_cv.select, ScoreTable.files

    def recording_select(table: ScoreTable, *args: Any, **kwargs: Any) -> Any:
        nonlocal current
        current = set()
        try:
            return real_select(table, *args, **kwargs)
        finally:
            reads.append(current)
            current = None

    def recording_files(self: ScoreTable, params: Params) -> list[ScoredFile]:
        out = real_files(self, params)
        if current is not None:
            current.update(f.name for f in out)
        return out

    monkeypatch.setattr(anomaly_cv, "select", recording_select)
    monkeypatch.setattr(ScoreTable, "files", recording_files)
    data, wfile = write_corpus(tmp_path)
    result = anomaly_cv.evaluate(data, wfile, ["windowed-gaussian"], folds=2, seed=3)
    folds = result["detectors"]["windowed-gaussian"]["folds"]
    everything = {k for fold in result["fold_files"] for k in fold}
    assert len(reads) == len(folds) + 1
    for fold, read in zip(folds, reads, strict=False):
        scored = set(fold["files"])
        assert read and not read & scored
        assert read == everything - scored  # and every training file was used
    assert reads[-1] == everything  # the shipped selection: the whole corpus


# ------------------------------------------------------------- scores are bench.nab's scores


def fresh_scores(name: str, params: Mapping[str, Any], s: NabSeries) -> np.ndarray[Any, Any]:
    """Prequential scores of a fresh detector, written out here (no bench.anomaly_cv code)."""
    det = DETECTORS.make(name, params)
    return np.array(
        [
            det.score_learn_one({"value": v, "timestamp": t.replace(tzinfo=UTC).timestamp()})
            for t, v in zip(s.timestamps, s.values.tolist(), strict=True)
        ]
    )


def test_fold_scores_are_the_nab_scorer_on_the_same_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [f"{c}/{f}" for c, files in CORPUS.items() for f in files]
    # spikes of 4 to 28: scores below 1, so thresholds differ between training and fold
    data, wfile = write_corpus(tmp_path, heights={k: 4.0 * (i + 1) for i, k in enumerate(keys)})
    code, out, err = cv_cli(
        capsys, data, wfile, "--detector", "windowed-gaussian", "--folds", "2", "--json"
    )
    moved_thresholds = 0
    assert code == 0, err
    result = json.loads(out)
    corpus = {s.key: s for s in load_corpus(data, wfile)[0]}
    det = result["detectors"]["windowed-gaussian"]
    candidates = DetectorSpace.registered("windowed-gaussian").candidates()
    assert det["candidates"] == len(candidates) == 6
    for fold in det["folds"]:
        params = fold["params"]
        held = [
            ScoredFile(k, fresh_scores("windowed-gaussian", params, corpus[k]), corpus[k].windows)
            for k in fold["files"]
        ]
        for name, r in score_corpus(held).items():
            assert fold["optimised"][name]["score"] == pytest.approx(r.normalised, abs=1e-4)
            assert fold["optimised"][name]["threshold"] == r.threshold
        # the selection, redone from scratch on the training files
        train = [k for k in corpus if k not in fold["files"]]
        by_candidate = {
            c: [
                ScoredFile(
                    k, fresh_scores("windowed-gaussian", dict(c), corpus[k]), corpus[k].windows
                )
                for k in train
            ]
            for c in candidates
        }
        scores = [
            optimise(fs, "standard", PROFILES["standard"]).normalised
            for fs in by_candidate.values()
        ]
        chosen = candidates[int(np.argmax(scores))]  # first maximum: the earlier candidate
        assert params == dict(chosen)
        for name, profile in PROFILES.items():
            theta = optimise(by_candidate[chosen], name, profile).threshold
            assert fold["training_thresholds"][name] == theta
            at = score_at(held, name, profile, theta)
            assert fold["transferred"][name]["score"] == pytest.approx(at.normalised, abs=1e-4)
            moved_thresholds += theta != fold["optimised"][name]["threshold"]
    assert moved_thresholds  # the two modes differ somewhere, so both were checked
    assert sorted(k for f in result["fold_files"] for k in f) == sorted(corpus)


@pytest.mark.parametrize("name", ["novelty-ensemble", "windowed-gaussian"])
def test_default_candidate_scores_equal_opsbench_anomaly_nab(tmp_path: Path, name: str) -> None:
    data, wfile = write_corpus(tmp_path)
    s = load_corpus(data, wfile)[0][-1]
    space = DetectorSpace.registered(name)
    default = space.candidates()[0]
    scores = prequential_scores(space.build(dict(default)), anomaly_cv.epoch_seconds(s), s.values)
    np.testing.assert_array_equal(scores, run_detector(name, s))


def test_cli_table_and_deterministic_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, wfile = write_corpus(tmp_path)
    runs = []
    for workers in ("1", "2"):
        code, out, err = cv_cli(
            capsys,
            data,
            wfile,
            "--detector",
            "windowed-gaussian",
            "--folds",
            "2",
            "--seed",
            "4",
            "--workers",
            workers,
            "--json",
        )
        assert code == 0, err
        result = json.loads(out)
        assert result["window_keys_without_data"] == 0
        runs.append((result["fold_files"], result["detectors"]))
    assert runs[0][0] == runs[1][0]  # same folds for the seed
    for a, b in zip(
        runs[0][1]["windowed-gaussian"]["folds"],
        runs[1][1]["windowed-gaussian"]["folds"],
        strict=True,
    ):
        assert a == b  # the process pool gives the same runs
    windows = json.loads(wfile.read_text())
    wfile.write_text(json.dumps({**windows, "realOps/elsewhere.csv": []}))
    code, out, err = cv_cli(capsys, data, wfile, "--detector", "windowed-gaussian", "--folds", "2")
    assert code == 0, err
    assert "1 window keys had no data file here" in out
    assert "mean" in out and "sd" in out and "shipped parameters" in out
    assert "fold 2, chosen on the other folds: window=" in out


# ------------------------------------------------------------------ search spaces, bad input


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_registered_search_space_builds(name: str) -> None:
    space = DetectorSpace.registered(name)
    candidates = space.candidates()
    assert candidates[0] == space.default_params()
    assert (
        len(set(candidates))
        == len(candidates)
        == int(np.prod([len(v) for v in space.space.values()]))
    )
    for params in candidates:
        det = space.build(dict(params))
        assert {k: det.get_params()[k] for k, _ in params} == dict(params)


def test_a_search_space_without_the_default_is_refused() -> None:
    with pytest.raises(ValueError, match="hold the default"):
        DetectorSpace("lag", build_lagged, {"lag": [5, 30]}, {"lag": 0})
    with pytest.raises(ValueError, match="not a parameter"):
        DetectorSpace("lag", build_lagged, {"delay": [0]}, {"lag": 0})


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, wfile = write_corpus(tmp_path)
    windows = json.loads(wfile.read_text())

    def bad(*extra: str, data: Path = data, wfile: Path = wfile) -> str:
        code, out, err = cv_cli(capsys, data, wfile, "--detector", "windowed-gaussian", *extra)
        assert out == ""
        return assert_one_line_error(code, out, err)

    assert "unknown detector 'nope'" in bad("--detector", "nope")
    assert "only 4 artificial files" in bad("--folds", "5")
    assert "only 3 real files" in bad("--folds", "4")
    assert "--folds" in bad("--folds", "1")
    assert "--seed" in bad("--seed", "-1")
    assert "not a folder" in bad(data=tmp_path / "missing")
    assert "windows file not found" in bad(wfile=tmp_path / "none.json")
    wfile.write_text(json.dumps({k: v for k, v in windows.items() if k != "realOps/cpu_a.csv"}))
    assert "no windows for this data file" in bad()
    # one file with windows: one of the two folds cannot be scored
    one = {k: (v if k == "realOps/cpu_b.csv" else []) for k, v in windows.items()}
    wfile.write_text(json.dumps(one))
    assert "fold 2" in bad("--folds", "2") and "no labelled window" in bad("--folds", "2")
    wfile.write_text(json.dumps(windows))
    csv = data / "realOps" / "cpu_a.csv"
    lines = csv.read_text().splitlines()
    lines[9] = f"{stamp(8)},inf"
    csv.write_text("\n".join(lines) + "\n")
    assert "line 10" in bad() and "finite" in bad()
