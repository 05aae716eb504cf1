"""Deploy registered model versions to a SageMaker endpoint: plan first, then (on request) apply.

A deployment is a frozen :class:`DeployPlan`, the list of SageMaker calls that would bring the
endpoint to the requested variants::

    create_model            one per variant whose model does not exist yet (name NAME-vVERSION,
                            container = the package's image, ModelDataUrl = the version's S3
                            tarball)
    create_endpoint_config  the weighted ProductionVariants (name ENDPOINT-<digest of them>, so
                            the same variants give the same config and are not created twice)
    create_endpoint         if the endpoint does not exist,
    update_endpoint         else (nothing if it already runs that config)

Building the plan only reads (the registry, ``describe_*``); :func:`apply_plan` makes the calls.
Variants are versions of one model with traffic weights (A/B or canary)::

    scaling-default/1=0.9  scaling-default/2=0.1

Every input is checked before any call: one InputError line, nothing made.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.lifecycle.registry import ModelRef, ModelRegistry, ModelVersion
from agents.lifecycle.sagemaker import SageMakerError, is_not_found
from sim.errors import InputError

ClientFactory = Callable[[str], Any]

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
NAME_ALLOWED = "1-63 letters and digits, single or repeated hyphens inside (SageMaker names)"
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
IMAGE = re.compile(r"^[^\s]{1,255}$")
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
MAX_VARIANTS = 10  # SageMaker's limit of production variants per endpoint config


@dataclass(frozen=True, slots=True)
class Variant:
    """One production variant: a model version reference and its traffic weight (> 0)."""

    ref: ModelRef
    weight: float

    @classmethod
    def parse(cls, text: str, *, source: str = "--variant") -> Variant:
        """``REF=WEIGHT``, e.g. ``scaling-default/2=0.1``."""
        ref_text, sep, weight_text = text.rpartition("=")
        if not sep:
            raise InputError(source, "", f"{text!r} has no weight", "REF=WEIGHT, e.g. m/2=0.1")
        try:
            weight = float(weight_text)
        except ValueError:
            raise InputError(
                source, text, f"weight {weight_text!r} is not a number", "a number > 0"
            ) from None
        if not (math.isfinite(weight) and weight > 0):
            raise InputError(
                source, text, f"weight {weight_text} is not > 0", "a finite number > 0"
            )
        return cls(ModelRef.parse(ref_text, source=source), weight)


@dataclass(frozen=True, slots=True)
class DeployRequest:
    """What to deploy where (checked on construction by :func:`deploy_request`)."""

    endpoint_name: str
    variants: tuple[Variant, ...]
    image: str | None = None
    role_arn: str | None = None
    instance_type: str = DEFAULT_INSTANCE_TYPE


def deploy_request(
    model: str,
    *,
    endpoint_name: str,
    variants: Sequence[str] = (),
    image: str | None = None,
    role_arn: str | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
) -> DeployRequest:
    """The checked request: ``model`` alone is one variant of weight 1; with ``variants``
    (``REF=WEIGHT``), ``model`` is the bare model name they are all versions of."""
    checks = (
        ("--endpoint-name", endpoint_name, SAGEMAKER_NAME, "an endpoint name", NAME_ALLOWED),
        ("--instance-type", instance_type, INSTANCE_TYPE, "an instance type", "e.g. ml.m5.large"),
        ("--role-arn", role_arn, ROLE_ARN, "an IAM role ARN", "arn:aws:iam::ACCOUNT:role/NAME"),
        ("--image", image, IMAGE, "an image URI", "1-255 characters, no spaces"),
    )
    for option, value, pattern, kind, allowed in checks:
        if value is not None and not pattern.match(value):
            raise InputError(option, "", f"{value!r} is not {kind}", allowed)
    base = ModelRef.parse(model, source="MODEL_REF")
    if not variants:
        chosen: tuple[Variant, ...] = (Variant(base, 1.0),)
    else:
        if model != base.name:
            raise InputError(
                "MODEL_REF",
                "",
                f"{model!r} names a version, but --variant picks them",
                "the bare model name with --variant (e.g. scaling-default)",
            )
        chosen = tuple(Variant.parse(v) for v in variants)
        others = sorted({str(v.ref) for v in chosen if v.ref.name != base.name})
        if others:
            raise InputError(
                "--variant",
                ", ".join(others),
                f"is not a version of model {base.name!r}",
                f"references to {base.name}",
            )
        if len(chosen) > MAX_VARIANTS:
            raise InputError("--variant", "", f"{len(chosen)} variants", f"at most {MAX_VARIANTS}")
        seen: set[str] = set()
        for variant in chosen:
            if str(variant.ref) in seen:
                raise InputError(
                    "--variant", str(variant.ref), "is given twice", "each reference once"
                )
            seen.add(str(variant.ref))
    return DeployRequest(endpoint_name, chosen, image, role_arn, instance_type)


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One SageMaker API call: ``client(service).<operation>(**params)``."""

    service: str
    operation: str
    params: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "params": _thaw(self.params)}


@dataclass(frozen=True, slots=True)
class DeployPlan:
    """The calls that bring ``endpoint_name`` to ``variants`` (in order; maybe none)."""

    endpoint_name: str
    variants: tuple[tuple[str, float], ...]  # (NAME/VERSION, weight)
    calls: tuple[PlannedCall, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_name,
            "variants": [{"model": ref, "weight": weight} for ref, weight in self.variants],
            "calls": [call.as_json() for call in self.calls],
        }


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def sagemaker_model_name(version: ModelVersion) -> str:
    """``NAME-vVERSION``, the name cut so that it fits SageMaker's 63 characters."""
    suffix = f"-v{version.version}"
    return version.name[: 63 - len(suffix)].rstrip("-") + suffix


def _resolve(registry: ModelRegistry, request: DeployRequest) -> list[tuple[ModelVersion, float]]:
    resolved: list[tuple[ModelVersion, float]] = []
    for variant in request.variants:
        version = registry.resolve(variant.ref)
        if not version.location.startswith("s3://"):
            raise InputError(
                str(variant.ref),
                "location",
                f"the artefact is at {version.location!r}, not in S3",
                "a version of a sagemaker:// registry",
            )
        if any(v.version == version.version for v, _ in resolved):
            raise InputError(
                "--variant",
                str(variant.ref),
                f"is version {version.version} again",
                "each version once",
            )
        resolved.append((version, variant.weight))
    return resolved


def _exists(client: Any, operation: str, **params: Any) -> dict[str, Any] | None:
    """``describe_*`` result, or None when the resource does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return dict(getattr(client, operation)(**params))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise SageMakerError(f"sagemaker {operation} failed: {_one_line(exc)}") from None
    except BotoCoreError as exc:
        raise SageMakerError(f"sagemaker {operation} failed: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def plan_deploy(
    request: DeployRequest, registry: ModelRegistry, client_factory: ClientFactory
) -> DeployPlan:
    """The calls :func:`apply_plan` would make (this only reads: the registry and
    ``describe_model`` / ``describe_endpoint_config`` / ``describe_endpoint``)."""
    sagemaker = client_factory("sagemaker")
    resolved = _resolve(registry, request)
    calls: list[PlannedCall] = []
    production: list[dict[str, Any]] = []
    for version, weight in resolved:
        image = request.image or str(version.extra.get("image", ""))
        if not image:
            raise InputError(
                "--image", "", f"{version.ref} records no container image", "--image URI"
            )
        name = sagemaker_model_name(version)
        container = {"Image": image, "ModelDataUrl": version.location}
        existing = _exists(sagemaker, "describe_model", ModelName=name)
        if existing is None:
            params: dict[str, Any] = {"ModelName": name, "PrimaryContainer": container}
            if request.role_arn is not None:
                params["ExecutionRoleArn"] = request.role_arn
            calls.append(PlannedCall("sagemaker", "create_model", params))
        else:
            found = existing.get("PrimaryContainer", {})
            if (found.get("Image"), found.get("ModelDataUrl")) != (image, version.location):
                raise InputError(
                    "--endpoint-name",
                    name,
                    f"a SageMaker model {name} exists with image {found.get('Image')} and data "
                    f"{found.get('ModelDataUrl')}",
                    f"image {image} and data {version.location} (delete the old model)",
                )
        production.append(
            {
                "VariantName": f"version-{version.version}",
                "ModelName": name,
                "InitialVariantWeight": weight,
                "InitialInstanceCount": 1,
                "InstanceType": request.instance_type,
            }
        )
    content = json.dumps(production, sort_keys=True).encode()
    config = f"{request.endpoint_name[:54]}-{hashlib.sha256(content).hexdigest()[:8]}"
    if _exists(sagemaker, "describe_endpoint_config", EndpointConfigName=config) is None:
        calls.append(
            PlannedCall(
                "sagemaker",
                "create_endpoint_config",
                {"EndpointConfigName": config, "ProductionVariants": production},
            )
        )
    endpoint = _exists(sagemaker, "describe_endpoint", EndpointName=request.endpoint_name)
    target = {"EndpointName": request.endpoint_name, "EndpointConfigName": config}
    if endpoint is None:
        calls.append(PlannedCall("sagemaker", "create_endpoint", target))
    elif endpoint.get("EndpointConfigName") != config:
        calls.append(PlannedCall("sagemaker", "update_endpoint", target))
    return DeployPlan(
        request.endpoint_name,
        tuple((v.ref, w) for v, w in resolved),
        tuple(PlannedCall(c.service, c.operation, _FrozenParams(c.params)) for c in calls),
    )


class _FrozenParams(Mapping[str, Any]):
    """A read-only deep copy of a call's parameters (a plan cannot be changed once made)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._frozen = json.dumps(_thaw(params), sort_keys=True)

    def __getitem__(self, key: str) -> Any:
        return json.loads(self._frozen)[key]

    def __iter__(self) -> Any:
        return iter(json.loads(self._frozen))

    def __len__(self) -> int:
        return len(json.loads(self._frozen))

    def __repr__(self) -> str:
        return self._frozen


@dataclass(frozen=True, slots=True)
class DeployResult:
    """The endpoint after :func:`apply_plan`."""

    endpoint_name: str
    endpoint_arn: str
    status: str
    calls_made: int


def apply_plan(plan: DeployPlan, client_factory: ClientFactory) -> DeployResult:
    """Make the plan's calls in order, then describe the endpoint. A failing call is one line
    saying which call failed and how many were made before it."""
    from botocore.exceptions import BotoCoreError, ClientError

    clients: dict[str, Any] = {}
    for done, call in enumerate(plan.calls):
        client = clients.setdefault(call.service, client_factory(call.service))
        try:
            getattr(client, call.operation)(**_thaw(call.params))
        except (ClientError, BotoCoreError) as exc:
            raise SageMakerError(
                f"{call.service} {call.operation} (call {done + 1} of {len(plan.calls)}, "
                f"{done} made before it) failed: {_one_line(exc)}"
            ) from None
    sagemaker = clients.get("sagemaker") or client_factory("sagemaker")
    described = _exists(sagemaker, "describe_endpoint", EndpointName=plan.endpoint_name)
    if described is None:
        raise SageMakerError(f"endpoint {plan.endpoint_name} does not exist after the deploy calls")
    return DeployResult(
        plan.endpoint_name,
        str(described.get("EndpointArn", "")),
        str(described.get("EndpointStatus", "")),
        len(plan.calls),
    )
