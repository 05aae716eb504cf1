"""Fitted scikit-learn-style objects on disk in the skops format, never as pickles.

A skops file is a zip with a JSON ``schema.json`` describing the object tree plus
``.npy`` files for the arrays (read with ``allow_pickle=False``). Loading builds only
the types the file names, and :func:`load_skops` refuses, with one
:class:`~sim.errors.InputError` line naming the file, any file that names a type outside
an explicit list for its kind of artefact (:data:`SCALING_TRUSTED`,
:data:`SECURITY_TRUSTED`) beyond the types skops itself trusts by default (builtins'
containers, numpy arrays and scalars, scikit-learn's estimators and internals). Nothing
is trusted because the file asks for it: the lists are code, never computed at load
time.

skops can only check a type, not the content of an object of that type. Two trusted
types hold raw node indices that scikit-learn's compiled code follows without bounds
checks (a crafted file could make ``predict`` read out of bounds):
``sklearn.tree._tree.Tree`` and ``...predictor.TreePredictor``. So every tree in a
loaded object is checked (:func:`check_trees`): children inside the node array and after
their parent (no cycles), split features below the ``n_features_in_`` of every estimator
holding the tree, no categorical splits (our models have none). A file that is empty,
truncated, not a zip, a zip that is not skops, or a tree that fails those checks is one
InputError line too.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.tree._tree import Tree

from agents.forecasting.compiled import CompiledTrees
from sim import atomic
from sim.errors import InputError

T = TypeVar("T")

SCHEMA = "schema.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip member can carry
REWRITE = "a file written by opsbench (retrain the model to replace it)"
"""What a refused artefact should be, by default."""

# The trusted lists were derived once, by training each kind of model and listing what
# skops does not trust by default (``skops.io.get_untrusted_types(data=skops.io.dumps(m))``
# on skops 0.16 / scikit-learn 1.9) and reviewing every entry:
#   gbm-quantile      -> QuantileGBMForecaster, CompiledTrees, TreePredictor
#   seed-rf           -> RandomForestForecaster, sklearn.tree._tree.Tree
#   seasonal-naive-*  -> SeasonalNaiveForecaster
#   SecurityAnalyser  -> SecurityAnalyser, HistogramOutlierScorer, TreePredictor
# tests/lifecycle/test_artefacts.py re-derives them from freshly trained models and fails
# when a model starts to need a type that is not listed here (review it, then add it).
_TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
SCALING_TRUSTED: tuple[str, ...] = (
    "agents.forecasting.compiled.CompiledTrees",
    "agents.forecasting.models.QuantileGBMForecaster",
    "agents.forecasting.models.RandomForestForecaster",
    "agents.forecasting.models.SeasonalNaiveForecaster",
    _TREE_PREDICTOR,
    "sklearn.tree._tree.Tree",
)
"""Types beyond skops' defaults that a saved scaling model (``{"plan": Forecaster,
"forecast": Forecaster}``, any registered forecaster) needs."""
SECURITY_TRUSTED: tuple[str, ...] = (
    "agents.security.analyser.SecurityAnalyser",
    "agents.security.anomaly.HistogramOutlierScorer",
    _TREE_PREDICTOR,
)
"""Types beyond skops' defaults that a saved :class:`~agents.security.analyser.
SecurityAnalyser` needs."""

_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,  # not a zip, truncated, bad CRC
    zlib.error,  # a damaged compressed member
    EOFError,  # a member shorter than its header says
    LookupError,  # KeyError / IndexError: no schema.json, a missing member or field
    ValueError,  # bad JSON, bad protocol, a bad .npy, a pickled .npy (allow_pickle=False)
    TypeError,  # a node of the wrong shape (and skops' UntrustedTypesFoundException)
    AttributeError,  # a class or function the file names that does not exist
    ImportError,  # a module the file names that does not exist
    NotImplementedError,  # a node kind this skops cannot build
    RecursionError,  # a schema nested too deeply
    OverflowError,
)
"""What skops and zipfile raise on a file that is not a well-formed skops file (seen by
fuzzing truncations and byte flips of real files, and crafted schemas)."""


def save_skops(obj: object, path: Path) -> bytes:
    """Write ``obj`` to ``path`` in the skops format (atomically, :mod:`sim.atomic`) and
    return the bytes written (to hash them)."""
    data = dumps_skops(obj)
    with atomic.writing_file(path) as staging:
        staging.write_bytes(data)
    return data


def dumps_skops(obj: object) -> bytes:
    """``obj`` in the skops format, canonical: the same model fitted by the same code
    gives the same bytes in any process, so a model's sha256 (its version) does not
    depend on memory addresses or the clock.

    skops names the members of its zip and the ``__id__`` of shared objects after
    ``id()`` (memory addresses) and stamps the time on each member; here they are
    renumbered in the schema's order and stamped 1980-01-01.
    """
    with zipfile.ZipFile(io.BytesIO(sio.dumps(obj))) as raw:
        ids: dict[int, int] = {}
        files: dict[str, str] = {}
        schema = _renumber(json.loads(raw.read(SCHEMA)), ids, files)
        if set(raw.namelist()) != {SCHEMA, *files}:
            raise RuntimeError(f"skops wrote members its schema does not name: {raw.namelist()}")
        members = {new: raw.read(old) for old, new in files.items()}
    members[SCHEMA] = json.dumps(schema, indent=2).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as out:
        for name in sorted(members):
            out.writestr(zipfile.ZipInfo(name, date_time=_EPOCH), members[name])
    return buffer.getvalue()


def _renumber(node: Any, ids: dict[int, int], files: dict[str, str]) -> Any:
    """The schema ``node`` with every object ``__id__`` and member ``file`` name
    replaced by its rank of first appearance (ids from 1: skops ignores an id of 0)."""
    if isinstance(node, list):
        return [_renumber(item, ids, files) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "__id__" and isinstance(value, int):
            out[key] = ids.setdefault(value, len(ids) + 1)
        elif key == "file" and isinstance(value, str):
            out[key] = files.setdefault(value, f"{len(files)}{Path(value).suffix}")
        else:
            out[key] = _renumber(value, ids, files)
    return out


def load_skops(
    path: Path, trusted: tuple[str, ...], *, expect: type[T], allowed: str = REWRITE
) -> T:
    """The object saved at ``path`` (see :func:`loads_skops`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, "", f"cannot be read ({exc.strerror})", allowed) from None
    return loads_skops(data, trusted, expect=expect, source=path, allowed=allowed)


def loads_skops(
    data: bytes,
    trusted: tuple[str, ...],
    *,
    expect: type[T],
    source: Path,
    allowed: str = REWRITE,
) -> T:
    """The object in the skops bytes ``data`` (read from ``source``, named in errors),
    built only if every type it names is trusted by skops by default or listed in
    ``trusted``, it is an instance of ``expect``, and its trees pass :func:`check_trees`.

    Raises
    ------
    sim.errors.InputError
        One line naming ``source`` and what is wrong; ``allowed`` says what would be
        accepted (e.g. how to rewrite the file).
    """
    if isinstance(trusted, str) or not isinstance(trusted, tuple):
        raise TypeError("trusted must be a tuple of fully-qualified type names")
    if not data:
        raise InputError(source, "", "is empty, not a skops file", allowed)
    try:
        # skops audits every type against ``trusted`` before it constructs anything (one
        # parse: asking get_untrusted_types first would parse the file twice)
        obj = sio.loads(data, trusted=list(trusted))
    except UntrustedTypesFoundException:
        # refused before anything was built; name the types (a second parse, on refusal only)
        untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(trusted))
        kind = "type" if len(untrusted) == 1 else "types"
        problem = f"holds untrusted {kind} {', '.join(untrusted)}"
        trusting = f"only skops' default types and {', '.join(trusted)}; {allowed}"
        raise InputError(source, "", problem, trusting) from None
    except _READ_ERRORS as exc:
        raise InputError(
            source, "", f"is not a readable skops file ({_brief(exc)})", allowed
        ) from None
    if not isinstance(obj, expect):
        problem = f"holds a {type(obj).__qualname__}, not a {expect.__qualname__}"
        raise InputError(source, "", problem, allowed)
    check_trees(obj, source=source, allowed=allowed)
    return obj


def _brief(exc: BaseException) -> str:
    """``exc`` as a short phrase on one line."""
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_trees(obj: object, *, source: Path, allowed: str) -> None:
    """InputError unless every tree reachable from ``obj`` is well formed (see the
    module docstring)."""
    for tree, n_features in _trees(obj, n_features=None, seen=set()):
        problem = _tree_problem(tree, n_features)
        if problem is not None:
            raise InputError(source, "", f"holds a malformed tree ({problem})", allowed)


def _trees(
    obj: object, *, n_features: int | None, seen: set[int]
) -> Iterator[tuple[Any, int | None]]:
    """(tree, smallest ``n_features_in_`` of the estimators holding it) for every
    ``Tree`` / ``TreePredictor`` reachable from ``obj`` through attributes, dicts,
    lists and tuples."""
    if id(obj) in seen or isinstance(obj, str | bytes | int | float | np.ndarray | np.generic):
        return
    seen.add(id(obj))
    if isinstance(obj, Tree | TreePredictor | CompiledTrees):
        yield obj, n_features
        return
    if isinstance(obj, dict):
        children: list[object] = list(obj.values())
    elif isinstance(obj, list | tuple | set | frozenset):
        children = list(obj)
    else:
        own = getattr(obj, "__dict__", None)
        children = list(own.values()) if isinstance(own, dict) else []
        declared = getattr(obj, "n_features_in_", None)
        if isinstance(declared, int | np.integer) and not isinstance(declared, bool):
            n_features = int(declared) if n_features is None else min(n_features, int(declared))
    for child in children:
        yield from _trees(child, n_features=n_features, seen=seen)


def _tree_problem(tree: Tree | TreePredictor | CompiledTrees, n_features: int | None) -> str | None:
    """What is wrong with one tree, or ``None``."""
    if isinstance(tree, CompiledTrees):
        return _compiled_problem(tree, n_features)
    if isinstance(tree, Tree):
        if not 0 <= tree.node_count <= tree.capacity:
            return f"node_count {tree.node_count} outside its {tree.capacity} nodes"
        if n_features is not None and tree.n_features > n_features:
            return f"reads {tree.n_features} features, its estimator has {n_features}"
        left, right, feature = tree.children_left, tree.children_right, tree.feature
        leaf = left == -1
        if not np.array_equal(leaf, right == -1):
            return "a node with a single child"
        limit: int | None = tree.n_features
    else:
        nodes = tree.nodes
        if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE:
            return "nodes are not a predictor record array"
        if nodes.ndim != 1 or nodes.size == 0:
            return "nodes are not a non-empty 1-D array"
        if nodes["is_categorical"].any():
            return "a categorical split"
        leaf = nodes["is_leaf"].astype(bool)
        left = nodes["left"].astype(np.int64)
        right = nodes["right"].astype(np.int64)
        feature = nodes["feature_idx"].astype(np.int64)
        limit = n_features
    size = len(left)
    index = np.arange(size)
    split = ~leaf
    for name, child in (("left", left), ("right", right)):
        bad = split & ((child <= index) | (child >= size))
        if bad.any():
            return f"node {int(np.flatnonzero(bad)[0])}'s {name} child is not a later node"
    bad = split & (feature < 0)
    if limit is not None:
        bad |= split & (feature >= limit)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        return f"node {at} splits on feature {int(feature[at])} of {limit}"
    return None


def _compiled_problem(trees: CompiledTrees, n_features: int | None) -> str | None:
    """What is wrong with flattened trees (walked ``depth`` steps from ``roots``), or
    ``None``."""
    per_node = (trees.feature, trees.threshold, trees.missing_left, trees.left, trees.right)
    size = len(trees.value)
    if any(np.ndim(a) != 1 or len(a) != size for a in per_node) or trees.value.ndim != 1:
        return "compiled node arrays of different lengths"
    if not 0 <= trees.depth <= size:
        return f"compiled depth {trees.depth} beyond its {size} nodes"
    for name, index in (("roots", trees.roots), ("left", trees.left), ("right", trees.right)):
        if index.size and (index.min() < 0 or index.max() >= size):
            return f"compiled {name} outside its {size} nodes"
    starts = trees.starts
    if len(starts) != len(trees.baselines) or (
        starts.size
        and (starts[0] != 0 or np.any(np.diff(starts) < 0) or starts[-1] >= len(trees.roots))
    ):
        return "compiled booster starts out of order"
    if trees.feature.size and (
        trees.feature.min() < 0 or (n_features is not None and trees.feature.max() >= n_features)
    ):
        return "compiled split on a feature outside the model's"
    return None
