"""The next-key session model on hand-made sequences."""

from __future__ import annotations

import numpy as np

from agents.security.sessions import NextKeyModel, parse_sessions


def test_next_key_model_flags_unseen_transitions() -> None:
    normal = [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 4]]
    model = NextKeyModel(history=2, top_k=1).fit(normal)
    assert model.predict([[1, 2, 3, 4]]).tolist() == [0]
    assert model.predict([[1, 3, 2, 4]]).tolist() == [1]  # wrong order
    assert model.predict([[1, 2, 3]]).tolist() == [1]  # truncated (no end after 3)
    assert model.surprises([9, 9]) >= 2
    assert model.decision_function([[1, 2, 3, 4], [4, 3]]).dtype == np.float64


def test_parse_sessions_reports_bad_lines() -> None:
    sessions, bad = parse_sessions(["1 2 3", "", "a b", "4 -1", "7"])
    assert sessions == [[1, 2, 3], [7]]
    assert [n for n, _ in bad] == [3, 4]
