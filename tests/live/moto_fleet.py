"""What the end-to-end tests of ``opsbench live scale`` on a sandbox share: the clock,
the sandbox's printed commands, desired sizes read back, every AWS call recorded."""

from __future__ import annotations

import importlib
import json
import shlex
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aws_moto import MotoServer

from adapters.aws.clients import AwsClients
from adapters.live import aws as live_aws
from bench.live_sandbox import Sandbox, prepare

NOW = datetime(2024, 7, 3, 12, 30, 40)  # a Wednesday around noon: the trace is busy
ON_DEMAND_USD_PER_HOUR = 0.308  # c5a.2xlarge in us-east-1, the shipped catalogue
WRITES = {"UpdateNodegroupConfig", "SetDesiredCapacity"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation the CLI's clients send (a ``before-call`` hook on each)."""
    sent: list[str] = []
    original = AwsClients._new_client

    def recording(self: AwsClients, service: str) -> Any:
        client = original(self, service)
        client.meta.events.register(
            "before-call", lambda model, **_: sent.append(model.name), unique_id="opsbench-test"
        )
        return client

    monkeypatch.setattr(AwsClients, "_new_client", recording)
    return sent


@pytest.fixture
def clock_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's clock at NOW (the sandbox's metrics are 40 s old then)."""
    live_cli = importlib.import_module("bench.cli.live")  # the module, not the group
    monkeypatch.setattr(live_cli, "utc_now", lambda: NOW)
    monkeypatch.setattr(live_aws, "utc_now", lambda: NOW)


def sandbox_at(server: MotoServer, out: Path, history_days: float) -> Sandbox:
    return prepare(server.url, out_dir=out, now=NOW, history_days=history_days)


def printed(sandbox: Sandbox, which: int) -> list[str]:
    """The arguments of the sandbox's printed command ``which`` (0: managed groups in
    shadow, 1: the same with --apply, 2: the self-managed group), without ``opsbench``."""
    words = shlex.split(sandbox.commands()[which])
    assert words[0] == "opsbench"
    return words[1:]


def desired(server: MotoServer, sandbox: Sandbox) -> dict[str, int]:
    """Desired size of every group, read back from moto."""
    eks, autoscaling = server.client("eks"), server.client("autoscaling")
    sizes = {
        name: int(
            eks.describe_nodegroup(clusterName=sandbox.cluster, nodegroupName=name)["nodegroup"][
                "scalingConfig"
            ]["desiredSize"]
        )
        for name in sandbox.nodegroups
    }
    (asg,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[sandbox.self_managed_group]
    )["AutoScalingGroups"]
    sizes[sandbox.self_managed_group] = int(asg["DesiredCapacity"])
    return sizes


def records_of(stdout: str) -> dict[str, dict[str, Any]]:
    """The decision records printed with ``--json``, by node group."""
    return {r["nodegroup"]: r for r in (json.loads(line) for line in stdout.splitlines())}
