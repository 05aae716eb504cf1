"""The ``latency`` section of :func:`bench.evaluations.run_evaluations`: the wall time of
one decision of each model, in process and over loopback HTTP.

Models (:attr:`~bench.report_data.LatencySamples.model`, also the rows' subject):

``scaling``
    in process: one recommendation of the predictive policy on the ``default`` scenario
    (both forecasts, the capacity plan, the records; :func:`bench.scaling_latency.\
recommendation_times_ns`) with the model the replays use (registered version of
    ``scaling-default``, trained and registered first only if the registry lacks it);
    over HTTP: that version served (:class:`agents.serving.scaling.ScalingPredictor`);
``anomaly``
    one point of one series, scored then learnt by the registry's default detector
    (:class:`agents.serving.anomaly.AnomalyPredictor`, a fresh detector, alerting at the
    scenario default threshold);
``security``
    one CloudTrail event scored by the registered shipped analyser's streaming scorer
    (:class:`agents.serving.security.SecurityPredictor`);
``cost``
    one capacity mix of the registered shipped ``cost-rl`` network
    (:class:`agents.serving.cost.CostPredictor`: observation in, decoded mix out).

Except for scaling's in-process figure, both transports time the same records through
:func:`bench.serving_speed.latency_samples`: ``predictor.predict`` on one validated
record, then one request per record over one keep-alive connection to the real uvicorn
server on a free 127.0.0.1 port (after 200 untimed warm-up requests), round trip timed
at the client. Rows: ``p50_ms`` and ``p99_ms`` (ms) per (model, ``in-process`` |
``http``); the samples themselves (ms) in :class:`~bench.report_data.LatencySamples`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np

from agents.lifecycle.open import open_registry
from agents.serving.loading import load_version_predictor
from agents.serving.protocol import Predictor
from bench.report_data import EvalRow, LatencySamples

Transport = Literal["in-process", "http"]
SCALING_SCENARIO = "default"
PERCENTILES = (("p50_ms", 50.0), ("p99_ms", 99.0))


def latency_rows(samples: LatencySamples) -> list[EvalRow]:
    """``p50_ms`` and ``p99_ms`` of one model's samples on one transport."""
    values = np.percentile(np.asarray(samples.samples_ms), [q for _, q in PERCENTILES])
    return [
        EvalRow(section="latency", subject=samples.model, dataset=samples.transport,
                metric=name, value=float(v), unit="ms")
        for (name, _), v in zip(PERCENTILES, values, strict=True)
    ]  # fmt: skip


def _samples(model: str, transport: Transport, seconds: Sequence[float]) -> LatencySamples:
    return LatencySamples(
        model=model, transport=transport, samples_ms=tuple(float(s) * 1e3 for s in seconds)
    )


def scaling_samples(
    calls: int, *, models_dir: str, store: Path, progress: Callable[[str], None] | None = None
) -> list[LatencySamples]:
    """The scaling model's samples on both transports (see the module)."""
    from bench import runner
    from bench.scaling_latency import recommendation_times_ns
    from bench.serving_speed import latency_samples

    prepared = runner.prepare_run(SCALING_SCENARIO, policy="predictive")
    version = runner.attach_model(prepared, models_dir=models_dir, store=store, progress=progress)
    assert version is not None  # the predictive policy needs a model
    in_process_ns = recommendation_times_ns(prepared, calls)
    predictor = load_version_predictor(open_registry(models_dir), version)
    over_http = latency_samples(predictor, calls)["http"]
    return [
        _samples("scaling", "in-process", (in_process_ns / 1e9).tolist()),
        _samples("scaling", "http", over_http),
    ]


def anomaly_predictor() -> Predictor:
    """The registry's default detector behind the serving contract."""
    from agents.registry import DEFAULT_DETECTOR, make_detector
    from agents.serving.anomaly import AnomalyPredictor
    from sim.scenario import Detection

    threshold = Detection.model_fields["threshold"].default
    return AnomalyPredictor(
        partial(make_detector, DEFAULT_DETECTOR), threshold=threshold,
        model_version=DEFAULT_DETECTOR,
    )  # fmt: skip


def security_predictor(models_dir: str, progress: Callable[[str], None] | None = None) -> Predictor:
    """The registered shipped analyser behind the serving contract."""
    from bench.eval_security import security_registry
    from bench.security_model import shipped_version

    registry = security_registry(models_dir)
    return load_version_predictor(registry, shipped_version(registry, progress=progress))


def cost_predictor(models_dir: str) -> Predictor:
    """The registered shipped cost-rl network behind the serving contract (registered
    from ``agents/cost/shipped/`` first if the registry lacks it)."""
    from bench.registered_models import shipped_cost_ref

    registry = open_registry(models_dir)
    return load_version_predictor(registry, registry.resolve(shipped_cost_ref(registry)))


def predictor_samples(model: str, predictor: Predictor, calls: int) -> list[LatencySamples]:
    """``calls`` decisions of ``predictor`` in process and over HTTP."""
    from bench.serving_speed import latency_samples

    found = latency_samples(predictor, calls)
    return [
        _samples(model, "in-process", found["in-process"]),
        _samples(model, "http", found["http"]),
    ]


def latency_evaluation(
    calls: int,
    *,
    models_dir: str,
    store: Path,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[EvalRow], list[LatencySamples]]:
    """Every model's samples (``calls`` per model and transport) and their rows."""
    say = progress or (lambda _line: None)
    say(f"latency: scaling, {calls} calls in process and over HTTP")
    samples = scaling_samples(calls, models_dir=models_dir, store=store, progress=progress)
    builders: tuple[tuple[str, Callable[[], Predictor]], ...] = (
        ("anomaly", anomaly_predictor),
        ("security", lambda: security_predictor(models_dir, progress)),
        ("cost", lambda: cost_predictor(models_dir)),
    )
    for model, build in builders:
        say(f"latency: {model}, {calls} calls in process and over HTTP")
        samples += predictor_samples(model, build(), calls)
    return [row for s in samples for row in latency_rows(s)], samples
