"""Scenario files that used to hang the tool, eat memory or print a traceback: each gets one
line naming the file and the field, exit 2, and nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from opsbench_testing import (
    assert_nothing_written,
    assert_one_line_error,
    run_main,
    shipped_doc,
)

from scenarios import package_dir
from sim.scenario import MAX_FAULT_WINDOWS, MAX_NODES_PER_CLUSTER, MAX_NODES_PER_POOL
from sim.scenario_files import MAX_SCENARIO_BYTES, MAX_YAML_NODES

SHIPPED = package_dir()


def replay_fails(
    capsys: pytest.CaptureFixture[str], scenario: Path, tmp_path: Path, *needles: str
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_main(capsys, ["replay", str(scenario), "--out", str(out)])
    assert_one_line_error(code, stdout, stderr, str(scenario), *needles)
    assert_nothing_written(out)


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_a_huge_pool_minimum_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = shipped_doc("default")
    doc["cluster"]["pools"][0].update(min_nodes=100_000_000, max_nodes=100_000_000)
    replay_fails(capsys, write(tmp_path, doc), tmp_path, "cluster.pools[0]",
                 f"{MAX_NODES_PER_POOL}")  # fmt: skip


def test_pools_may_not_add_up_beyond_a_cluster(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = shipped_doc("default")
    for pool in doc["cluster"]["pools"]:
        pool["max_nodes"] = MAX_NODES_PER_POOL
    replay_fails(capsys, write(tmp_path, doc), tmp_path, f"{MAX_NODES_PER_CLUSTER}")


def test_too_many_fault_windows_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = shipped_doc("default")
    doc["faults"]["telemetry_gaps"] = [
        {"start_h": i * 0.01, "duration_h": 0.005} for i in range(MAX_FAULT_WINDOWS + 1)
    ]
    replay_fails(capsys, write(tmp_path, doc), tmp_path, "faults.telemetry_gaps")


def test_an_oversized_scenario_file_is_refused_before_it_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * (MAX_SCENARIO_BYTES // 10 + 1), encoding="utf-8")
    replay_fails(capsys, path, tmp_path, "too large", f"{MAX_SCENARIO_BYTES:,}")


def test_a_yaml_alias_bomb_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 8):  # 10^8 leaves once expanded
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for args in (["scenarios", "show", str(path)], ["replay", str(path)]):
        code, stdout, stderr = run_main(capsys, args)
        assert_one_line_error(code, stdout, stderr, str(path), f"{MAX_YAML_NODES:,}")


def test_a_cyclic_alias_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text("id: &a [1, *a]\n", encoding="utf-8")
    replay_fails(capsys, path, tmp_path, "alias")


def test_deep_nesting_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("id: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    replay_fails(capsys, path, tmp_path, "nested too deeply")


def test_a_binary_scenario_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x00id: x\n\x89PNG\r\n")
    replay_fails(capsys, path, tmp_path, "UTF-8")


def test_a_folder_named_like_a_scenario_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    replay_fails(capsys, folder, tmp_path, "folder")


def test_shipped_scenarios_stay_within_the_bounds() -> None:
    from sim.scenario_files import list_scenarios, load_scenario_file

    for _, path in list_scenarios():
        load_scenario_file(path)  # raises on any bound
