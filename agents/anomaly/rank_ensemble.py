"""``rank-ensemble``: registered detectors combined through the ranks of their own scores.

Scores of different detectors are on different scales, so each member's score is replaced
by its rank among that member's last ``window`` scores on the same series (the fraction
strictly below it: 0 for a score no higher than any recent one, near 1 for the highest;
0 before any history), and the ranks are combined by their mean or maximum. One alert per
episode (:class:`agents.anomaly.suppress.Refractory`) on the combined score.

Members are registered detectors with their default hyper-parameters, named in
``members`` joined by ``+``. Deterministic and causal when the members are.
"""

from __future__ import annotations

from typing import Any

from agents.anomaly.base import AnomalyDetector, Observation, value_of
from agents.anomaly.suppress import Refractory
from agents.anomaly.window import SortedWindow

COMBINERS = ("max", "mean")


class RankEnsemble(AnomalyDetector):
    """Mean or maximum of the members' score ranks, one alert per episode.

    Parameters
    ----------
    members
        Registered detector ids joined by ``+`` (each with its defaults).
    combine
        ``"max"`` or ``"mean"`` of the members' ranks.
    window
        Scores per member each rank is taken among, in rows.
    refractory_rows
        An output must beat every combined score of this many previous rows, else it is 0.
    """

    name = "rank-ensemble"

    def __init__(
        self,
        *,
        members: str = "novelty-ensemble+seasonal-residual+contextual",
        combine: str = "max",
        window: int = 4032,
        refractory_rows: int = 144,
    ) -> None:
        from agents.registry import make_detector

        names = members.split("+")
        if not names or "rank-ensemble" in names or combine not in COMBINERS or window < 1:
            raise ValueError(
                f"members(={members!r}) must name other detectors, combine one of "
                f"{COMBINERS}, window >= 1"
            )
        self.members = members
        self.combine = combine
        self.window = window
        self.refractory_rows = refractory_rows
        self._members = [make_detector(name) for name in names]
        self._history = [SortedWindow(window) for _ in names]
        self._refractory = Refractory(refractory_rows)
        self._n = 0

    def get_params(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "combine": self.combine,
            "window": self.window,
            "refractory_rows": self.refractory_rows,
        }

    @classmethod
    def search_space(cls) -> dict[str, list[Any]]:
        """Four member sets (the three detectors written for issue 17, each pair with
        novelty-ensemble, and the two new ones without it); max or mean; suppression over 6
        or 12 hours of 5-minute rows (16 combinations)."""
        return {
            "members": [
                "novelty-ensemble+seasonal-residual+contextual",
                "novelty-ensemble+seasonal-residual",
                "novelty-ensemble+contextual",
                "seasonal-residual+contextual",
            ],
            "combine": ["max", "mean"],
            "refractory_rows": [72, 144],
        }

    def _combined(self, scores: list[float]) -> float:
        ranks = [h.below(s) for h, s in zip(self._history, scores, strict=True)]
        return max(ranks) if self.combine == "max" else sum(ranks) / len(ranks)

    def score_one(self, x: Observation) -> float:
        value_of(x)
        raw = self._combined([m.score_one(x) for m in self._members])
        return self._refractory.output(self._n, raw)

    def learn_one(self, x: Observation) -> None:
        self.score_learn_one(x)

    def score_learn_one(self, x: Observation) -> float:
        value_of(x)
        scores = [m.score_learn_one(x) for m in self._members]
        raw = self._combined(scores)
        out = self._refractory.output(self._n, raw)
        for h, s in zip(self._history, scores, strict=True):
            h.add(s)
        self._refractory.commit(self._n, raw)
        self._n += 1
        return out
