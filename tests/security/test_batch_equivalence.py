"""The batch scoring path gives exactly what the per-event path gives.

``encode_records`` computes the behaviour features column by column (``encode_batch``),
the classifiers run on pre-binned rows (``agents.security.trees``), reasons are joined
once per distinct choice, CloudTrail times take a fast path: each is compared with the
straightforward per-event implementation (``encode_stream`` = ``StaticEncoder`` +
``BehaviourState.observe``, ``predict_proba``, the row-by-row reasons, ``fromisoformat``).
"""

from __future__ import annotations

import gc
import random
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.security.analyser import (
    _CLF_COLS,
    _NAMES,
    ANOMALY_FEATURES,
    SecurityAnalyser,
    encode_records,
    explain,
)
from agents.security.events import _parse_iso, mask_record, parse_event, parse_time
from agents.security.batch_features import encode_batch
from agents.security.features import BehaviourState, StaticEncoder, encode_stream
from agents.security.trees import forest, predict_many

Data = tuple[list[dict[str, Any]], list[str]]


def _reference(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Input positions in scoring order (by time, then eventID; the records' IDs are
    distinct) and their features, one event at a time."""
    parsed = sorted(
        ((parse_event(r), i) for i, r in enumerate(records)),
        key=lambda p: (p[0].time_s, p[0].event_id),
    )
    events = [ev for ev, _ in parsed]
    order = np.asarray([i for _, i in parsed], dtype=np.int64)
    return order, encode_stream(events, BehaviourState(), StaticEncoder())


def _assert_same_features(records: list[dict[str, Any]]) -> None:
    order, expected = _reference(records)
    enc = encode_records(records)
    np.testing.assert_array_equal(enc.order, order)
    np.testing.assert_array_equal(enc.features, expected)


def test_batch_features_equal_per_event_features_on_simulated_accounts(small_data: Data) -> None:
    records, _ = small_data
    _assert_same_features(records)
    _assert_same_features([mask_record(r) for r in records[:3000]])


# ---- random event streams: ties, window edges, role sessions, shared accounts

ACCOUNTS = ("111111111111", "222222222222")
NAMES = (
    "AssumeRole",
    "ListBuckets",
    "GetObject",
    "GetSecretValue",
    "PutBucketPolicy",
    "StopLogging",
    "ModifySnapshotAttribute",
    "AuthorizeSecurityGroupIngress",
    "CreateAccessKey",
    "ConsoleLogin",
    "DescribeInstances",
)
SOURCES = ("sts.amazonaws.com", "s3.amazonaws.com", "ec2.amazonaws.com", "iam.amazonaws.com")
AGENTS = ("aws-cli/2.13.5 Python/3.11", "Boto3/1.28.0", "console.amazonaws.com", "", "curl/8.0")
IPS = ("10.1.2.3", "10.1.9.9", "10.2.0.1", "203.0.113.7", "ec2.amazonaws.com", "2001:db8::1")
ERRORS = ("", "", "", "AccessDenied", "ThrottlingException", "NoSuchKey")
GAPS = (0.0, 0.0, 1.0, 59.0, 60.0, 61.0, 299.0, 300.0, 301.0, 899.0, 900.0, 901.0, 3600.0)
PARAMS: tuple[Any, ...] = (
    None,
    None,
    {"maxResults": 50},
    {"maxResults": 50},
    {"bucketName": "b-123456789012-x"},
    {"roleArn": "arn:aws:iam::111111111111:role/deploy", "roleSessionName": "s1"},
    {"roleArn": "arn:aws:iam::222222222222:role/audit", "roleSessionName": "s2"},
    {"attributeName": "launchPermission", "add": {"items": [{"userId": "333333333333"}]}},
    {"ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
    {"userId": 444444444444},
    {"policy": '{"Statement": [{"Principal": {"AWS": "*"}, "Effect": "Allow"}]}' + " " * 200},
    {"isLogging": False, "names": ["a", "b", "c"]},
    {"attribute": "userData", "instanceId": "i-1"},
)


@st.composite
def _event_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 60))
    t = 1_709_251_200.0 + draw(st.integers(0, 86_400))
    records = []
    for i in range(n):
        t += draw(st.sampled_from(GAPS))
        account = draw(st.sampled_from(ACCOUNTS))
        kind = draw(st.sampled_from(("AssumedRole", "AssumedRole", "IAMUser", "AWSService")))
        if kind == "AssumedRole":
            role = draw(st.sampled_from(("deploy", "audit")))
            session = draw(st.sampled_from(("s1", "s2")))
            identity: dict[str, Any] = {
                "type": kind,
                "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            }
        elif kind == "IAMUser":
            user = draw(st.sampled_from(("alice", "bob")))
            identity = {"type": kind, "arn": f"arn:aws:iam::{account}:user/{user}"}
        else:
            identity = {"type": kind, "invokedBy": "ec2.amazonaws.com"}
        stamp = np.datetime_as_string(np.datetime64(int(t), "s"))
        records.append(
            {
                "eventTime": stamp + draw(st.sampled_from(("Z", "Z", "Z", "+00:00"))),
                "eventName": draw(st.sampled_from(NAMES)),
                "eventSource": draw(st.sampled_from(SOURCES)),
                "eventID": f"e{i}",
                "recipientAccountId": account,
                "userIdentity": identity,
                "userAgent": draw(st.sampled_from(AGENTS)),
                "sourceIPAddress": draw(st.sampled_from(IPS)),
                "errorCode": draw(st.sampled_from(ERRORS)),
                "readOnly": draw(st.sampled_from((True, False, None))),
                "requestParameters": draw(st.sampled_from(PARAMS)),
            }
        )
    return draw(st.permutations(records))  # encode_records orders them by time


@settings(max_examples=80, deadline=None)
@given(_event_streams())
def test_batch_features_equal_per_event_features_on_random_streams(
    records: list[dict[str, Any]],
) -> None:
    _assert_same_features(records)


def test_out_of_order_events_take_the_per_event_path() -> None:
    records = [
        {"eventTime": f"2024-01-01T00:00:00.{s}Z", "eventName": "ListUsers"} for s in (5, 1, 3)
    ]
    events = [parse_event(r) for r in records]  # not time-ordered (by less than a second)
    np.testing.assert_array_equal(
        encode_batch(events), encode_stream(events, BehaviourState(), StaticEncoder())
    )


# ---- classifiers, reasons, the whole assessment


def test_coded_trees_equal_predict_proba(small_model: SecurityAnalyser, small_data: Data) -> None:
    records, _ = small_data
    F = encode_records(records[:3000]).features
    anomaly = small_model.anomaly_.score_samples(F[:, small_model.anomaly_columns_])
    Z = np.column_stack((F[:, _CLF_COLS], anomaly))
    models = [small_model.threat_, small_model.kind_]
    compiled = forest(models)
    assert compiled is not None
    # rows on the split thresholds themselves, just above and below them, and at +-inf
    rng = np.random.default_rng(0)
    edge = Z[rng.integers(0, len(Z), 1000)].copy()
    for k, row in enumerate(edge):
        j = rng.integers(len(compiled.features))
        cut = compiled.cuts[j][rng.integers(len(compiled.cuts[j]))]
        row[compiled.features[j]] = (
            cut,
            np.nextafter(cut, np.inf),
            np.nextafter(cut, -np.inf),
            np.inf,
            -np.inf,
        )[k % 5]
    X = np.vstack((Z, edge))
    expected = [m.predict_proba(X)[:, 1] for m in models]
    coded = compiled.codes([*X.T])
    assert coded is not None
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(compiled.proba(i, coded), want)
    for got, want in zip(predict_many(models, X), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # NaN in a used column: the library's own path
    with_nan = X[:50].copy()
    with_nan[3, compiled.features[0]] = np.nan
    for got, m in zip(predict_many(models, with_nan), models, strict=True):
        np.testing.assert_array_equal(got, m.predict_proba(with_nan)[:, 1])


def test_reasons_of_a_batch_equal_reasons_row_by_row() -> None:
    rng = np.random.default_rng(1)
    n = 500
    F = (rng.random((n, len(_NAMES))) < 0.1).astype(np.float64)
    # ties: terms from a few values, many equal to each other and to 4.0 (a static weight)
    terms = rng.choice([0.0, 2.0, 3.0, 4.0, 4.0, 5.5, 9.2], size=(n, len(ANOMALY_FEATURES)))
    risk = rng.random(n)
    batch = explain(F, terms, risk)
    rows = [explain(F[i : i + 1], terms[i : i + 1], risk[i : i + 1])[0] for i in range(n)]
    assert batch == rows
    for top in (0, 1, 5, 40):
        assert explain(F, terms, risk, top=top) == [
            explain(F[i : i + 1], terms[i : i + 1], risk[i : i + 1], top=top)[0] for i in range(n)
        ]


def test_analyse_equals_the_streaming_scorer(
    small_model: SecurityAnalyser, small_data: Data
) -> None:
    records, _ = small_data
    part = sorted(records[:2000], key=lambda r: r["eventTime"])  # time-ordered, as streamed
    frame, bad = small_model.analyse(part)
    assert bad == []
    one = small_model.stream().score_many(part)
    assert frame["position"].tolist() == list(range(len(part)))
    np.testing.assert_array_equal(frame["risk_score"], np.round([o["risk_score"] for o in one], 6))
    np.testing.assert_array_equal(
        frame["anomaly_score"], np.round([o["anomaly_score"] for o in one], 4)
    )
    np.testing.assert_array_equal(frame["confidence"], np.round([o["confidence"] for o in one], 6))
    for column in ("is_alert", "behavioral_anomaly", "threat_category", "reasons"):
        assert frame[column].tolist() == [o[column] for o in one], column
    assert frame["recommended_actions"].tolist() == [
        "; ".join(o["recommended_actions"]) for o in one
    ]


def test_the_garbage_collector_is_restored(small_model: SecurityAnalyser) -> None:
    good = {"eventTime": "2024-01-01T00:00:00Z", "eventName": "GetCallerIdentity"}
    assert gc.isenabled()
    small_model.analyse([good])
    assert gc.isenabled()
    gc.disable()
    try:
        small_model.analyse([good])
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
    with pytest.raises(TypeError):
        encode_records(None)  # type: ignore[arg-type]
    assert gc.isenabled()


# ---- times


def test_cloudtrail_times_fast_path_equals_fromisoformat() -> None:
    rng = random.Random(0)
    chars = "0123456789-T:Z +.a"
    cases = [
        "2024-03-01T24:00:00Z",
        "2024-03-01T23:59:60Z",
        "2024-02-30T00:00:05Z",
        "2024-02-29T23:59:59Z",
        "2024-03-01T00:00:5Z",
        "2024-03-01T00:00:05.25Z",
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59Z",
        "2024-03-01T00:00:0\uff15Z",
    ]
    for _ in range(20_000):
        chosen = list(rng.choice(("2024-03-01T12:34:56Z", "2023-12-31T23:59:00Z")))
        for _ in range(rng.randint(0, 2)):
            chosen[rng.randrange(20)] = rng.choice(chars)
        cases.append("".join(chosen))
    for text in cases:
        try:
            expected: Any = _parse_iso(text)
        except ValueError as exc:
            with pytest.raises(ValueError, match="^" + re.escape(str(exc)) + "$"):
                parse_time(text)
            continue
        assert parse_time(text) == expected, text
