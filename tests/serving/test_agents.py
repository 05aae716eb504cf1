"""Each agent's answers are its own decision code's: scaling by the policy's functions,
cost by the decoded network action, anomaly per series (bounded), security as the
streaming scorer; and each refuses what it cannot answer, naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.anomaly.base import DetectorBank
from agents.cost.model import CostModel
from agents.cost.plan import decode_action
from agents.registry import make_detector
from agents.scaling.model import ScalingModel
from agents.security.analyser import CATEGORY_ACTIONS, SecurityAnalyser
from agents.serving.anomaly import AnomalyPredictor
from agents.serving.bodies import BadRequest, validate
from agents.serving.protocol import PredictionError, Predictor
from agents.serving.scaling import ScalingPredictor
from agents.serving.security import SecurityPredictor
from serving.helpers import Serve

JSON = {"content-type": "application/json"}


def ask(predictor: Predictor, *records: dict[str, Any]) -> list[dict[str, Any]]:
    return predictor.predict(validate(records, predictor.request_model, single=False))


def refusal(predictor: Predictor, record: dict[str, Any]) -> str:
    with pytest.raises(BadRequest) as caught:
        ask(predictor, record)
    return str(caught.value)


# ------------------------------------------------------------------ scaling
def test_scaling_follows_the_load_within_the_pool_bounds(
    scaling_model: tuple[ScalingModel, Path],
) -> None:
    predictor = ScalingPredictor(scaling_model[0])
    base = predictor.example_request()
    quiet, busy, capped = ask(
        predictor,
        {**base, "load_rps": 0.0, "node_capacity_rps": 1e6, "min_nodes": 2},
        {**base, "load_rps": 5_000.0, "node_capacity_rps": 100.0, "max_nodes": 500},
        {**base, "load_rps": 5_000.0, "node_capacity_rps": 100.0, "max_nodes": 9},
    )
    assert quiet["target_nodes"] == 2 and quiet["action"] == "scale_down"
    # 5,000 req/s at 60% of 100 req/s per node: at least 84 nodes, critical with 3 active
    assert busy["target_nodes"] >= 84 and busy["urgency"] == "critical"
    assert busy["action"] == "scale_up" and "nodes wanted" in busy["reasoning"]
    assert capped["target_nodes"] == 9
    assert busy["model_version"] == scaling_model[0].version
    assert busy["time_horizon"] == scaling_model[0].metadata.forecast_horizon_min


def test_scaling_forecast_drives_the_plan(scaling_model: tuple[ScalingModel, Path]) -> None:
    """With no load now, the target is the plan forecast's quantile in nodes."""
    model = scaling_model[0]
    predictor = ScalingPredictor(model, quantile=0.9)
    record = {**predictor.example_request(), "load_rps": 0.0, "min_nodes": 0}
    answer = ask(predictor, record)[0]
    row = np.asarray(
        [np.nan if v is None else v for v in record["plan_features"].values()], dtype=float
    )
    plan = model.predict_row("plan", row)[model.metadata.quantiles.index(0.9)]
    assert answer["target_nodes"] == int(np.ceil(plan / (300.0 * 0.6)))
    assert "driven by the forecast" in answer["reasoning"]


def test_scaling_refusals_name_the_feature(scaling_model: tuple[ScalingModel, Path]) -> None:
    predictor = ScalingPredictor(scaling_model[0])
    base = predictor.example_request()
    extra = {**base, "plan_features": {**base["plan_features"], "lag_99": 1.0}}
    assert "plan_features.lag_99: unknown field; allowed: lag_0" in refusal(predictor, extra)
    missing = {**base, "forecast_features": {k: v for k, v in base["forecast_features"].items()
                                             if k != "mean_1h"}}  # fmt: skip
    assert "forecast_features.mean_1h: required" in refusal(predictor, missing)
    assert "min_nodes (5) must not exceed max_nodes" in refusal(
        predictor, {**base, "min_nodes": 5, "max_nodes": 4}
    )
    assert "node_capacity_rps" in refusal(predictor, {**base, "node_capacity_rps": 0})
    with pytest.raises(ValueError, match=r"quantile 0\.6"):
        ScalingPredictor(scaling_model[0], quantile=0.6)


# ------------------------------------------------------------------ cost
def test_cost_answers_the_decoded_network_action(cost_model: CostModel) -> None:
    from agents.serving.cost import CostPredictor

    predictor = CostPredictor(cost_model)
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1, 1, cost_model.metadata.obs_dim).round(4).tolist()
    answer = ask(predictor, {"observation": obs})[0]
    action = cost_model.act(np.asarray(obs, dtype=np.float32))
    mix = decode_action(action, cost_model.metadata.n_spot)
    assert answer["od_floor"] == mix.od_floor and answer["spot_buffer"] == mix.spot_buffer
    assert answer["spot_weights"] == list(mix.weights)
    assert len(answer["spot_weights"]) == cost_model.metadata.n_spot
    assert "at least 26 items" in refusal(predictor, {"observation": obs[:-1]})
    too_big = [*obs[:-1], 2.0]
    assert "observation.25: Input should be less than or equal to 1" in refusal(
        predictor, {"observation": too_big}
    )


# ------------------------------------------------------------------ anomaly
def points(series: str, values: list[float]) -> list[dict[str, Any]]:
    """One point a minute from 10:00 (at most 120)."""
    return [
        {"series": series, "timestamp": f"2024-01-15T{10 + i // 60}:{i % 60:02d}:00Z", "value": v}
        for i, v in enumerate(values)
    ]


def test_anomaly_keeps_one_detector_per_series() -> None:
    factory = partial(make_detector, "robust-spike")
    predictor = AnomalyPredictor(factory, threshold=0.9, model_version="v")
    bank = DetectorBank(factory)
    noise = np.random.default_rng(0).normal(0, 1, 90)
    a = points("a", [*(10.0 + noise).tolist(), 500.0])
    b = points("b", [1.0, 2.0, 1.0] * 10)
    mixed = [x for pair in zip(a, b, strict=False) for x in pair] + a[len(b):]
    answers = ask(predictor, *mixed)
    expected = []
    for p in mixed:
        seconds = np.datetime64(p["timestamp"][:-1], "s").astype(np.int64)
        expected.append(bank.score_learn_one(p["series"], {"value": p["value"],
                                                         "timestamp": float(seconds)}))  # fmt: skip
    assert [a["score"] for a in answers] == expected
    assert answers[-1]["is_anomaly"] and answers[-1]["series"] == "a"
    assert not any(x["is_anomaly"] for x in answers[:-1])
    assert answers[-1]["timestamp"] == "2024-01-15T11:30:00+00:00"


def test_anomaly_series_are_bounded_and_a_refused_request_changes_nothing(
    make_predictor: Callable[[str], Predictor], serve: Serve
) -> None:
    factory = partial(make_detector, "novelty-ensemble")
    predictor = AnomalyPredictor(factory, threshold=0.9, model_version="v", max_series=2)
    with serve(predictor) as http:
        ok = http.post("/invocations", content=json.dumps(points("a", [1.0])), headers=JSON)
        assert ok.status_code == 200
        over = points("b", [1.0]) + points("c", [1.0])
        response = http.post("/invocations", content=json.dumps(over), headers=JSON)
        assert response.status_code == 400
        assert "at most 2 series per endpoint instance" in response.json()["error"]
        assert set(predictor.detectors) == {"a"}  # nothing of the refused request kept
        again = http.post("/invocations", content=json.dumps(points("b", [1.0])), headers=JSON)
        assert again.status_code == 200
    with pytest.raises(PredictionError):
        ask(predictor, *points("z", [1.0]))


def test_anomaly_refuses_a_bad_timestamp_or_value() -> None:
    predictor = AnomalyPredictor(partial(make_detector, "robust-spike"), threshold=0.5,
                                 model_version="v")  # fmt: skip
    assert "timestamp" in refusal(predictor, {"series": "a", "timestamp": "noon", "value": 1})
    assert "value" in refusal(predictor, {"series": "a", "timestamp": "2024-01-01", "value": "x"})
    assert "series" in refusal(predictor, {"series": "", "timestamp": "2024-01-01", "value": 1})


# ------------------------------------------------------------------ security
def test_security_scores_as_the_streaming_scorer(
    security_model: SecurityAnalyser, security_data: tuple[list[dict[str, Any]], list[str]]
) -> None:
    records = sorted(security_data[0], key=lambda r: (r["eventTime"], r["eventID"]))[:300]
    predictor = SecurityPredictor(security_model, model_version="v")
    served = ask(predictor, *records[:100]) + [ask(predictor, r)[0] for r in records[100:]]
    direct = security_model.stream().score_many(records)
    assert [s["risk_score"] for s in served] == [d["risk_score"] for d in direct]
    assert [s["threat_category"] for s in served] == [d["threat_category"] for d in direct]
    for s in served:
        assert s["recommended_actions"] == list(CATEGORY_ACTIONS[s["threat_category"]])


def test_the_streaming_label_is_the_analysers_prediction(
    security_model: SecurityAnalyser, security_data: tuple[list[dict[str, Any]], list[str]]
) -> None:
    records = sorted(security_data[0], key=lambda r: r["eventTime"])
    labels = [o["label"] for o in security_model.stream().score_many(records)]
    assert labels == security_model.predict(records).tolist()
    assert {"normal", "malicious"} <= set(labels)


def test_security_refuses_a_record_without_time_or_with_unknown_fields(
    security_model: SecurityAnalyser,
) -> None:
    predictor = SecurityPredictor(security_model, model_version="v")
    base = predictor.example_request()
    assert refusal(predictor, {**base, "eventTime": "yesterday"}).startswith(
        "record 1: eventTime: Value error, 'yesterday' is not an ISO 8601 time"
    )
    assert "eventName: required" in refusal(predictor, {"eventTime": base["eventTime"]})
    assert "evilField: unknown field; allowed: eventTime, eventName" in refusal(
        predictor, {**base, "evilField": 1}
    )
