"""The benign principals of one simulated account: who works there, and their habits.

Every kind of principal has :class:`Habits` (its sessions, declared once in
:data:`KIND_HABITS`) and office workers a :class:`WorkingDay` (:data:`KIND_WORKING_DAYS`):

- ``admin``: console and CLI, office hours on weekdays, MFA logins, a broad set of reads
  and writes plus the sensitive administrative calls;
- ``developer``: SDK and CLI reads, Lambda/S3/logs/SSM/DynamoDB writes, office hours;
- ``ci``: a deployment role running Terraform at any hour, in bursts that create and
  tear down whole environments, from a pool of runner addresses;
- ``scanner``: a read-only auditor, one daily burst of Get/List/Describe calls (throttled
  now and then);
- ``app``: an application's instance role (secrets, parameters, KMS) from its instances;
- ``operator``: an admin applying Terraform from a laptop (same identity and networks);
- ``agent``: the SSM agent on an application's instances (same identity and networks);
- ``service``: an AWS service acting in the account (``invokedBy``);
- ``autoscaler``: the cluster autoscaler's role.

:func:`build_principals` draws the identities, networks, user agents and API habits
from the caller's generator (see :mod:`sim.audit.vocabulary`). Hours are UTC, rates per
day, gaps in seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from sim.audit.vocabulary import (
    ADMIN_WRITES,
    READS,
    SSM_AGENT_APIS,
    UA_AUTOSCALER,
    UA_BOTO,
    UA_CLI,
    UA_CONSOLE,
    UA_JAVA,
    UA_SSM_AGENT,
    UA_TERRAFORM,
    WRITES,
    public_ip,
    sample_apis,
    with_version,
)

HUMAN_KINDS = frozenset({"admin", "developer", "operator"})
"""Kinds whose sessions also show human novelty (new networks, upgrades, console pages)."""

KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
"""The characters of an IAM user's access key id after its prefix."""


@dataclass(frozen=True, slots=True)
class Habits:
    """How every principal of one kind works: its sessions and their calls.

    Attributes
    ----------
    kind
        The principal kind (``admin``, ``developer``, ...).
    sessions_per_day
        Mean sessions per day (Poisson; a tenth of it on weekends for office workers).
    calls_per_session
        Mean calls per session (geometric).
    gap_s
        Mean seconds between two calls of a session (exponential).
    error_rate
        Share of calls that fail with a benign error.
    """

    kind: str
    sessions_per_day: float
    calls_per_session: float
    gap_s: float
    error_rate: float


@dataclass(frozen=True, slots=True)
class WorkingDay:
    """When the principals of one kind work (UTC hours); kinds without one work at any
    hour, every day.

    Attributes
    ----------
    kind
        The principal kind.
    starts_h
        The range each principal's working day starts in (drawn once per principal).
    length_h
        Length of the working day in hours.
    weekdays_only
        Weekends see a tenth of the sessions.
    """

    kind: str
    starts_h: tuple[float, float]
    length_h: float
    weekdays_only: bool

    def draw(self, rng: np.random.Generator) -> tuple[float, float]:
        """One principal's working day: (start, end) in UTC hours, the end may pass 24."""
        start = float(rng.uniform(*self.starts_h))
        return (start, start + self.length_h)


KIND_HABITS: tuple[Habits, ...] = (
    Habits("admin", sessions_per_day=3.0, calls_per_session=25.0, gap_s=20.0, error_rate=0.03),
    Habits("developer", sessions_per_day=4.0, calls_per_session=20.0, gap_s=15.0, error_rate=0.05),
    Habits("ci", sessions_per_day=4.0, calls_per_session=120.0, gap_s=1.5, error_rate=0.04),
    Habits("scanner", sessions_per_day=1.0, calls_per_session=400.0, gap_s=0.8, error_rate=0.08),
    Habits("app", sessions_per_day=48.0, calls_per_session=4.0, gap_s=5.0, error_rate=0.01),
    Habits("operator", sessions_per_day=0.6, calls_per_session=150.0, gap_s=0.8, error_rate=0.03),
    Habits("agent", sessions_per_day=24.0, calls_per_session=3.0, gap_s=2.0, error_rate=0.02),
    Habits("service", sessions_per_day=24.0, calls_per_session=2.0, gap_s=1.0, error_rate=0.0),
    Habits("autoscaler", sessions_per_day=96.0, calls_per_session=3.0, gap_s=10.0, error_rate=0.01),
)
HABITS: Mapping[str, Habits] = {h.kind: h for h in KIND_HABITS}

KIND_WORKING_DAYS: tuple[WorkingDay, ...] = (
    WorkingDay("admin", starts_h=(6.0, 10.0), length_h=9.0, weekdays_only=True),
    WorkingDay("developer", starts_h=(6.0, 11.0), length_h=10.0, weekdays_only=True),
    WorkingDay("scanner", starts_h=(0.0, 24.0), length_h=0.5, weekdays_only=False),
    WorkingDay("operator", starts_h=(7.0, 11.0), length_h=8.0, weekdays_only=True),
)
WORKING_DAYS: Mapping[str, WorkingDay] = {d.kind: d for d in KIND_WORKING_DAYS}

APP_APIS: tuple[tuple[str, str], ...] = (
    ("secretsmanager", "GetSecretValue"),
    ("ssm", "GetParameter"),
    ("kms", "Decrypt"),
    ("kms", "GenerateDataKey"),
    ("sts", "GetCallerIdentity"),
    ("dynamodb", "DescribeTable"),
    ("ssm", "GetParameters"),
    ("ecr", "GetAuthorizationToken"),
)
"""What an application's instance role calls (weights drawn per principal)."""

SERVICE_APIS: tuple[tuple[str, str, float], ...] = (
    ("sts", "AssumeRole", 0.6),
    ("kms", "Decrypt", 0.2),
    ("kms", "GenerateDataKey", 0.15),
    ("iam", "CreateServiceLinkedRole", 0.05),
)
"""What an AWS service calls in the account: (service, eventName, weight)."""

AUTOSCALER_APIS: tuple[tuple[str, str, float], ...] = (
    ("autoscaling", "DescribeAutoScalingGroups", 0.55),
    ("ec2", "DescribeInstances", 0.3),
    ("autoscaling", "SetDesiredCapacity", 0.07),
    ("ec2", "DescribeLaunchTemplateVersions", 0.05),
    ("autoscaling", "TerminateInstanceInAutoScalingGroup", 0.03),
)
"""What the cluster autoscaler calls: (service, eventName, weight)."""

SERVICES = ("secretsmanager", "lambda", "ec2", "rds", "cloudtrail", "health")
"""The AWS services that may act in the account, in the order they are added."""

_USER_NAMES = (
    "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy "
    "rupert sybil trent victor walter yves zoe"
).split()


@dataclass(frozen=True, slots=True)
class Principal:
    """A benign identity and its habits.

    Attributes
    ----------
    identity
        The CloudTrail ``userIdentity`` of its calls.
    networks, user_agents
        Its usual source addresses and clients (the last user agent is its newest).
    apis, weights
        The calls it makes and their probabilities (summing to 1).
    hours
        Its working day (UTC hours, start < end; the end may pass 24), None: any hour.
    weekdays_only
        Whether it works on weekdays only (weekends see a tenth of its sessions).
    habits
        The habits of its kind.
    """

    identity: Mapping[str, str]
    networks: tuple[str, ...]
    user_agents: tuple[str, ...]
    apis: tuple[tuple[str, str], ...]
    weights: tuple[float, ...]
    hours: tuple[float, float] | None
    weekdays_only: bool
    habits: Habits

    @property
    def kind(self) -> str:
        """The principal kind (``admin``, ``developer``, ...)."""
        return self.habits.kind

    def busier(self, factor: float) -> Principal:
        """This principal with ``factor`` times as many sessions per day."""
        habits = dataclasses.replace(
            self.habits, sessions_per_day=self.habits.sessions_per_day * factor
        )
        return dataclasses.replace(self, habits=habits)


def access_key_id(prefix: str, rng: np.random.Generator, alphabet: str = KEY_ALPHABET) -> str:
    """``prefix`` (``AKIA`` for a user's key, ``ASIA`` for a session's) and 16 characters
    drawn from ``alphabet``."""
    return prefix + "".join(rng.choice(list(alphabet), 16))


def zipf_weights(rng: np.random.Generator, n: int) -> tuple[float, ...]:
    """Probabilities of ``n`` calls: a Zipf law (exponent 1.1) in a random order."""
    w = 1.0 / np.arange(1, n + 1) ** 1.1
    rng.shuffle(w)
    return tuple(float(x) for x in w / w.sum())


class _Account:
    """What the principals of one account share: its id, office and CI runner networks,
    the user names still free, and the generator every draw comes from."""

    def __init__(self, account_id: str, rng: np.random.Generator) -> None:
        self.account_id = account_id
        self.rng = rng
        self.office = [
            f"198.51.{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}" for _ in range(3)
        ]
        self.runners = [public_ip(rng) for _ in range(6)]
        self.names: Iterator[str] = iter(_USER_NAMES)

    def pick(self, options: tuple[str, ...]) -> str:
        """One of ``options``, uniformly."""
        return options[int(self.rng.integers(0, len(options)))]

    def client(self, templates: tuple[str, ...]) -> str:
        """A user agent from one of ``templates`` with its version drawn."""
        return with_version(self.pick(templates), self.rng)

    def user(self, name: str) -> dict[str, str]:
        """An IAM user's identity with a long-term access key."""
        arn = f"arn:aws:iam::{self.account_id}:user/{name}"
        return self._identity("IAMUser", arn, name, access_key_id("AKIA", self.rng))

    def role(self, name: str) -> dict[str, str]:
        """An assumed-role session's identity with a temporary key."""
        arn = f"arn:aws:sts::{self.account_id}:assumed-role/{name}/session"
        key = access_key_id("ASIA", self.rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return self._identity("AssumedRole", arn, name, key)

    def _identity(self, kind: str, arn: str, name: str, key: str) -> dict[str, str]:
        return {
            "type": kind,
            "arn": arn,
            "userName": name,
            "accountId": self.account_id,
            "accessKeyId": key,
        }


def _admin(acct: _Account) -> Principal:
    rng = acct.rng
    networks = (acct.pick(tuple(acct.office)), public_ip(rng))
    apis = sample_apis(rng, READS, 45) + sample_apis(rng, WRITES, 12) + list(ADMIN_WRITES)
    apis.append(("signin", "ConsoleLogin"))
    day = WORKING_DAYS["admin"]
    hours = day.draw(rng)
    return Principal(
        identity=acct.user(next(acct.names)),
        networks=networks,
        user_agents=(acct.client(UA_CONSOLE), acct.client(UA_CLI)),
        apis=tuple(apis),
        weights=zipf_weights(rng, len(apis)),
        hours=hours,
        weekdays_only=day.weekdays_only,
        habits=HABITS["admin"],
    )


def _developer(acct: _Account) -> Principal:
    rng = acct.rng
    networks: tuple[str, ...] = (acct.pick(tuple(acct.office)),)
    if rng.random() < 0.5:
        networks = (*networks, public_ip(rng))
    writes = {k: WRITES[k] for k in ("lambda", "s3", "logs", "ssm", "dynamodb")}
    apis = sample_apis(rng, READS, 30) + sample_apis(rng, writes, 8)
    apis += [("secretsmanager", "GetSecretValue"), ("sts", "GetCallerIdentity")]
    day = WORKING_DAYS["developer"]
    hours = day.draw(rng)
    clients = [acct.client(UA_BOTO), acct.client(UA_CLI)]
    if rng.random() < 0.5:
        clients.append(acct.client(UA_CONSOLE))
    return Principal(
        identity=acct.user(next(acct.names)),
        networks=networks,
        user_agents=tuple(clients),
        apis=tuple(apis),
        weights=zipf_weights(rng, len(apis)),
        hours=hours,
        weekdays_only=day.weekdays_only,
        habits=HABITS["developer"],
    )


def _ci(acct: _Account, i: int) -> Principal:
    apis = [(s, n) for s, ns in READS.items() for n in ns[:6]]
    apis += [(s, n) for s, ns in WRITES.items() for n in ns]
    return Principal(
        identity=acct.role(f"ci-deploy-{i}"),
        networks=tuple(acct.runners),
        user_agents=(with_version(UA_TERRAFORM[i % 2], acct.rng),),
        apis=tuple(apis),
        weights=zipf_weights(acct.rng, len(apis)),
        hours=None,
        weekdays_only=False,
        habits=HABITS["ci"],
    )


def _scanner(acct: _Account) -> Principal:
    apis = [(s, n) for s, ns in READS.items() for n in ns]
    day = WORKING_DAYS["scanner"]
    hours = day.draw(acct.rng)
    return Principal(
        identity=acct.user(f"security-audit-{next(acct.names)}"),
        networks=(public_ip(acct.rng),),
        user_agents=(acct.client(UA_BOTO),),
        apis=tuple(apis),
        weights=tuple(1.0 / len(apis) for _ in apis),
        hours=hours,
        weekdays_only=day.weekdays_only,
        habits=HABITS["scanner"],
    )


def _app(acct: _Account, i: int) -> Principal:
    rng = acct.rng
    identity = acct.role(f"app-{i}-instance-role")
    identity["arn"] = identity["arn"].replace("/session", f"/i-{rng.bytes(8).hex()[:17]}")
    return Principal(
        identity=identity,
        networks=tuple(f"10.0.{i}.{int(rng.integers(4, 250))}" for _ in range(3)),
        user_agents=(with_version(UA_JAVA[0], rng),),
        apis=APP_APIS,
        weights=zipf_weights(rng, len(APP_APIS)),
        hours=None,
        weekdays_only=False,
        habits=HABITS["app"],
    )


def _operator(acct: _Account, admin: Principal) -> Principal:
    apis = (
        [(s, n) for s, ns in READS.items() for n in ns[:8]]
        + [(s, n) for s, ns in WRITES.items() for n in ns]
        + list(ADMIN_WRITES[:7])
    )
    day = WORKING_DAYS["operator"]
    hours = day.draw(acct.rng)
    return Principal(
        identity=admin.identity,
        networks=admin.networks,
        user_agents=(acct.client(UA_TERRAFORM),),
        apis=tuple(apis),
        weights=zipf_weights(acct.rng, len(apis)),
        hours=hours,
        weekdays_only=day.weekdays_only,
        habits=HABITS["operator"],
    )


def _agent(acct: _Account, app: Principal) -> Principal:
    return Principal(
        identity=app.identity,
        networks=app.networks,
        user_agents=(with_version(UA_SSM_AGENT, acct.rng),),
        apis=SSM_AGENT_APIS,
        weights=zipf_weights(acct.rng, len(SSM_AGENT_APIS)),
        hours=None,
        weekdays_only=False,
        habits=HABITS["agent"],
    )


def _service(acct: _Account, service: str) -> Principal:
    host = f"{service}.amazonaws.com"
    identity = {
        "type": "AWSService",
        "arn": "",
        "userName": "",
        "accountId": acct.account_id,
        "accessKeyId": "",
        "invokedBy": host,
    }
    return Principal(
        identity=identity,
        networks=(host,),
        user_agents=(host,),
        apis=tuple((svc, name) for svc, name, _ in SERVICE_APIS),
        weights=tuple(w for _, _, w in SERVICE_APIS),
        hours=None,
        weekdays_only=False,
        habits=HABITS["service"],
    )


def _autoscaler(acct: _Account) -> Principal:
    return Principal(
        identity=acct.role("eks-cluster-autoscaler"),
        networks=("10.0.100.12",),
        user_agents=(with_version(UA_AUTOSCALER[0], acct.rng),),
        apis=tuple((svc, name) for svc, name, _ in AUTOSCALER_APIS),
        weights=tuple(w for _, _, w in AUTOSCALER_APIS),
        hours=None,
        weekdays_only=False,
        habits=HABITS["autoscaler"],
    )


def build_principals(
    counts: Mapping[str, int], *, account_id: str, rng: np.random.Generator
) -> list[Principal]:
    """Benign principals of one account: ``counts`` per kind (admin, developer, ci,
    scanner, app, service, autoscaler); admins may also run Terraform (an ``operator``)
    and every application's instances run the SSM agent (an ``agent``)."""
    acct = _Account(account_id, rng)
    out = [_admin(acct) for _ in range(counts.get("admin", 0))]
    out.extend(_developer(acct) for _ in range(counts.get("developer", 0)))
    out.extend(_ci(acct, i) for i in range(counts.get("ci", 0)))
    out.extend(_scanner(acct) for _ in range(counts.get("scanner", 0)))
    out.extend(_app(acct, i) for i in range(counts.get("app", 0)))
    for admin in [p for p in out if p.kind == "admin"]:
        if rng.random() < 0.6:  # the admin also applies Terraform from a laptop
            out.append(_operator(acct, admin))
    out.extend(_agent(acct, app) for app in [p for p in out if p.kind == "app"])
    out.extend(_service(acct, svc) for svc in SERVICES[: counts.get("service", 0)])
    out.extend(_autoscaler(acct) for _ in range(counts.get("autoscaler", 0)))
    return out
