"""Models through the registry: default names, register-after-training, fetch-then-load.

Replays resolve ``--model NAME@champion`` (default) or ``NAME/VERSION``; the name defaults
to ``<agent>-<scenario>`` (:func:`default_name`). Where that model has no version trained
on this replay's history yet, the runner trains one on demand and registers it (the
champion if the model has none), so ``make demo`` works on a fresh checkout.

A version is loaded only after :meth:`~agents.lifecycle.registry.ModelRegistry.fetch` has
copied its artefact folder to a scratch folder and checked its digest against the one
recorded at registration; the loaders themselves read no code (skops with trusted types,
torch weights only, JSON).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.lifecycle.registry import (
    CHALLENGER,
    CHAMPION,
    Agent,
    ModelCard,
    ModelRef,
    ModelRegistry,
    ModelVersion,
    champion_of,
    folder_digest,
)
from sim.errors import InputError

SHIPPED_COST_MODEL = "cost-rl-shipped"
"""The small cost-rl model shipped in ``agents/cost/shipped/``, registered at first use."""


def slug(text: str) -> str:
    """``text`` as a model-name part: lower case, runs of other characters as ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def default_name(agent: Agent, scenario_id: str, *extra: str) -> str:
    """``<agent>-<scenario>[-<extra>...]``, cut to the 63 characters a name may have."""
    return "-".join(slug(part) for part in (agent, scenario_id, *extra))[:63].rstrip("-")


def check_agent(version: ModelVersion, agent: Agent, *, who: str) -> None:
    """InputError unless ``version`` is a model of ``agent``."""
    if version.card.agent != agent:
        raise InputError(
            "--model", "", f"{version.ref} is a {version.card.agent} model; {who} needs a "
            f"{agent} model", f"a {agent} model (opsbench models list)",
        )  # fmt: skip


def register(
    registry: ModelRegistry,
    name: str,
    folder: Path,
    card: Mapping[str, Any],
    *,
    promote: bool,
) -> ModelVersion:
    """Register ``folder`` as the next version of ``name``: the card gets the folder's
    digest, the python version and, as its parent, the current champion. The version
    becomes the champion if ``promote`` or if the model has none yet, else the challenger."""
    champion = champion_of(registry, name)
    fields = dict(card)
    fields.setdefault("parent", champion.ref if champion is not None else None)
    libraries = {"python": platform.python_version(), **fields.pop("libraries", {})}
    version = registry.register(
        name,
        folder,
        ModelCard(**fields, libraries=libraries, artefact_sha256=folder_digest(folder)),
    )
    if promote or champion is None:
        return registry.promote(name, version.version)
    registry.set_alias(name, CHALLENGER, version.version)
    return registry.resolve(ModelRef(name, None, version.version))


def matching_version(registry: ModelRegistry, name: str, key: str) -> ModelVersion | None:
    """The version of ``name`` trained on inputs with this key (``params.training_key``):
    the champion if it is one, else the newest; None if no version was."""
    found = [v for v in registry.versions(name) if v.card.params.get("training_key") == key]
    if not found:
        return None
    champions = [v for v in found if CHAMPION in v.aliases]
    return champions[0] if champions else found[-1]


def shipped_cost_ref(registry: ModelRegistry) -> ModelRef:
    """``cost-rl-shipped@champion``, registering the model shipped in ``agents/cost/shipped/``
    first if the registry does not hold it yet."""
    from agents.cost.model import SHIPPED_DIR, load_model

    ref = ModelRef(SHIPPED_COST_MODEL)
    if registry.versions(SHIPPED_COST_MODEL):
        return ref
    meta = load_model(SHIPPED_DIR).metadata
    register(
        registry,
        SHIPPED_COST_MODEL,
        SHIPPED_DIR,
        {
            "agent": "cost-rl",
            "description": "the small cost-rl model shipped with opsbench",
            "scenario": meta.scenario,
            "seed": meta.seed,
            "params": cost_params(meta),
            "metrics": cost_metrics(meta),
            "libraries": dict(meta.libraries),
        },
        promote=True,
    )
    return ref


def cost_params(meta: Any) -> dict[str, Any]:
    """The registered parameters of a cost model (its :class:`CostModelMetadata`)."""
    return {
        "algorithm": meta.algorithm,
        "timesteps": meta.timesteps,
        "net_arch": list(meta.net_arch),
        "n_spot": meta.n_spot,
        "obs_dim": meta.obs_dim,
        "act_dim": meta.act_dim,
        "feature_version": meta.feature_version,
        "selected": meta.selected,
        "model_version": meta.model_version,
    }


def cost_metrics(meta: Any) -> dict[str, float]:
    """The registered validation metrics of a cost model (its evaluation episodes)."""
    out = {"train_seconds": float(meta.train_seconds)}
    if meta.eval_mean_reward is not None:
        out["eval_mean_reward"] = float(meta.eval_mean_reward)
    return out
