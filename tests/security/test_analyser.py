"""The security analyser: scikit-learn contract, determinism, no leakage, outputs."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from agents.security.analyser import LABELS, SecurityAnalyser, encode_records
from agents.security.events import mask_record, parse_event, principal_of, ua_family
from agents.security.features import BEHAVIOUR_FEATURES, STATIC_FEATURES

Data = tuple[list[dict[str, Any]], list[str]]


def test_hyper_parameters_are_keyword_only_and_stored_verbatim() -> None:
    sig = inspect.signature(SecurityAnalyser.__init__)
    params = [p for name, p in sig.parameters.items() if name != "self"]
    assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    model = SecurityAnalyser(max_iter=7, target_fpr=0.02)
    assert model.get_params()["max_iter"] == 7
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(TypeError):
        SecurityAnalyser(7)  # type: ignore[misc]


def test_fit_returns_self_with_fitted_attributes(small_data: Data) -> None:
    records, labels = small_data
    model = SecurityAnalyser(max_iter=5)
    assert not [k for k in vars(model) if k.endswith("_")]
    fitted = model.fit(records, labels)
    assert fitted is model
    learned = [k for k in vars(fitted) if k.endswith("_") and not k.startswith("_")]
    assert {"threat_", "kind_", "anomaly_", "threshold_", "classes_"} <= set(learned)
    assert list(fitted.classes_) == list(LABELS)
    assert 0.0 < fitted.threshold_ < 1.0


def test_outputs_are_probabilities_and_risk_in_unit_interval(
    small_model: SecurityAnalyser, small_data: Data
) -> None:
    records, _ = small_data
    proba = small_model.predict_proba(records[:3000])
    assert proba.shape == (3000, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    risk = small_model.risk_score(records[:3000])
    assert ((risk >= 0) & (risk <= 1)).all()
    assert set(small_model.predict(records[:3000])) <= set(LABELS)


def test_detects_simulated_attacks_better_than_chance(
    small_model: SecurityAnalyser, small_data: Data
) -> None:
    records, labels = small_data
    risk = small_model.risk_score(records)
    y = np.asarray(labels)
    # the malicious events of the training accounts rank far above the normal ones
    assert np.median(risk[y == "malicious"]) > np.quantile(risk[y == "normal"], 0.99)


def test_analyse_has_every_output_field(small_model: SecurityAnalyser, small_data: Data) -> None:
    records, _ = small_data
    frame, bad = small_model.analyse(records)
    assert bad == []
    assert list(frame.columns) == [
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
    alerts = frame[frame["is_alert"]]
    assert len(alerts) > 0
    assert (alerts["threat_category"] != "none").all()
    assert (alerts["recommended_actions"] != "").all()
    assert (frame.loc[~frame["is_alert"], "threat_category"] == "none").all()
    assert frame["reasons"].str.len().min() > 0
    assert frame["confidence"].between(1 / 3 - 1e-9, 1.0).all()


def test_training_is_deterministic_for_any_thread_count(small_data: Data) -> None:
    records, labels = small_data
    with threadpool_limits(limits=1):
        one = SecurityAnalyser(max_iter=10).fit(records, labels)
    with threadpool_limits(limits=2):
        two = SecurityAnalyser(max_iter=10).fit(records, labels)
    again = SecurityAnalyser(max_iter=10).fit(records, labels)
    for other in (two, again):
        assert other.threshold_ == one.threshold_
        np.testing.assert_array_equal(other.risk_score(records), one.risk_score(records))


def test_behaviour_features_use_only_earlier_events(small_data: Data) -> None:
    records, _ = small_data
    account = records[0]["recipientAccountId"]
    one = [r for r in records if r["recipientAccountId"] == account]  # time-ordered
    cut = len(one) // 2
    while one[cut]["eventTime"] == one[cut - 1]["eventTime"]:
        cut += 1
    head = one[:cut]
    tail = copy.deepcopy(one[cut:])
    for rec in tail:  # a wildly different future must not change past features
        rec["userAgent"] = "evil/1.0"
        rec["errorCode"] = "AccessDenied"
    full = encode_records(head + tail)
    alone = encode_records(head)
    n = len(head)
    first = full.order < n
    np.testing.assert_array_equal(full.features[first], alone.features)


def test_scoring_order_is_event_time_not_file_order(
    small_model: SecurityAnalyser, small_data: Data
) -> None:
    records, _ = small_data
    part = records[:1000]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(part):  # the seconds in reverse (their events in file order)
        groups.setdefault(r["eventTime"], []).append(i)
    order = [i for t in reversed(list(groups)) for i in groups[t]]
    a = small_model.risk_score(part)
    b = small_model.risk_score([part[i] for i in order])
    np.testing.assert_allclose(b, a[order])


def test_stream_scorer_matches_batch(small_model: SecurityAnalyser, small_data: Data) -> None:
    records, _ = small_data
    part = records[:300]
    batch = small_model.risk_score(part)
    many = small_model.stream().score_many(part)
    np.testing.assert_allclose([r["risk_score"] for r in many], batch, atol=1e-12)
    # one at a time, the caller keeps the scoring order: by time, a second's by eventID
    order = sorted(range(len(part)), key=lambda i: (part[i]["eventTime"], part[i]["eventID"]))
    stream = small_model.stream()
    one = np.asarray([stream.score_one(part[i])["risk_score"] for i in order])
    np.testing.assert_allclose(one, batch[order], atol=1e-12)


def test_bad_training_input_is_rejected(small_data: Data) -> None:
    records, labels = small_data
    with pytest.raises(ValueError, match="unknown labels"):
        SecurityAnalyser().fit(records[:10], ["evil"] * 10)
    with pytest.raises(ValueError, match="labels"):
        SecurityAnalyser().fit(records[:10], labels[:9])


def test_unreadable_records_are_reported_not_dropped(small_model: SecurityAnalyser) -> None:
    frame, bad = small_model.analyse(
        [
            {"eventName": "X"},
            {"eventTime": "2024-01-01T00:00:00Z", "eventName": "GetCallerIdentity"},
        ]
    )
    assert [i for i, _ in bad] == [0]
    assert len(frame) == 1


def test_parsing_helpers() -> None:
    assert ua_family("aws-cli/2.13.5 Python/3.11.4") == "aws-cli"
    assert ua_family("APN/1.0 HashiCorp/1.0 Terraform/1.5.2 aws-sdk-go-v2/1.18.1") == "terraform"
    assert ua_family("") == "none"
    assert principal_of({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/r1/sess"}) == (
        "arn:aws:sts::1:assumed-role/r1",
        "arn:aws:sts::1:assumed-role/r1/sess",
    )
    ev = parse_event({"eventTime": "1970-01-01T00:01:00Z", "eventName": "ListUsers"})
    assert ev.time_s == 60.0 and ev.read_only
    assert len(STATIC_FEATURES) > 50 and len(BEHAVIOUR_FEATURES) == 26


def test_masking_removes_names_but_keeps_identity() -> None:
    rec = {
        "userAgent": "aws-sdk-go-v2/1.17.0",
        "userIdentity": {
            "type": "AssumedRole",
            "userName": "srt-role",
            "arn": "arn:aws:sts::123456789012:assumed-role/srt-role/s1",
        },
        "requestParameters": {
            "roleArn": "arn:aws:iam::123456789012:role/srt-role",
            "cidrIp": "0.0.0.0/0",
            "attributeType": "launchPermission",
            "bucketName": "srt-bucket-x1",
        },
    }
    out = mask_record(rec)
    text = repr(out)
    assert "srt" not in text and "aws-sdk-go" not in text
    assert out["requestParameters"]["cidrIp"] == "0.0.0.0/0"
    assert out["requestParameters"]["attributeType"] == "launchPermission"
    role = out["requestParameters"]["roleArn"].rsplit("/", 1)[-1]
    assert out["userIdentity"]["arn"].split("/")[1] == role  # the session still maps to it


def test_calibration_holds_out_whole_accounts(
    small_data: Data, small_model: SecurityAnalyser
) -> None:
    """Every benign event is calibrated exactly once, by models that never saw its account;
    with one account only the last ``calibration_share`` of the records is held out."""
    records, labels = small_data
    enc = encode_records(records)
    folds = small_model._calibration_folds(enc, len(records))
    accounts = np.asarray([ev.account for ev in enc.events])
    assert len(set(accounts.tolist())) == 3
    for account in set(accounts.tolist()):
        assert len(set(folds[accounts == account].tolist())) == 1
    assert set(folds.tolist()) == {0, 1, 2}
    assert small_model.calibration_events_ == labels.count("normal")
    one = [
        i for i, ev in zip(enc.order.tolist(), enc.events, strict=True) if ev.account == accounts[0]
    ]
    sub = [records[i] for i in sorted(one)]
    sub_enc = encode_records(sub)
    sub_folds = SecurityAnalyser(calibration_share=0.25)._calibration_folds(sub_enc, len(sub))
    held = sub_enc.order[sub_folds == 0]
    assert set(sub_folds.tolist()) == {-1, 0}
    assert held.min() == int(len(sub) * 0.75) and len(held) == len(sub) - int(len(sub) * 0.75)
