"""``opsbench deploy``: put registered model versions behind a SageMaker endpoint (a dry run
unless ``--apply``)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from agents.lifecycle.deploy import (
    DEFAULT_INSTANCE_TYPE,
    DeployPlan,
    apply_plan,
    deploy_request,
    plan_deploy,
)
from agents.lifecycle.registry import ModelRegistry
from bench.cli.common import json_option, stdout
from sim.errors import InputError

REGISTRY_ALLOWED = "sagemaker://BUCKET/PREFIX (deploy needs artefacts in S3)"


def open_deploy_registry(uri: str | None, endpoint_url: str | None) -> ModelRegistry:
    """The SageMaker registry ``--registry`` names (SageMaker reads model data from S3,
    so a local registry's versions cannot be deployed as they are)."""
    from agents.lifecycle.sagemaker import sagemaker_registry_from_uri

    if uri is None or not uri.startswith("sagemaker://"):
        shown = "none given" if uri is None else repr(uri)
        raise InputError("--registry", "", f"{shown}: not a SageMaker registry", REGISTRY_ALLOWED)
    return sagemaker_registry_from_uri(uri, endpoint_url=endpoint_url)


def _client_factory(endpoint_url: str | None) -> Any:
    import boto3

    def factory(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoint_url)

    return factory


def _summary(params: dict[str, Any]) -> str:
    if "ProductionVariants" in params:
        return ", ".join(
            f"{v['VariantName']} {v['ModelName']} weight {v['InitialVariantWeight']:g} "
            f"({v['InitialInstanceCount']} x {v['InstanceType']})"
            for v in params["ProductionVariants"]
        )
    if "PrimaryContainer" in params:
        container = params["PrimaryContainer"]
        return f"{params['ModelName']}: {container['Image']} with {container['ModelDataUrl']}"
    return f"{params['EndpointName']} ← {params['EndpointConfigName']}"


def plan_table(plan: DeployPlan, applied: bool) -> Table:
    state = "made" if applied else "planned (dry run: add --apply to make them)"
    table = Table(title=f"endpoint {plan.endpoint_name}: calls {state}")
    for column in ("#", "service", "operation", "what"):
        table.add_column(column)
    for number, call in enumerate(plan.calls, 1):
        table.add_row(str(number), call.service, call.operation, _summary(dict(call.params)))
    return table


@click.command("deploy")
@click.argument("model_ref")
@click.option("--endpoint-name", required=True, help="the SageMaker endpoint to create or update")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="REF=WEIGHT",
    help="a version of MODEL_REF and its traffic weight, e.g. scaling-default/2=0.1 (repeat: A/B)",
)
@click.option("--image", default=None, help="inference container image (default: the package's)")
@click.option("--role-arn", default=None, help="IAM role SageMaker runs the models as")
@click.option(
    "--instance-type", default=DEFAULT_INSTANCE_TYPE, show_default=True, help="for every variant"
)
@click.option(
    "--registry", "registry_uri", default=None, help=f"model registry: {REGISTRY_ALLOWED}"
)
@click.option("--endpoint-url", default=None, help="AWS endpoint URL (e.g. a moto server)")
@click.option("--apply", "apply", is_flag=True, help="make the calls (default: print them only)")
@json_option
def deploy(
    model_ref: str,
    endpoint_name: str,
    variants: tuple[str, ...],
    image: str | None,
    role_arn: str | None,
    instance_type: str,
    registry_uri: str | None,
    endpoint_url: str | None,
    apply: bool,
    as_json: bool,
) -> None:
    """Deploy MODEL_REF (or its --variant versions, weighted) to a SageMaker endpoint: plan the
    calls and print them; --apply makes them."""
    request = deploy_request(
        model_ref,
        endpoint_name=endpoint_name,
        variants=variants,
        image=image,
        role_arn=role_arn,
        instance_type=instance_type,
    )
    registry = open_deploy_registry(registry_uri, endpoint_url)
    factory = _client_factory(endpoint_url)
    plan = plan_deploy(request, registry, factory)
    result = apply_plan(plan, factory) if apply else None
    if as_json:
        out = {**plan.as_json(), "applied": apply}
        if result is not None:
            out.update(endpoint_arn=result.endpoint_arn, endpoint_status=result.status)
        click.echo(json.dumps(out))
        return
    if not plan.calls:
        stdout.print(f"endpoint {plan.endpoint_name} already serves these variants: nothing to do")
    else:
        stdout.print(plan_table(plan, applied=apply))
    if result is not None:
        stdout.print(f"endpoint {result.endpoint_arn}: {result.status}")
