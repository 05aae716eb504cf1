"""Saving and loading models in the skops format (:mod:`agents.lifecycle.artefacts`):
the trusted-type lists match what freshly trained models need, a skops round trip
predicts bit for bit what a pickle round trip did, the bytes are canonical, and every
damaged, foreign or malformed file is one InputError line."""

from __future__ import annotations

import dataclasses
import io
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from threadpoolctl import threadpool_limits

from agents.forecasting.features import feature_names, make_features
from agents.forecasting.models import Forecaster
from agents.lifecycle.artefacts import (
    SCALING_TRUSTED,
    SECURITY_TRUSTED,
    dumps_skops,
    load_skops,
    loads_skops,
    save_skops,
)
from agents.registry import FORECASTERS
from sim.errors import InputError

SOURCE = Path("models/model.skops")


def _series() -> tuple[Any, np.ndarray]:
    """Features and targets of a small synthetic load (5-minute steps, 10 days)."""
    n = 2880
    rng = np.random.default_rng(5)
    t = np.arange(n)
    y = 800 + 500 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 30, n)
    stamps = np.datetime64("2024-01-01") + t * np.timedelta64(300, "s")
    return make_features(y, stamps, step_s=300, horizon_steps=6), y


SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "gbm-quantile": {"max_iter": 20, "quantiles": (0.5, 0.9)},
    "seed-rf": {"n_estimators": 5},
}


@pytest.fixture(scope="module")
def forecasters() -> dict[str, Forecaster]:
    """Every registered forecaster, fitted small."""
    X, y = _series()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few trees: some rows lack OOB scores
        return {
            name: FORECASTERS.make(name, SMALL_PARAMS.get(name, {})).fit(X.iloc[2016:-6], y[2022:])
            for name in FORECASTERS.ids()
        }


def test_the_scaling_trusted_list_is_what_the_forecasters_need(
    forecasters: dict[str, Forecaster],
) -> None:
    needed: set[str] = set()
    for model in forecasters.values():
        needed |= set(sio.get_untrusted_types(data=dumps_skops({"plan": model})))
    assert needed == set(SCALING_TRUSTED)


def test_the_security_trusted_list_is_what_the_analyser_needs(small_analyser: Any) -> None:
    assert set(sio.get_untrusted_types(data=dumps_skops(small_analyser))) == set(SECURITY_TRUSTED)


def test_skops_predicts_exactly_what_the_pickle_did(forecasters: dict[str, Forecaster]) -> None:
    X, _ = _series()
    rows = X.iloc[-40:].to_numpy()
    for name, model in forecasters.items():
        saved = {"plan": model, "forecast": model}
        via_pickle = pickle.loads(pickle.dumps(saved))
        via_skops = loads_skops(dumps_skops(saved), SCALING_TRUSTED, expect=dict, source=SOURCE)
        assert via_skops["plan"] is via_skops["forecast"]  # shared objects stay shared
        quantiles = (0.5, 0.9)
        for row in rows:
            want = via_pickle["plan"].predict_quantiles_row(row, quantiles)
            got = via_skops["plan"].predict_quantiles_row(row, quantiles)
            assert want.tobytes() == got.tobytes(), name
        frame = X.iloc[-40:]
        want_frame = via_pickle["forecast"].predict_quantiles(frame, quantiles)
        assert via_skops["forecast"].predict_quantiles(frame, quantiles).tobytes() == (
            want_frame.tobytes()
        ), name


def test_the_analyser_scores_exactly_as_before_a_round_trip(
    small_analyser: Any, tmp_path: Path
) -> None:
    from bench.security_data import TrainingSpec, simulate_accounts
    from agents.security.artefact import load_analyser, save_analyser

    records, _ = simulate_accounts(TrainingSpec(seed=9, accounts=1, days=0.2))
    path = tmp_path / "security.skops"
    save_analyser(small_analyser, path)
    again = load_analyser(path)
    assert again.risk_score(records).tobytes() == small_analyser.risk_score(records).tobytes()
    assert again.threshold_ == small_analyser.threshold_


def test_the_same_training_gives_the_same_bytes() -> None:
    """Object addresses and the clock do not reach the file: a model's sha256 (its
    version) is the same for every run of the same training."""
    X, y = _series()
    with threadpool_limits(1):
        first, second = (
            FORECASTERS.make("gbm-quantile", SMALL_PARAMS["gbm-quantile"]).fit(
                X.iloc[2016:-6], y[2022:]
            )
            for _ in range(2)
        )
    data = dumps_skops({"plan": first})
    assert dumps_skops({"plan": second}) == data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_save_and_load_a_file(forecasters: dict[str, Forecaster], tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    data = save_skops({"plan": forecasters["seasonal-naive-1d"]}, path)
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.skops"]  # no temporary left
    loaded = load_skops(path, SCALING_TRUSTED, expect=dict)
    assert isinstance(loaded["plan"], Forecaster)


def _refused(data: bytes, trusted: tuple[str, ...] = SCALING_TRUSTED, expect: type = dict) -> str:
    with pytest.raises(InputError) as caught:
        loads_skops(data, trusted, expect=expect, source=SOURCE)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(SOURCE)), message
    return message


def test_damaged_files_are_one_line(forecasters: dict[str, Forecaster]) -> None:
    good = dumps_skops({"plan": forecasters["seasonal-naive-1d"]})
    assert "is empty" in _refused(b"")
    for cut in (1, 30, len(good) // 3, len(good) // 2, len(good) - 30, len(good) - 1):
        assert "not a readable skops file" in _refused(good[:cut])
    assert "not a readable skops file" in _refused(np.random.default_rng(0).bytes(4096))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    assert "not a readable skops file" in _refused(bytes(flipped))


def test_a_type_outside_the_list_is_refused_and_named(
    forecasters: dict[str, Forecaster], small_analyser: Any
) -> None:
    message = _refused(dumps_skops(small_analyser))  # an analyser where a scaling model belongs
    assert "holds untrusted types agents.security.analyser.SecurityAnalyser" in message
    assert "SecurityAnalyser" not in message.split("allowed:")[1]


def test_a_trusted_object_of_another_kind_is_refused(forecasters: dict[str, Forecaster]) -> None:
    data = dumps_skops([forecasters["seasonal-naive-1d"]])
    assert "holds a list, not a dict" in _refused(data)


def test_trust_must_be_an_explicit_tuple(forecasters: dict[str, Forecaster]) -> None:
    data = dumps_skops({"plan": forecasters["seasonal-naive-1d"]})
    for trusted in (True, list(SCALING_TRUSTED), "agents.forecasting.models.Forecaster"):
        with pytest.raises(TypeError):
            loads_skops(data, trusted, expect=dict, source=SOURCE)  # type: ignore[arg-type]


def _booster_trees(model: Any) -> list[Any]:
    return [p for iteration in model._predictors for p in iteration]


def test_a_booster_tree_pointing_outside_itself_is_refused(
    forecasters: dict[str, Forecaster],
) -> None:
    model = pickle.loads(pickle.dumps(forecasters["gbm-quantile"]))
    nodes = _booster_trees(model.models_[0.5])[0].nodes
    split = int(np.flatnonzero(nodes["is_leaf"] == 0)[0])
    nodes["left"][split] = 10**6
    assert "malformed tree" in _refused(dumps_skops({"plan": model}))


def test_a_booster_tree_with_a_cycle_is_refused(forecasters: dict[str, Forecaster]) -> None:
    model = pickle.loads(pickle.dumps(forecasters["gbm-quantile"]))
    nodes = _booster_trees(model.models_[0.9])[-1].nodes
    split = int(np.flatnonzero(nodes["is_leaf"] == 0)[-1])
    nodes["right"][split] = split
    assert "not a later node" in _refused(dumps_skops({"plan": model}))


def test_a_booster_split_on_a_missing_feature_is_refused(
    forecasters: dict[str, Forecaster],
) -> None:
    model = pickle.loads(pickle.dumps(forecasters["gbm-quantile"]))
    nodes = _booster_trees(model.models_[0.5])[0].nodes
    nodes["feature_idx"][0] = len(feature_names())  # past the booster's columns
    assert "splits on feature" in _refused(dumps_skops({"plan": model}))


def test_a_forest_tree_pointing_outside_itself_is_refused(
    forecasters: dict[str, Forecaster],
) -> None:
    model = pickle.loads(pickle.dumps(forecasters["seed-rf"]))
    tree = model.forest_.estimators_[0].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes["right_child"][0] = tree.node_count + 5
    tree.__setstate__({**state, "nodes": nodes})
    assert "malformed tree" in _refused(dumps_skops({"plan": model}))


def test_compiled_trees_pointing_outside_themselves_are_refused(
    forecasters: dict[str, Forecaster],
) -> None:
    model = pickle.loads(pickle.dumps(forecasters["gbm-quantile"]))
    compiled = model.compiled_
    left = compiled.left.copy()
    left[0] = len(left)
    model.compiled_ = dataclasses.replace(compiled, left=left)
    assert "compiled left" in _refused(dumps_skops({"plan": model}))
    model.compiled_ = dataclasses.replace(compiled, depth=len(left) + 1)
    assert "compiled depth" in _refused(dumps_skops({"plan": model}))
