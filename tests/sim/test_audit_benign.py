"""Benign audit traffic has the novelty real accounts show: console page views (bursts of
a page's read calls under an internal user agent, mostly APIs outside the user's habits),
sessions from new networks, upgraded clients, Terraform from an admin's laptop and the SSM
agent on application instances."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from agents.security.events import ua_family
from sim.audit.generator import AuditGenerator, AuditLabel
from sim.audit.principals import Principal, build_principals
from sim.seeding import component_rng

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def account() -> tuple[list[Principal], list[dict[str, Any]], list[AuditLabel]]:
    rng = component_rng(5, "audit-benign-test")
    counts = {"admin": 3, "developer": 4, "ci": 1, "app": 2, "service": 2, "autoscaler": 1}
    principals = build_principals(counts, account_id=ACCOUNT, rng=rng)
    gen = AuditGenerator(
        account_id=ACCOUNT, region="us-east-1", start=datetime(2024, 3, 4), rng=rng
    )
    gen.benign(principals, 10 * 86_400.0)
    records, labels = gen.take()
    return principals, records, labels


def _arn(record: dict[str, Any]) -> str:
    return str(record["userIdentity"].get("arn", ""))


def test_benign_records_are_labelled_normal(
    account: tuple[list[Principal], list[dict[str, Any]], list[AuditLabel]],
) -> None:
    _, records, labels = account
    assert len(records) == len(labels) > 10_000
    assert {lab.label for lab in labels} == {"normal"}


def test_console_page_views_are_bursts_of_unhabitual_reads(
    account: tuple[list[Principal], list[dict[str, Any]], list[AuditLabel]],
) -> None:
    principals, records, labels = account
    habits: dict[str, set[str]] = {}
    for p in principals:
        habits.setdefault(p.identity.get("arn", ""), set()).update(n for _, n in p.apis)
    page = [
        r
        for r, lab in zip(records, labels, strict=True)
        if lab.principal_kind in ("admin", "developer")
        and ua_family(r["userAgent"]) in ("console", "aws-internal")
        and not r["userAgent"].startswith("Mozilla")
    ]
    assert len(page) > 100
    assert sum(r["readOnly"] for r in page) / len(page) > 0.9
    outside = sum(r["eventName"] not in habits[_arn(r)] for r in page)
    assert outside / len(page) > 0.5  # mostly APIs the user never calls otherwise
    assert any("Console/" in r["userAgent"] or " Console," in r["userAgent"] for r in page)
    assert any(r["userAgent"] == "AWS Internal" for r in page)


def test_humans_sometimes_use_new_networks_and_upgraded_clients(
    account: tuple[list[Principal], list[dict[str, Any]], list[AuditLabel]],
) -> None:
    principals, records, labels = account
    nets: dict[str, set[str]] = {}
    uas: dict[str, set[str]] = {}
    for p in principals:
        nets.setdefault(p.identity.get("arn", ""), set()).update(p.networks)
        uas.setdefault(p.identity.get("arn", ""), set()).update(p.user_agents)
    human = [
        r
        for r, lab in zip(records, labels, strict=True)
        if lab.principal_kind in ("admin", "developer", "operator")
        and r["sourceIPAddress"] != "AWS Internal"
        and ua_family(r["userAgent"]) not in ("console", "aws-internal", "aws-service")
        and r["eventSource"] != "signin.amazonaws.com"
    ]
    new_net = sum(r["sourceIPAddress"] not in nets[_arn(r)] for r in human) / len(human)
    new_ua = sum(r["userAgent"] not in uas[_arn(r)] for r in human) / len(human)
    assert 0.005 < new_net < 0.2
    assert 0.01 < new_ua < 0.3


def test_admins_apply_terraform_and_instances_run_the_ssm_agent(
    account: tuple[list[Principal], list[dict[str, Any]], list[AuditLabel]],
) -> None:
    principals, records, labels = account
    by_kind = Counter(lab.principal_kind for lab in labels)
    assert by_kind["operator"] > 0 and by_kind["agent"] > 0
    admins = {p.identity["arn"] for p in principals if p.kind == "admin"}
    apps = {p.identity["arn"] for p in principals if p.kind == "app"}
    for r, lab in zip(records, labels, strict=True):
        if ua_family(r["userAgent"]) == "aws-service":
            continue  # KMS calls a service makes on the principal's behalf
        if lab.principal_kind == "operator":
            assert _arn(r) in admins and ua_family(r["userAgent"]) == "terraform"
        elif lab.principal_kind == "agent":
            assert _arn(r) in apps and r["eventSource"] == "ssm.amazonaws.com"
