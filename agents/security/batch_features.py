"""Features of a whole time-ordered batch of audit events, column by column.

:func:`encode_batch` computes what :meth:`~agents.security.features.StaticEncoder.encode`
plus :meth:`~agents.security.features.BehaviourState.observe` give one event at a time,
for the whole batch at once. Every behaviour feature is a count over the principal's (or
the account's) earlier events: a running count within a group (stable sort by group, rank
within it) or a count over a time window (binary search on the time-ordered positions).
The same operations on the same numbers as the per-event path, so the same floats
(``tests/security/test_batch_equivalence.py`` compares the two).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.security.events import Event, ua_family
from agents.security.features import (
    _ADMIN_POLICY,
    _CACHE_MAX,
    _DENIED,
    _OPEN_CIDR,
    _STATIC_INDEX,
    _USER_DATA,
    _WILDCARD,
    BEHAVIOUR_FEATURES,
    PARAM_FEATURES,
    STATIC_FEATURES,
    WINDOW_S,
    BehaviourState,
    StaticEncoder,
    _net,
    _ParamScan,
    _static_base,
    _str_leaf,
    encode_stream,
    scan_params,
)

# ------------------------------------------------------------------ batch (columnar)
#
# encode_batch computes what StaticEncoder.encode + BehaviourState.observe give one event
# at a time, for a whole time-ordered batch at once. Every behaviour feature is a count
# over the principal's (or the account's) earlier events: a running count within a group
# (stable sort by group, rank within it) or a count over a time window (binary search on
# the time-ordered positions). The same operations on the same numbers as the per-event
# path, so the same floats (a test compares the two).

_FAMILY_OF: dict[str, str] = {}
_BASE_ROWS: dict[tuple[str, str, str, str, str], np.ndarray] = {}
_LOG1P_INT: list[np.ndarray] = [np.zeros(0)]
_NO_ACCOUNT = "000000000000"


def _family_of(user_agent: str) -> str:
    fam = _FAMILY_OF.get(user_agent)
    if fam is None:
        fam = ua_family(user_agent)
        if len(_FAMILY_OF) >= _CACHE_MAX:
            _FAMILY_OF.clear()
        _FAMILY_OF[user_agent] = fam
    return fam


def _base_row(key: tuple[str, str, str, str, str]) -> np.ndarray:
    row = _BASE_ROWS.get(key)
    if row is None:
        row = _static_base(*key)
        if len(_BASE_ROWS) >= _CACHE_MAX:
            _BASE_ROWS.clear()
        _BASE_ROWS[key] = row
    return row


def _log1p_ints(upto: int) -> np.ndarray:
    """``math.log1p(k)`` for ``k = 0 .. upto`` (at least), cached."""
    table = _LOG1P_INT[0]
    if len(table) <= upto:
        size = max(upto + 1, 2 * len(table), 1024)
        table = np.fromiter(map(math.log1p, range(size)), np.float64, count=size)
        _LOG1P_INT[0] = table
    return table


def _log1p(values: np.ndarray) -> np.ndarray:
    """``math.log1p`` of each value (the per-event path's function, not numpy's)."""
    return np.fromiter(map(math.log1p, values.tolist()), np.float64, count=len(values))


def _codes(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Dense ``int64`` codes (first-seen order) and the distinct values."""
    distinct = list(dict.fromkeys(values))
    index = {v: i for i, v in enumerate(distinct)}
    return np.fromiter(map(index.__getitem__, values), np.int64, count=len(values)), distinct


def _pair(a: np.ndarray, b: np.ndarray, n_b: int) -> np.ndarray:
    """Codes of the pairs (a, b) (``b < n_b``), dense when the product grows large."""
    key: np.ndarray = a * n_b + b
    if len(key) and int(key.max()) >= 1 << 40:
        key = _dense(key)
    return key


def _dense(keys: np.ndarray) -> np.ndarray:
    """Dense codes ``0 .. k-1`` of integer keys."""
    return np.unique(keys, return_inverse=True)[1].astype(np.int64, copy=False)


@dataclass(frozen=True, slots=True)
class _Groups:
    """Events grouped by a code, each group in time order."""

    order: np.ndarray  # positions sorted by (code, position)
    rank: np.ndarray  # per position: earlier events with the same code
    first: np.ndarray  # per position: position of the group's first event


def _groups(codes: np.ndarray) -> _Groups:
    n = len(codes)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    start_of = np.repeat(starts, np.diff(np.append(starts, n)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - start_of
    first = np.empty(n, dtype=np.int64)
    first[order] = order[start_of]
    return _Groups(order, rank, first)


# what encode_batch reads of a parameter scan: leaves, max_list, wildcard_principal,
# open_cidr, admin_policy, switch_off, share_add, user_data, accounts
_Facts = tuple[int, int, bool, bool, bool, bool, bool, bool, Iterable[str]]
_NO_FACTS: _Facts = (0, 0, False, False, False, False, False, False, ())


def _facts(scan: _ParamScan) -> _Facts:
    return (
        scan.leaves,
        scan.max_list,
        scan.wildcard_principal,
        scan.open_cidr,
        scan.admin_policy,
        scan.switch_off,
        scan.share_add,
        scan.user_data,
        scan.accounts,
    )


def _param_facts(params: Sequence[Any]) -> tuple[np.ndarray, list[_Facts]]:
    """Per event the index of the :func:`scan_params` facts of its parameters in the list
    returned: events without parameters share entry 0, and one-entry parameters with the
    same key and ``int`` / ``str`` value (``{"maxResults": 50}``) share one. A one-entry
    ``str`` value is read as :func:`_scan` reads it, without the scan object."""
    facts = [_NO_FACTS]
    memo: dict[tuple[str, Any], int] = {}
    ids = [0] * len(params)
    for i, prm in enumerate(params):
        if prm is None:
            continue
        if type(prm) is dict and len(prm) == 1:
            k, v = next(iter(prm.items()))
            tv = type(v)
            if type(k) is str and (tv is int or tv is str):
                j = memo.get((k, v))
                if j is None:
                    j = memo[(k, v)] = len(facts)
                    if tv is str:
                        kl = k.lower()
                        flag, found = _str_leaf(v, kl)
                        facts.append(
                            (
                                1,
                                0,
                                flag == _WILDCARD,
                                flag == _OPEN_CIDR,
                                flag == _ADMIN_POLICY,
                                False,
                                kl in ("add", "valuestoadd"),
                                flag == _USER_DATA,
                                found,
                            )
                        )
                    else:
                        facts.append(_facts(scan_params(prm)))
                ids[i] = j
                continue
        ids[i] = len(facts)
        facts.append(_facts(scan_params(prm)))
    return np.asarray(ids, dtype=np.int64), facts


# the yes/no request facts, in _Facts order from its third entry
_FLAG_FEATURES: tuple[str, ...] = PARAM_FEATURES[3:]
_BEH_INDEX = {name: len(STATIC_FEATURES) + i for i, name in enumerate(BEHAVIOUR_FEATURES)}


class _Columns:
    """The batch's events as columns, each string column coded once."""

    def __init__(self, events: Sequence[Event]) -> None:
        (_, times, self.accounts, self.sources, self.names, self.errors, self.agents, self.ips,
         self.principals, self.sessions, self.idents, self.read_only, self.params,
         ) = zip(*events, strict=True)  # fmt: skip
        self.n = n = len(events)
        self.t = np.fromiter(times, np.float64, count=n)
        self.acc, _ = _codes(self.accounts)
        self.prin, self.prin_values = _codes(self.principals)
        self.src, self.src_values = _codes(self.sources)
        self.name, self.name_values = _codes(self.names)
        self.err, self.err_values = _codes(self.errors)
        self.ident, self.ident_values = _codes(self.idents)
        self.ua, ua_values = _codes(self.agents)
        fam_of_ua, self.fam_values = _codes([_family_of(a) for a in ua_values])
        self.fam = fam_of_ua[self.ua]
        self.n_ua = len(ua_values)
        self.ip, ip_values = _codes(self.ips)
        net_of_ip, net_values = _codes([_net(ip) for ip in ip_values])
        self.net = net_of_ip[self.ip]
        self.n_ip, self.n_net = len(ip_values), len(net_values)
        self.sess, sess_values = _codes(self.sessions)
        self.n_sess = len(sess_values)


def encode_batch(events: Sequence[Event]) -> np.ndarray:
    """Static + behaviour features of ``events`` from an empty behaviour state,
    ``float64`` ``(n, len(feature_names()))``: the rows :func:`encode_stream` gives for
    the same events, computed column by column. Events must be in time order (as
    ``encode_records`` sorts them); otherwise the per-event path is taken."""
    n = len(events)
    n_static = len(STATIC_FEATURES)
    # column-major: filled and read (models, reasons) column by column
    out = np.empty((n, n_static + len(BEHAVIOUR_FEATURES)), dtype=np.float64, order="F")
    if n == 0:
        return out
    times = np.fromiter((ev.time_s for ev in events), np.float64, count=n)
    if not bool((times[1:] >= times[:-1]).all()):
        out[:] = encode_stream(events, BehaviourState(), StaticEncoder())
        return out
    c = _Columns(events)
    ext_rows = _static_block(out, c)
    _behaviour(out, c, ext_rows)
    return out


def _static_block(out: np.ndarray, c: _Columns) -> list[tuple[int, set[str]]]:
    """Fill the static columns of ``out`` (:meth:`StaticEncoder.encode`); return the
    events naming other accounts (position, account ids other than the event's own and
    ``000000000000``)."""
    n = c.n
    # the cached part: one row per (source, name, error, UA family, identity type)
    key = c.src
    for codes, size in (
        (c.name, len(c.name_values)),
        (c.err, len(c.err_values)),
        (c.fam, len(c.fam_values)),
        (c.ident, len(c.ident_values)),
    ):
        key = _pair(key, codes, size)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    table = np.asfortranarray(
        [
            _base_row((c.sources[i], c.names[i], c.errors[i], c.fam_values[c.fam[i]], c.idents[i]))
            for i in first.tolist()
        ]
    )
    inverse = inverse.ravel()
    for j, column in enumerate(table.T):
        np.take(column, inverse, out=out[:, j])
    col = _STATIC_INDEX
    out[:, col["read_only"]] = np.fromiter(c.read_only, np.float64, count=n)
    # request parameters
    ids, facts = _param_facts(c.params)
    columns = list(zip(*facts, strict=True))
    leaves = np.asarray(columns[0], dtype=np.int64)[ids]
    max_list = np.asarray(columns[1], dtype=np.int64)[ids]
    log1p = _log1p_ints(int(max(leaves.max(), max_list.max())))
    out[:, col["p_leaves_log"]] = log1p[leaves]
    out[:, col["p_max_list_log"]] = log1p[max_list]
    for j, feature in enumerate(_FLAG_FEATURES, start=2):
        out[:, col[feature]] = np.asarray(columns[j], dtype=np.float64)[ids]
    external = np.zeros(n, dtype=np.float64)
    ext_rows: list[tuple[int, set[str]]] = []
    named = np.fromiter(map(bool, columns[8]), bool, count=len(facts))[ids]
    for i in np.flatnonzero(named).tolist():
        ext = set(facts[ids[i]][8]) - {c.accounts[i], _NO_ACCOUNT}
        if ext:
            external[i] = 1.0
            ext_rows.append((i, ext))
    out[:, col["p_external_account"]] = external
    return ext_rows


def _behaviour(out: np.ndarray, c: _Columns, ext_rows: list[tuple[int, set[str]]]) -> None:
    """Fill the behaviour columns of ``out`` (:meth:`BehaviourState.observe`, whose
    steps the comments name) for time-ordered events."""
    n, t = c.n, c.t
    col = _BEH_INDEX
    pos = np.arange(n, dtype=np.int64)
    stride = n + 1  # (group, position) keys: group * stride + position
    pid = _dense(c.acc * len(c.prin_values) + c.prin)  # the principal: (account, principal)
    gp = _groups(pid)
    count = gp.rank  # p.n
    seen = count > 0
    inv = np.zeros(n, dtype=np.float64)
    np.divide(1.0, count, out=inv, where=seen)  # inv = 1.0 / n if n else 0.0
    log1p_int = _log1p_ints(n)

    g_ua = _groups(_pair(pid, c.ua, c.n_ua))
    g_ip = _groups(_pair(pid, c.ip, c.n_ip))
    api_pair = _pair(pid, c.name, len(c.name_values))
    g_api = _groups(api_pair)
    api_count = g_api.rank
    ua_share = g_ua.rank * inv
    ip_share = g_ip.rank * inv
    is_new = seen & (api_count == 0)

    out[:, col["b_log_n"]] = log1p_int[count]
    out[:, col["b_new_principal"]] = np.where(seen, 0.0, 1.0)
    out[:, col["b_age_log_h"]] = _log1p((t - t[gp.first]) / 3600.0)
    out[:, col["b_ua_share"]] = ua_share
    out[:, col["b_ua_family_share"]] = _groups(_pair(pid, c.fam, len(c.fam_values))).rank * inv
    ua_age = np.zeros(n, dtype=np.float64)
    known_ua = g_ua.rank > 0  # p.ua_first holds the UA's first time
    ua_age[known_ua] = _log1p((t - t[g_ua.first])[known_ua])
    out[:, col["b_ua_age_log_s"]] = ua_age
    out[:, col["b_ip_share"]] = ip_share
    out[:, col["b_net_share"]] = _groups(_pair(pid, c.net, c.n_net)).rank * inv
    out[:, col["b_api_share"]] = api_count * inv
    out[:, col["b_api_new"]] = is_new.astype(np.float64)
    out[:, col["b_service_share"]] = _groups(_pair(pid, c.src, len(c.src_values))).rank * inv

    # p.hours: earlier events of the principal in the hour before, of and after this one
    hour = np.floor_divide(t, 3600.0).astype(np.int64) % 24
    hour_keys = np.sort((pid * 24 + hour) * stride + pos)
    near = np.zeros(n, dtype=np.int64)
    for shift in (-1, 0, 1):
        base = (pid * 24 + (hour + shift) % 24) * stride
        near += np.searchsorted(hour_keys, base + pos) - np.searchsorted(hour_keys, base)
    out[:, col["b_hour_share"]] = near * inv

    # p.last_s: the principal's previous event (time-ordered: the latest)
    at = np.empty(n, dtype=np.int64)  # index of each event in gp.order
    at[gp.order] = pos
    gap = np.zeros(n, dtype=np.float64)
    previous = gp.order[np.maximum(at - 1, 0)]
    gap[seen] = _log1p(np.maximum(0.0, t - t[previous])[seen])
    out[:, col["b_gap_log_s"]] = gap

    # the windows (w1, w5, window): an earlier event j is still inside event i's window
    # unless t_j <= t_i - length, i.e. unless j < searchsorted(t, t_i - length, "right").
    # In gp.order (by principal, then position) the principal's events inside i's window
    # are the indices [start_i, at_i): counts of any kind of event there are differences
    # of running sums
    keys = pid[gp.order] * stride + gp.order  # sorted
    base_sorted = keys - gp.order  # pid * stride, in gp.order

    def window_start(length: float) -> np.ndarray:
        since = np.searchsorted(t, t - length, side="right")
        start = np.empty(n, dtype=np.int64)
        start[gp.order] = np.searchsorted(keys, base_sorted + since[gp.order])
        return start

    def running(mask: np.ndarray) -> np.ndarray:
        """Running count of ``mask`` in gp.order (entry k: events before index k)."""
        total = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(mask[gp.order], out=total[1:])
        return total

    s60, s300, s900 = window_start(60.0), window_start(300.0), window_start(WINDOW_S)
    rate_1m = at - s60
    rate_5m = at - s300
    err_flag = np.fromiter((bool(e) for e in c.err_values), bool, count=len(c.err_values))
    denied_flag = np.fromiter(
        (bool(e) and any(k in e.lower() for k in _DENIED) for e in c.err_values),
        bool,
        count=len(c.err_values),
    )
    errs = running(err_flag[c.err])
    denied = running(denied_flag[c.err])
    new_apis = running(is_new)
    # p.max_rate_5m: the running max of rate_5m + 1 over the principal's earlier events
    offset = pid[gp.order] * (n + 2)
    peak = np.maximum.accumulate((rate_5m + 1)[gp.order] + offset) - offset
    max_rate_sorted = np.zeros(n, dtype=np.int64)
    max_rate_sorted[1:] = peak[:-1]
    max_rate_sorted[count[gp.order] == 0] = 0
    max_rate = np.empty(n, dtype=np.int64)
    max_rate[gp.order] = max_rate_sorted
    out[:, col["b_rate_1m"]] = rate_1m
    out[:, col["b_rate_5m"]] = rate_5m
    out[:, col["b_rate_ratio"]] = rate_5m / (1.0 + max_rate)
    out[:, col["b_err_5m"]] = errs[at] - errs[s300]
    out[:, col["b_denied_5m"]] = denied[at] - denied[s300]
    out[:, col["b_new_apis_15m"]] = new_apis[at] - new_apis[s900]

    # names_5m, distinct APIs in the 5-min window: an earlier event j counts for the
    # principal's events i after it up to the next call of the same API (which takes
    # over), while j is inside i's window, i.e. while s300_i <= at_j
    nxt = np.full(n, n, dtype=np.int64)  # next call of the same API by the principal
    same = api_pair[g_api.order[1:]] == api_pair[g_api.order[:-1]]
    nxt[g_api.order[:-1][same]] = g_api.order[1:][same]
    starts_sorted = np.empty(n, dtype=np.int64)
    starts_sorted[at] = s300  # nondecreasing within a principal's run in gp.order
    window_keys = base_sorted + starts_sorted  # sorted (starts lie inside the group)
    last = np.searchsorted(window_keys, base_sorted[at] + at, side="right") - 1
    hi = np.minimum(last, np.where(nxt < n, at[np.minimum(nxt, n - 1)], n))
    lo = at + 1
    ok = lo <= hi
    spans = np.bincount(lo[ok], minlength=n + 1) - np.bincount(hi[ok] + 1, minlength=n + 1)
    out[:, col["b_distinct_apis_5m"]] = np.cumsum(spans[:n])[at]

    # account-wide: session length, API use, principals using the API
    out[:, col["b_session_log_n"]] = log1p_int[_groups(_pair(c.acc, c.sess, c.n_sess)).rank]
    acc_api = _dense(c.acc * len(c.name_values) + c.name)
    out[:, col["b_account_api_log_n"]] = log1p_int[_groups(acc_api).rank]
    first_user = _groups(_pair(acc_api, c.prin, len(c.prin_values))).rank == 0
    user_keys = (acc_api * stride + pos)[first_user]
    user_keys.sort()
    users = np.searchsorted(user_keys, acc_api * stride + pos) - np.searchsorted(
        user_keys, acc_api * stride
    )
    out[:, col["b_account_api_principals"]] = np.minimum(10, users)

    # external_accounts: never-seen account ids, per account (rare: a loop)
    new_ext = np.zeros(n, dtype=np.float64)
    known: dict[str, set[str]] = {}
    for i, ext in ext_rows:
        seen_ext = known.setdefault(c.accounts[i], set())
        if ext - seen_ext:
            new_ext[i] = 1.0
        seen_ext.update(ext)
    out[:, col["b_new_external_account"]] = new_ext

    # role_parent: the novelty of the role's latest earlier AssumeRole
    parent_ua = np.ones(n, dtype=np.float64)
    parent_ip = np.ones(n, dtype=np.float64)
    role_keys: dict[tuple[str, str], int] = {}
    setters: list[int] = []  # role key * stride + position
    if "AssumeRole" in c.name_values:
        calls = np.flatnonzero(c.name == c.name_values.index("AssumeRole")).tolist()
        for i in calls:
            prm = c.params[i]
            if c.errors[i] or not isinstance(prm, Mapping):
                continue
            role_arn = prm.get("roleArn")
            if isinstance(role_arn, str) and role_arn:
                key = (c.accounts[i], role_arn.rsplit("/", 1)[-1])
                setters.append(role_keys.setdefault(key, len(role_keys)) * stride + i)
    if setters and "AssumedRole" in c.ident_values:
        # the role key each principal would look up (-1: none set it)
        firsts = gp.order[count[gp.order] == 0]
        key_of = np.full(len(firsts), -1, dtype=np.int64)
        for g, i in zip(pid[firsts].tolist(), firsts.tolist(), strict=True):
            key_of[g] = role_keys.get((c.accounts[i], c.principals[i].rsplit("/", 1)[-1]), -1)
        lookup = key_of[pid]
        rows = np.flatnonzero((c.ident == c.ident_values.index("AssumedRole")) & (lookup >= 0))
        set_keys = np.sort(np.asarray(setters, dtype=np.int64))
        hit = np.searchsorted(set_keys, lookup[rows] * stride + rows) - 1
        found = hit >= 0
        found[found] = set_keys[hit[found]] // stride == lookup[rows][found]
        source = set_keys[hit[found]] % stride
        parent_ua[rows[found]] = ua_share[source]
        parent_ip[rows[found]] = ip_share[source]
    out[:, col["b_parent_ua_share"]] = parent_ua
    out[:, col["b_parent_ip_share"]] = parent_ip
