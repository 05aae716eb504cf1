"""``opsbench bench sizing-cv``: the rule that picks the composed controller's quantile, a
fold never reading its held-out trace, and one real replay cell."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bench import sizing_cv
from bench.sizing_cv import COMPOSED, FORESIGHT, RIVAL, Cell, CellSpec, choose_sizing, fold


def _cells(table: dict[str, dict[float | None, tuple[float, float]]]) -> list[Cell]:
    """Cells from ``{trace: {quantile or None (rival): (cost, slo)}}`` (settings without a
    budget quantile); foresight at the rival's cost."""
    out = []
    for trace, row in table.items():
        for q, (cost, slo) in row.items():
            policy, sizing = (RIVAL, None) if q is None else (COMPOSED, (q, None))
            out.append(Cell(trace, policy, sizing, cost, slo, round((1 - slo) * 10_000), 7.0))
        cost, slo = row[None]
        out.append(Cell(trace, FORESIGHT, None, cost * 0.8, 1.0, 0, 7.0))
    return out


PLAIN = ((0.5, None), (0.75, None), (0.9, None))
TABLE = {
    # a: only 0.9 reaches 99.9%; b: everything does; c: nothing does (ignored for the line)
    "a": {None: (100.0, 0.98), 0.5: (90.0, 0.995), 0.75: (95.0, 0.998), 0.9: (105.0, 0.9993)},
    "b": {None: (200.0, 1.0), 0.5: (150.0, 1.0), 0.75: (160.0, 1.0), 0.9: (170.0, 1.0)},
    "c": {None: (50.0, 0.96), 0.5: (45.0, 0.97), 0.75: (48.0, 0.975), 0.9: (60.0, 0.99)},
    "d": {None: (80.0, 0.999), 0.5: (60.0, 0.9995), 0.75: (70.0, 0.9999), 0.9: (75.0, 1.0)},
}


def test_the_cheapest_quantile_that_reaches_the_line_wherever_it_can_be_reached() -> None:
    cells = _cells(TABLE)
    assert choose_sizing(cells, ["b", "d"], PLAIN) == (0.5, None)  # all reach it: the cheapest
    assert choose_sizing(cells, ["a", "b"], PLAIN) == (0.9, None)  # a needs 0.9
    assert choose_sizing(cells, ["b", "c"], PLAIN) == (
        0.5,
        None,
    )  # c cannot: b alone
    assert choose_sizing(cells, ["c"], PLAIN) == (
        0.5,
        None,
    )  # nowhere in reach: cheapest
    odd = _cells({"e": {None: (10.0, 0.99), 0.5: (9.0, 0.9995), 0.75: (9.5, 0.998),
                        0.9: (9.9, 0.9985)}})  # fmt: skip
    # a needs 0.9, e only 0.5 reaches: no quantile reaches it on both: best worst case
    assert choose_sizing([*cells, *odd], ["a", "e"], PLAIN) == (0.9, None)


def test_a_fold_scores_the_held_out_trace_at_the_quantile_chosen_without_it() -> None:
    cells = _cells(TABLE)
    result = fold(cells, "d", PLAIN)
    assert result["trained_on"] == ["a", "b", "c"] and result["sizing"] == "0.9"
    assert result["cost_usd"] == 75.0 and result["reactive_usd"] == 80.0
    assert result["met"]  # 75 < 80 at 100% >= max(99.9%, reactive's 99.9%)
    assert fold(cells, "a", PLAIN)["met"] is False  # chosen 0.5 misses the line


def test_the_choice_never_reads_the_held_out_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    cells = _cells(TABLE)
    read: list[str] = []
    original = sizing_cv._composed

    def spy(cells_: Sequence[Cell], trace: str, z: tuple[float, float | None]) -> Cell:
        read.append(trace)
        return original(cells_, trace, z)

    monkeypatch.setattr(sizing_cv, "_composed", spy)
    choose_sizing(cells, ["a", "b", "c"], PLAIN)
    assert read and "d" not in read
    # and changing the held-out trace's figures does not change the choice
    poisoned = [
        Cell(c.trace, c.policy, c.sizing, 1e9, 0.0, 10_000, 7.0) if c.trace == "d" else c
        for c in cells
    ]
    assert fold(poisoned, "d", PLAIN)["sizing"] == "0.9"


def test_every_trace_has_the_rival_each_quantile_and_foresight() -> None:
    both = ((0.5, None), (0.5, 0.9))
    todo = sizing_cv.specs(("nasa-http", "aws-elb"), both, 1.0, "m", "s")
    assert [(s.trace, s.policy, s.sizing) for s in todo] == [
        ("nasa-http", RIVAL, None), ("nasa-http", COMPOSED, both[0]),
        ("nasa-http", COMPOSED, both[1]), ("nasa-http", FORESIGHT, None),
        ("aws-elb", RIVAL, None), ("aws-elb", COMPOSED, both[0]), ("aws-elb", COMPOSED, both[1]),
        ("aws-elb", FORESIGHT, None),
    ]  # fmt: skip
    assert sizing_cv.sizing_params(both[1]) == {"quantile": 0.5, "budget_quantile": 0.9}
    assert [sizing_cv.label(z) for z in both] == ["0.5", "0.5→0.9"]
    assert all(sizing_cv.trace_path(t).is_file() for t in sizing_cv.TRACES)


def test_a_cell_is_the_replay_of_the_trace_on_the_default_fleet(tmp_path: object) -> None:
    spec = CellSpec("aws-elb", RIVAL, None, 0.25, str(tmp_path), str(tmp_path) + "/s.duckdb")
    cell = sizing_cv.run_cell(spec)
    assert cell.trace == "aws-elb" and cell.policy == RIVAL and cell.sim_days == 0.25
    assert cell.cost_usd > 0 and 0.0 <= cell.slo_attainment <= 1.0
    assert cell == sizing_cv.run_cell(spec)  # deterministic


def test_the_command_prints_each_held_out_trace_and_the_whole_split_pick(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsbench_testing import run_main

    cells = _cells(TABLE)
    calls: list[dict[str, object]] = []

    def fake(**kwargs: object) -> dict[str, object]:
        calls.append(kwargs)
        folds = [fold(cells, t, PLAIN) for t in TABLE]
        return {"policy": COMPOSED, "folds": folds, "met": sum(f["met"] for f in folds),
                "whole_split_sizing": "0.9"}  # fmt: skip

    monkeypatch.setattr(sizing_cv, "sizing_cv", fake)
    code, out, err = run_main(capsys, ["bench", "sizing-cv", "--executor", "serial", "--days", "2"])
    assert code == 0, err
    assert calls[0]["days"] == 2.0
    assert all(t in out for t in TABLE) and "0.9" in out
    assert "met on 2 of 4 held-out traces; the same rule on all four picks 0.9" in out
