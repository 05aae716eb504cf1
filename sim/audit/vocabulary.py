"""The API vocabulary of the simulated account: calls, console pages, user agents, errors.

What benign principals and attackers draw their calls from: the read and write APIs
per service (:data:`READS`, :data:`WRITES`), the administrator's sensitive calls
(:data:`ADMIN_WRITES`), the read calls each AWS console page makes for the user
(:data:`CONSOLE_PAGES`), the SSM agent's calls, the user-agent templates of each client
(``{v}`` marks a version number drawn per principal, :func:`with_version`), and the
error codes of benign and denied calls. :func:`is_read` and :func:`event_source` give a
call's CloudTrail ``readOnly`` and ``eventSource``. The few draws here
(:func:`sample_apis`, :func:`public_ip`, ...) take the caller's generator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

READS: dict[str, Sequence[str]] = {
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

WRITES: dict[str, Sequence[str]] = {
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

ADMIN_WRITES = (
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


CONSOLE_PAGES: dict[str, tuple[tuple[str, str], ...]] = {
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
SSM_AGENT_APIS: tuple[tuple[str, str], ...] = (
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

BENIGN_ERRORS = (
    "NoSuchBucketPolicy",
    "NoSuchLifecycleConfiguration",
    "NoSuchTagSet",
    "ThrottlingException",
    "ResourceNotFoundException",
    "Client.InvalidParameterValue",
    "NoSuchEntityException",
    "AccessDenied",
)
DENIED_ERRORS = ("AccessDenied", "Client.UnauthorizedOperation", "AccessDeniedException")


def event_source(service: str) -> str:
    """``service`` (``ec2``) as CloudTrail's eventSource (``ec2.amazonaws.com``)."""
    return _SOURCE_OVERRIDE.get(service, f"{service}.amazonaws.com")


def is_read(name: str) -> bool:
    """Whether CloudTrail marks a call of API ``name`` ``readOnly``."""
    return name.startswith(("Get", "List", "Describe", "Lookup", "Head", "Batch", "Filter")) or (
        name in ("Decrypt", "GenerateDataKey")
    )


# calls whose service encrypts or decrypts with KMS for the caller
KMS_BACKED = frozenset(
    "GetSecretValue PutSecretValue CreateSecret GetParameter GetParameters "
    "GetParametersByPath PutParameter".split()
)


def upgraded_user_agent(user_agent: str, rng: np.random.Generator) -> str:
    """``user_agent`` with its first version's last number raised (a client upgrade)."""
    bump = int(rng.integers(1, 5))
    return re.sub(
        r"(\d+)\.(\d+)\.(\d+)",
        lambda m: f"{m.group(1)}.{m.group(2)}.{int(m.group(3)) + bump}",
        user_agent,
        count=1,
    )


def with_version(template: str, rng: np.random.Generator) -> str:
    """``template`` with every ``{v}`` replaced by one drawn version number (1-29)."""
    return template.replace("{v}", str(int(rng.integers(1, 30))))


def public_ip(rng: np.random.Generator) -> str:
    """A random public IPv4 address in a cloud or ISP block."""
    first = int(rng.choice([3, 13, 18, 23, 31, 45, 52, 63, 78, 85, 91, 104, 141, 176, 185, 193]))
    b, c, d = int(rng.integers(0, 256)), int(rng.integers(0, 256)), int(rng.integers(1, 255))
    return f"{first}.{b}.{c}.{d}"


def sample_apis(
    rng: np.random.Generator, pool: Mapping[str, Sequence[str]], k: int
) -> list[tuple[str, str]]:
    """``k`` distinct (service, eventName) calls drawn from ``pool`` (all if it has fewer)."""
    flat = [(s, n) for s, names in pool.items() for n in names]
    idx = rng.choice(len(flat), size=min(k, len(flat)), replace=False)
    return [flat[int(i)] for i in idx]
