"""Detection metrics and the Sigma-style baseline on hand-made cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.security.metrics import detection_metrics, false_positives_at_recall
from agents.security.sigma import SigmaBaseline, load_sigma_rules

SIGMA = (
    Path(__file__).resolve().parents[2]
    / "scenarios/data/security/sigma_aws_cloudtrail_eventnames.csv"
)


def test_detection_metrics_by_hand() -> None:
    labels = [
        "malicious",
        "malicious",
        "malicious",
        "normal",
        "normal",
        "normal",
        "normal",
        "suspicious",
    ]
    alerts = [True, True, False, True, False, False, False, True]
    m = detection_metrics(labels, alerts)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (2, 1, 1, 3)
    assert m["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["fpr"] == 0.25
    assert (m["suspicious"], m["suspicious_alerted"]) == (1, 1)  # neither a hit nor an FP


def test_detection_metrics_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError):
        detection_metrics(["normal"], [True, False])


def test_false_positives_at_recall() -> None:
    labels = ["malicious", "malicious", "malicious", "malicious", "normal", "normal", "normal"]
    scores = [0.9, 0.8, 0.4, 0.2, 0.85, 0.3, 0.1]
    assert false_positives_at_recall(labels, scores, 0.5) == (0.8, 1)
    assert false_positives_at_recall(labels, scores, 0.75) == (0.4, 1)
    assert false_positives_at_recall(labels, scores, 1.0) == (0.2, 2)


def test_sigma_levels() -> None:
    sigma = SigmaBaseline(load_sigma_rules(SIGMA))
    assert sigma.level_of("DeleteFlowLogs", "ec2.amazonaws.com")[0] == 3  # high
    assert sigma.level_of("StopLogging", "cloudtrail.amazonaws.com")[0] == 2  # medium
    assert sigma.level_of("StopLogging", "s3.amazonaws.com")[0] == 0  # wrong source
    assert sigma.level_of("ListBuckets", "s3.amazonaws.com")[0] == 1  # low
    assert sigma.level_of("DescribeInstances", "ec2.amazonaws.com")[0] == 0
    levels = sigma.levels(
        [
            {"eventName": "SendCommand", "eventSource": "ssm.amazonaws.com"},
            {"eventName": "GetCallerIdentity"},
        ]
    )
    assert levels.tolist() == [3, 0]
