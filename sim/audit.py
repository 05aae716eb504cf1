"""CloudTrail-shaped audit events: benign principals with habits, plus attack campaigns.

Domain model
------------
*Principals* are the identities of one AWS account: admins (console + CLI, office
hours, MFA logins), developers (SDK/CLI reads, Lambda deploys), CI/CD roles (Terraform
bursts at any hour, creating and tearing down whole environments), read-only scanners
(a daily burst of Get/List/Describe calls with throttling), application roles running
on instances (secrets, parameters, KMS), AWS service principals and the cluster
autoscaler. Each has *habits*: working hours (UTC), usual networks, user agents and a
weighted set of APIs; benign activity is drawn session by session from those habits.

*Campaigns* are attacks injected on top: an entry (stolen access keys of an existing
principal, a console login without MFA, or stolen instance credentials) followed by
techniques of the Stratus Red Team catalogue (``attack_techniques.csv``), each expanded
into its CloudTrail calls with realistic repetition, permission probes that fail, role
assumptions (the calls after ``sts:AssumeRole`` come from the new role session),
tool pre-flight checks and clean-up calls.

Ground truth (``normal`` / ``suspicious`` / ``malicious`` and the technique) is returned
*beside* the records as :class:`AuditLabel` rows keyed by ``eventID``; no record carries
its label. Times are seconds from the replay's start; every random draw comes from the
generator handed in (one component stream, see :func:`sim.seeding.component_rng`).
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import InputError

DAY_S = 86_400.0

# ------------------------------------------------------------------ techniques

_CALL = re.compile(r"([a-z0-9-]+):([A-Za-z0-9]+)(\*?)")


@dataclass(frozen=True, slots=True)
class Technique:
    """One Stratus Red Team technique: its id, tactics and CloudTrail calls."""

    stratus_id: str
    name: str
    tactics: tuple[str, ...]
    calls: tuple[tuple[str, str], ...]  # (service, eventName)


def load_techniques(path: Path) -> dict[str, Technique]:
    """Read ``attack_techniques.csv`` (columns ``stratus_id, name, tactics, ...,
    cloudtrail_events``) into techniques keyed by Stratus id (``aws.`` prefix kept)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, "", f"cannot read: {exc.strerror or exc}", "a CSV file") from None
    rows = list(csv.DictReader(text.splitlines()))
    needed = {"stratus_id", "name", "tactics", "cloudtrail_events"}
    if not rows or not needed <= set(rows[0]):
        raise InputError(path, "header", "missing columns", ", ".join(sorted(needed)))
    out: dict[str, Technique] = {}
    for i, row in enumerate(rows, start=2):
        calls = tuple(
            (svc, name) for svc, name, star in _CALL.findall(row["cloudtrail_events"]) if not star
        )
        if not calls:
            raise InputError(path, f"line {i}", "no service:eventName in cloudtrail_events")
        out[row["stratus_id"]] = Technique(
            stratus_id=row["stratus_id"],
            name=row["name"],
            tactics=tuple(t.strip() for t in row["tactics"].split(";")),
            calls=calls,
        )
    return out


# ------------------------------------------------------------------ vocabulary

_READS: dict[str, Sequence[str]] = {
    "ec2": (
        "DescribeInstances DescribeSecurityGroups DescribeSubnets DescribeVpcs DescribeVolumes "
        "DescribeImages DescribeSnapshots DescribeRouteTables DescribeNetworkInterfaces "
        "DescribeKeyPairs DescribeLaunchTemplates DescribeAccountAttributes "
        "DescribeInstanceStatus DescribeRegions DescribeAvailabilityZones DescribeAddresses "
        "DescribeTags DescribeInstanceTypes DescribeSpotPriceHistory DescribeFlowLogs"
    ).split(),
    "s3": (
        "ListBuckets GetBucketLocation GetBucketPolicy GetBucketAcl GetBucketVersioning "
        "GetBucketLogging GetBucketTagging GetBucketEncryption GetBucketPublicAccessBlock "
        "GetBucketLifecycle"
    ).split(),
    "iam": (
        "ListUsers ListRoles GetRole GetUser ListPolicies GetPolicy GetPolicyVersion "
        "ListAttachedRolePolicies ListAccessKeys GetAccountSummary ListGroups ListMFADevices "
        "ListRolePolicies GetAccountPasswordPolicy ListInstanceProfiles"
    ).split(),
    "sts": ("GetCallerIdentity",),
    "cloudtrail": ("DescribeTrails GetTrailStatus LookupEvents GetEventSelectors").split(),
    "lambda": ("ListFunctions20150331 GetFunction20150331v2 GetPolicy20150331v2").split(),
    "logs": ("DescribeLogGroups GetLogEvents FilterLogEvents DescribeLogStreams").split(),
    "monitoring": ("GetMetricData DescribeAlarms ListMetrics").split(),
    "eks": ("DescribeCluster ListClusters ListNodegroups DescribeNodegroup").split(),
    "ecr": ("GetAuthorizationToken DescribeRepositories BatchGetImage").split(),
    "kms": ("Decrypt DescribeKey GenerateDataKey ListKeys ListAliases").split(),
    "ssm": (
        "GetParameter DescribeParameters GetParametersByPath DescribeInstanceInformation"
    ).split(),
    "secretsmanager": ("GetSecretValue DescribeSecret ListSecrets").split(),
    "rds": ("DescribeDBInstances DescribeDBSnapshots DescribeDBClusters").split(),
    "autoscaling": ("DescribeAutoScalingGroups DescribeScalingActivities").split(),
    "elasticloadbalancing": ("DescribeLoadBalancers DescribeTargetHealth").split(),
    "dynamodb": ("DescribeTable ListTables").split(),
    "guardduty": ("ListDetectors GetFindings").split(),
    "organizations": ("DescribeOrganization ListAccounts").split(),
    "route53": ("ListHostedZones ListResourceRecordSets").split(),
    "config": ("DescribeConfigurationRecorders DescribeComplianceByConfigRule").split(),
}

_WRITES: dict[str, Sequence[str]] = {
    "ec2": (
        "RunInstances TerminateInstances CreateTags CreateSecurityGroup DeleteSecurityGroup "
        "AuthorizeSecurityGroupIngress RevokeSecurityGroupIngress CreateSnapshot DeleteSnapshot "
        "CreateVolume AttachVolume CreateLaunchTemplateVersion StopInstances StartInstances "
        "CreateVpc DeleteVpc CreateSubnet DeleteSubnet ModifyInstanceAttribute CreateFlowLogs"
    ).split(),
    "s3": (
        "CreateBucket DeleteBucket PutBucketPolicy PutBucketTagging PutBucketVersioning "
        "PutBucketEncryption PutBucketLifecycle PutBucketPublicAccessBlock"
    ).split(),
    "iam": (
        "CreateRole DeleteRole AttachRolePolicy DetachRolePolicy PutRolePolicy CreatePolicy "
        "CreatePolicyVersion TagRole CreateServiceLinkedRole UpdateAssumeRolePolicy "
        "CreateInstanceProfile AddRoleToInstanceProfile"
    ).split(),
    "lambda": (
        "UpdateFunctionCode20150331v2 UpdateFunctionConfiguration20150331v2 "
        "CreateFunction20150331 PublishVersion20150331 AddPermission20150331v2 "
        "DeleteFunction20150331"
    ).split(),
    "cloudtrail": ("CreateTrail UpdateTrail PutEventSelectors StartLogging DeleteTrail").split(),
    "logs": ("CreateLogGroup PutRetentionPolicy DeleteLogGroup CreateLogStream").split(),
    "kms": ("CreateKey CreateAlias ScheduleKeyDeletion").split(),
    "ssm": ("PutParameter DeleteParameter").split(),
    "secretsmanager": ("CreateSecret PutSecretValue DeleteSecret").split(),
    "rds": ("CreateDBSnapshot ModifyDBInstance DeleteDBSnapshot").split(),
    "eks": ("UpdateNodegroupConfig CreateNodegroup").split(),
    "autoscaling": ("UpdateAutoScalingGroup SetDesiredCapacity").split(),
    "dynamodb": ("CreateTable UpdateTable").split(),
}

_ADMIN_WRITES = (
    ("iam", "CreateUser"),
    ("iam", "CreateAccessKey"),
    ("iam", "DeleteAccessKey"),
    ("iam", "UpdateAccessKey"),
    ("iam", "AttachUserPolicy"),
    ("iam", "CreateLoginProfile"),
    ("iam", "AddUserToGroup"),
    ("cloudtrail", "UpdateTrail"),
    ("ssm", "SendCommand"),
    ("ssm", "GetCommandInvocation"),
    ("ssm", "StartSession"),
    ("ec2", "AuthorizeSecurityGroupIngress"),
    ("ec2", "ModifySnapshotAttribute"),
    ("s3", "PutBucketPolicy"),
    ("rds", "ModifyDBSnapshotAttribute"),
    ("secretsmanager", "GetSecretValue"),
    ("ssm", "GetParameters"),
    ("sts", "AssumeRole"),
)


# Read calls the AWS console's pages make on the user's behalf when a human opens them
# (logged with an internal user agent): whole families of a service's read APIs, most of
# which the user never calls from the CLI or an SDK. ``home`` is the console's start page
# (its widgets: health, cost, recently visited resources, notifications).
def _calls(text: str) -> tuple[tuple[str, str], ...]:
    """``"svc:Name svc:Name"`` as (service, eventName) pairs."""
    pairs = [call.split(":", 1) for call in text.split()]
    return tuple((svc, name) for svc, name in pairs)


_CONSOLE_PAGES: dict[str, tuple[tuple[str, str], ...]] = {
    page: _calls(calls)
    for page, calls in {
        "home": "health:DescribeEventAggregates health:DescribeEvents ce:GetCostAndUsage "
        "ce:GetCostForecast resource-explorer-2:ListIndexes resource-explorer-2:ListResources "
        "resource-explorer-2:ListViews notifications:ListNotificationHubs "
        "notifications:ListNotificationEvents servicecatalog-appregistry:ListApplications "
        "ec2:DescribeRegions sts:GetCallerIdentity",
        "s3": "s3:ListBuckets s3:GetBucketLocation s3:GetBucketAcl s3:GetBucketPolicyStatus "
        "s3:GetBucketPublicAccessBlock s3:GetAccountPublicAccessBlock s3:GetBucketVersioning "
        "s3:GetBucketEncryption s3:GetBucketTagging s3:GetBucketOwnershipControls "
        "s3:GetBucketWebsite s3:GetBucketNotification s3:GetBucketReplication "
        "s3:GetBucketObjectLockConfiguration s3:GetBucketCors s3:GetBucketLogging "
        "s3:ListAccessPoints s3:GetStorageLensConfiguration s3:ListStorageLensConfigurations "
        "s3:ListMultiRegionAccessPoints s3:GetBucketPolicy s3:GetBucketLifecycle",
        "ec2": "ec2:DescribeInstances ec2:DescribeInstanceStatus ec2:DescribeVpcs "
        "ec2:DescribeSubnets ec2:DescribeSecurityGroups ec2:DescribeDhcpOptions "
        "ec2:DescribeVpcEndpoints ec2:DescribeInternetGateways "
        "ec2:DescribeEgressOnlyInternetGateways ec2:DescribeNatGateways "
        "ec2:DescribeRouteTables ec2:DescribeNetworkAcls ec2:DescribeAddresses "
        "ec2:DescribeKeyPairs ec2:DescribeVolumes ec2:DescribeSnapshots ec2:DescribeImages "
        "ec2:DescribeTags ec2:DescribeAccountAttributes ec2:DescribeAvailabilityZones "
        "ec2:DescribeCapacityReservations ec2:DescribeInstanceTypes "
        "ec2:DescribeLaunchTemplates ec2:DescribeVpcPeeringConnections "
        "ec2:DescribeTransitGateways ec2:DescribeManagedPrefixLists "
        "ec2:DescribeNetworkInterfaces ec2:DescribePlacementGroups ec2:DescribeHosts "
        "ec2:GetEbsEncryptionByDefault ec2:DescribeFlowLogs",
        "iam": "iam:ListUsers iam:ListRoles iam:ListPolicies iam:ListGroups "
        "iam:GetAccountSummary iam:ListAccountAliases iam:GetCredentialReport "
        "iam:GenerateCredentialReport iam:ListMFADevices iam:ListVirtualMFADevices "
        "iam:ListAccessKeys iam:GetAccessKeyLastUsed iam:ListAttachedUserPolicies "
        "iam:ListUserPolicies iam:ListGroupsForUser iam:ListSigningCertificates "
        "iam:ListSSHPublicKeys iam:ListServiceSpecificCredentials iam:GetLoginProfile "
        "iam:ListOpenIDConnectProviders iam:ListSAMLProviders iam:GetAccountPasswordPolicy "
        "iam:GetUser iam:GetRole iam:ListAttachedRolePolicies iam:ListRolePolicies "
        "iam:ListInstanceProfilesForRole iam:GetServiceLastAccessedDetails",
        "kms": "kms:ListKeys kms:ListAliases kms:DescribeKey kms:GetKeyPolicy "
        "kms:GetKeyRotationStatus kms:ListResourceTags kms:ListGrants",
        "lambda": "lambda:ListFunctions20150331 lambda:GetAccountSettings20160819 "
        "lambda:GetFunction20150331v2 lambda:ListEventSourceMappings20150331 "
        "lambda:GetPolicy20150331v2 lambda:ListAliases20150331 lambda:ListTags20170331 "
        "lambda:GetFunctionUrlConfig20211031 lambda:ListLayers20181031",
        "rds": "rds:DescribeDBInstances rds:DescribeDBClusters rds:DescribeDBSnapshots "
        "rds:DescribeDBClusterSnapshots rds:DescribeEvents rds:DescribeDBSubnetGroups "
        "rds:DescribeDBParameterGroups rds:DescribeOptionGroups "
        "rds:DescribeAccountAttributes rds:DescribeDBEngineVersions "
        "rds:DescribePendingMaintenanceActions rds:ListTagsForResource "
        "rds:DescribeDBProxies rds:DescribeReservedDBInstances",
        "cloudtrail": "cloudtrail:DescribeTrails cloudtrail:GetTrailStatus "
        "cloudtrail:GetEventSelectors cloudtrail:GetInsightSelectors cloudtrail:ListTrails "
        "cloudtrail:LookupEvents cloudtrail:ListEventDataStores cloudtrail:ListChannels "
        "cloudtrail:ListTags",
        "cloudwatch": "monitoring:DescribeAlarms monitoring:GetMetricData "
        "monitoring:ListDashboards monitoring:DescribeInsightRules monitoring:ListMetrics "
        "logs:DescribeLogGroups logs:DescribeLogStreams logs:DescribeMetricFilters "
        "logs:DescribeQueryDefinitions logs:GetLogEvents",
        "secretsmanager": "secretsmanager:ListSecrets secretsmanager:DescribeSecret "
        "secretsmanager:GetResourcePolicy secretsmanager:ListSecretVersionIds "
        "kms:ListAliases",
        "ssm": "ssm:DescribeParameters ssm:DescribeInstanceInformation "
        "ssm:ListCommandInvocations ssm:DescribeAssociation ssm:ListAssociations "
        "ssm:DescribeSessions ssm:GetInventory ssm:ListDocuments ssm:GetServiceSetting",
        "eks": "eks:ListClusters eks:DescribeCluster eks:ListNodegroups eks:DescribeNodegroup "
        "eks:ListAddons eks:ListFargateProfiles eks:ListIdentityProviderConfigs "
        "eks:DescribeAddonVersions eks:ListAccessEntries",
        "organizations": "organizations:DescribeOrganization organizations:ListAccounts "
        "organizations:ListRoots organizations:ListPolicies "
        "organizations:ListOrganizationalUnitsForParent "
        "organizations:ListAWSServiceAccessForOrganization",
        "guardduty": "guardduty:ListDetectors guardduty:GetDetector guardduty:ListFindings "
        "guardduty:GetFindingsStatistics guardduty:ListMembers guardduty:GetMasterAccount",
        "billing": "ce:GetCostAndUsage ce:GetDimensionValues ce:GetCostForecast "
        "ce:GetReservationUtilization ce:GetSavingsPlansUtilization ce:GetAnomalies "
        "budgets:DescribeBudgets cur:DescribeReportDefinitions",
    }.items()
}
CONSOLE_INTERNAL_UA = "AWS Internal"
UA_SERVICE_CONSOLE = (
    "[{page}Console/0.4, aws-internal/3 aws-sdk-java/1.12.{v} Linux/5.10.184-152.722.amzn2int."
    "x86_64 OpenJDK_64-Bit_Server_VM/25.372-b08 java/1.8.0_372 vendor/Oracle_Corporation "
    "cfg/retry-mode/standard]",
    "{page} Console, aws-internal/3 aws-sdk-java/1.11.{v} Linux/5.10.178-137.722.amzn2int.x86_64 "
    "OpenJDK_64-Bit_Server_VM/25.372-b08 java/1.8.0_372 vendor/Oracle_Corporation",
)
# what an instance's SSM agent calls with the instance profile's credentials
_SSM_AGENT_APIS: tuple[tuple[str, str], ...] = (
    ("ssm", "UpdateInstanceInformation"),
    ("ssm", "ListInstanceAssociations"),
    ("ssm", "UpdateInstanceAssociationStatus"),
    ("ssm", "DescribeAssociation"),
    ("ssm", "GetDocument"),
    ("ssm", "PutInventory"),
    ("ssm", "GetDeployablePatchSnapshotForInstance"),
)
UA_SSM_AGENT = "aws-sdk-go/1.44.{v} (go1.20.5; linux; amd64) amazon-ssm-agent/3.2.{v}.0"

_SOURCE_OVERRIDE = {"monitoring": "monitoring.amazonaws.com"}

UA_CONSOLE = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/115.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/114.0.0.0 Safari/537.36 Edg/114.0.1823.67",
)
UA_CLI = (
    "aws-cli/2.13.{v} Python/3.11.4 Darwin/22.5.0 exe/x86_64 prompt/off",
    "aws-cli/2.12.{v} Python/3.11.4 Linux/5.15.0-76-generic exe/x86_64.ubuntu.22 prompt/off",
)
UA_BOTO = (
    "Boto3/1.28.{v} md/Botocore#1.31.{v} ua/2.0 os/linux#5.15.0 md/arch#x86_64 "
    "lang/python#3.11.4 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.{v}",
    "Boto3/1.26.{v} Python/3.10.6 Linux/5.19.0-46-generic Botocore/1.29.{v}",
)
UA_TERRAFORM = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.5.{v} (+https://www.terraform.io) "
    "terraform-provider-aws/5.7.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
    "aws-sdk-go-v2/1.18.1 os/linux lang/go/1.20.5 md/GOOS/linux md/GOARCH/amd64",
    "APN/1.0 HashiCorp/1.0 Terraform/1.4.{v} (+https://www.terraform.io) "
    "terraform-provider-aws/4.67.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
    "aws-sdk-go/1.44.{v} (go1.19.10; linux; amd64)",
)
UA_JAVA = (
    "aws-sdk-java/2.20.{v} Linux/5.10.184-175.731.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.7 "
    "Java/17.0.7 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
)
UA_GO = (
    "aws-sdk-go/1.44.{v} (go1.20.4; linux; amd64)",
    "aws-sdk-go-v2/1.17.{v} os/linux lang/go/1.18.10 md/GOOS/linux md/GOARCH/amd64",
)
UA_AUTOSCALER = (
    "aws-sdk-go/1.44.{v} (go1.20.4; linux; amd64) cluster-autoscaler/v1.27.{v}",
    "eks-nodegroup.amazonaws.com",
)
UA_ATTACKER = (
    "aws-sdk-go-v2/1.17.0 os/linux lang/go/1.18.10 md/GOOS/linux md/GOARCH/amd64 api/sts/1.18.0",
    "aws-cli/1.16.{v} Python/2.7.18 Linux/5.18.0-kali5-amd64 botocore/1.12.{v}",
    "Boto3/1.9.{v} Python/3.8.10 Linux/5.4.0-1045-aws Botocore/1.12.{v}",
    "python-requests/2.28.{v}",
    "S3 Browser 9.5.{v} https://s3browser.com",
    "TruffleHog",
    "aws-sdk-js/2.1400.{v} promise",
    "aws-sdk-go/1.42.{v} (go1.17.6; linux; amd64)",
)

_BENIGN_ERRORS = (
    "NoSuchBucketPolicy",
    "NoSuchLifecycleConfiguration",
    "NoSuchTagSet",
    "ThrottlingException",
    "ResourceNotFoundException",
    "Client.InvalidParameterValue",
    "NoSuchEntityException",
    "AccessDenied",
)
_DENIED = ("AccessDenied", "Client.UnauthorizedOperation", "AccessDeniedException")


def event_source(service: str) -> str:
    """``service`` (``ec2``) as CloudTrail's eventSource (``ec2.amazonaws.com``)."""
    return _SOURCE_OVERRIDE.get(service, f"{service}.amazonaws.com")


def _is_read(name: str) -> bool:
    return name.startswith(("Get", "List", "Describe", "Lookup", "Head", "Batch", "Filter")) or (
        name in ("Decrypt", "GenerateDataKey")
    )


# ------------------------------------------------------------------ principals

_HUMANS = frozenset({"admin", "developer", "operator"})
# calls whose service encrypts or decrypts with KMS for the caller
_KMS_BACKED = frozenset(
    "GetSecretValue PutSecretValue CreateSecret GetParameter GetParameters "
    "GetParametersByPath PutParameter".split()
)
NEW_NETWORK_SHARE = 0.05  # of a human's sessions: from a network never used before
CLIENT_UPGRADE_SHARE = 0.08  # of a human's sessions: with a newer client version
EXPLORE_SHARE = 0.03  # of a human's calls: an API outside their habits
CONSOLE_PAGE_SHARE = 0.35  # of a console session's steps: a page view (a burst of reads)


def _upgraded(user_agent: str, rng: np.random.Generator) -> str:
    """``user_agent`` with its first version's last number raised (a client upgrade)."""
    bump = int(rng.integers(1, 5))
    return re.sub(
        r"(\d+)\.(\d+)\.(\d+)",
        lambda m: f"{m.group(1)}.{m.group(2)}.{int(m.group(3)) + bump}",
        user_agent,
        count=1,
    )


@dataclass(frozen=True, slots=True)
class Principal:
    """A benign identity and its habits (hours in UTC, rates per day)."""

    kind: str
    identity: Mapping[str, str]
    networks: tuple[str, ...]
    user_agents: tuple[str, ...]
    apis: tuple[tuple[str, str], ...]
    weights: tuple[float, ...]
    hours: tuple[float, float] | None
    weekdays_only: bool
    sessions_per_day: float
    events_per_session: float
    gap_s: float
    error_rate: float


@dataclass(frozen=True, slots=True)
class AuditLabel:
    """Ground truth for one record, written beside the events (never inside)."""

    eventID: str
    label: str  # normal | suspicious | malicious
    technique: str
    campaign: str
    principal_kind: str


@dataclass(slots=True)
class _Out:
    records: list[tuple[float, dict[str, Any], AuditLabel]] = field(default_factory=list)


def _ua(template: str, rng: np.random.Generator) -> str:
    return template.replace("{v}", str(int(rng.integers(1, 30))))


def _public_ip(rng: np.random.Generator) -> str:
    first = int(rng.choice([3, 13, 18, 23, 31, 45, 52, 63, 78, 85, 91, 104, 141, 176, 185, 193]))
    b, c, d = int(rng.integers(0, 256)), int(rng.integers(0, 256)), int(rng.integers(1, 255))
    return f"{first}.{b}.{c}.{d}"


def _sample_apis(
    rng: np.random.Generator, pool: Mapping[str, Sequence[str]], k: int
) -> list[tuple[str, str]]:
    flat = [(s, n) for s, names in pool.items() for n in names]
    idx = rng.choice(len(flat), size=min(k, len(flat)), replace=False)
    return [flat[int(i)] for i in idx]


def _zipf_weights(rng: np.random.Generator, n: int) -> tuple[float, ...]:
    w = 1.0 / np.arange(1, n + 1) ** 1.1
    rng.shuffle(w)
    return tuple(float(x) for x in w / w.sum())


def build_principals(
    counts: Mapping[str, int], *, account_id: str, rng: np.random.Generator
) -> list[Principal]:
    """Benign principals of one account: ``counts`` per kind (admin, developer, ci,
    scanner, app, service, autoscaler)."""
    out: list[Principal] = []
    office = [f"198.51.{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}" for _ in range(3)]
    runners = [_public_ip(rng) for _ in range(6)]
    names = iter(
        "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy "
        "rupert sybil trent victor walter yves zoe".split()
    )

    def user(name: str) -> dict[str, str]:
        key = "AKIA" + "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 16))
        return {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{account_id}:user/{name}",
            "userName": name,
            "accountId": account_id,
            "accessKeyId": key,
        }

    def role(name: str) -> dict[str, str]:
        return {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{account_id}:assumed-role/{name}/session",
            "userName": name,
            "accountId": account_id,
            "accessKeyId": "ASIA" + "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 16)),
        }

    for _ in range(counts.get("admin", 0)):
        home: tuple[str, ...] = (office[int(rng.integers(0, len(office)))], _public_ip(rng))
        apis = _sample_apis(rng, _READS, 45) + _sample_apis(rng, _WRITES, 12) + list(_ADMIN_WRITES)
        apis.append(("signin", "ConsoleLogin"))
        start = float(rng.uniform(6, 10))
        out.append(
            Principal(
                "admin",
                user(next(names)),
                home,
                (
                    _ua(UA_CONSOLE[int(rng.integers(0, 3))], rng),
                    _ua(UA_CLI[int(rng.integers(0, 2))], rng),
                ),
                tuple(apis),
                _zipf_weights(rng, len(apis)),
                (start, start + 9),
                True,
                3.0,
                25.0,
                20.0,
                0.03,
            )
        )
    for _ in range(counts.get("developer", 0)):
        home = (office[int(rng.integers(0, len(office)))],)
        if rng.random() < 0.5:
            home = (*home, _public_ip(rng))
        apis = _sample_apis(rng, _READS, 30) + _sample_apis(
            rng, {k: _WRITES[k] for k in ("lambda", "s3", "logs", "ssm", "dynamodb")}, 8
        )
        apis += [("secretsmanager", "GetSecretValue"), ("sts", "GetCallerIdentity")]
        start = float(rng.uniform(6, 11))
        uas = [
            _ua(UA_BOTO[int(rng.integers(0, 2))], rng),
            _ua(UA_CLI[int(rng.integers(0, 2))], rng),
        ]
        if rng.random() < 0.5:
            uas.append(_ua(UA_CONSOLE[int(rng.integers(0, 3))], rng))
        out.append(
            Principal(
                "developer",
                user(next(names)),
                home,
                tuple(uas),
                tuple(apis),
                _zipf_weights(rng, len(apis)),
                (start, start + 10),
                True,
                4.0,
                20.0,
                15.0,
                0.05,
            )
        )
    for i in range(counts.get("ci", 0)):
        apis = [(s, n) for s, ns in _READS.items() for n in ns[:6]]
        apis += [(s, n) for s, ns in _WRITES.items() for n in ns]
        ident = role(f"ci-deploy-{i}")
        out.append(
            Principal(
                "ci",
                ident,
                tuple(runners),
                (_ua(UA_TERRAFORM[i % 2], rng),),
                tuple(apis),
                _zipf_weights(rng, len(apis)),
                None,
                False,
                4.0,
                120.0,
                1.5,
                0.04,
            )
        )
    for _ in range(counts.get("scanner", 0)):
        apis = [(s, n) for s, ns in _READS.items() for n in ns]
        hour = float(rng.uniform(0, 24))
        out.append(
            Principal(
                "scanner",
                user(f"security-audit-{next(names)}"),
                (_public_ip(rng),),
                (_ua(UA_BOTO[int(rng.integers(0, 2))], rng),),
                tuple(apis),
                tuple(1.0 / len(apis) for _ in apis),
                (hour, hour + 0.5),
                False,
                1.0,
                400.0,
                0.8,
                0.08,
            )
        )
    for i in range(counts.get("app", 0)):
        apis = [
            ("secretsmanager", "GetSecretValue"),
            ("ssm", "GetParameter"),
            ("kms", "Decrypt"),
            ("kms", "GenerateDataKey"),
            ("sts", "GetCallerIdentity"),
            ("dynamodb", "DescribeTable"),
            ("ssm", "GetParameters"),
            ("ecr", "GetAuthorizationToken"),
        ]
        ident = role(f"app-{i}-instance-role")
        ident["arn"] = ident["arn"].replace("/session", f"/i-{rng.bytes(8).hex()[:17]}")
        out.append(
            Principal(
                "app",
                ident,
                tuple(f"10.0.{i}.{int(rng.integers(4, 250))}" for _ in range(3)),
                (_ua(UA_JAVA[0], rng),),
                tuple(apis),
                _zipf_weights(rng, len(apis)),
                None,
                False,
                48.0,
                4.0,
                5.0,
                0.01,
            )
        )
    for admin in [p for p in out if p.kind == "admin"]:
        if rng.random() < 0.6:  # the admin also applies Terraform from a laptop
            apis = (
                [(s, n) for s, ns in _READS.items() for n in ns[:8]]
                + [(s, n) for s, ns in _WRITES.items() for n in ns]
                + list(_ADMIN_WRITES[:7])
            )
            start = float(rng.uniform(7, 11))
            out.append(
                Principal(
                    "operator",
                    admin.identity,
                    admin.networks,
                    (_ua(UA_TERRAFORM[int(rng.integers(0, 2))], rng),),
                    tuple(apis),
                    _zipf_weights(rng, len(apis)),
                    (start, start + 8),
                    True,
                    0.6,
                    150.0,
                    0.8,
                    0.03,
                )
            )
    for app in [p for p in out if p.kind == "app"]:
        out.append(
            Principal(
                "agent",
                app.identity,
                app.networks,
                (_ua(UA_SSM_AGENT, rng),),
                _SSM_AGENT_APIS,
                _zipf_weights(rng, len(_SSM_AGENT_APIS)),
                None,
                False,
                24.0,
                3.0,
                2.0,
                0.02,
            )
        )
    for svc in ("secretsmanager", "lambda", "ec2", "rds", "cloudtrail", "health")[
        : counts.get("service", 0)
    ]:
        host = f"{svc}.amazonaws.com"
        ident = {
            "type": "AWSService",
            "arn": "",
            "userName": "",
            "accountId": account_id,
            "accessKeyId": "",
            "invokedBy": host,
        }
        apis = [
            ("sts", "AssumeRole"),
            ("kms", "Decrypt"),
            ("kms", "GenerateDataKey"),
            ("iam", "CreateServiceLinkedRole"),
        ]
        out.append(
            Principal(
                "service",
                ident,
                (host,),
                (host,),
                tuple(apis),
                (0.6, 0.2, 0.15, 0.05),
                None,
                False,
                24.0,
                2.0,
                1.0,
                0.0,
            )
        )
    for _ in range(counts.get("autoscaler", 0)):
        apis = [
            ("autoscaling", "DescribeAutoScalingGroups"),
            ("ec2", "DescribeInstances"),
            ("autoscaling", "SetDesiredCapacity"),
            ("ec2", "DescribeLaunchTemplateVersions"),
            ("autoscaling", "TerminateInstanceInAutoScalingGroup"),
        ]
        out.append(
            Principal(
                "autoscaler",
                role("eks-cluster-autoscaler"),
                ("10.0.100.12",),
                (_ua(UA_AUTOSCALER[0], rng),),
                tuple(apis),
                (0.55, 0.3, 0.07, 0.05, 0.03),
                None,
                False,
                96.0,
                3.0,
                10.0,
                0.01,
            )
        )
    return out


# ------------------------------------------------------------------ records


def _params(
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
    if _is_read(name):
        return None if rng.random() < 0.4 else {"maxResults": int(rng.choice([50, 100, 1000]))}
    return {"name": f"{service}-{rid}"}


class AuditGenerator:
    """Draws CloudTrail records for one account over a window.

    Parameters
    ----------
    account_id
        The 12-digit account every record belongs to.
    region
        The ``awsRegion`` of regional calls.
    start
        Wall-clock time of simulated second 0 (records carry ``eventTime`` in UTC).
    rng
        The audit component's generator.
    """

    def __init__(
        self, *, account_id: str, region: str, start: datetime, rng: np.random.Generator
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.start = start
        self.rng = rng
        self.partner = str(int(rng.integers(10**11, 10**12)))
        self._out = _Out()

    # ------------------------------------------------------------- primitives
    def record(
        self,
        t_s: float,
        identity: Mapping[str, str],
        service: str,
        name: str,
        *,
        ip: str,
        ua: str,
        label: AuditLabel | None = None,
        error: str | None = None,
        hostile: bool = False,
        kind: str = "",
    ) -> None:
        """Append one record at ``t_s`` seconds (label ``normal`` unless given)."""
        rng = self.rng
        event_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        ident = {k: v for k, v in identity.items() if v}
        if service == "signin":
            params: dict[str, Any] | None = None
        else:
            params = _params(
                service,
                name,
                hostile=hostile,
                account_id=self.account_id,
                partner=self.partner,
                rng=rng,
            )
        when = self.start + timedelta(seconds=float(t_s))
        rec: dict[str, Any] = {
            "eventVersion": "1.08",
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": event_source(service),
            "eventName": name,
            "awsRegion": self.region,
            "sourceIPAddress": ip,
            "userAgent": ua,
            "userIdentity": ident,
            "requestParameters": params,
            "responseElements": None,
            "eventID": event_id,
            "eventType": "AwsConsoleSignIn" if service == "signin" else "AwsApiCall",
            "readOnly": _is_read(name),
            "recipientAccountId": self.account_id,
        }
        if error:
            rec["errorCode"] = error
            rec["errorMessage"] = f"{error} when calling {name}"
        if service == "signin":
            rec["additionalEventData"] = {"MFAUsed": "No" if hostile else "Yes"}
            rec["responseElements"] = {"ConsoleLogin": "Success"}
        if label is None:
            label = AuditLabel(event_id, "normal", "", "", kind)
        else:
            label = AuditLabel(event_id, label.label, label.technique, label.campaign, kind)
        self._out.records.append((float(t_s), rec, label))

    # ------------------------------------------------------------- benign
    def benign(self, principals: Sequence[Principal], duration_s: float) -> None:
        """Sessions of every principal over ``[0, duration_s)``, drawn from its habits.

        Humans also do benign things their history has not shown: a session now and
        then from a new network or with an upgraded client, a call to an API outside
        their habits, and console page views, which fire a burst of the page's read
        calls under an internal user agent."""
        rng = self.rng
        n_days = int(np.ceil(duration_s / DAY_S))
        for p in principals:
            weights = np.asarray(p.weights)
            human = p.kind in _HUMANS
            for day in range(n_days):
                weekday = (self.start + timedelta(days=day)).weekday()
                rate = p.sessions_per_day * (0.1 if p.weekdays_only and weekday >= 5 else 1.0)
                for _ in range(int(rng.poisson(rate))):
                    if p.hours is None or rng.random() < 0.03:
                        hour = float(rng.uniform(0, 24))
                    else:
                        hour = float(rng.uniform(*p.hours)) % 24
                    t = day * DAY_S + hour * 3600.0
                    ip = p.networks[int(rng.integers(0, len(p.networks)))]
                    ua = p.user_agents[int(rng.integers(0, len(p.user_agents)))]
                    if human and rng.random() < NEW_NETWORK_SHARE:
                        ip = _public_ip(rng)  # travelling, home, a new VPN exit
                    if human and rng.random() < CLIENT_UPGRADE_SHARE:
                        ua = _upgraded(ua, rng)
                    ident = dict(p.identity)
                    if p.kind == "ci":
                        ident["arn"] = ident["arn"].replace(
                            "/session", f"/run-{rng.bytes(4).hex()}"
                        )
                    n = 1 + int(rng.geometric(1.0 / p.events_per_session))
                    console = ua.startswith("Mozilla")
                    if console and human:
                        self.record(t, ident, "signin", "ConsoleLogin", ip=ip, ua=ua, kind=p.kind)
                    for _ in range(n):
                        t += float(rng.exponential(p.gap_s))
                        if t >= duration_s:
                            break
                        if console and rng.random() < CONSOLE_PAGE_SHARE:
                            t = self._console_page(t, ident, p, ip, duration_s)
                            continue
                        if human and rng.random() < EXPLORE_SHARE:
                            pool = _READS if rng.random() < 0.8 else _WRITES
                            svc, name = _sample_apis(rng, pool, 1)[0]
                        else:
                            svc, name = p.apis[int(rng.choice(len(p.apis), p=weights))]
                        error = (
                            str(rng.choice(_BENIGN_ERRORS)) if rng.random() < p.error_rate else None
                        )
                        self.record(t, ident, svc, name, ip=ip, ua=ua, error=error, kind=p.kind)
                        if name in _KMS_BACKED and p.kind != "service":
                            # KMS calls the service makes for the caller (invokedBy)
                            host = event_source(svc)
                            via = {**ident, "invokedBy": host}
                            for kms in ("Decrypt", "GenerateDataKey")[: int(rng.integers(1, 3))]:
                                self.record(t + 0.2, via, "kms", kms, ip=host, ua=host, kind=p.kind)

    def _console_page(
        self,
        t: float,
        ident: Mapping[str, str],
        p: Principal,
        ip: str,
        duration_s: float,
    ) -> float:
        """One console page view at ``t``: a burst of the page's read calls made by the
        console's back end for the user. Returns the time of the last call."""
        rng = self.rng
        used = sorted({svc for svc, _ in p.apis} & set(_CONSOLE_PAGES))
        if used and rng.random() < 0.5:
            page = used[int(rng.integers(0, len(used)))]
        else:
            pages = sorted(_CONSOLE_PAGES)
            page = pages[int(rng.integers(0, len(pages)))]
        calls = _CONSOLE_PAGES[page]
        k = min(len(calls), 2 + int(rng.geometric(1.0 / 6.0)))
        picks = rng.choice(len(calls), size=k, replace=False)
        if rng.random() < 0.5:
            ua, src = CONSOLE_INTERNAL_UA, CONSOLE_INTERNAL_UA
        else:
            label = page.upper() if len(page) <= 3 else page.capitalize()
            template = UA_SERVICE_CONSOLE[int(rng.integers(0, len(UA_SERVICE_CONSOLE)))]
            ua, src = _ua(template.replace("{page}", label), rng), ip
        for i in sorted(int(x) for x in picks):
            if t >= duration_s:
                break
            svc, name = calls[i]
            error = str(rng.choice(_BENIGN_ERRORS[:3])) if rng.random() < 0.05 else None
            self.record(t, ident, svc, name, ip=src, ua=ua, error=error, kind=p.kind)
            t += float(rng.exponential(0.4))
        return t

    # ------------------------------------------------------------- attacks
    def campaign(
        self,
        *,
        campaign_id: str,
        start_s: float,
        entry: str,
        techniques: Sequence[Technique],
        principals: Sequence[Principal],
        pace_s: float,
        insider_network: bool,
        reuse_user_agent: bool,
    ) -> None:
        """One intrusion: an entry, then each technique's calls in order."""
        rng = self.rng
        humans = [p for p in principals if p.kind in ("admin", "developer", "ci")]
        apps = [p for p in principals if p.kind == "app"]
        victim = humans[int(rng.integers(0, len(humans)))] if humans else None
        ua = _ua(UA_ATTACKER[int(rng.integers(0, len(UA_ATTACKER)))], rng)
        ip = _public_ip(rng)
        t = start_s
        if entry == "instance-credentials" and apps:
            victim = apps[int(rng.integers(0, len(apps)))]
        if victim is not None and insider_network:
            ip = victim.networks[0]
        if victim is not None and reuse_user_agent:
            ua = victim.user_agents[-1]
        if entry == "console-login-without-mfa" or victim is None:
            name = f"svc-{rng.bytes(3).hex()}"
            identity = {
                "type": "IAMUser",
                "arn": f"arn:aws:iam::{self.account_id}:user/{name}",
                "userName": name,
                "accountId": self.account_id,
            }
            ua = UA_CONSOLE[int(rng.integers(0, len(UA_CONSOLE)))]
            lab = AuditLabel(
                "", "malicious", "aws.initial-access.console-login-without-mfa", campaign_id, ""
            )
            self.record(
                t,
                identity,
                "signin",
                "ConsoleLogin",
                ip=ip,
                ua=ua,
                label=lab,
                hostile=True,
                kind="attacker",
            )
        else:
            identity = dict(victim.identity)
        for tech in techniques:
            t += float(rng.exponential(pace_s * 10))
            t = self._technique(t, tech, identity, ip=ip, ua=ua, pace_s=pace_s, cid=campaign_id)

    def _technique(
        self,
        t: float,
        tech: Technique,
        identity: Mapping[str, str],
        *,
        ip: str,
        ua: str,
        pace_s: float,
        cid: str,
    ) -> float:
        rng = self.rng
        mal = AuditLabel("", "malicious", tech.stratus_id, cid, "")
        sus = AuditLabel("", "suspicious", tech.stratus_id, cid, "")
        who = dict(identity)
        if rng.random() < 0.5:  # the tool's pre-flight check
            check = (
                ("ec2", "DescribeAccountAttributes")
                if rng.random() < 0.6
                else ("sts", "GetCallerIdentity")
            )
            self.record(t, who, *check, ip=ip, ua=ua, label=sus, kind="attacker")
            t += float(rng.exponential(pace_s))
        probe_fail = rng.random() < 0.3
        done_writes: list[tuple[str, str]] = []
        for service, name in tech.calls:
            if (service, name) == ("sts", "AssumeRole"):
                role = (
                    f"{rng.choice(['ops', 'svc', 'tmp', 'admin', 'backup'])}-{rng.bytes(3).hex()}"
                )
                for _ in range(int(rng.integers(0, 3))):  # propagation retries
                    self.record(
                        t,
                        who,
                        "sts",
                        "AssumeRole",
                        ip=ip,
                        ua=ua,
                        label=mal,
                        error="AccessDenied",
                        hostile=True,
                        kind="attacker",
                    )
                    t += float(rng.exponential(pace_s))
                self.record(
                    t,
                    who,
                    "sts",
                    "AssumeRole",
                    ip=ip,
                    ua=ua,
                    label=mal,
                    hostile=True,
                    kind="attacker",
                )
                who = {
                    "type": "AssumedRole",
                    "accountId": self.account_id,
                    "arn": f"arn:aws:sts::{self.account_id}:assumed-role/{role}/"
                    f"sess-{rng.bytes(6).hex()}",
                    "userName": role,
                    "accessKeyId": "ASIA" + rng.bytes(8).hex().upper(),
                }
                t += float(rng.exponential(pace_s))
                continue
            read = _is_read(name)
            repeats = int(rng.integers(1, 25)) if read else int(rng.integers(1, 3))
            for _ in range(repeats):
                error = None
                if probe_fail and rng.random() < 0.6:
                    error = str(rng.choice(_DENIED))
                self.record(
                    t,
                    who,
                    service,
                    name,
                    ip=ip,
                    ua=ua,
                    label=mal,
                    error=error,
                    hostile=True,
                    kind="attacker",
                )
                t += float(rng.exponential(pace_s / (4.0 if read else 1.0)))
            if not read:
                done_writes.append((service, name))
        if "Discovery" in tech.tactics:
            for svc, name in _sample_apis(rng, _READS, int(rng.integers(8, 40))):
                error = str(rng.choice(_DENIED)) if rng.random() < 0.25 else None
                self.record(
                    t, who, svc, name, ip=ip, ua=ua, label=mal, error=error, kind="attacker"
                )
                t += float(rng.exponential(pace_s / 4.0))
        if done_writes and rng.random() < 0.5:  # the tool cleans up after itself
            for service, name in done_writes:
                undo = _undo(name)
                if undo:
                    t += float(rng.exponential(pace_s))
                    self.record(t, who, service, undo, ip=ip, ua=ua, label=sus, kind="attacker")
        return t

    # ------------------------------------------------------------- output
    def take(self) -> tuple[list[dict[str, Any]], list[AuditLabel]]:
        """Every record drawn so far in event-time order (ties: draw order), and labels."""
        items = sorted(enumerate(self._out.records), key=lambda x: (x[1][0], x[0]))
        self._out = _Out()
        return [r for _, (_, r, _) in items], [lab for _, (_, _, lab) in items]


_UNDO = (
    ("Create", "Delete"),
    ("Attach", "Detach"),
    ("Stop", "Start"),
    ("Authorize", "Revoke"),
    ("Put", "Delete"),
    ("Add", "Remove"),
    ("Modify", "Modify"),
    ("Update", "Update"),
    ("Run", "Terminate"),
)


def _undo(name: str) -> str:
    for verb, inverse in _UNDO:
        if name.startswith(verb):
            return inverse + name[len(verb) :]
    return ""


def write_labels_csv(labels: Iterable[AuditLabel], path: Path) -> None:
    """Write labels as CSV ``eventID,label,technique,campaign,principal_kind``."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["eventID", "label", "technique", "campaign", "principal_kind"])
        for lab in labels:
            w.writerow([lab.eventID, lab.label, lab.technique, lab.campaign, lab.principal_kind])


def write_jsonl(records: Iterable[Mapping[str, Any]], path: Path) -> None:
    """Write records as JSON lines (keys sorted, compact)."""
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
