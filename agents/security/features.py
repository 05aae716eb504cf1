"""Features of one audit event: what it is (text + structure) and how it fits its
principal's past (behaviour).

Static features (:data:`STATIC_FEATURES`)
    The API's verb (``Get``, ``Create``, ``Stop`` ...), the service, token groups read
    from the camel-case words of the eventName (credential material, logging, identity,
    sharing, compute, organisation, storage, network), the error class, the
    user-agent family and request-parameter facts (an external account id, a wildcard
    principal, an open CIDR, an administrator policy, a switch turned off, a share
    being added, list sizes). They depend on the event alone.

Behaviour features (:data:`BEHAVIOUR_FEATURES`)
    Computed by :class:`BehaviourState` from the events *before* this one only (the
    state is read first and updated after): how many events the principal has, the
    share of its past events with this user agent / UA family / source IP / network
    (/16) / API / service / hour of day, whether the API is new to it, its action,
    error and denial rates over the last minutes, how many never-before-seen APIs it
    called in the last 15 min, the session's length so far, how common the API is in
    the account, whether a shared-with account id is new to the account, and, for a
    role session, the novelty of the ``AssumeRole`` call that created it.

Times are POSIX seconds; rates are counts per window (60 s, 300 s, 900 s).
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from agents.security.events import UA_FAMILIES, Event, ua_family

VERBS: tuple[str, ...] = (
    "Get",
    "List",
    "Describe",
    "Lookup",
    "Head",
    "Batch",
    "Create",
    "Delete",
    "Put",
    "Update",
    "Modify",
    "Attach",
    "Detach",
    "Stop",
    "Start",
    "Run",
    "Terminate",
    "Authorize",
    "Revoke",
    "Send",
    "Assume",
    "Leave",
    "Disable",
    "Enable",
    "Remove",
    "Add",
    "Set",
    "Invoke",
    "Console",
    "Decrypt",
    "Generate",
    "Schedule",
    "Tag",
    "Publish",
    "Deregister",
    "Register",
    "Restore",
)

SERVICES: tuple[str, ...] = (
    "iam",
    "sts",
    "cloudtrail",
    "kms",
    "ssm",
    "secretsmanager",
    "ec2",
    "s3",
    "lambda",
    "rds",
    "logs",
    "signin",
    "organizations",
    "guardduty",
    "config",
    "eks",
    "autoscaling",
    "rolesanywhere",
    "route53resolver",
    "ses",
    "bedrock",
    "sagemaker",
    "ec2-instance-connect",
)

TOKEN_GROUPS: Mapping[str, frozenset[str]] = {
    "credential": frozenset(
        "password secret secrets parameter parameters credential credentials key keys "
        "token signin login federation data".split()  # not "access": AccessPoints, ...
    ),
    "logging": frozenset(
        "trail trails logging flow logs log event selectors detector recorder delivery "
        "channel lifecycle query guardrail findings".split()
    ),
    "identity": frozenset(
        "user users role roles policy policies group assume permission trust anchor profile "
        "mfa".split()
    ),
    "sharing": frozenset("snapshot image attribute share".split()),
    "compute": frozenset("instance instances command invocation ssh serial session".split()),
    "organization": frozenset("organization account accounts region".split()),
    "storage": frozenset("bucket object objects".split()),
    "network": frozenset("security ingress egress route acl vpc subnet gateway".split()),
}

ERROR_CLASSES: tuple[str, ...] = ("none", "denied", "notfound", "throttle", "limit", "other")

PARAM_FEATURES: tuple[str, ...] = (
    "p_leaves_log",
    "p_max_list_log",
    "p_external_account",
    "p_wildcard_principal",
    "p_open_cidr",
    "p_admin_policy",
    "p_switch_off",
    "p_share_add",
    "p_user_data",
)

STATIC_FEATURES: tuple[str, ...] = (
    *(f"verb_{v}" for v in (*VERBS, "other")),
    *(f"svc_{s}" for s in (*SERVICES, "other")),
    *(f"tok_{g}" for g in TOKEN_GROUPS),
    "read_only",
    *(f"err_{c}" for c in ERROR_CLASSES),
    *(f"ua_{f}" for f in UA_FAMILIES),
    "id_assumed_role",
    "id_service",
    *PARAM_FEATURES,
)

BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "b_log_n",
    "b_new_principal",
    "b_age_log_h",
    "b_ua_share",
    "b_ua_family_share",
    "b_ua_age_log_s",
    "b_ip_share",
    "b_net_share",
    "b_api_share",
    "b_api_new",
    "b_service_share",
    "b_hour_share",
    "b_gap_log_s",
    "b_rate_1m",
    "b_rate_5m",
    "b_rate_ratio",
    "b_err_5m",
    "b_denied_5m",
    "b_new_apis_15m",
    "b_distinct_apis_5m",
    "b_session_log_n",
    "b_account_api_log_n",
    "b_account_api_principals",
    "b_new_external_account",
    "b_parent_ua_share",
    "b_parent_ip_share",
)

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_VERSION = re.compile(r"\d{8}(v\d+)?$")
_ACCOUNT = re.compile(r"(?<!\d)\d{12}(?!\d)")
_DENIED = ("accessdenied", "unauthorized", "forbidden")
_NOTFOUND = ("notfound", "nosuch", "doesnotexist", "invalid")


def name_tokens(name: str) -> list[str]:
    """Lower-case words of a camel-case API name (version suffixes dropped)."""
    return [t.lower() for t in _CAMEL.findall(_VERSION.sub("", name))]


def error_class(code: str) -> str:
    """One of :data:`ERROR_CLASSES` for a CloudTrail errorCode."""
    if not code:
        return "none"
    c = code.lower()
    if any(k in c for k in _DENIED):
        return "denied"
    if "throttl" in c or "rate" in c:
        return "throttle"
    if "limit" in c:
        return "limit"
    if any(k in c for k in _NOTFOUND):
        return "notfound"
    return "other"


_STATIC_INDEX = {name: i for i, name in enumerate(STATIC_FEATURES)}


@lru_cache(maxsize=65_536)
def _name_columns(source: str, name: str) -> tuple[int, ...]:
    """The static columns an API sets: its verb, service and token groups."""
    tokens = name_tokens(name)
    verb = tokens[0].capitalize() if tokens else ""
    cols = [_STATIC_INDEX[f"verb_{verb}" if verb in VERBS else "verb_other"]]
    service = source.split(".", 1)[0]
    cols.append(_STATIC_INDEX[f"svc_{service}" if service in SERVICES else "svc_other"])
    words = set(tokens[1:]) | {service}
    for group, vocab in TOKEN_GROUPS.items():
        if words & vocab:
            cols.append(_STATIC_INDEX[f"tok_{group}"])
    return tuple(cols)


@lru_cache(maxsize=4096)
def _error_column(error: str) -> int:
    return _STATIC_INDEX[f"err_{error_class(error)}"]


def _static_base(source: str, name: str, error: str, family: str, ident: str) -> np.ndarray:
    row = np.zeros(len(STATIC_FEATURES), dtype=np.float64)
    row[list(_name_columns(source, name))] = 1.0
    row[_error_column(error)] = 1.0
    row[_STATIC_INDEX[f"ua_{family}"]] = 1.0
    row[_STATIC_INDEX["id_assumed_role"]] = 1.0 if ident == "AssumedRole" else 0.0
    row[_STATIC_INDEX["id_service"]] = 1.0 if ident == "AWSService" else 0.0
    return row


@dataclass(slots=True)
class _ParamScan:
    leaves: int = 0
    max_list: int = 0
    accounts: set[str] = field(default_factory=set)
    wildcard_principal: bool = False
    open_cidr: bool = False
    admin_policy: bool = False
    switch_off: bool = False
    share_add: bool = False
    user_data: bool = False


_SWITCH_KEYS = ("include", "enable", "logging", "islogging")


# strings of request parameters -> the 12-digit account ids in them (bounded cache)
_ACCOUNTS_IN: dict[str, tuple[str, ...]] = {}
_CACHE_MAX = 100_000


def _accounts_in(value: str) -> tuple[str, ...]:
    found = _ACCOUNTS_IN.get(value)
    if found is None:
        found = tuple(_ACCOUNT.findall(value))
        if len(_ACCOUNTS_IN) >= _CACHE_MAX:
            _ACCOUNTS_IN.clear()
        _ACCOUNTS_IN[value] = found
    return found


_WILDCARD, _OPEN_CIDR, _USER_DATA, _ADMIN_POLICY = 1, 2, 3, 4


def _str_leaf(value: str, key: str) -> tuple[int, tuple[str, ...]]:
    """A string value under ``key``: which fact it sets (0: none, else one of
    _WILDCARD ... _ADMIN_POLICY) and the account ids in it."""
    if len(value) < 200:
        flag = 0
        if value == "*" and "principal" in key:
            flag = _WILDCARD
        elif value in ("0.0.0.0/0", "::/0"):
            flag = _OPEN_CIDR
        elif value == "userData":
            flag = _USER_DATA
        elif value.endswith(":policy/AdministratorAccess"):
            flag = _ADMIN_POLICY
        # an account id has 12 digits: shorter strings hold none
        if len(value) >= 12 and "amazonaws.com" not in value:
            return flag, _accounts_in(value)
        return flag, ()
    if '"Principal"' in value or "Principal" in value:  # an embedded policy document
        wildcard = '"*"' in value and '"AWS"' in value
        return (_WILDCARD if wildcard else 0), tuple(_ACCOUNT.findall(value))
    return 0, ()


def _scan(value: Any, key: str, scan: _ParamScan) -> None:
    t = type(value)
    # exact dict first: the Mapping ABC check is slow, and str / list / int never are one
    if t is dict or (
        t is not str and t is not list and t is not int and isinstance(value, Mapping)
    ):
        for k, v in value.items():
            kl = k.lower() if type(k) is str else str(k).lower()
            if kl in ("add", "valuestoadd"):
                scan.share_add = True
            _scan(v, kl, scan)
    elif t is list or isinstance(value, list):
        scan.max_list = max(scan.max_list, len(value))
        for v in value:
            _scan(v, key, scan)
    else:
        scan.leaves += 1
        if isinstance(value, bool):
            if not value and key.startswith(_SWITCH_KEYS):
                scan.switch_off = True
        elif isinstance(value, str):
            flag, found = _str_leaf(value, key)
            if flag:
                if flag == _WILDCARD:
                    scan.wildcard_principal = True
                elif flag == _OPEN_CIDR:
                    scan.open_cidr = True
                elif flag == _USER_DATA:
                    scan.user_data = True
                else:
                    scan.admin_policy = True
            if found:
                scan.accounts.update(found)
        elif isinstance(value, int) and key in ("userid",):
            scan.accounts.add(f"{value:012d}")


def scan_params(params: Any) -> _ParamScan:
    """Facts about a ``requestParameters`` object (see :data:`PARAM_FEATURES`)."""
    scan = _ParamScan()
    if params is not None:
        _scan(params, "", scan)
    return scan


class StaticEncoder:
    """Static features of events, cached per (source, name, error, UA family, identity)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str, str, str], np.ndarray] = {}
        self._family: dict[str, str] = {}
        self._index = _STATIC_INDEX

    def family(self, user_agent: str) -> str:
        """The UA family, cached."""
        fam = self._family.get(user_agent)
        if fam is None:
            fam = ua_family(user_agent)
            if len(self._family) < 100_000:
                self._family[user_agent] = fam
        return fam

    def encode(self, ev: Event, scan: _ParamScan) -> np.ndarray:
        """The static feature row of ``ev`` (``float64``, :data:`STATIC_FEATURES`)."""
        fam = self.family(ev.user_agent)
        key = (ev.source, ev.name, ev.error, fam, ev.identity_type)
        base = self._cache.get(key)
        if base is None:
            base = _static_base(ev.source, ev.name, ev.error, fam, ev.identity_type)
            self._cache[key] = base
        row = base.copy()
        i = self._index
        row[i["read_only"]] = 1.0 if ev.read_only else 0.0
        row[i["p_leaves_log"]] = math.log1p(scan.leaves)
        row[i["p_max_list_log"]] = math.log1p(scan.max_list)
        row[i["p_external_account"]] = 1.0 if scan.accounts - {ev.account, "000000000000"} else 0.0
        row[i["p_wildcard_principal"]] = float(scan.wildcard_principal)
        row[i["p_open_cidr"]] = float(scan.open_cidr)
        row[i["p_admin_policy"]] = float(scan.admin_policy)
        row[i["p_switch_off"]] = float(scan.switch_off)
        row[i["p_share_add"]] = float(scan.share_add)
        row[i["p_user_data"]] = float(scan.user_data)
        return row


# ------------------------------------------------------------------ behaviour


@dataclass(slots=True)
class _Principal:
    n: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    ua: dict[str, int] = field(default_factory=dict)
    ua_first: dict[str, float] = field(default_factory=dict)
    family: dict[str, int] = field(default_factory=dict)
    ip: dict[str, int] = field(default_factory=dict)
    net: dict[str, int] = field(default_factory=dict)
    api: dict[str, int] = field(default_factory=dict)
    service: dict[str, int] = field(default_factory=dict)
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    window: deque[tuple[float, bool, bool, bool, str]] = field(default_factory=deque)
    window_apis: dict[str, int] = field(default_factory=dict)
    max_rate_5m: int = 0
    # running counts over the last 15 / 5 / 1 min (events arrive in time order, so an
    # event leaves each window once and for all)
    new_15m: int = 0
    w5: deque[tuple[float, bool, bool, str]] = field(default_factory=deque)
    err_5m: int = 0
    denied_5m: int = 0
    names_5m: dict[str, int] = field(default_factory=dict)
    w1: deque[float] = field(default_factory=deque)


WINDOW_S = 900.0


def _net(ip: str) -> str:
    parts = ip.split(".")
    return ".".join(parts[:2]) if len(parts) == 4 else ip


@dataclass(slots=True)
class BehaviourState:
    """Per-principal (and per-account) memory of past events.

    :meth:`observe` returns the behaviour features of an event computed from the state
    *before* it, then adds the event to the state. Principals are keyed by
    ``(account, principal)``, so several accounts can be scored in one stream.
    """

    principals: dict[tuple[str, str], _Principal] = field(default_factory=dict)
    sessions: dict[tuple[str, str], int] = field(default_factory=dict)
    account_api: dict[tuple[str, str], int] = field(default_factory=dict)
    account_api_principals: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    external_accounts: dict[str, set[str]] = field(default_factory=dict)
    role_parent: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def observe(self, ev: Event, family: str, scan: _ParamScan) -> list[float]:
        """Behaviour features of ``ev`` (:data:`BEHAVIOUR_FEATURES`), then learn it."""
        t = ev.time_s
        key = (ev.account, ev.principal)
        p = self.principals.get(key)
        if p is None:
            p = _Principal(first_s=t, last_s=t)
            self.principals[key] = p
        n = p.n
        net = _net(ev.ip)
        service = ev.source
        hour = int(t // 3600) % 24
        window = p.window
        while window and window[0][0] <= t - WINDOW_S:
            _, _, _, wnew, old = window.popleft()
            p.new_15m -= wnew
            c = p.window_apis[old] - 1
            if c:
                p.window_apis[old] = c
            else:
                del p.window_apis[old]
        w5 = p.w5
        names_5m = p.names_5m
        while w5 and w5[0][0] <= t - 300.0:
            _, werr, wden, old = w5.popleft()
            p.err_5m -= werr
            p.denied_5m -= wden
            c = names_5m[old] - 1
            if c:
                names_5m[old] = c
            else:
                del names_5m[old]
        w1 = p.w1
        while w1 and w1[0] <= t - 60.0:
            w1.popleft()
        rate_1m = len(w1)
        rate_5m = len(w5)
        err_5m = p.err_5m
        denied_5m = p.denied_5m
        new_15m = p.new_15m
        api_count = p.api.get(ev.name, 0)
        ua_first = p.ua_first.get(ev.user_agent)
        acc_api = (ev.account, ev.name)
        ext = scan.accounts - {ev.account, "000000000000"}
        known_ext = self.external_accounts.setdefault(ev.account, set())
        new_ext = 1.0 if ext - known_ext else 0.0
        parent = (1.0, 1.0)
        if ev.identity_type == "AssumedRole":
            role = ev.principal.rsplit("/", 1)[-1]
            parent = self.role_parent.get((ev.account, role), parent)
        inv = 1.0 / n if n else 0.0
        feats = [
            math.log1p(n),
            0.0 if n else 1.0,
            math.log1p((t - p.first_s) / 3600.0),
            p.ua.get(ev.user_agent, 0) * inv,
            p.family.get(family, 0) * inv,
            math.log1p(t - ua_first) if ua_first is not None else 0.0,
            p.ip.get(ev.ip, 0) * inv,
            p.net.get(net, 0) * inv,
            api_count * inv,
            1.0 if n and not api_count else 0.0,
            p.service.get(service, 0) * inv,
            (p.hours[hour - 1] + p.hours[hour] + p.hours[(hour + 1) % 24]) * inv,
            math.log1p(max(0.0, t - p.last_s)) if n else 0.0,
            float(rate_1m),
            float(rate_5m),
            rate_5m / (1.0 + p.max_rate_5m),
            float(err_5m),
            float(denied_5m),
            float(new_15m),
            float(len(names_5m)),
            math.log1p(self.sessions.get((ev.account, ev.session), 0)),
            math.log1p(self.account_api.get(acc_api, 0)),
            float(min(10, len(self.account_api_principals.get(acc_api, ())))),
            new_ext,
            parent[0],
            parent[1],
        ]
        # ---- learn the event
        is_err = bool(ev.error)
        is_denied = is_err and any(k in ev.error.lower() for k in _DENIED)
        is_new = n > 0 and api_count == 0
        window.append((t, is_err, is_denied, is_new, ev.name))
        p.new_15m += is_new
        w5.append((t, is_err, is_denied, ev.name))
        p.err_5m += is_err
        p.denied_5m += is_denied
        names_5m[ev.name] = names_5m.get(ev.name, 0) + 1
        w1.append(t)
        p.window_apis[ev.name] = p.window_apis.get(ev.name, 0) + 1
        p.max_rate_5m = max(p.max_rate_5m, rate_5m + 1)
        p.n = n + 1
        p.last_s = max(p.last_s, t)
        p.ua[ev.user_agent] = p.ua.get(ev.user_agent, 0) + 1
        if ua_first is None:
            p.ua_first[ev.user_agent] = t
        p.family[family] = p.family.get(family, 0) + 1
        p.ip[ev.ip] = p.ip.get(ev.ip, 0) + 1
        p.net[net] = p.net.get(net, 0) + 1
        p.api[ev.name] = api_count + 1
        p.service[service] = p.service.get(service, 0) + 1
        p.hours[hour] += 1
        skey = (ev.account, ev.session)
        self.sessions[skey] = self.sessions.get(skey, 0) + 1
        self.account_api[acc_api] = self.account_api.get(acc_api, 0) + 1
        self.account_api_principals.setdefault(acc_api, set()).add(ev.principal)
        known_ext.update(ext)
        if ev.name == "AssumeRole" and not is_err and isinstance(ev.params, Mapping):
            role_arn = ev.params.get("roleArn")
            if isinstance(role_arn, str) and role_arn:
                self.role_parent[(ev.account, role_arn.rsplit("/", 1)[-1])] = (feats[3], feats[6])
        return feats


def feature_names() -> list[str]:
    """Every column of the analyser's feature matrix, in order."""
    return [*STATIC_FEATURES, *BEHAVIOUR_FEATURES]


def encode_stream(
    events: Iterable[Event], state: BehaviourState, encoder: StaticEncoder
) -> np.ndarray:
    """Static + behaviour features of ``events`` in the given order (the state learns
    each event after its features are taken), ``float64`` ``(n, len(feature_names()))``."""
    rows = []
    for ev in events:
        scan = scan_params(ev.params)
        static = encoder.encode(ev, scan)
        behaviour = state.observe(ev, encoder.family(ev.user_agent), scan)
        rows.append(np.concatenate((static, np.asarray(behaviour))))
    if not rows:
        return np.zeros((0, len(STATIC_FEATURES) + len(BEHAVIOUR_FEATURES)))
    return np.vstack(rows)
