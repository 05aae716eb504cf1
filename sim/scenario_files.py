"""Reading scenario files: YAML in, a validated :class:`~sim.scenario.Scenario` out.

Every problem becomes one :class:`~sim.errors.InputError` naming the file, the field
path (``cluster.pools[0].min_nodes``) and what is allowed.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from scenarios import package_dir
from sim.errors import InputError
from sim.scenario import Scenario


def scenarios_dir() -> Path:
    """The shipped scenarios (``$OPSBENCH_SCENARIOS`` overrides)."""
    override = os.environ.get("OPSBENCH_SCENARIOS")
    if override:
        return Path(override)
    return package_dir()


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("trace", "synthetic", "replay", "model", "always", "uniform", "lognormal"):
            continue  # discriminated-union tags pydantic puts in the location
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model inside a (possibly Annotated / union / list) annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    """Field names accepted where an unknown key was found."""
    models: list[type[BaseModel]] = [Scenario]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        with_field = [m for m in models if str(part) in m.model_fields]
        if with_field:
            models = _models_in(with_field[0].model_fields[str(part)].annotation)
        else:  # a discriminated-union tag: keep the member whose kind matches
            models = (
                [
                    m
                    for m in models
                    if str(part) in typing.get_args(m.model_fields["kind"].annotation)
                ]
                if all("kind" in m.model_fields for m in models)
                else models
            )
        if not models:
            return ""
    return ", ".join(models[0].model_fields) if models else ""


def _describe(err: Any) -> tuple[str, str]:
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown key {err['loc'][-1]!r}", _allowed_keys(tuple(err["loc"]))
    if kind == "missing":
        return "required field is missing", ""
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    if not isinstance(value, dict | list) and kind != "value_error":
        msg = f"{msg}, got {value!r}"
    return msg, ""


def parse_scenario(data: Any, *, source: Path) -> Scenario:
    """Validate parsed YAML ``data`` as a scenario."""
    if not isinstance(data, dict):
        raise InputError(
            source, "(top level)", "a scenario must be a YAML mapping", "id, cluster, ..."
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        problem, allowed = _describe(err)
        raise InputError(source, _field_path(tuple(err["loc"])), problem, allowed) from None


MAX_SCENARIO_BYTES = 1 << 20
"""A scenario file larger than 1 MiB is refused before it is read (the shipped ones are
about 2 KB; data belongs in the files a scenario names)."""
MAX_YAML_NODES = 100_000
"""At most this many YAML nodes once every alias is expanded (a few-line "billion laughs"
document would otherwise expand to gigabytes when validated or shown)."""


class _Nodes:
    """Counts a composed YAML document's nodes with every alias expanded, without
    expanding anything: each node's expanded size is computed once."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.sizes: dict[int, int] = {}
        self.open: set[int] = set()

    def size(self, node: yaml.Node) -> int:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.open:
            raise InputError(self.source, "yaml", "an alias refers to the node that contains it",
                             "anchors and aliases without cycles")  # fmt: skip
        self.open.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(self.size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(self.size(k) + self.size(v) for k, v in node.value)
        self.open.discard(key)
        self.sizes[key] = total
        if total > MAX_YAML_NODES:
            raise InputError(
                self.source,
                "yaml",
                f"more than {MAX_YAML_NODES:,} values once its aliases are expanded",
                f"a scenario of at most {MAX_YAML_NODES:,} YAML nodes",
            )
        return total


def _parse_yaml(text: str, source: Path) -> Any:
    """``text`` as plain data (YAML's safe subset), refusing alias bombs and deep nesting."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _Nodes(source).size(node)
        return yaml.SafeLoader(text).construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, where, f"malformed YAML: {problem}") from None
    except RecursionError:
        raise InputError(source, "yaml", "nested too deeply", "a scenario mapping") from None


def load_scenario_file(path: Path) -> Scenario:
    """Read and validate one scenario file."""
    try:
        size = path.stat().st_size
        if size > MAX_SCENARIO_BYTES:
            raise InputError(
                path,
                "path",
                f"{size:,} bytes is too large for a scenario file",
                f"at most {MAX_SCENARIO_BYTES:,} bytes",
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "path", "no such scenario file", "a path or a scenario id") from None
    except IsADirectoryError:
        raise InputError(path, "path", "is a folder", "a scenario YAML file") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            path, "path", f"not UTF-8 text (byte {exc.start})", "a UTF-8 YAML file"
        ) from None
    except OSError as exc:
        raise InputError(path, "path", f"cannot read: {exc.strerror}") from None
    return parse_scenario(_parse_yaml(text, path), source=path)


def list_scenarios() -> list[tuple[str, Path]]:
    """(id, file) of every shipped scenario, sorted by id."""
    found = []
    for path in sorted(scenarios_dir().glob("*.yaml")):
        found.append((path.stem, path))
    return found


def find_scenario(ref: str) -> Path:
    """A scenario file from a path or a shipped scenario id."""
    candidate = Path(ref)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists() or os.sep in ref:
        if not candidate.exists():
            raise InputError(candidate, "path", "no such scenario file", "a path or a scenario id")
        return candidate
    known = dict(list_scenarios())
    if ref not in known:
        raise InputError("scenario id", ref, "unknown scenario", ", ".join(sorted(known)))
    return known[ref]
