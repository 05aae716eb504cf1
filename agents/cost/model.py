"""The trained ``cost-rl`` model: a stable-baselines3 PPO zip and the metadata that makes
it safe to load.

On disk (``.opsbench/models/cost/<scenario>/``, or the small model shipped in
``agents/cost/shipped/``)::

    metadata.json   what the model is: observation and action sizes, network, training
                    run, library versions, and the sha256 of model.zip
    model.zip       the PPO model as stable-baselines3 saved it

Loading never executes code from a file: the folder must lie inside one of our own model
directories (:data:`TRUSTED_ROOTS`, symlinks resolved), ``model.zip`` must hash to the
sha256 recorded at save, and even then only the policy's weights are read from the zip's
``policy.pth`` with ``torch.load(weights_only=True)`` (no pickle of arbitrary objects; the
zip's cloudpickled ``data`` entry is never opened). The network is evaluated in numpy
(deterministic action: the Gaussian's mean, clipped to [-1, 1]).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import platform
import warnings
import zipfile
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.cost.plan import Layout
from agents.cost.view import FEATURE_VERSIONS, features_for, n_features
from agents.artifacts import (
    publish,
    read_metadata,
    resolve_folder,
    staging_folder,
    verified_payload,
)
from sim.errors import InputError
from sim.market.hazard import DropRatePrior

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.zip"
FEATURE_VERSION = 1
"""The feature version a model trained under the controller's own sizing reads; one
trained under ``predictive`` sizing reads version 2 (:mod:`agents.cost.view`)."""
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
MODELS_DIR = Path(".opsbench") / "models"
MIN_TIMESTEPS = 4_096
"""One PPO rollout (:mod:`agents.cost.training`: 1,024 steps x 4 environments): a model
trained for fewer timesteps was never updated, and is refused."""
MAX_TIMESTEPS = 20_000_000
"""The longest training run accepted: about 80 minutes on two cores (the default 303,104
steps trained in 72 s with evaluations, about 4,200 steps/s)."""


def trusted_roots(models_dir: Path = MODELS_DIR) -> tuple[Path, ...]:
    """Folders models may be loaded from: ours under ``models_dir`` and the shipped one."""
    return ((models_dir / "cost").resolve(), SHIPPED_DIR.resolve())


class HazardPrior(BaseModel):
    """The Gamma prior on an AZ's spot drops per up-hour the hazard features use
    (:class:`sim.market.hazard.DropRatePrior`, fitted on the training traces)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    shape: float = Field(gt=0)
    rate_up_hours: float = Field(gt=0)
    window_min: int = Field(gt=0)

    def prior(self) -> DropRatePrior:
        return DropRatePrior(self.shape, self.rate_up_hours, self.window_min)

    @classmethod
    def of(cls, prior: DropRatePrior) -> HazardPrior:
        return cls(
            shape=prior.shape, rate_up_hours=prior.rate_up_hours, window_min=prior.window_min
        )


class CostModelMetadata(BaseModel):
    """``metadata.json`` of a saved cost model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1]
    kind: Literal["cost"]
    model_version: str = Field(min_length=8, description="first 12 hex of model.zip's sha256")
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    algorithm: Literal["PPO"]
    feature_version: int
    sizing: Literal["controller", "predictive"] = Field(
        default="controller",
        description="the sizing it was trained under: the controller's own plan, or the "
        "predictive policy's (run it as predictive+cost-rl)",
    )
    sizing_quantile: float | None = Field(
        default=None, description="predictive sizing: the quantile provisioned for"
    )
    hazard_prior: HazardPrior | None = Field(
        default=None, description="feature version 2: the drop-rate prior of the hazard features"
    )
    obs_dim: int = Field(gt=0)
    n_spot: int = Field(gt=0)
    act_dim: int = Field(gt=0)
    net_arch: tuple[int, ...]
    activation: Literal["tanh"]
    scenario: str
    timesteps: int = Field(ge=0)
    seed: int = Field(ge=0)
    train_seconds: float = Field(ge=0)
    libraries: dict[str, str]
    selected: Literal["final", "best"] | None = Field(
        default=None, description="the policy as training ended, or the best evaluated one"
    )
    eval_mean_reward: float | None = Field(
        default=None, description="its mean reward on the evaluation episodes"
    )
    eval_at_timesteps: int | None = Field(default=None, ge=0, description="when it was evaluated")


@dataclass(frozen=True, slots=True)
class CostModel:
    """The policy network's weights, evaluated in numpy."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # hidden (W, b), tanh
    head: tuple[np.ndarray, np.ndarray]  # action mean (W, b)
    metadata: CostModelMetadata
    folder: Path

    @property
    def version(self) -> str:
        return self.metadata.model_version

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic action for one observation."""
        h = np.asarray(obs, dtype=np.float32)
        for w, b in self.layers:
            h = np.tanh(w @ h + b)
        w, b = self.head
        out: np.ndarray = np.clip(w @ h + b, -1.0, 1.0)
        return out

    def check_layout(self, layout: Layout, *, source: str) -> None:
        """InputError unless the model was trained for this fleet's shape."""
        n_spot = len(layout.spot_slots)
        version = self.metadata.feature_version
        if self.metadata.n_spot != n_spot or self.metadata.obs_dim != n_features(layout, version):
            raise InputError(
                self.folder / METADATA_FILE,
                "n_spot",
                f"the model was trained for {self.metadata.n_spot} spot pool x AZ slots; "
                f"{source} has {n_spot}",
                f"a model trained on {source}: opsbench train cost --scenario {source}",
            )


def library_versions() -> dict[str, str]:
    import stable_baselines3
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "stable-baselines3": stable_baselines3.__version__,
    }


def save_model(
    ppo: object, folder: Path, meta: dict[str, object], *, staging: Path | None = None
) -> CostModel:
    """Save ``ppo`` (a stable-baselines3 PPO) as ``model.zip`` + ``metadata.json`` in
    ``folder``: written to ``staging`` (default: a fresh one; it may already hold the
    training logs), then published atomically (:mod:`agents.artifacts`)."""
    if staging is None:
        staging = staging_folder(folder)
    ppo.save(staging / MODEL_FILE)  # type: ignore[attr-defined]
    digest = hashlib.sha256((staging / MODEL_FILE).read_bytes()).hexdigest()
    metadata = CostModelMetadata.model_validate(
        {
            "feature_version": FEATURE_VERSION,
            **meta,
            "schema_version": 1,
            "kind": "cost",
            "model_version": digest[:12],
            "model_sha256": digest,
            "algorithm": "PPO",
            "activation": "tanh",
            "libraries": library_versions(),
        }
    )
    (staging / METADATA_FILE).write_text(metadata.model_dump_json(indent=2) + "\n")
    publish(staging, folder)
    return load_model(folder, roots=(folder.parent.resolve(),))


def load_model(
    folder: Path, *, models_dir: Path = MODELS_DIR, roots: tuple[Path, ...] | None = None
) -> CostModel:
    """Read a saved model, refusing anything we did not write (see the module).
    Raises :class:`~sim.errors.InputError`."""
    retrain = (
        "a model folder written by `opsbench train cost` (retrain to replace it, or delete "
        "it to use the shipped model)"
    )
    resolved = resolve_folder(folder, (METADATA_FILE, MODEL_FILE), retrain)
    allowed = roots if roots is not None else trusted_roots(models_dir)
    if not any(resolved == r or r in resolved.parents for r in allowed):
        raise InputError(
            folder, "", "is not inside our model directories", ", ".join(map(str, allowed))
        )
    meta_path, model_path = folder / METADATA_FILE, folder / MODEL_FILE  # named in errors
    meta = read_metadata(resolved / METADATA_FILE, CostModelMetadata, retrain, shown=meta_path)
    if meta.timesteps < MIN_TIMESTEPS:
        raise InputError(
            meta_path,
            "timesteps",
            f"trained for {meta.timesteps:,} timesteps, less than one PPO rollout "
            f"({MIN_TIMESTEPS:,}): its network was never updated",
            retrain,
        )
    payload = verified_payload(resolved / MODEL_FILE, meta.model_sha256, retrain, shown=model_path)
    version = meta.feature_version
    if version not in FEATURE_VERSIONS or meta.obs_dim != features_for(meta.n_spot, version):
        raise InputError(
            meta_path,
            "feature_version",
            f"features v{version} with {meta.obs_dim} inputs",
            f"v1 ({features_for(meta.n_spot, 1)} inputs for {meta.n_spot} spot slots) or v2 "
            f"({features_for(meta.n_spot, 2)}, with predictive sizing and a hazard prior); "
            f"{retrain}",
        )
    if (version == 2) != (meta.sizing == "predictive" and meta.hazard_prior is not None):
        raise InputError(
            meta_path,
            "sizing",
            f"features v{version} with sizing {meta.sizing!r}",
            f"v1 with sizing 'controller', or v2 with 'predictive' and a hazard_prior; {retrain}",
        )
    names = [
        *(
            f"mlp_extractor.policy_net.{2 * i}.{part}"
            for i in range(len(meta.net_arch))
            for part in ("weight", "bias")
        ),
        "action_net.weight",
        "action_net.bias",
    ]
    arrays = _policy_weights(payload, names, model_path, retrain)
    layers = [(arrays[2 * i], arrays[2 * i + 1]) for i in range(len(meta.net_arch))]
    head = (arrays[-2], arrays[-1])
    sizes = (meta.obs_dim, *meta.net_arch, meta.act_dim)  # each layer maps one to the next
    shapes = [(w.shape, b.shape) for w, b in (*layers, head)]
    if shapes != [((n_out, n_in), (n_out,)) for n_in, n_out in pairwise(sizes)]:
        raise InputError(model_path, "policy.pth", "weights do not match metadata.json", retrain)
    return CostModel(tuple(layers), head, meta, resolved)


_WEIGHT_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,  # model.zip or policy.pth (a zip too) damaged
    pickle.UnpicklingError,  # weights_only refused a global: a planted pickle
    RuntimeError,  # torch's zip reader
    EOFError,
    LookupError,  # no policy.pth, or a weight missing
    ValueError,
    TypeError,
    AttributeError,  # an entry that is not a tensor
)


def _policy_weights(
    payload: bytes, names: list[str], model_path: Path, retrain: str
) -> list[np.ndarray]:
    """The tensors ``names`` of the zip's ``policy.pth``, as ``float32`` arrays, read
    with ``torch.load(weights_only=True)`` (never arbitrary unpickling); InputError
    naming ``model_path`` if the entry is missing, damaged or not plain tensors."""
    import torch

    try:
        with warnings.catch_warnings():  # torch warns about a pickle protocol it does not expect
            warnings.simplefilter("ignore")
            with zipfile.ZipFile(io.BytesIO(payload)) as zf:
                state = torch.load(io.BytesIO(zf.read("policy.pth")), weights_only=True)
            return [state[name].numpy().astype(np.float32) for name in names]
    except _WEIGHT_ERRORS as exc:
        problem = f"cannot be read as the policy's weights ({type(exc).__name__})"
        raise InputError(model_path, "policy.pth", problem, retrain) from None


FIND_RULE = (
    "cost-rl uses --model if given, else the champion of cost-rl-<scenario> in the registry "
    "whenever that model has any version, and the model shipped in agents/cost/shipped/ "
    "(registered as cost-rl-shipped) only when it has none; a registered model that cannot be "
    "used (tampered, truncated, never updated) is an error naming it, never silently replaced "
    "by the shipped one"
)
