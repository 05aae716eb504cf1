"""``opsbench models`` and the train → register → replay path on the local MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelCard, ModelRef, folder_digest
from opsbench_testing import assert_one_line_error, run_main


def _artefact(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "weights.json").write_text(text)
    return folder


def _register(registry_dir: Path, tmp_path: Path, text: str, **card: object) -> int:
    registry = open_registry(registry_dir)
    folder = _artefact(tmp_path / f"artefact-{text}", text)
    fields = {"agent": "anomaly", "artefact_sha256": folder_digest(folder), **card}
    return registry.register("anomaly-test", folder, ModelCard(**fields)).version  # type: ignore[arg-type]


def test_train_scaling_registers_a_version_mlflow_lists_and_the_replay_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's acceptance path: train, list (ours and MLflow's own client), replay."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, ["train", "scaling", "--scenario", "default", "--json"])
    assert code == 0, err
    trained = json.loads(out)
    assert trained["ref"] == "scaling-default/1" and trained["aliases"] == ["champion"]

    code, out, err = run_main(capsys, ["models", "list", "--json"])
    assert code == 0, err
    (listed,) = json.loads(out)
    assert {k: listed[k] for k in ("name", "version", "aliases", "agent")} == {
        "name": "scaling-default", "version": 1, "aliases": ["champion"], "agent": "scaling"
    }  # fmt: skip

    from mlflow import MlflowClient

    uri = f"sqlite:///{(tmp_path / '.opsbench' / 'models' / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    (mv,) = client.search_model_versions("name = 'scaling-default'")
    assert int(mv.version) == 1 and mv.tags["agent"] == "scaling"
    assert int(client.get_model_version_by_alias("scaling-default", "champion").version) == 1
    run = client.get_run(mv.run_id)
    assert run.data.metrics["val_mase"] == pytest.approx(trained["metrics"]["val_mase"])

    # the version carries the drift reference of the features it was trained on
    from agents.lifecycle.drift import DriftReference
    from agents.scaling.model import load_model

    registry = open_registry(tmp_path / ".opsbench" / "models")
    folder = registry.fetch(registry.resolve(ModelRef.parse("scaling-default")), tmp_path / "f")
    reference = DriftReference.load(folder)
    assert reference.names == ("now_vs_day_ago", "now_vs_week_ago")
    assert "lag_0" in load_model(folder).metadata.feature_columns
    rows = registry.resolve(ModelRef.parse("scaling-default")).card.params["n_samples"]["forecast"]
    assert all(0 < f.n_train <= rows for f in reference.features)
    assert max(f.n_train for f in reference.features) >= 0.99 * rows  # a few zero-load days

    code, out, err = run_main(capsys, ["replay", "default", "--policy", "predictive", "--json"])
    assert code == 0, err
    assert json.loads(out)["model_version"] == "scaling-default/1"
    assert len(open_registry(tmp_path / ".opsbench" / "models").versions()) == 1  # reused


def test_promote_rollback_and_diff(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    one = _register(reg, tmp_path, "1", metrics={"nab": 60.0}, params={"threshold": 0.5},
                    data_end="2026-01-01T00:00:00")  # fmt: skip
    two = _register(reg, tmp_path, "2", metrics={"nab": 65.5}, params={"threshold": 0.7},
                    data_end="2026-02-01T00:00:00", parent="anomaly-test/1")  # fmt: skip
    base = ["--registry", str(reg), "--json"]
    code, out, err = run_main(capsys, ["models", "promote", "anomaly-test", str(one), *base])
    assert code == 0 and json.loads(out)["aliases"] == ["champion"], err
    code, out, err = run_main(capsys, ["models", "promote", "anomaly-test", str(two), *base])
    assert code == 0 and json.loads(out)["version"] == 2, err
    code, out, err = run_main(capsys, ["models", "list", "anomaly-test", *base])
    assert [v["aliases"] for v in json.loads(out)] == [[], ["champion"]]

    code, out, err = run_main(capsys, ["models", "diff", "anomaly-test/1", "anomaly-test", *base])
    assert code == 0, err
    rows = {r["field"]: r for r in json.loads(out)["differences"]}
    assert rows["metrics.nab"]["change"] == pytest.approx(5.5)
    assert rows["params.threshold"]["a"] == 0.5 and rows["params.threshold"]["b"] == 0.7
    assert rows["data_end"]["b"] == "2026-02-01T00:00:00" and "artefact_sha256" in rows

    code, out, err = run_main(capsys, ["models", "rollback", "anomaly-test", *base])
    assert code == 0 and json.loads(out)["version"] == 1, err
    assert_one_line_error(
        *run_main(capsys, ["models", "rollback", "anomaly-test", *base]),
        "no earlier champion",
    )


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["show", "Not_A_Name"], ["REF", "not a model reference", "NAME@ALIAS"]),
        (["show", "nothing-here"], ["no model named 'nothing-here'"]),
        (["show", "anomaly-test/9"], ["has no version 9", "one of 1"]),
        (["show", "anomaly-test@challenger"], ["no version with alias 'challenger'"]),
        (["promote", "anomaly-test", "7"], ["has no version 7"]),
        (["rollback", "anomaly-test"], ["no earlier champion"]),
        (["diff", "anomaly-test/1", "x@"], ["B", "not a model reference"]),
    ],
)
def test_bad_references_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    reg = tmp_path / "reg"
    _register(reg, tmp_path, "1")
    assert_one_line_error(*run_main(capsys, ["models", *args, "--registry", str(reg)]), *needles)


def test_a_tampered_artefact_is_refused_before_it_is_read(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    _register(reg, tmp_path, "1")
    registry = open_registry(reg)
    version = registry.resolve(ModelRef("anomaly-test", None, 1))
    (stored,) = (reg / "mlartifacts").rglob("weights.json")
    stored.write_text("2")
    from sim.errors import InputError

    with pytest.raises(InputError, match="does not match the digest recorded at registration"):
        registry.fetch(version, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("weights.json"))


def test_an_unknown_registry_scheme_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(
        *run_main(capsys, ["models", "list", "--registry", "s3://bucket/models"]),
        "--registry", "unknown registry scheme 's3'", "sagemaker://",
    )  # fmt: skip
