"""Fuzz: malformed workload and spot-market files given on the replay command line
(``--trace``, ``--spot-prices``, ``--spot-availability``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import strategies as st

from fuzz.mutations import csv_mutations, json_mutations
from fuzz.outcomes import Tally, fuzz_command, replay_output, stub_plot, write_file
from fuzz.seeds import Seeds
from opsbench_testing import assert_nothing_written, assert_one_line_error, run_main


def _first_value(seed: bytes, value: bytes) -> bytes:
    """The seed trace with its first value replaced."""
    header, first, rest = seed.split(b"\n", 2)
    return b"\n".join([header, first.split(b",")[0] + b"," + value, rest])


KINDS: dict[str, tuple[str, Callable[[bytes], st.SearchStrategy[bytes]], int, float]] = {
    "--trace": ("trace.csv", csv_mutations, 80, 0.65),
    # a price history may list its rows in any order, repeat or omit one (prices are sorted
    # by time, the last of equal times wins) and carries columns the replay does not read
    # (region, az_id beside az, product_description, source): about 45% of the mutations
    # (line edits, edits there) are valid
    "--spot-prices": ("spot_prices.csv", csv_mutations, 40, 0.4),
    "--spot-availability": ("availability.json", json_mutations, 40, 0.75),
}
"""Option -> (seed file name, mutation strategy, examples, least share refused)."""
EXPLICIT: dict[str, Callable[[bytes], list[bytes]]] = {
    # found by the fuzz: a history value of 1.7e308, scaled like the window to peak_rps,
    # overflowed to inf (a RuntimeWarning, then a model trained on inf) (sim/traces.py)
    "--trace": lambda seed: [_first_value(seed, b"1.7e308")],
}
"""Option -> inputs always tried, built from the seed."""


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("option", list(KINDS))
def test_replay_input_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, seeds: Seeds,
    tmp_path: Path, option: str,
) -> None:  # fmt: skip
    name, mutations, examples, refused = KINDS[option]
    tally = Tally(option)
    stub_plot(monkeypatch)
    # --trace replays the shipped default (the brief's command); the spot files replay the
    # small seed scenario, which reads them after far less of its own data
    scenario = "default" if option == "--trace" else str(seeds.scenario)
    args = ["replay", scenario, option, name, "--days", "0.01", "--out", "out", "--json"]
    seed = (seeds.root / name).read_bytes()
    fuzz_command(capsys, tmp_path, tally, mutations(seed), prepare=write_file(name), args=args,
                 examples=examples, explicit=EXPLICIT.get(option, lambda _s: [])(seed),
                 outputs=["out"], complete=replay_output("out"))  # fmt: skip
    tally.assert_mostly(at_least=refused)


def test_trace_spanning_millennia_is_refused(
    capsys: pytest.CaptureFixture[str], seeds: Seeds, tmp_path: Path
) -> None:
    """Found by the fuzz: a last timestamp in the year 9999 on the trace's 5-minute grid made
    a grid of 840 million buckets (numpy tried to allocate 6.25 GiB)."""
    trace = tmp_path / "far.csv"
    trace.write_bytes(seeds.trace.read_bytes() + b"9999-12-31T23:55:00,0.5\n")
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, ["replay", "default", "--trace", str(trace), "--days", "0.01", "--out", str(out)]
    )
    assert_one_line_error(code, stdout, stderr, str(trace), "line 578", "days after the first")
    assert_nothing_written(out)
