"""Request parameters of a CloudTrail call: the benign form and the attacker's variant.

:func:`request_parameters` gives the ``requestParameters`` object of one call by its API
name: shares with another account, open ingress rules, administrator policies, logging
switched off and the like for a hostile caller, the everyday values otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.audit.vocabulary import is_read


def request_parameters(
    service: str,
    name: str,
    *,
    hostile: bool,
    account_id: str,
    partner: str,
    rng: np.random.Generator,
) -> dict[str, Any] | None:
    """Request parameters of one call; ``hostile`` gives the attacker's variant."""
    rid = rng.bytes(4).hex()
    other = str(int(rng.integers(10**11, 10**12))) if hostile else partner
    if name == "ModifySnapshotAttribute":
        return {
            "snapshotId": f"snap-{rid}",
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": other}]}},
        }
    if name == "ModifyImageAttribute":
        return {
            "imageId": f"ami-{rid}",
            "attributeType": "launchPermission",
            "launchPermission": {"add": {"items": [{"userId": other}]}},
        }
    if name == "ModifyDBSnapshotAttribute":
        return {
            "dBSnapshotIdentifier": f"db-{rid}",
            "attributeName": "restore",
            "valuesToAdd": [other],
        }
    if name == "AuthorizeSecurityGroupIngress":
        cidr = "0.0.0.0/0" if hostile or rng.random() < 0.1 else "10.0.0.0/8"
        port = int(rng.choice([22, 3389])) if hostile else int(rng.choice([443, 80, 22, 5432]))
        return {
            "groupId": f"sg-{rid}",
            "ipProtocol": "tcp",
            "fromPort": port,
            "toPort": port,
            "cidrIp": cidr,
        }
    if name == "PutBucketPolicy":
        who = f"arn:aws:iam::{other if hostile else account_id}:root"
        return {
            "bucketName": f"data-{rid}",
            "bucketPolicy": {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": who}, "Action": ["s3:GetObject"]}
                ]
            },
        }
    if name == "AttachUserPolicy":
        pol = (
            "AdministratorAccess"
            if hostile
            else str(
                rng.choice(
                    ["ReadOnlyAccess", "PowerUserAccess", "AdministratorAccess"], p=[0.6, 0.3, 0.1]
                )
            )
        )
        return {"userName": f"user-{rid}", "policyArn": f"arn:aws:iam::aws:policy/{pol}"}
    if name == "AddPermission20150331v2":
        return {
            "functionName": f"fn-{rid}",
            "action": "lambda:InvokeFunction",
            "principal": "*" if hostile else "events.amazonaws.com",
            "statementId": rid,
        }
    if name == "PutEventSelectors":
        return {
            "trailName": f"trail-{rid}",
            "eventSelectors": [
                {
                    "readWriteType": "ReadOnly" if hostile else "All",
                    "includeManagementEvents": not hostile,
                }
            ],
        }
    if name == "PutBucketLifecycle":
        days = 1 if hostile else int(rng.choice([30, 90, 365]))
        return {
            "bucketName": f"logs-{rid}",
            "LifecycleConfiguration": {"Rule": {"Expiration": {"Days": days}, "Status": "Enabled"}},
        }
    if name == "RunInstances":
        itype = (
            str(rng.choice(["p3.16xlarge", "p2.xlarge", "g4dn.12xlarge", "x1e.32xlarge"]))
            if hostile
            else str(rng.choice(["c5a.2xlarge", "m5.large", "t3.medium"]))
        )
        count = int(rng.integers(5, 20)) if hostile else int(rng.integers(1, 3))
        return {
            "instanceType": itype,
            "instancesSet": {
                "items": [{"imageId": f"ami-{rid}", "minCount": 1, "maxCount": count}]
            },
        }
    if name == "DescribeInstanceAttribute":
        return {
            "instanceId": f"i-{rid}",
            "attribute": "userData"
            if hostile
            else str(rng.choice(["instanceType", "userData", "disableApiTermination"])),
        }
    if name == "GetParameters":
        n = int(rng.integers(5, 30)) if hostile else int(rng.integers(1, 3))
        return {"names": [f"/app/{rid}/p{i}" for i in range(n)], "withDecryption": True}
    if name in ("GetSecretValue", "DescribeSecret"):
        return {"secretId": f"arn:aws:secretsmanager:us-east-1:{account_id}:secret:app-{rid}"}
    if name == "SendCommand":
        return {
            "documentName": "AWS-RunShellScript",
            "instanceIds": [f"i-{rid}"],
            "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS",
        }
    if name == "ConsoleLogin":
        return None
    if name in ("CreateUser", "CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile"):
        return {"userName": f"user-{rid}"}
    if name in ("GetPasswordData", "StopLogging", "DeleteTrail", "StartLogging"):
        return {"instanceId": f"i-{rid}"} if name == "GetPasswordData" else {"name": f"trail-{rid}"}
    if is_read(name):
        return None if rng.random() < 0.4 else {"maxResults": int(rng.choice([50, 100, 1000]))}
    return {"name": f"{service}-{rid}"}
