"""A Sigma-style baseline: alert on the eventNames of the SigmaHQ AWS CloudTrail rules.

``sigma_aws_cloudtrail_eventnames.csv`` summarises each rule of ``rules/cloud/aws`` by
file name, level, the eventNames it matches and its eventSources. The baseline fires a
rule when the record's eventName is one of the rule's and (if the rule names any) its
eventSource matches; an event's level is the highest level of the rules it fires.
Rules whose logic is not an eventName match (e.g. the TruffleHog user-agent rule) are
skipped, and extra conditions of the real rules (``MFAUsed``, user agents, request
parameters) are not applied, so this is an upper bound on their recall and on their
false positives: the eventName lists are what security teams deploy first.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LEVELS: Mapping[str, int] = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True, slots=True)
class SigmaRule:
    """One rule: its file, level and the eventNames / eventSources it matches."""

    rule_file: str
    level: str
    event_names: frozenset[str]
    event_sources: frozenset[str]


def load_sigma_rules(path: Path) -> list[SigmaRule]:
    """Rules of the CSV (``rule_file,level,status,eventNames,eventSources,attack_tags``)
    that match on eventName."""
    rules = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            names = frozenset(n for n in row["eventNames"].split(";") if n)
            if not names:
                continue
            rules.append(
                SigmaRule(
                    rule_file=row["rule_file"],
                    level=row["level"],
                    event_names=names,
                    event_sources=frozenset(s for s in row["eventSources"].split(";") if s),
                )
            )
    return rules


class SigmaBaseline:
    """Highest Sigma rule level fired per event (0 = none, 1 low, 2 medium, 3 high)."""

    def __init__(self, rules: Sequence[SigmaRule]) -> None:
        self.rules = list(rules)
        self._by_name: dict[str, list[SigmaRule]] = {}
        for rule in self.rules:
            for name in rule.event_names:
                self._by_name.setdefault(name, []).append(rule)

    def level_of(self, event_name: str, event_source: str) -> tuple[int, str]:
        """(level, rule file) of the highest rule an event fires; (0, "") if none."""
        best = (0, "")
        for rule in self._by_name.get(event_name, ()):
            if rule.event_sources and event_source not in rule.event_sources:
                continue
            level = LEVELS.get(rule.level, 1)
            if level > best[0]:
                best = (level, rule.rule_file)
        return best

    def levels(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Level per record (input order)."""
        return np.asarray(
            [
                self.level_of(str(r.get("eventName") or ""), str(r.get("eventSource") or ""))[0]
                for r in records
            ],
            dtype=np.int64,
        )
