"""One way to register anything a scenario file or a flag names by id.

Modelled on Gymnasium's ``register(id, entry_point="module:attr", kwargs=...)``: an entry
names its builder by a ``"module:attr"`` string, so listing a registry imports nothing
heavy, and a builder's module is imported only when that entry is built (a replay of
``reactive`` never imports scikit-learn or torch). Policies, mix rules, detectors and
forecasters are each a :class:`Registry` of :class:`Spec` entries (see
:mod:`agents.registry`); one contract test per kind runs over every entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from sim.errors import InputError

T = TypeVar("T")


def load_entry_point(entry_point: str) -> Any:
    """The object ``"package.module:attr"`` names (``attr`` may be dotted)."""
    module_name, _, attr = entry_point.partition(":")
    if not module_name or not attr:
        raise ValueError(f"entry point {entry_point!r} is not 'module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True, slots=True)
class Spec(Generic[T]):
    """One registered entry.

    Attributes
    ----------
    id
        The name users write (``--policy reactive``, ``detector: novelty-ensemble``).
    entry_point
        ``"module:attr"`` of the builder (a class or a function).
    summary
        One line on what it is, for listings.
    params
        ``"module:attr"`` of a frozen pydantic model of the user-settable parameters; the
        builder is then called with the validated model as its first argument. ``None``:
        the builder takes keyword arguments only (``kwargs`` merged with the caller's).
    kwargs
        Fixed keyword arguments for the builder (one builder, several entries).
    """

    id: str
    entry_point: str
    summary: str
    params: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def builder(self) -> Callable[..., T]:
        """The builder (imports its module on first use)."""
        built: Callable[..., T] = load_entry_point(self.entry_point)
        return built

    def params_model(self) -> type[BaseModel] | None:
        """The parameters' pydantic model, or None for keyword-only builders."""
        if self.params is None:
            return None
        model: type[BaseModel] = load_entry_point(self.params)
        return model


class Registry(Generic[T]):
    """Entries of one kind by id, in registration order.

    Parameters
    ----------
    kind
        What an entry is, in error messages (``"policy"``, ``"detector"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, Spec[T]] = {}

    def register(
        self,
        id: str,
        *,
        entry_point: str,
        summary: str,
        params: str | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """Add an entry; an id registered twice is a programming error (ValueError)."""
        if id in self._specs:
            raise ValueError(f"{self.kind} {id!r} is already registered")
        self._specs[id] = Spec(
            id, entry_point, summary, params, MappingProxyType(dict(kwargs or {}))
        )

    def __contains__(self, id: object) -> bool:
        return id in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def ids(self) -> tuple[str, ...]:
        """Every id, in registration order."""
        return tuple(self._specs)

    def specs(self) -> tuple[Spec[T], ...]:
        """Every entry, in registration order."""
        return tuple(self._specs.values())

    def allowed(self) -> str:
        """The ids, sorted, as an ``allowed:`` text."""
        return ", ".join(sorted(self._specs))

    def spec(self, id: str, *, source: str = "", field: str = "") -> Spec[T]:
        """The entry ``id``; an unknown id raises InputError naming ``source`` and ``field``."""
        spec = self._specs.get(id)
        if spec is None:
            raise InputError(source or f"--{self.kind}", field, f"unknown {self.kind} {id!r}",
                             self.allowed())  # fmt: skip
        return spec

    def make(
        self,
        id: str,
        params: Mapping[str, Any] | None = None,
        *,
        source: str = "",
        field: str = "",
        params_field: str = "params",
    ) -> T:
        """Build entry ``id`` with ``params``.

        Entries with a parameters model validate ``params`` against it first; a bad
        value raises InputError naming ``source`` and ``params_field.<key>``. Others take
        ``params`` as keyword arguments (over the entry's fixed ``kwargs``).
        """
        spec = self.spec(id, source=source, field=field)
        validated = self.validated_params(id, params, source=source, params_field=params_field)
        if validated is None:
            return spec.builder()(**{**spec.kwargs, **(params or {})})
        return spec.builder()(validated, **spec.kwargs)

    def validated_params(
        self, id: str, params: Mapping[str, Any] | None, *, source: str, params_field: str
    ) -> BaseModel | None:
        """``params`` validated against entry ``id``'s parameters model (None for an entry
        without one); a bad value raises InputError naming ``params_field.<key>``."""
        model = self.spec(id, source=source).params_model()
        if model is None:
            return None
        try:
            return model.model_validate(dict(params or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InputError(
                source or f"--{self.kind}",
                f"{params_field}.{where}" if where else params_field,
                err["msg"],
                f"parameters of {id}: {', '.join(model.model_fields) or 'none'}",
            ) from None
