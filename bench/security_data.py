"""Simulator-generated CloudTrail training data for the security analyser.

Several independent simulated accounts (one seed each, split per component by
:func:`sim.seeding.component_rng`), each with benign principals and random attack
campaigns drawn from the technique catalogue. Every account starts with an empty
history, so the analyser also learns what a cold start looks like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from scenarios import data_path
from sim.audit.generator import AuditGenerator, AuditLabel
from sim.audit.principals import build_principals
from sim.audit.techniques import Technique, load_techniques
from sim.seeding import component_rng

SECURITY_DATA = data_path("security")
TECHNIQUES_CSV = SECURITY_DATA / "attack_techniques.csv"
ENTRIES = ("stolen-access-key", "console-login-without-mfa", "instance-credentials")


@dataclass(frozen=True, slots=True)
class TrainingSpec:
    """What to simulate: accounts, days each, campaigns per account, techniques left out.

    ``exclude`` drops techniques from the campaigns (e.g. every technique of the
    evaluation recording, to measure generalisation to unseen techniques).
    """

    seed: int = 7
    accounts: int = 6
    days: float = 4.0
    campaigns_per_account: int = 6
    exclude: tuple[str, ...] = ()


def simulate_accounts(
    spec: TrainingSpec, techniques_csv: Path = TECHNIQUES_CSV
) -> tuple[list[dict[str, Any]], list[AuditLabel]]:
    """Records (time-ordered per account, accounts one after another) and labels."""
    catalogue = load_techniques(techniques_csv)
    usable: Sequence[Technique] = [t for k, t in catalogue.items() if k not in spec.exclude]
    records: list[dict[str, Any]] = []
    labels: list[AuditLabel] = []
    for a in range(spec.accounts):
        rng = component_rng(spec.seed, f"audit-training-{a}")
        account = f"{int(rng.integers(10**11, 10**12))}"
        counts = {
            "admin": int(rng.integers(1, 4)),
            "developer": int(rng.integers(2, 9)),
            "ci": int(rng.integers(1, 3)),
            "scanner": int(rng.integers(0, 2)),
            "app": int(rng.integers(1, 4)),
            "service": int(rng.integers(2, 6)),
            "autoscaler": 1,
        }
        principals = build_principals(counts, account_id=account, rng=rng)
        start = datetime(2024, 1, 1) + timedelta(days=int(rng.integers(0, 300)))
        gen = AuditGenerator(account_id=account, region="us-east-1", start=start, rng=rng)
        duration_s = spec.days * 86_400.0
        gen.benign(principals, duration_s)
        for c in range(spec.campaigns_per_account):
            k = int(rng.integers(2, 7))
            picks = rng.choice(len(usable), size=min(k, len(usable)), replace=False)
            gen.campaign(
                campaign_id=f"acct{a}-c{c}",
                start_s=float(rng.uniform(0.05, 0.95) * duration_s),
                entry=ENTRIES[int(rng.integers(0, len(ENTRIES)))],
                techniques=[usable[int(i)] for i in picks],
                principals=principals,
                pace_s=float(rng.choice([3.0, 10.0, 30.0, 120.0])),
                insider_network=bool(rng.random() < 0.35),
                reuse_user_agent=bool(rng.random() < 0.2),
            )
        recs, labs = gen.take()
        records.extend(recs)
        labels.extend(labs)
    return records, labels
