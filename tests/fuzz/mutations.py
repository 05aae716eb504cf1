"""Hypothesis strategies that break a valid seed file: byte-, line-, field- and folder-level.

Every strategy takes a small valid seed and draws one mutation of it, so most drawn inputs
are malformed (the command must refuse them) and a few stay valid by chance (the command
must then succeed). Field-level mutations put hostile values where a value was: empty,
``NaN``, ``inf``, negative, overflowing, huge, out-of-range dates, wrong types, 10,000
characters, deep nesting, nulls.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

LONG = "x" * 10_000
HOSTILE_CELLS: tuple[str, ...] = (
    "", " ", "NaN", "nan", "inf", "-inf", "Infinity", "-1", "0", "-0.0", "1e309", "-1e309",
    "123456789012345678901234567890", "1.7e308", "-1.7e308", "1e200", "5e-324", "1e-400",
    "0x1F", "1_000", "\u0663", "true", "null", "[]", "{}", "9999-12-31T23:55:00",
    "0001-01-01T00:00:00", "2023-02-30T00:00:00", "1970-01-01", "2262-04-12T00:00:00",
    "-2019-05-01T00:00:00", "2019-05-01T00:00:00Z",
    "2019-05-01T00:00:00+14:00", LONG, "\x00", "\ufeff", "\u202e", '"', "'", "\t", "a,b",
)  # fmt: skip
"""Text put into a CSV cell (or a YAML/JSON string)."""
DEEP_MARK = "__deep_nesting__"
DEEP_TEXT = "[" * 100_000 + "]" * 100_000
HOSTILE_VALUES: tuple[Any, ...] = (
    None, True, False, "", "NaN", "inf", -1, 0, -1e-9, 1e308, 10**30, 2**63, -(2**63) - 1,
    float("nan"), float("inf"), float("-inf"), [], {}, [None], {"": None}, LONG,
    "9999-12-31T23:59:59", "0001-01-01T00:00:00", DEEP_MARK,
)  # fmt: skip
"""Values put where a JSON / YAML value was (``DEEP_MARK`` becomes 100,000 nested lists)."""


# --------------------------------------------------------------------------- bytes and lines


def byte_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Truncate, empty, flip / insert / delete bytes, random binary, a non-UTF-8 byte."""
    n = len(seed)
    at = st.integers(0, max(n - 1, 0))
    return st.one_of(
        st.builds(lambda i: seed[:i], at),
        st.just(b""),
        st.builds(lambda i, x: seed[:i] + bytes([seed[i] ^ x]) + seed[i + 1 :], at,
                  st.integers(1, 255)),
        st.builds(lambda i, b: seed[:i] + b + seed[i:], at, st.binary(min_size=1, max_size=8)),
        st.builds(lambda i, k: seed[:i] + seed[i + k :], at, st.integers(1, 64)),
        st.binary(min_size=1, max_size=256),
        st.builds(lambda i, b: seed[:i] + b + seed[i:], at,
                  st.sampled_from([b"\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80"])),
    )  # fmt: skip


def line_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Delete, duplicate or swap a line, or insert a random one."""
    lines = seed.splitlines(keepends=True)
    at = st.integers(0, max(len(lines) - 1, 0))

    def delete(i: int) -> bytes:
        return b"".join(lines[:i] + lines[i + 1 :])

    def duplicate(i: int) -> bytes:
        return b"".join(lines[: i + 1] + lines[i:])

    def swap(i: int, j: int) -> bytes:
        out = list(lines)
        out[i], out[j] = out[j], out[i]
        return b"".join(out)

    def insert(i: int, text: str) -> bytes:
        return b"".join([*lines[:i], text.encode("utf-8", "surrogatepass") + b"\n", *lines[i:]])

    random_line = st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_CELLS))
    return st.one_of(
        st.builds(delete, at),
        st.builds(duplicate, at),
        st.builds(swap, at, at),
        st.builds(insert, at, random_line),
    )


def raw_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Byte- or line-level."""
    return st.one_of(byte_mutations(seed), line_mutations(seed))


# --------------------------------------------------------------------------- CSV cells


def csv_cell_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """One comma-separated cell (header included) replaced by a hostile value."""
    lines = seed.decode("utf-8").splitlines()

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        i = draw(st.integers(0, len(lines) - 1))
        cells = lines[i].split(",")
        j = draw(st.integers(0, len(cells) - 1))
        cells[j] = draw(st.sampled_from(HOSTILE_CELLS))
        out = [*lines[:i], ",".join(cells), *lines[i + 1 :]]
        return ("\n".join(out) + "\n").encode("utf-8")

    return mutate()


def csv_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Byte-, line- or cell-level mutations of a CSV file."""
    return st.one_of(raw_mutations(seed), csv_cell_mutations(seed), csv_cell_mutations(seed))


# --------------------------------------------------------------------------- JSON / YAML values


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``doc`` (the root included)."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], change: Callable[[Any], Any]) -> Any:
    """A copy of ``doc`` with the value at ``path`` replaced by ``change(value)``."""
    if not path:
        return change(doc)
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {k: (_replaced(v, rest, change) if k == head else v) for k, v in doc.items()}
    return [(_replaced(v, rest, change) if i == head else v) for i, v in enumerate(doc)]


_DELETE = object()


def _drop_deleted(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _drop_deleted(v) for k, v in doc.items() if v is not _DELETE}
    if isinstance(doc, list):
        return [_drop_deleted(v) for v in doc if v is not _DELETE]
    return doc


def value_mutations(doc: Any) -> st.SearchStrategy[Any]:
    """``doc`` with one value replaced by a hostile one, deleted, wrapped in a list, or an
    unknown key added beside it."""
    paths = _paths(doc)

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "wrap", "add"]))
        if action == "replace":
            hostile = draw(st.sampled_from(HOSTILE_VALUES))
            changed = _replaced(doc, path, lambda _v: hostile)
        elif action == "delete" and path:
            changed = _drop_deleted(_replaced(doc, path, lambda _v: _DELETE))
        elif action == "wrap":
            changed = _replaced(doc, path, lambda v: [v])
        else:
            changed = _replaced(
                doc, path, lambda v: {**v, "unexpected": 1} if isinstance(v, dict) else {"v": v}
            )
        return changed

    return mutate()


def dump_json(doc: Any) -> bytes:
    """JSON text of a mutated document (``DEEP_MARK`` becomes deep nesting)."""
    text = json.dumps(doc)
    return text.replace(json.dumps(DEEP_MARK), DEEP_TEXT).encode("utf-8")


def dump_yaml(doc: Any) -> bytes:
    """YAML text of a mutated document (``DEEP_MARK`` becomes deep nesting)."""
    text = yaml.safe_dump(doc, sort_keys=False, width=1_000_000)
    return text.replace(DEEP_MARK, DEEP_TEXT[:4_000] + DEEP_TEXT[-4_000:]).encode("utf-8")


def json_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Byte-, line- or value-level mutations of a JSON file."""
    doc = json.loads(seed)
    values = value_mutations(doc).map(dump_json)
    return st.one_of(raw_mutations(seed), values, values)


def yaml_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Byte-, line- or value-level mutations of a YAML file."""
    doc = yaml.safe_load(seed)
    values = value_mutations(doc).map(dump_yaml)
    return st.one_of(raw_mutations(seed), values, values)


def jsonl_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Byte- or line-level mutations of a JSON-lines file, or one record's value changed."""
    lines = seed.splitlines()

    @st.composite
    def one_record(draw: st.DrawFn) -> bytes:
        i = draw(st.integers(0, len(lines) - 1))
        changed = draw(value_mutations(json.loads(lines[i])).map(dump_json))
        return b"\n".join([*lines[:i], changed, *lines[i + 1 :]]) + b"\n"

    return st.one_of(raw_mutations(seed), one_record(), one_record())


# --------------------------------------------------------------------------- folders

FileMutation = Callable[[Path], None]
"""Applies one mutation to a file inside a copied folder."""


def _write(data: bytes) -> FileMutation:
    return lambda path: path.write_bytes(data)


def _remove(path: Path) -> None:
    path.unlink()


def _to_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inner.txt").write_text("a folder where a file should be\n")


def _to_dangling_symlink(path: Path) -> None:
    path.unlink()
    os.symlink(path.parent / "no-such-target", path)


def folder_mutations(
    seed: Path, content: Callable[[Path, bytes], st.SearchStrategy[bytes]]
) -> st.SearchStrategy[tuple[str, FileMutation]]:
    """``(file, mutation)`` for one file of the folder ``seed``: its content mutated by
    ``content(file, bytes)``, or the file missing, 0 bytes, truncated, a folder, or a
    dangling symlink. The file is given relative to the folder."""
    files = sorted(p.relative_to(seed).as_posix() for p in seed.rglob("*") if p.is_file())

    @st.composite
    def mutate(draw: st.DrawFn) -> tuple[str, FileMutation]:
        name = draw(st.sampled_from(files))
        data = (seed / name).read_bytes()
        structure: st.SearchStrategy[FileMutation] = st.sampled_from(
            [_remove, _write(b""), _to_folder, _to_dangling_symlink]
        )
        truncated = st.integers(0, max(len(data) - 1, 0)).map(lambda n: _write(data[:n]))
        rewritten = content(seed / name, data).map(_write)
        return name, draw(st.one_of(structure, truncated, rewritten, rewritten))

    return mutate()


def copy_folder(seed: Path, target: Path) -> Path:
    """A copy of the folder ``seed`` at ``target`` (symlinks copied as links)."""
    shutil.copytree(seed, target, symlinks=True)
    return target


def parquet_mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Byte-level mutations of a Parquet file, or a well-formed Parquet file with the wrong
    schema: a column dropped, renamed, turned to text or to nulls, or no rows."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(seed))
    columns = st.integers(0, table.num_columns - 1)

    def written(changed: pa.Table) -> bytes:
        sink = io.BytesIO()
        pq.write_table(changed, sink)
        return sink.getvalue()

    def as_text(i: int) -> pa.Table:
        return table.set_column(i, table.field(i).name, table.column(i).cast(pa.string()))

    def as_nulls(i: int) -> pa.Table:
        return table.set_column(i, table.field(i).name, pa.nulls(table.num_rows))

    def renamed(i: int) -> pa.Table:
        return table.rename_columns([*table.column_names[:i], "renamed",
                                     *table.column_names[i + 1 :]])  # fmt: skip

    schema = st.one_of(
        columns.map(table.remove_column),
        columns.map(renamed),
        columns.map(as_text),
        columns.map(as_nulls),
        st.just(table.slice(0, 0)),
    ).map(written)
    return st.one_of(byte_mutations(seed), schema)


def by_suffix(path: Path, seed: bytes) -> st.SearchStrategy[bytes]:
    """The mutations that fit a file's format, by its suffix."""
    formats: dict[str, Callable[[bytes], st.SearchStrategy[bytes]]] = {
        ".csv": csv_mutations,
        ".json": json_mutations,
        ".parquet": parquet_mutations,
    }
    return formats.get(path.suffix, byte_mutations)(seed)
