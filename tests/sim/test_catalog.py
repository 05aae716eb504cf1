"""Tests of sim.catalog: loading and validating the on-demand catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.catalog import InstanceType, load_catalogue, lookup
from sim.errors import InputError

DATA = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "spot"
CATALOGUE = DATA / "on_demand_prices.csv"
HEADER = "instance_type,region,vcpus,memory_gib,gpu,on_demand_usd_per_hour,operating_system,source"


def _write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "catalogue.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _error(path: Path, region: str = "us-east-1") -> InputError:
    with pytest.raises(InputError) as info:
        load_catalogue(path, region=region)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)
    return info.value


def test_loads_c5a_2xlarge_us_east_1() -> None:
    catalogue = load_catalogue(CATALOGUE, region="us-east-1")
    item = catalogue["c5a.2xlarge"]
    assert item == InstanceType("c5a.2xlarge", 8, 16.0, 0.308)
    assert isinstance(item.vcpus, int)


def test_keeps_only_the_region() -> None:
    east = load_catalogue(CATALOGUE, region="us-east-1")
    south = load_catalogue(CATALOGUE, region="ap-south-1")
    assert south["c5a.2xlarge"].on_demand_usd_per_hour == 0.188
    assert "p3.8xlarge" in east
    assert all(item.on_demand_usd_per_hour > 0 and item.vcpus > 0 for item in east.values())


def test_unknown_region_lists_regions() -> None:
    err = _error(CATALOGUE, region="mars-north-1")
    assert err.field == "region"
    assert "us-east-1" in err.allowed


def test_missing_file(tmp_path: Path) -> None:
    err = _error(tmp_path / "nope.csv")
    assert "not found" in err.problem


def test_missing_column(tmp_path: Path) -> None:
    header = HEADER.replace(",on_demand_usd_per_hour", "")
    path = _write(tmp_path, "c5.large,us-east-1,2,4,,Linux,x", header=header)
    err = _error(path)
    assert err.field == "line 1"
    assert "on_demand_usd_per_hour" in err.problem


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("c5.large,us-east-1,2,4,,abc,Linux,x", "on_demand_usd_per_hour"),
        ("c5.large,us-east-1,2,4,,0,Linux,x", "on_demand_usd_per_hour"),
        ("c5.large,us-east-1,2,4,,-0.1,Linux,x", "on_demand_usd_per_hour"),
        ("c5.large,us-east-1,2,4,,nan,Linux,x", "on_demand_usd_per_hour"),
        ("c5.large,us-east-1,two,4,,0.085,Linux,x", "vcpus"),
        ("c5.large,us-east-1,0,4,,0.085,Linux,x", "vcpus"),
        ("c5.large,us-east-1,2.5,4,,0.085,Linux,x", "vcpus"),
        ("c5.large,us-east-1,2,-4,,0.085,Linux,x", "memory_gib"),
    ],
)
def test_bad_row_names_line_and_column(tmp_path: Path, row: str, column: str) -> None:
    path = _write(tmp_path, "c5.xlarge,us-east-1,4,8,,0.17,Linux,x", row)
    err = _error(path)
    assert err.field == "line 3"
    assert column in err.problem


def test_duplicate_type_is_an_error(tmp_path: Path) -> None:
    row = "c5.large,us-east-1,2,4,,0.085,Linux,x"
    err = _error(_write(tmp_path, row, row))
    assert err.field == "line 3"
    assert "duplicate" in err.problem


def test_other_regions_do_not_clash(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "c5.large,us-east-1,2,4,,0.085,Linux,x", "c5.large,us-west-2,2,4,,0.09,Linux,x"
    )
    assert load_catalogue(path, region="us-west-2")["c5.large"].on_demand_usd_per_hour == 0.09


def test_lookup_known_and_unknown() -> None:
    catalogue = load_catalogue(CATALOGUE, region="us-east-1")
    assert lookup(catalogue, "c5.large", source="s.yaml", field="f").vcpus == 2
    with pytest.raises(InputError) as info:
        lookup(catalogue, "c5a.2xlarg", source="s.yaml", field="cluster.pools[0].instance_type")
    err = info.value
    text = str(err)
    assert "\n" not in text
    assert text.startswith("s.yaml: cluster.pools[0].instance_type: ")
    assert "instance type 'c5a.2xlarg' is not in the on-demand catalogue for us-east-1" in text
    assert "c5a.2xlarge" in err.allowed
    assert f"({len(catalogue)} types)" in err.allowed


def test_lookup_on_a_plain_dict() -> None:
    catalogue = {"m5.large": InstanceType("m5.large", 2, 8.0, 0.096)}
    with pytest.raises(InputError, match="this region"):
        lookup(catalogue, "zz9.huge", source="--flag", field="")


_names = st.from_regex(r"[a-z][a-z0-9]{0,3}\.[a-z0-9]{1,8}", fullmatch=True)
_rows = st.dictionaries(
    _names,
    st.tuples(
        st.integers(1, 448),
        st.floats(0, 4096, allow_nan=False, allow_subnormal=False),
        st.floats(1e-4, 1000, allow_nan=False, allow_subnormal=False),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(rows=_rows)
def test_round_trip(
    tmp_path_factory: pytest.TempPathFactory, rows: dict[str, tuple[int, float, float]]
) -> None:
    lines = [f"{n},eu-west-1,{v},{m!r},,{p!r},Linux,x" for n, (v, m, p) in rows.items()]
    path = _write(tmp_path_factory.mktemp("cat"), *lines)
    catalogue = load_catalogue(path, region="eu-west-1")
    assert catalogue == {n: InstanceType(n, v, m, p) for n, (v, m, p) in rows.items()}
