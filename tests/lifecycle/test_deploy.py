"""``opsbench deploy``: the plan (reads only), --apply on moto, update_endpoint (moto lacks it:
botocore's Stubber), and one-line input errors before any call."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_moto import CLOSED_ENDPOINT, TEST_BUCKET, TEST_IMAGE, TEST_PREFIX, MotoServer
from botocore.stub import Stubber
from opsbench_testing import assert_one_line_error, run_main

from agents.lifecycle.deploy import apply_plan, deploy_request, plan_deploy
from agents.lifecycle.registry import ModelCard, ModelVersion, folder_digest
from agents.lifecycle.sagemaker import SageMakerRegistry

pytestmark = pytest.mark.aws

NAME = "scaling-default"
REGISTRY = f"sagemaker://{TEST_BUCKET}/{TEST_PREFIX}"
AB = ["--variant", f"{NAME}/1=0.9", "--variant", f"{NAME}/2=0.1"]


@pytest.fixture
def registered(moto: MotoServer, tmp_path: Path) -> list[ModelVersion]:
    """Two versions of NAME in a SageMakerRegistry on moto."""
    moto.client("s3").create_bucket(Bucket=TEST_BUCKET)
    registry = SageMakerRegistry(
        TEST_BUCKET, TEST_PREFIX, image=TEST_IMAGE, client_factory=moto.client
    )
    versions = []
    for label in ("one", "two"):
        folder = tmp_path / label
        folder.mkdir()
        (folder / "model.json").write_text(f'{{"label": "{label}"}}')
        card = ModelCard(agent="scaling", artefact_sha256=folder_digest(folder))
        versions.append(registry.register(NAME, folder, card))
    return versions


def deploy(
    capsys: pytest.CaptureFixture[str], moto: MotoServer, *args: str
) -> tuple[int, str, str]:
    return run_main(capsys, ["deploy", *args, "--registry", REGISTRY, "--endpoint-url", moto.url])


def nothing_deployed(moto: MotoServer) -> bool:
    sagemaker = moto.client("sagemaker")
    return (
        sagemaker.list_models()["Models"] == []
        and sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
        and sagemaker.list_endpoints()["Endpoints"] == []
    )


def test_apply_deploys_two_weighted_versions(
    registered: list[ModelVersion], moto: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = deploy(
        capsys, moto, NAME, "--endpoint-name", "scaling-ab", *AB, "--apply", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["applied"] is True and result["endpoint_status"] == "InService"
    sagemaker = moto.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="scaling-ab")
    assert result["endpoint_arn"] == endpoint["EndpointArn"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variants = {v["ModelName"]: v for v in config["ProductionVariants"]}
    assert {name: v["InitialVariantWeight"] for name, v in variants.items()} == {
        f"{NAME}-v1": 0.9,
        f"{NAME}-v2": 0.1,
    }
    for version in registered:
        model = sagemaker.describe_model(ModelName=f"{NAME}-v{version.version}")
        assert model["PrimaryContainer"] == {"Image": TEST_IMAGE, "ModelDataUrl": version.location}


def test_without_apply_the_plan_is_printed_and_no_call_is_made(
    registered: list[ModelVersion], moto: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = deploy(capsys, moto, NAME, "--endpoint-name", "scaling-ab", *AB, "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["applied"] is False
    assert [c["operation"] for c in plan["calls"]] == [
        "create_model",
        "create_model",
        "create_endpoint_config",
        "create_endpoint",
    ]
    assert plan["variants"] == [
        {"model": f"{NAME}/1", "weight": 0.9},
        {"model": f"{NAME}/2", "weight": 0.1},
    ]
    assert nothing_deployed(moto)
    code, out, err = deploy(capsys, moto, f"{NAME}/2", "--endpoint-name", "scaling")
    assert code == 0, err
    assert "create_endpoint_config" in out and "dry run" in out and f"{NAME}-v2" in out
    assert nothing_deployed(moto)


class Recording:
    """A client that keeps the name of every operation called on it."""

    def __init__(self, inner: Any, calls: list[str]) -> None:
        self._inner, self._calls = inner, calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute) or name.startswith("_") or name in ("get_paginator", "meta"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(name)
            return attribute(*args, **kwargs)

        return call


def recording(moto: MotoServer, calls: list[str]) -> Callable[[str], Any]:
    return lambda service: Recording(moto.client(service), calls)


def test_planning_only_reads(registered: list[ModelVersion], moto: MotoServer) -> None:
    calls: list[str] = []
    registry = SageMakerRegistry(TEST_BUCKET, TEST_PREFIX, client_factory=recording(moto, calls))
    request = deploy_request(NAME, endpoint_name="e", variants=[f"{NAME}/1=1"])
    plan = plan_deploy(request, registry, recording(moto, calls))
    assert [c.operation for c in plan.calls] == [
        "create_model",
        "create_endpoint_config",
        "create_endpoint",
    ]
    assert calls and all(c.startswith(("describe_", "list_")) for c in calls), calls
    with pytest.raises(TypeError):
        plan.calls[0].params["ModelName"] = "changed"  # type: ignore[index]


def test_an_existing_endpoint_is_updated_with_update_endpoint(
    registered: list[ModelVersion], moto: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = deploy(capsys, moto, NAME, "--endpoint-name", "scaling-ab", *AB, "--apply")
    assert code == 0, err
    shifted = deploy_request(
        NAME, endpoint_name="scaling-ab", variants=[f"{NAME}/1=0.5", f"{NAME}/2=0.5"]
    )
    registry = SageMakerRegistry(TEST_BUCKET, TEST_PREFIX, client_factory=moto.client)
    plan = plan_deploy(shifted, registry, moto.client)
    assert [c.operation for c in plan.calls] == ["create_endpoint_config", "update_endpoint"]
    config = plan.calls[0].params["EndpointConfigName"]
    assert plan.calls[1].params == {"EndpointName": "scaling-ab", "EndpointConfigName": config}

    stubbed = moto.client("sagemaker")  # moto answers update_endpoint with HTTP 500
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/scaling-ab"
    with Stubber(stubbed) as stub:
        stub.add_response(
            "create_endpoint_config",
            {
                "EndpointConfigArn": arn.replace(
                    ":endpoint/scaling-ab", f":endpoint-config/{config}"
                )
            },
            dict(plan.calls[0].params),
        )
        stub.add_response("update_endpoint", {"EndpointArn": arn}, dict(plan.calls[1].params))
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "scaling-ab",
                "EndpointArn": arn,
                "EndpointConfigName": config,
                "EndpointStatus": "Updating",
                "CreationTime": "2026-01-01T00:00:00Z",
                "LastModifiedTime": "2026-01-01T00:00:00Z",
            },
            {"EndpointName": "scaling-ab"},
        )
        result = apply_plan(plan, lambda service: stubbed)
        stub.assert_no_pending_responses()
    assert (result.endpoint_arn, result.status, result.calls_made) == (arn, "Updating", 2)


def test_the_same_deploy_twice_plans_nothing(
    registered: list[ModelVersion], moto: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        code, out, err = deploy(capsys, moto, NAME, "--endpoint-name", "scaling-ab", *AB, "--apply")
        assert code == 0, err
    assert "nothing to do" in out and "InService" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ([NAME, "--endpoint-name", "bad_name"], ("--endpoint-name", "bad_name")),
        ([NAME, "--endpoint-name", "-lead"], ("--endpoint-name",)),
        ([NAME, "--endpoint-name", "e" * 64], ("--endpoint-name",)),
        ([NAME, "--endpoint-name", "e", "--variant", f"{NAME}/1=0"], ("--variant", "> 0")),
        ([NAME, "--endpoint-name", "e", "--variant", f"{NAME}/1=-1"], ("--variant", "> 0")),
        ([NAME, "--endpoint-name", "e", "--variant", f"{NAME}/1=nan"], ("--variant", "> 0")),
        ([NAME, "--endpoint-name", "e", "--variant", f"{NAME}/1=lots"], ("--variant", "lots")),
        ([NAME, "--endpoint-name", "e", "--variant", f"{NAME}/1"], ("--variant", "REF=WEIGHT")),
        ([NAME, "--endpoint-name", "e", *AB[:2], *AB[:2]], ("--variant", "twice")),
        ([NAME, "--endpoint-name", "e", "--variant", "other/1=1"], ("--variant", "other/1")),
        ([f"{NAME}/1", "--endpoint-name", "e", *AB], ("MODEL_REF", "bare model name")),
        (["Not A Ref", "--endpoint-name", "e"], ("MODEL_REF",)),
        ([NAME, "--endpoint-name", "e", "--instance-type", "m5.large"], ("--instance-type",)),
        ([NAME, "--endpoint-name", "e", "--role-arn", "role"], ("--role-arn",)),
        ([NAME, "--endpoint-name", "e", "--image", "has space"], ("--image",)),
        ([NAME, "--endpoint-name", "e", "--registry", "mlflow://x"], ("--registry",)),
        ([NAME, "--endpoint-name", "e", "--registry", "sagemaker://b/p?x=1"], ("--registry", "x")),
    ],
)
def test_bad_input_is_one_line_before_any_call(
    args: list[str], needles: tuple[str, ...], moto: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--registry" not in args:
        args = [*args, "--registry", REGISTRY]
    # every client points at a closed port: a call made would fail with a connection error
    code, out, err = run_main(capsys, ["deploy", *args, "--endpoint-url", CLOSED_ENDPOINT])
    assert_one_line_error(code, out, err, *needles)
    assert "Could not connect" not in err


def test_unknown_versions_are_one_line_errors(
    registered: list[ModelVersion], moto: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = deploy(capsys, moto, f"{NAME}/9", "--endpoint-name", "e", "--apply")
    assert_one_line_error(code, out, err, f"{NAME}/9")
    code, out, err = deploy(capsys, moto, NAME, "--endpoint-name", "e", "--apply")
    assert_one_line_error(code, out, err, "champion")
    code, out, err = deploy(
        capsys, moto, NAME, "--endpoint-name", "e", "--variant", f"{NAME}/1=1", "--variant",
        f"{NAME}@champion=1",
    )  # fmt: skip
    assert_one_line_error(code, out, err, "champion")
    assert nothing_deployed(moto)
