"""The security analyser: CloudTrail events → risk score, category, actions, reasons.

:class:`SecurityAnalyser` follows the scikit-learn contract (keyword-only
hyper-parameters stored verbatim, :meth:`~SecurityAnalyser.fit` returns ``self``,
fitted attributes end in ``_``). ``X`` is a sequence of CloudTrail records (dicts) and
``y`` their labels (``normal`` / ``suspicious`` / ``malicious``).

Pipeline, per event, in scoring order (:func:`~agents.security.events.scoring_order`: by
time, the events of one second by ``eventID``, so any order of the same records in the
input gives the same scores):

1. static features of the event's text and structure and behaviour features from its
   principal's *past* (:mod:`agents.security.features`);
2. an anomaly model (HBOS, :mod:`agents.security.anomaly`) fitted on benign events
   scores the behaviour features; its score is ``anomaly_score`` and, above the
   ``anomaly_quantile`` of benign training scores, ``behavioral_anomaly``;
3. a gradient-boosted classifier over both feature groups plus the anomaly score gives
   ``P(normal)``, ``P(suspicious)``, ``P(malicious)``;
4. ``risk_score = P(malicious) + 0.5 * P(suspicious)`` in ``[0, 1]``; an alert is
   ``risk_score >= threshold_``, where ``threshold_`` is fixed at fit time as the
   ``(1 - target_fpr)`` quantile of the risk of benign events in a held-out part of the
   training records, never per scored file.

Each scoring call starts from an empty behaviour state (the result depends only on
the records given); :meth:`SecurityAnalyser.stream` returns a stateful scorer for
events arriving one at a time (the closed loop).
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from agents.security.anomaly import HistogramOutlierScorer
from agents.security.events import Event, parse_event, scoring_order
from agents.security.batch_features import encode_batch
from agents.security.features import (
    STATIC_FEATURES,
    BehaviourState,
    StaticEncoder,
    feature_names,
    name_tokens,
    scan_params,
)
from agents.security.trees import predict_many

_P = ParamSpec("_P")
_R = TypeVar("_R")

LABELS: tuple[str, ...] = ("malicious", "normal", "suspicious")  # sorted, as classes_

ANOMALY_FEATURES: tuple[str, ...] = (
    "b_new_principal",
    "b_ua_share",
    "b_ua_family_share",
    "b_ip_share",
    "b_net_share",
    "b_api_share",
    "b_service_share",
    "b_hour_share",
    "b_rate_ratio",
    "b_denied_5m",
    "b_err_5m",
    "b_new_apis_15m",
    "b_account_api_log_n",
    "b_new_external_account",
    "b_parent_ua_share",
    "b_parent_ip_share",
)

# Volume-dependent features the classifier does not see (they describe how busy the
# simulated accounts were more than how an attack looks); the anomaly model may.
CLASSIFIER_DROP: frozenset[str] = frozenset(
    {
        "b_rate_1m",
        "b_rate_5m",
        "b_err_5m",
        "b_distinct_apis_5m",
        "b_session_log_n",
        "b_gap_log_s",
        "b_age_log_h",
        "b_account_api_log_n",
        "b_account_api_principals",
    }
)
# Domain knowledge as monotonic constraints: risk never rises with familiarity (a larger
# share of the principal's past with this UA, network, API, hour, or a familiar parent
# session) and never falls with denials, a never-seen external account or a dangerous
# request fact.
MONOTONIC: Mapping[str, int] = {
    "b_ua_share": -1,
    "b_ua_family_share": -1,
    "b_ip_share": -1,
    "b_net_share": -1,
    "b_api_share": -1,
    "b_hour_share": -1,
    "b_parent_ua_share": -1,
    "b_parent_ip_share": -1,
    "b_denied_5m": 1,
    "b_new_external_account": 1,
    "b_new_apis_15m": 1,
    "anomaly_score": 1,
    # request facts that only ever add to the risk: a grant to another account or to
    # anyone, an open CIDR, an administrator policy, a logging switch turned off, a share
    # added, instance user data read
    "p_external_account": 1,
    "p_wildcard_principal": 1,
    "p_open_cidr": 1,
    "p_admin_policy": 1,
    "p_switch_off": 1,
    "p_share_add": 1,
    "p_user_data": 1,
}

CATEGORY_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "initial-access": ("verify the login with the user", "enforce MFA", "reset the password"),
    "defense-evasion": (
        "re-enable logging (StartLogging / restore trail, selectors, flow logs)",
        "revoke the principal's sessions and keys",
    ),
    "credential-access": (
        "rotate the secrets, parameters or passwords read",
        "disable the principal's access keys",
    ),
    "persistence": (
        "delete the created user, key, login profile, trust or permission",
        "review IAM changes by this principal",
    ),
    "privilege-escalation": ("detach the policy granted", "review IAM changes by this principal"),
    "exfiltration": (
        "remove the external share, bucket policy grant or open ingress rule",
        "check the target account id",
    ),
    "execution": ("inspect the command or instances launched", "isolate the instances"),
    "impact": ("restore from backup", "revoke the principal's sessions and keys"),
    "discovery": ("watch the principal for follow-up actions",),
    "none": (),
}


def threat_category(name: str, static: np.ndarray) -> str:
    """The kind of threat an event would be, from its API and request facts."""
    return _category(name, tuple(bool(static[i]) for i in _CATEGORY_COLS))


_CATEGORY_FLAGS: tuple[str, ...] = (
    "p_share_add",
    "p_external_account",
    "p_open_cidr",
    "p_wildcard_principal",
    "tok_logging",
    "p_admin_policy",
    "tok_identity",
    "tok_credential",
    "p_user_data",
    "read_only",
)


@lru_cache(maxsize=4096)
def _category(name: str, flags: tuple[bool, ...]) -> str:
    """:func:`threat_category` from the API name and the truth of the static features
    in :data:`_CATEGORY_FLAGS` (all it reads), cached."""
    flag = dict(zip(_CATEGORY_FLAGS, flags, strict=True))
    tokens = name_tokens(name)
    verb = tokens[0] if tokens else ""
    words = set(tokens[1:])
    if name in ("ConsoleLogin", "GetSigninToken", "GetFederationToken"):
        return "initial-access"
    if (
        flag["p_share_add"]
        or flag["p_external_account"]
        or (flag["p_open_cidr"] or flag["p_wildcard_principal"])
    ):
        return "exfiltration" if verb in ("modify", "put", "authorize") else "persistence"
    if flag["tok_logging"] and verb in (
        "stop",
        "delete",
        "put",
        "update",
        "disable",
        "remove",
        "leave",
    ):
        return "defense-evasion"
    if name == "LeaveOrganization":
        return "defense-evasion"
    if flag["p_admin_policy"] or name in ("UpdateLoginProfile", "PutUserPolicy"):
        return "privilege-escalation"
    if verb in ("create", "update", "attach", "add", "put") and (
        flag["tok_identity"] or "key" in words or "login" in words
    ):
        return "persistence"
    if verb in ("get", "batch") and flag["tok_credential"]:
        return "credential-access"
    if "userdata" in "".join(tokens[1:]) or flag["p_user_data"]:  # in name order
        return "credential-access"
    if verb in ("send", "run", "invoke", "start") and not flag["tok_logging"]:
        return "execution"
    if verb in ("delete", "terminate", "deregister", "schedule"):
        return "impact"
    if verb in ("get", "list", "describe", "lookup", "head", "batch", "assume"):
        return "discovery"
    return "discovery" if flag["read_only"] else "impact"


_STATIC_INDEX = {n: i for i, n in enumerate(STATIC_FEATURES)}
_CATEGORY_COLS = np.asarray([_STATIC_INDEX[f] for f in _CATEGORY_FLAGS], dtype=np.intp)
_NAMES = feature_names()
_COL = {n: i for i, n in enumerate(_NAMES)}
_CLF_COLS = [i for i, n in enumerate(_NAMES) if n not in CLASSIFIER_DROP]
_CLF_NAMES = [*(n for n in _NAMES if n not in CLASSIFIER_DROP), "anomaly_score"]


@dataclass(frozen=True, slots=True)
class Encoded:
    """Events of one scoring call in scoring order, their features, and the records
    that could not be read (position in the input, message)."""

    order: np.ndarray  # input positions of the scored events, in scoring order
    events: list[Event]
    features: np.ndarray
    bad: list[tuple[int, str]]


def _gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` with Python's cyclic garbage collector paused while it runs (restored as it
    was, also on errors). A batch allocates several containers per event (events,
    request facts, codes, texts), none in a reference cycle: reference counting frees
    them. A collection during the batch would instead walk every live object, the
    caller's records included: measured in the benchmark's process, one generation-2
    pass per batch of ~0.1 s, a third of the batch."""

    @wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return paused


@_gc_paused
def encode_records(records: Sequence[Mapping[str, Any]]) -> Encoded:
    """Parse, put in scoring order (by ``eventTime``, then ``eventID``: see
    :func:`~agents.security.events.scoring_order`) and featurise ``records`` from an empty
    behaviour state. Unreadable records are listed in ``bad``, never dropped silently."""
    parsed: list[Event] = []
    kept: list[int] = []
    bad: list[tuple[int, str]] = []
    for i, rec in enumerate(records):
        try:
            parsed.append(parse_event(rec))
        except (ValueError, TypeError, AttributeError) as exc:
            bad.append((i, str(exc)))
            continue
        kept.append(i)
    in_order = scoring_order(parsed, [records[i] for i in kept])
    events = [parsed[k] for k in in_order.tolist()]
    order = np.asarray(kept, dtype=np.int64)[in_order]
    return Encoded(order, events, encode_batch(events), bad)


class SecurityAnalyser(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Scores CloudTrail events as normal / suspicious / malicious (see module doc).

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, l2_regularization, min_samples_leaf
        Of the gradient-boosted classifiers.
    max_features
        Share of the features each split may choose from (drawn per split): below 1, the
        trees cannot lean on one feature alone.
    target_fpr
        Share of benign training events (out of fold) allowed above the alert threshold.
    anomaly_quantile
        Benign-training quantile of the anomaly score above which an event is a
        behavioural anomaly.
    calibration_folds
        Folds (by account) whose out-of-fold benign risk sets the alert threshold.
    calibration_share
        With a single account: share of the training records (the last ones as given)
        held out to set the alert threshold.
    random_state
        Seed of the classifier.
    """

    def __init__(
        self,
        *,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        l2_regularization: float = 1.0,
        min_samples_leaf: int = 20,
        max_features: float = 0.5,
        target_fpr: float = 0.005,
        anomaly_quantile: float = 0.99,
        calibration_folds: int = 5,
        calibration_share: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.target_fpr = target_fpr
        self.anomaly_quantile = anomaly_quantile
        self.calibration_folds = calibration_folds
        self.calibration_share = calibration_share
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def _classifier(self, monotonic: bool) -> HistGradientBoostingClassifier:
        cst = [MONOTONIC.get(c, 0) for c in _CLF_NAMES] if monotonic else None
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            monotonic_cst=cst,
            early_stopping=False,
            random_state=self.random_state,
        )

    def fit(self, X: Sequence[Mapping[str, Any]], y: Sequence[str]) -> SecurityAnalyser:
        """Learn from records ``X`` and their labels ``y`` (same order).

        Two gradient-boosted models: *threat* (malicious or suspicious vs normal, with
        the monotonic constraints of :data:`MONOTONIC`) and *kind* (malicious vs
        suspicious, among threats). The alert threshold is the ``1 - target_fpr``
        quantile of the out-of-fold risk of benign events: the records are split into
        ``calibration_folds`` folds *by account* (a fold's events are scored by anomaly
        and threat models fitted on the other folds, so every benign event is judged
        as if its account were new). With a single account, the last
        ``calibration_share`` of the records (as given) is the one held-out fold.

        Raises
        ------
        ValueError
            On a label outside normal / suspicious / malicious, a length mismatch, an
            unreadable record, or a missing class.
        """
        labels = np.asarray(list(y), dtype=object)
        if len(labels) != len(X):
            raise ValueError(f"X has {len(X)} records but y has {len(labels)} labels")
        unknown = sorted(set(labels.tolist()) - set(LABELS))
        if unknown:
            raise ValueError(f"unknown labels {unknown} (allowed: {', '.join(LABELS)})")
        enc = encode_records(X)
        if enc.bad:
            i, msg = enc.bad[0]
            raise ValueError(f"record {i} cannot be read: {msg}")
        F = enc.features
        yy = labels[enc.order]
        if set(yy.tolist()) != set(LABELS):
            raise ValueError(f"training labels must include every class {LABELS}")
        folds = self._calibration_folds(enc, len(labels))
        cols = [_COL[c] for c in ANOMALY_FEATURES]
        normal = yy == "normal"
        threat = ~normal
        calib_risk: list[np.ndarray] = []
        # every core: the fitted trees are the same for any thread count (tested)
        with threadpool_limits(limits=None):
            for fold in range(int(folds.max()) + 1):
                held_out = folds == fold
                train = ~held_out
                if not (held_out & normal).any() or len(set(threat[train].tolist())) < 2:
                    continue
                hbos = HistogramOutlierScorer().fit(F[normal & train][:, cols])
                Zf = np.column_stack((F[:, _CLF_COLS], hbos.score_samples(F[:, cols])))
                held = self._classifier(True).fit(Zf[train], threat[train])
                calib_risk.append(held.predict_proba(Zf[held_out & normal])[:, 1])
            self.anomaly_ = HistogramOutlierScorer().fit(F[normal][:, cols])
            self.anomaly_columns_ = np.asarray(cols)
            anomaly = self.anomaly_.score_samples(F[:, cols])
            self.anomaly_threshold_ = float(
                np.quantile(self.anomaly_.train_scores_, self.anomaly_quantile)
            )
            Z = np.column_stack((F[:, _CLF_COLS], anomaly))
            self.threat_ = self._classifier(True).fit(Z, threat)
            self.kind_ = self._classifier(False).fit(Z[threat], yy[threat] == "malicious")
        self.classes_ = np.asarray(LABELS, dtype=object)
        # risk of a benign event is at most p_threat (kind adds at most 0.5 * p_threat)
        pooled = np.concatenate(calib_risk) if calib_risk else np.zeros(1)
        self.calibration_events_ = len(pooled) if calib_risk else 0
        self.threshold_ = float(
            min(0.99, max(0.02, np.quantile(pooled, 1.0 - self.target_fpr) + 1e-6))
        )
        self.n_features_in_ = Z.shape[1]
        self.feature_names_in_ = np.asarray(_CLF_NAMES, dtype=object)
        return self

    def _calibration_folds(self, enc: Encoded, n_records: int) -> np.ndarray:
        """Fold index per encoded event: accounts dealt round-robin (sorted) into
        ``calibration_folds`` folds; with one account, the last ``calibration_share`` of
        the records as given is fold 0 and the rest (-1) is never held out."""
        accounts = np.asarray([ev.account for ev in enc.events], dtype=object)
        distinct = sorted(set(accounts.tolist()))
        if len(distinct) >= 2 and self.calibration_folds >= 2:
            k = min(self.calibration_folds, len(distinct))
            fold_of = {a: i % k for i, a in enumerate(distinct)}
            return np.fromiter((fold_of[a] for a in accounts), dtype=np.int64, count=len(accounts))
        cut = int(n_records * (1.0 - self.calibration_share))
        return np.where(enc.order >= cut, 0, -1).astype(np.int64)

    # ------------------------------------------------------------------ scoring
    def _scores(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(probabilities, anomaly terms, anomaly scores) for a feature matrix.

        The classifiers are evaluated by :func:`agents.security.trees.predict_many`: the
        probabilities ``predict_proba`` gives, from coded rows, without OpenMP (much
        faster on a loaded 2-core machine), the two models in parallel threads when the
        batch is large and a second core is there."""
        terms = self.anomaly_.terms(F[:, self.anomaly_columns_])
        anomaly = _add_terms(terms)
        Z = [*(F[:, c] for c in _CLF_COLS), anomaly]  # the classifiers' columns (views)
        p_threat, p_mal = predict_many([self.threat_, self.kind_], Z)
        proba = np.column_stack((p_threat * p_mal, 1.0 - p_threat, p_threat * (1.0 - p_mal)))
        return proba, terms, anomaly

    def predict_proba(self, X: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``(n, 3)`` class probabilities in the input order (columns :attr:`classes_`);
        unreadable records get NaN rows."""
        check_is_fitted(self, "threat_")
        enc = encode_records(X)
        out = np.full((len(X), len(self.classes_)), np.nan)
        if len(enc.events):
            proba, _, _ = self._scores(enc.features)
            out[enc.order] = proba
        return out

    def predict(self, X: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The most likely label per record (input order; ``""`` if unreadable)."""
        proba = self.predict_proba(X)
        out = np.full(len(X), "", dtype=object)
        ok = ~np.isnan(proba).any(axis=1)
        out[ok] = np.asarray(self.classes_, dtype=object)[proba[ok].argmax(axis=1)]
        return out

    def risk_score(self, X: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``P(malicious) + 0.5 P(suspicious)`` per record (input order; NaN if unreadable)."""
        return _risk(self.predict_proba(X), list(self.classes_))

    def analyse(self, X: Sequence[Mapping[str, Any]]) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
        """The full assessment of every readable record, in the input order (scored in
        scoring order: see :func:`encode_records`).

        Returns
        -------
        (frame, bad)
            ``frame`` columns: ``position`` (input index), ``eventID``, ``risk_score``,
            ``threat_category``, ``is_alert``, ``behavioral_anomaly``, ``anomaly_score``,
            ``confidence``, ``recommended_actions``, ``reasons``; ``bad`` lists the
            unreadable records as (input index, message).
        """
        check_is_fitted(self, "threat_")
        enc = encode_records(X)
        return self._assess(enc), enc.bad

    @_gc_paused
    def _assess(self, enc: Encoded) -> pd.DataFrame:
        n = len(enc.events)
        if n == 0:
            return pd.DataFrame(
                columns=[
                    "position",
                    "eventID",
                    "risk_score",
                    "threat_category",
                    "is_alert",
                    "behavioral_anomaly",
                    "anomaly_score",
                    "confidence",
                    "recommended_actions",
                    "reasons",
                ]
            )
        proba, terms, anomaly = self._scores(enc.features)
        risk = _risk(proba, list(self.classes_))
        alert = risk >= self.threshold_
        cats = ["none"] * n  # a category only for alerts
        rows = np.flatnonzero(alert)
        flags = (enc.features[np.ix_(rows, _CATEGORY_COLS)] != 0).tolist()
        for r, f in zip(rows.tolist(), flags, strict=True):
            cats[r] = _category(enc.events[r].name, tuple(f))  # = threat_category
        reasons = explain(enc.features, terms, risk)
        frame = pd.DataFrame(
            {
                "position": enc.order,
                "eventID": [ev.event_id for ev in enc.events],
                "risk_score": np.round(risk, 6),
                "threat_category": cats,
                "is_alert": alert,
                "behavioral_anomaly": anomaly >= self.anomaly_threshold_,
                "anomaly_score": np.round(anomaly, 4),
                "confidence": np.round(proba.max(axis=1), 6),
                "recommended_actions": [_ACTION_TEXT[c] for c in cats],
                "reasons": reasons,
            }
        )
        return frame.iloc[np.argsort(enc.order, kind="stable")].reset_index(drop=True)

    def stream(self) -> StreamScorer:
        """A scorer for events arriving one at a time, with its own behaviour state."""
        check_is_fitted(self, "threat_")
        return StreamScorer(self)


def _add_terms(terms: np.ndarray) -> np.ndarray:
    """The anomaly score: each row's HBOS terms added left to right, the additions
    ``score_samples`` makes on the column-major terms it fits and scores with (and the
    streaming scorer makes), whatever the layout of ``terms``."""
    if terms.shape[1] == 0:
        return np.zeros(len(terms))
    total = terms[:, 0].copy()
    for j in range(1, terms.shape[1]):
        total += terms[:, j]
    return total


def _risk(proba: np.ndarray, classes: list[str]) -> np.ndarray:
    mal = proba[:, classes.index("malicious")]
    sus = proba[:, classes.index("suspicious")]
    return np.clip(mal + 0.5 * sus, 0.0, 1.0)


# ------------------------------------------------------------------ reasons

_REASONS: tuple[tuple[str, str], ...] = (
    ("b_new_principal", "principal never seen before"),
    ("b_ua_share", "user agent rare for this principal"),
    ("b_ua_family_share", "client type rare for this principal"),
    ("b_ip_share", "source IP rare for this principal"),
    ("b_net_share", "source network rare for this principal"),
    ("b_api_share", "API rare for this principal"),
    ("b_hour_share", "unusual hour for this principal"),
    ("b_rate_ratio", "action burst"),
    ("b_denied_5m", "denied calls in the last 5 min"),
    ("b_err_5m", "errors in the last 5 min"),
    ("b_new_apis_15m", "many first-time APIs in 15 min"),
    ("b_account_api_log_n", "API rare in the account"),
    ("b_new_external_account", "account id never seen before"),
    ("b_parent_ua_share", "role assumed from an unusual client"),
    ("b_parent_ip_share", "role assumed from an unusual network"),
)
_STATIC_REASONS: tuple[tuple[str, str], ...] = (
    ("p_external_account", "grants or shares with another account"),
    ("p_wildcard_principal", "grants to any principal (*)"),
    ("p_open_cidr", "opens access to 0.0.0.0/0"),
    ("p_admin_policy", "attaches AdministratorAccess"),
    ("p_switch_off", "turns a logging/security switch off"),
    ("p_share_add", "adds a share permission"),
    ("p_user_data", "reads instance user data"),
    ("err_denied", "access denied"),
    ("tok_logging", "touches logging configuration"),
    ("tok_credential", "touches credential material"),
)


_REASON_TEXTS: tuple[str, ...] = (*(t for _, t in _REASONS), *(t for _, t in _STATIC_REASONS))
_REASON_BEH_COLS = [ANOMALY_FEATURES.index(f) for f, _ in _REASONS]
_REASON_STATIC_COLS = [_COL[f] for f, _ in _STATIC_REASONS]
_TYPICAL = "typical for this principal"
_ACTION_TEXT: Mapping[str, str] = {c: "; ".join(a) for c, a in CATEGORY_ACTIONS.items()}


def explain(F: np.ndarray, terms: np.ndarray, risk: np.ndarray, top: int = 3) -> list[str]:
    """Up to ``top`` reasons per event: the rarest behaviour features (their anomaly
    terms, when above a floor) and the request facts that are set, strongest first.

    The text of a row depends only on which columns make its top ``top``: each distinct
    choice is joined once."""
    w_beh = terms[:, _REASON_BEH_COLS]
    w_beh = np.where(w_beh >= 3.0, w_beh, 0.0)  # only behaviour rarer than ~5% of benign
    w_static = F[:, _REASON_STATIC_COLS] * 4.0
    weights = np.column_stack((w_beh, w_static))
    n, m = weights.shape
    k = min(top, m)
    _ = risk
    if n <= 16:  # a few rows (the streaming scorer): directly
        out: list[str] = []
        for r, cols in enumerate(np.argsort(-weights, axis=1, kind="stable")[:, :k]):
            chosen = [_REASON_TEXTS[c] for c in cols if weights[r, c] > 0]
            out.append("; ".join(chosen) if chosen else _TYPICAL)
        return out
    # rows without any reason (most) need no sort; the others: top k columns, stable
    # (ties in column order), as argsort(-weights, kind="stable") orders them
    codes = np.full((n, k), m, dtype=np.int64)  # m: no reason in this place
    some = np.flatnonzero((weights > 0).any(axis=1))
    if len(some) and k:
        w = weights[some]
        best = np.argsort(-w, axis=1, kind="stable")[:, :k]
        codes[some] = np.where(np.take_along_axis(w, best, axis=1) > 0, best, m)
    if float(m + 1) ** k < 2.0**62:
        key = codes @ ((m + 1) ** np.arange(k - 1, -1, -1, dtype=np.int64))
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    texts = []
    for row in codes[first].tolist():
        chosen = [_REASON_TEXTS[c] for c in row if c < m]
        texts.append("; ".join(chosen) if chosen else _TYPICAL)
    return [texts[i] for i in inverse.ravel().tolist()]


class _TreeWalker:
    """One event through a fitted binary :class:`HistGradientBoostingClassifier` in
    plain Python (the library enters an OpenMP region per tree, ~20 us each, which
    dominates single-event latency). Numerical splits only, no missing values (our
    features have neither); a test checks it equals ``predict_proba``."""

    def __init__(self, model: HistGradientBoostingClassifier) -> None:
        self.baseline = float(np.ravel(model._baseline_prediction)[0])
        self.trees: list[
            tuple[list[float], list[int], list[float], list[int], list[int], list[bool]]
        ] = []
        for (predictor,) in model._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            self.trees.append(
                (
                    nodes["value"].tolist(),
                    nodes["feature_idx"].tolist(),
                    nodes["num_threshold"].tolist(),
                    nodes["left"].tolist(),
                    nodes["right"].tolist(),
                    nodes["is_leaf"].astype(bool).tolist(),
                )
            )

    def proba(self, x: Sequence[float]) -> float:
        """``P(class 1)`` of one feature row."""
        raw = self.baseline
        for value, feature, threshold, left, right, leaf in self.trees:
            i = 0
            while not leaf[i]:
                i = left[i] if x[feature[i]] <= threshold[i] else right[i]
            raw += value[i]
        return 1.0 / (1.0 + math.exp(-raw))

    def compile(self) -> Callable[[Sequence[float]], float]:
        """:meth:`proba` as generated Python (one ``if`` per split, the same comparisons
        and additions in the same order, so the same floats), several times faster."""
        lines = ["def proba(x):", f"    r = {self.baseline!r}"]
        for value, feature, threshold, left, right, leaf in self.trees:
            stack: list[tuple[int, int, str]] = [(0, 1, "")]
            while stack:
                i, depth, head = stack.pop()
                pad = "    " * depth
                if head:
                    lines.append(head)
                if leaf[i]:
                    lines.append(f"{pad}r += {value[i]!r}")
                    continue
                t = threshold[i]
                bound = repr(t) if math.isfinite(t) else ("_INF" if t > 0 else "-_INF")
                lines.append(f"{pad}if x[{feature[i]}] <= {bound}:")
                stack.append((right[i], depth + 1, f"{pad}else:"))
                stack.append((left[i], depth + 1, ""))
        lines.append("    return 1.0 / (1.0 + _exp(-r))")
        scope: dict[str, Any] = {"_INF": math.inf, "_exp": math.exp}
        exec(compile("\n".join(lines), "<security-trees>", "exec"), scope)
        fn: Callable[[Sequence[float]], float] = scope["proba"]
        return fn


class StreamScorer:
    """Scores events as they arrive, with a behaviour state that grows with them.

    :meth:`score_many` takes a batch of records holding every record of each second it
    covers (all after the records of earlier calls) and scores it in scoring order (by
    time, the events of one second by ``eventID``; see
    :func:`~agents.security.events.scoring_order`), exactly as :meth:`SecurityAnalyser.analyse`
    would; the results do not depend on the order of the batch. :meth:`score_one` scores one
    record now: the caller keeps the scoring order. An event's features use only the
    events scored before it.
    """

    def __init__(self, model: SecurityAnalyser) -> None:
        self.model = model
        self.state = BehaviourState()
        self.encoder = StaticEncoder()
        self._row = np.empty((1, len(_NAMES)), dtype=np.float64)
        self._n_static = len(STATIC_FEATURES)
        self._threat = _TreeWalker(model.threat_).compile()
        self._kind = _TreeWalker(model.kind_).compile()
        self._mal_index = list(model.classes_).index("malicious")
        self._labels = [str(c) for c in model.classes_]
        hbos = model.anomaly_
        self._anomaly_columns = [int(c) for c in np.asarray(model.anomaly_columns_).ravel()]
        self._bins = [
            (cuts.tolist(), nlp.tolist())
            for cuts, nlp in zip(hbos.edges_, hbos.neg_log_p_, strict=True)
        ]
        self._terms = np.empty((1, len(self._bins)), dtype=np.float64)

    def score_many(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The assessments of ``records`` (see :meth:`score_one`), in the given order,
        scored in scoring order.

        Raises
        ------
        ValueError
            If a record cannot be read (then no record is scored).
        """
        events = [parse_event(record) for record in records]
        out: list[dict[str, Any]] = [{} for _ in events]
        for i in scoring_order(events, records).tolist():
            out[i] = self._assess(events[i])
        return out

    def score_one(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The assessment of one record (the keys of :meth:`SecurityAnalyser.analyse`, and
        ``label``, the most likely class as :meth:`SecurityAnalyser.predict` gives it).

        Raises
        ------
        ValueError
            If the record cannot be read.
        """
        return self._assess(parse_event(record))

    def _assess(self, ev: Event) -> dict[str, Any]:
        scan = scan_params(ev.params)
        row = self._row
        row[0, : self._n_static] = self.encoder.encode(ev, scan)
        row[0, self._n_static :] = self.state.observe(ev, self.encoder.family(ev.user_agent), scan)
        m = self.model
        # HBOS terms as HistogramOutlierScorer.terms computes them (np.digitize with
        # right=False is bisect_right), one value at a time
        values = row[0].tolist()
        terms = self._terms
        found = [
            nlp[bisect_right(cuts, values[c])]
            for c, (cuts, nlp) in zip(self._anomaly_columns, self._bins, strict=True)
        ]
        terms[0] = found
        anomaly = found[0] if found else 0.0
        for term in found[1:]:  # left to right, as _add_terms (the batch) adds them
            anomaly += term
        z = [*[values[c] for c in _CLF_COLS], anomaly]
        p_threat = self._threat(z)
        p_mal = self._kind(z)
        proba = np.asarray([[p_threat * p_mal, 1.0 - p_threat, p_threat * (1.0 - p_mal)]])
        risk = float(_risk(proba, list(m.classes_))[0])
        alert = risk >= m.threshold_
        cat = threat_category(ev.name, row[0, : self._n_static]) if alert else "none"
        return {
            "eventID": ev.event_id,
            "time_s": ev.time_s,
            "principal": ev.principal,
            "risk_score": risk,
            "threat_category": cat,
            "is_alert": bool(alert),
            "behavioral_anomaly": bool(anomaly >= m.anomaly_threshold_),
            "anomaly_score": float(anomaly),
            "confidence": float(proba[0].max()),
            "label": self._labels[int(proba[0].argmax())],  # as predict() labels it
            "recommended_actions": list(CATEGORY_ACTIONS[cat]),
            "reasons": explain(row, terms, np.asarray([risk]))[0],
        }
