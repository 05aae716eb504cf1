"""The ``cost-rl`` agent as a stateless endpoint: an observation in, the capacity mix out.

A request is the observation the controller builds (:class:`agents.cost.view.FeatureTracker`:
11 global features and 5 per spot slot, each normalised to ``[-1, 1]``; the view
numbers them rather than naming them, so the request is ``observation``, a list of
exactly the model's ``obs_dim`` numbers). The answer is what the controller applies:
the network's deterministic action decoded by :func:`agents.cost.plan.decode_action`
into a :class:`~agents.cost.plan.Mix` —

``od_floor``
    share of the capacity plan always held on on-demand (0..1);
``od_fill``
    share of what spot cannot hold that on-demand fills (0.6..1);
``spot_buffer``
    extra spot pods, as a share of the spot part of the plan (0..0.3);
``keep``
    share of surplus spot nodes kept where spot cannot launch now (0..1);
``spot_weights``
    one per spot slot (spot pool x AZ, the fleet's layout order): how the spot part is
    split over the slots that can launch now (0 = avoid; relative weights in 0..1).

Turning the mix into nodes (:func:`agents.cost.plan.execute`) needs the fleet's live
state, so the caller does it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import Field, create_model

from agents.cost.model import CostModel
from agents.cost.plan import decode_action
from agents.serving.protocol import RequestModel

Feature = Annotated[float, Field(ge=-1.0, le=1.0)]


class CostPredictor:
    """Capacity mixes of a :class:`~agents.cost.model.CostModel` (see the module)."""

    agent = "cost-rl"

    def __init__(self, model: CostModel) -> None:
        meta = model.metadata
        self.model = model
        self.model_version = model.version
        self.obs_dim = meta.obs_dim
        self.n_spot = meta.n_spot
        self.request_model = create_model(
            "CostRequest",
            __base__=RequestModel,
            __doc__=f"One observation: {meta.obs_dim} features in [-1, 1].",
            observation=(
                list[Feature],
                Field(min_length=meta.obs_dim, max_length=meta.obs_dim),
            ),
        )
        self.csv_columns = tuple(f"observation.{i}" for i in range(meta.obs_dim))

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        return [self._one(r.observation) for r in records]

    def _one(self, observation: list[float]) -> dict[str, Any]:
        action = self.model.act(np.asarray(observation, dtype=np.float32))
        mix = decode_action(action.tolist(), self.n_spot)
        return {
            "od_floor": mix.od_floor,
            "od_fill": mix.od_fill,
            "spot_buffer": mix.spot_buffer,
            "keep": mix.keep,
            "spot_weights": list(mix.weights),
            "model_version": self.model_version,
        }

    def example_request(self) -> dict[str, Any]:
        """Half the on-demand capacity loaded at noon, spot on offer at 30% of the
        on-demand price in every slot, nothing lost lately."""
        head = [0.5, 0.5, 0.5, 0.4, 0.3, 1.0, 0.0, 0.5, 0.0, -1.0, 0.0]
        per_slot = [0.3, 1.0, 0.0, 0.0, round(0.5 / self.n_spot, 6)]
        return {"observation": head + per_slot * self.n_spot}
