"""``opsbench train anomaly``: a detector and its threshold registered as a version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.anomaly.artefact import DETECTOR_FILE, load_detector
from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelRef
from agents.registry import DEFAULT_DETECTOR
from opsbench_testing import assert_one_line_error, make_nab_corpus, run_main

KEYS = [
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "artificialNoAnomaly/art_flatline.csv",
]


def test_threshold_chosen_on_a_corpus_is_registered_with_its_scores(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data, windows = make_nab_corpus(tmp_path / "nab", KEYS)
    reg = tmp_path / "reg"
    args = ["train", "anomaly", "--detector", "windowed-gaussian", "--data", str(data),
            "--windows", str(windows), "--registry", str(reg), "--json"]  # fmt: skip
    code, out, err = run_main(capsys, args)
    assert code == 0, err
    record = json.loads(out)
    assert record["ref"] == "anomaly-windowed-gaussian/1" and record["agent"] == "anomaly"
    assert set(record["metrics"]) == {
        "nab_standard", "nab_reward_low_FP_rate", "nab_reward_low_FN_rate", "nab_files"
    }  # fmt: skip
    registry = open_registry(reg)
    version = registry.resolve(ModelRef.parse("anomaly-windowed-gaussian"))
    artefact, make = load_detector(registry.fetch(version, tmp_path / "fetched"))
    assert 0 <= make().score_one({"value": 1.0}) <= 1
    assert artefact.detector == "windowed-gaussian"
    assert artefact.threshold == version.card.params["threshold"]
    assert version.card.params["threshold_chosen"].startswith("NAB standard profile")

    # a second version with a given threshold: the challenger, its parent the champion
    code, out, err = run_main(capsys, [*args[:4], "--threshold", "0.9", "--challenger",
                                       "--registry", str(reg), "--json"])  # fmt: skip
    assert code == 0, err
    second = json.loads(out)
    assert second["aliases"] == ["challenger"] and second["parent"] == record["ref"]


def test_without_detector_or_data_the_default_detector_is_registered_at_0_5(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reg = tmp_path / "reg"
    code, out, err = run_main(capsys, ["train", "anomaly", "--registry", str(reg), "--json"])
    assert code == 0, err
    assert json.loads(out)["ref"] == f"anomaly-{DEFAULT_DETECTOR}/1"
    version = open_registry(reg).resolve(ModelRef.parse(f"anomaly-{DEFAULT_DETECTOR}"))
    artefact, _ = load_detector(open_registry(reg).fetch(version, tmp_path / "fetched"))
    assert (artefact.detector, artefact.threshold) == (DEFAULT_DETECTOR, 0.5)
    assert version.card.params["threshold_chosen"] == "default"


def test_a_registered_detector_file_that_names_no_detector_is_one_line(tmp_path: Path) -> None:
    (tmp_path / DETECTOR_FILE).write_text(
        json.dumps({"schema_version": 1, "detector": "nope", "threshold": 0.5})
    )
    from sim.errors import InputError

    with pytest.raises(InputError, match="unknown detector 'nope'"):
        load_detector(tmp_path)


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--detector", "nope"], ["--detector", "nope"]),
        (["--threshold", "0"], ["--threshold"]),
        (["--data", "somewhere"], ["--data", "needs --windows"]),
    ],
)
def test_bad_input_is_one_line_and_registers_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], needles: list[str]
) -> None:
    reg = tmp_path / "reg"
    code, out, err = run_main(capsys, ["train", "anomaly", *extra, "--registry", str(reg)])
    assert_one_line_error(code, out, err, *needles)
    assert not reg.exists()
