"""``opsbench serve``: one model behind the SageMaker inference contract
(``GET /ping``, ``POST /invocations``; :mod:`agents.serving`)."""

from __future__ import annotations

from pathlib import Path

import click

from agents.lifecycle.registry import ModelRef
from agents.serving.loading import AGENTS, load_predictor, load_version_predictor
from agents.serving.protocol import MAX_BODY_BYTES, Predictor
from bench.cli.common import models_option, path_option


def registry_predictor(ref: str, location: str) -> Predictor:
    """The predictor of a registered model: resolve ``ref`` in the registry at
    ``location``, fetch its artefact (digest checked), load it with its card's agent and
    parameters."""
    from agents.lifecycle.open import open_registry

    registry = open_registry(location)
    version = registry.resolve(ModelRef.parse(ref, source="MODEL_REF"))
    return load_version_predictor(registry, version)


@click.command("serve")
@click.argument("model_ref", required=False)
@path_option("--folder", help="serve this artefact folder directly (with --agent)")
@click.option("--agent", type=click.Choice(AGENTS), help="the agent of --folder's artefact")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free"
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=MAX_BODY_BYTES,
    show_default=True,
    help="larger request bodies are refused (413)",
)
@models_option
def serve(
    model_ref: str | None,
    folder: Path | None,
    agent: str | None,
    host: str,
    port: int,
    max_body_bytes: int,
    models_dir: str,
) -> None:
    """Serve MODEL_REF (e.g. scaling-default@champion) or --folder PATH --agent AGENT over
    HTTP: GET /ping, POST /invocations (application/json or text/csv)."""
    if (model_ref is None) == (folder is None):
        raise click.UsageError("give either MODEL_REF or --folder PATH --agent AGENT")
    if folder is not None:
        if agent is None:
            raise click.UsageError("--folder needs --agent")
        predictor = load_predictor(agent, folder)
    else:
        if agent is not None:
            raise click.UsageError("--agent goes with --folder (a MODEL_REF's card names it)")
        assert model_ref is not None
        predictor = registry_predictor(model_ref, models_dir)
    from agents.serving.server import serve as run_server  # uvicorn only when serving

    run_server(predictor, host, port, max_body_bytes=max_body_bytes)
