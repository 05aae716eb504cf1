"""A planted artefact never runs: for every kind of model opsbench loads (the scaling
model folder, the cached security analyser, the cost model folder), a payload that
creates a marker file when unpickled (or when its skops schema is trusted) is written
where the model belongs, every digest beside it is rewritten so the hash checks pass,
and the loader (and the CLI command that loads it) must answer one line, exit 2, and
leave no marker.

Each payload is first shown to be live: loaded the unsafe way, it does create its marker.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from opsbench_testing import assert_one_line_error, run_main

from agents.lifecycle.open import open_registry
from agents.lifecycle.registry import ModelCard, ModelRef, folder_digest
from sim.errors import InputError


class Touch:
    """Unpickled, creates ``marker`` (stands for any code a pickle can run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _skops_calling(module: str, function: str, argument: str) -> bytes:
    """A skops file whose schema builds ``module.function(argument)`` (skops runs it only
    if that function is trusted)."""
    with zipfile.ZipFile(io.BytesIO(sio.dumps((argument,)))) as zf:
        args = json.loads(zf.read("schema.json"))
    schema = {
        "__class__": function,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {k: v for k, v in args.items() if k not in ("protocol", "_skops_version")},
        "protocol": args["protocol"],
        "_skops_version": args["_skops_version"],
    }
    return _zip({"schema.json": json.dumps(schema).encode()})


def _skops_with_pickled_array(marker: Path) -> bytes:
    """A skops file of an array whose ``.npy`` member holds a pickled object array."""
    with zipfile.ZipFile(io.BytesIO(sio.dumps(np.zeros(2)))) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    npy = next(name for name in members if name.endswith(".npy"))
    planted = io.BytesIO()
    np.save(planted, np.array([Touch(marker)], dtype=object), allow_pickle=True)
    members[npy] = planted.getvalue()
    return _zip(members)


def skops_payloads(marker: Path) -> dict[str, bytes]:
    """Payloads for a loader of skops files, by name."""
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    return {
        "pickle": pickle.dumps(Touch(marker)),
        "zip-with-pickle": _zip({"model.pkl": pickle.dumps(Touch(marker))}),
        "skops-eval": _skops_calling("builtins", "eval", code),
        "skops-system": _skops_calling("posix", "system", f"touch '{marker}'"),
        "skops-pickled-npy": _skops_with_pickled_array(marker),
    }


def _detonate_skops(name: str, data: bytes) -> None:
    """Load ``data`` the unsafe way its kind allows."""
    if name == "pickle":
        pickle.loads(data)
    elif name == "zip-with-pickle":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            pickle.loads(zf.read("model.pkl"))
    elif name == "skops-pickled-npy":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            npy = next(n for n in zf.namelist() if n.endswith(".npy"))
            np.load(io.BytesIO(zf.read(npy)), allow_pickle=True)
    else:
        sio.loads(data, trusted=["builtins.eval", "posix.system"])


def _torch_zip_with_pickle(marker: Path) -> bytes:
    """A torch checkpoint (zip) of a state dict whose ``data.pkl`` is the planted pickle."""
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    data_pkl = next(name for name in members if name.endswith("/data.pkl"))
    members[data_pkl] = pickle.dumps(Touch(marker), protocol=2)
    return _zip(members)


def cost_payloads(marker: Path) -> dict[str, bytes]:
    """Planted ``model.zip`` files for the cost loader, by name."""
    from agents.cost.model import SHIPPED_DIR

    with zipfile.ZipFile(SHIPPED_DIR / "model.zip") as zf:
        shipped = {name: zf.read(name) for name in zf.namelist()}
    return {
        "pickle": pickle.dumps(Touch(marker)),
        "policy-pth-pickle": _zip({**shipped, "policy.pth": pickle.dumps(Touch(marker))}),
        "policy-pth-torch-zip": _zip({**shipped, "policy.pth": _torch_zip_with_pickle(marker)}),
    }


def _detonate_cost(name: str, data: bytes) -> None:
    import torch

    if name == "pickle":
        pickle.loads(data)
        return
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        policy = zf.read("policy.pth")
    if name == "policy-pth-pickle":
        pickle.loads(policy)
    else:
        torch.load(io.BytesIO(policy), weights_only=False)


SKOPS_KINDS = sorted(skops_payloads(Path("m")))
COST_KINDS = sorted(cost_payloads(Path("m")))


@pytest.mark.parametrize("kind", SKOPS_KINDS)
def test_every_skops_payload_is_live(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    _detonate_skops(kind, skops_payloads(marker)[kind])
    assert marker.exists()


@pytest.mark.parametrize("kind", COST_KINDS)
def test_every_cost_payload_is_live(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    _detonate_cost(kind, cost_payloads(marker)[kind])
    assert marker.exists()


def _rehash(meta_path: Path, payload: bytes) -> None:
    """Record ``payload``'s sha256 (and version) in ``meta_path``, as a forger would."""
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256(payload).hexdigest()
    meta.update(model_sha256=digest, model_version=digest[:12])
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


def _plant_in_folder(folder: Path, model_file: str, payload: bytes) -> None:
    resolved = folder.resolve()
    (resolved / model_file).write_bytes(payload)
    _rehash(resolved / "metadata.json", payload)


def assert_never_runs(
    load: Callable[[], object],
    shown: Path,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
    marker: Path,
) -> None:
    """``load()`` and ``opsbench COMMAND`` refuse the planted file ``shown`` in one line
    (exit 2), and ``marker`` was never created."""
    with pytest.raises(InputError) as caught:
        load()
    message = str(caught.value)
    assert "\n" not in message and str(shown) in message, message
    code, out, err = run_main(capsys, command)
    assert_one_line_error(code, out, err, shown.name)
    assert not marker.exists()


# --------------------------------------------------------------------------- scaling


@pytest.fixture(scope="module")
def scaling_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose registry (``.opsbench/models``) holds ``scaling-default/1`` as ``opsbench
    train scaling`` registers it for the default scenario (what ``replay default --policy
    predictive`` then uses)."""
    from fuzz.seeds import quiet_main

    base = tmp_path_factory.mktemp("scaling-work")
    opsbench = base / ".opsbench"
    quiet_main(["train", "scaling", "--scenario", "default", "--models", str(opsbench / "models"),
                "--store", str(opsbench / "store.duckdb")])  # fmt: skip
    return base


def _register_planted(registry_dir: Path, name: str, folder: Path, card: ModelCard) -> None:
    """``folder`` registered as the champion of ``name`` with its digest recorded honestly,
    as whoever can write the registry's files could (every digest on disk rewritten)."""
    registry = open_registry(registry_dir)
    card = card.model_copy(update={"artefact_sha256": folder_digest(folder)})
    registry.promote(name, registry.register(name, folder, card).version)


@pytest.mark.parametrize("kind", SKOPS_KINDS)
def test_a_planted_scaling_model_never_runs(
    kind: str,
    scaling_workdir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.scaling.model import MODEL_FILE, load_model

    work = tmp_path / "work"
    shutil.copytree(scaling_workdir, work, symlinks=True)
    registry = work / ".opsbench" / "models"
    trained = open_registry(registry).resolve(ModelRef.parse("scaling-default/1"))
    folder = open_registry(registry).fetch(trained, tmp_path / "planted")
    marker = tmp_path / "marker"
    _plant_in_folder(folder, MODEL_FILE, skops_payloads(marker)[kind])
    _register_planted(registry, "scaling-default", folder, trained.card)  # same training key
    monkeypatch.chdir(work)
    replay = ["replay", "default", "--policy", "predictive"]
    assert_never_runs(lambda: load_model(folder), folder / MODEL_FILE, replay, capsys, marker)


# --------------------------------------------------------------------------- security


def _plant_security_cache(directory: Path, key: str, payload: bytes) -> Path:
    """``payload`` as the cached model of cache key ``key``, with its record."""
    from bench import security_model

    blob, record = security_model.cache_files(key, directory)
    directory.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    record.write_text(json.dumps({"key": key, "sha256": digest}))
    return blob


@pytest.mark.parametrize("kind", SKOPS_KINDS)
def test_a_planted_security_model_never_runs(
    kind: str,
    small_spec: Any,
    small_params: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.security.artefact import load_analyser
    from bench import security_model

    marker = tmp_path / "marker"
    models = tmp_path / "models"
    key = security_model.cache_key(small_spec, small_params, False)
    blob = _plant_security_cache(models, key, skops_payloads(marker)[kind])
    with pytest.raises(InputError) as caught:
        load_analyser(blob)
    assert "\n" not in str(caught.value) and str(blob) in str(caught.value)
    monkeypatch.setattr(security_model, "SHIPPED_SPEC", small_spec)
    monkeypatch.setattr(security_model, "SHIPPED_PARAMS", small_params)
    monkeypatch.setenv("OPSBENCH_MODEL_DIR", str(models))
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(_one_event()) + "\n")
    out = tmp_path / "scores.csv"
    score = ["security", "score", "--events", str(events), "--out", str(out)]
    assert_never_runs(
        lambda: security_model.load_or_train(model_dir=models), blob, score, capsys, marker
    )
    assert not out.exists()


def _one_event() -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "ListUsers",
        "eventID": "e-1",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.0.1",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {"type": "IAMUser", "accountId": "111111111111", "userName": "alice"},
        "recipientAccountId": "111111111111",
    }


# --------------------------------------------------------------------------- cost


def _cost_folder(folder: Path) -> Path:
    """A copy of the shipped cost model."""
    from agents.cost.model import SHIPPED_DIR

    folder.mkdir(parents=True)
    for name in ("metadata.json", "model.zip"):
        shutil.copy(SHIPPED_DIR / name, folder / name)
    return folder


@pytest.mark.parametrize("kind", COST_KINDS)
def test_a_planted_cost_model_never_runs(
    kind: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.cost.model import MODEL_FILE, load_model

    marker = tmp_path / "marker"
    folder = _cost_folder(tmp_path / "planted")
    _plant_in_folder(folder, MODEL_FILE, cost_payloads(marker)[kind])
    card = ModelCard(agent="cost-rl", artefact_sha256="0" * 64)
    _register_planted(tmp_path / ".opsbench" / "models", "cost-rl-default", folder, card)
    monkeypatch.chdir(tmp_path)
    replay = ["replay", "default", "--policy", "cost-rl"]
    load = lambda: load_model(folder, roots=(folder.resolve(),))  # noqa: E731
    assert_never_runs(load, folder / MODEL_FILE, replay, capsys, marker)
