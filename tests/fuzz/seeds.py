"""Small valid seed inputs for the fuzz suite, built from the shipped data, and its settings."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.lifecycle.drift import REFERENCE_FILE
from agents.lifecycle.open import open_registry
from threadpoolctl import threadpool_limits

from opsbench_testing import shipped_doc

DATA = Path(__file__).resolve().parents[2] / "scenarios" / "data"
AZS = ("us-east-1c", "us-east-1d", "us-east-1f")
SEED_SCENARIO_ID = "fuzz-seed"
EVENTS = 20
NAB_ROWS = 300


def quiet_main(args: Sequence[str]) -> None:
    """``opsbench ARGS`` in-process for building a seed; fails loudly unless it exits 0."""
    from bench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            message = f"opsbench {' '.join(args)}: exit {exc.code}: {err.getvalue()}"
            raise AssertionError(message) from None


@dataclass(frozen=True, slots=True)
class Seeds:
    """Paths of the valid seed inputs (all inside one session folder)."""

    root: Path
    trace: Path
    spot_prices: Path
    availability: Path
    scenario: Path
    predictive_scenario: Path
    events: Path
    event_labels: Path
    nab_data: Path
    nab_windows: Path
    run: Path
    store: Path
    training_labels: Path
    scaling_model: Path
    cost_model: Path
    empty_registry: Path


def _csv_head(source: Path, target: Path, rows: int) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return target


def _spot_prices(target: Path, per_az: int = 8) -> Path:
    """The c5a.2xlarge rows of the shipped price history, the first ``per_az`` per AZ."""
    with (DATA / "spot" / "spot_price_history.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        kept: list[dict[str, str]] = []
        for row in reader:
            same = [r for r in kept if r["az"] == row["az"]]
            if row["instance_type"] == "c5a.2xlarge" and row["az"] in AZS and len(same) < per_az:
                kept.append(row)
    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    return target


def _availability(target: Path, ticks: int = 40) -> Path:
    trace = DATA / "spot" / "traces" / "availability" / "1-node" / "aws-02-15-2023"
    doc = json.loads((trace / "us-east-1c_v100_1.json").read_text())
    target.write_text(json.dumps({"metadata": doc["metadata"], "data": doc["data"][:ticks]}))
    return target


def _scenario(root: Path, trace: Path, prices: Path, availability: Path) -> dict[str, Any]:
    """The default scenario on the seed files: a 2-day trace, its second day replayed."""
    doc = shipped_doc("default")
    doc["id"] = SEED_SCENARIO_ID
    doc["duration_days"] = 0.05
    doc["workload"].update(path=str(trace), start="2019-05-02T00:00:00")
    doc["pricing"]["spot_prices"]["path"] = str(prices)
    doc["pricing"]["spot_availability"]["files"] = {az: str(availability) for az in AZS}
    return doc


def _events(root: Path) -> tuple[Path, Path]:
    """The first :data:`EVENTS` CloudTrail events of the shipped recording, and their labels."""
    source = DATA / "security" / "cloudtrail"
    with (source / "invictus_stratus_events.jsonl").open(encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(EVENTS)]
    events = root / "events.jsonl"
    events.write_text("".join(lines), encoding="utf-8")
    ids = {json.loads(line)["eventID"] for line in lines}
    with (source / "invictus_stratus_labels.csv").open(newline="", encoding="utf-8") as fh:
        kept = [f"{r['eventID']},{r['label']}" for r in csv.DictReader(fh) if r["eventID"] in ids]
    labels = root / "event_labels.csv"  # the two columns the command reads
    labels.write_text("\n".join(["eventID,label", *kept]) + "\n", encoding="utf-8")
    return events, labels


def _nab(root: Path) -> tuple[Path, Path]:
    """Two NAB files cut to :data:`NAB_ROWS` rows; one window on the first, none on the
    second."""
    data = root / "nab"
    keys = (
        "artificialWithAnomaly/art_daily_jumpsdown.csv",
        "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
    )
    for key in keys:
        (data / key).parent.mkdir(parents=True, exist_ok=True)
        _csv_head(DATA / "nab" / "data" / key, data / key, NAB_ROWS)
    first = (data / keys[0]).read_text().splitlines()
    window = [f"{first[row].split(',')[0]}.000000" for row in (100, 150)]
    windows = root / "nab_windows.json"
    windows.write_text(json.dumps({keys[0]: [window], keys[1]: []}, indent=1))
    return data, windows


def _training_labels(root: Path, run: Path) -> Path:
    """Labels for the ``infrastructure_metrics`` view: both pools, ten minutes of the run
    (each after the pool's first metrics, so every row finds features)."""
    run_id = json.loads((run / "summary.json").read_text())["run_id"]
    rows = ["run_id,pool,timestamp,label"]
    for minute in range(3, 60, 6):
        for pool in ("on-demand", "spot"):
            rows.append(f"{run_id},{pool},1995-07-17T00:{minute:02d}:00,{minute % 2}")
    path = root / "training_labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _cost_model(root: Path) -> Path:
    """The shipped cost model, its zip re-packed (same weights, other bytes) so a replay
    that silently fell back to the shipped model would report another version."""
    import zipfile

    from agents.cost.model import SHIPPED_DIR

    folder = root / "cost_model"
    folder.mkdir()
    shutil.copy(SHIPPED_DIR / "metadata.json", folder / "metadata.json")
    with (
        zipfile.ZipFile(SHIPPED_DIR / "model.zip") as src,
        zipfile.ZipFile(folder / "model.zip", "w", compression=zipfile.ZIP_STORED) as dst,
    ):
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    rehash(folder, "model.zip")
    return folder


def rehash(folder: Path, payload: str) -> None:
    """Record ``payload``'s sha256 (and version) in the folder's metadata.json."""
    import hashlib

    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256((folder / payload).read_bytes()).hexdigest()
    meta.update(model_sha256=digest, model_version=digest[:12])
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


def build_seeds(root: Path) -> Seeds:
    """Every seed input in ``root`` (about 2 s)."""
    trace = _csv_head(DATA / "traces" / "google2019_mean_instance_cpu_5min.csv",
                      root / "trace.csv", 576)  # fmt: skip
    prices = _spot_prices(root / "spot_prices.csv")
    availability = _availability(root / "availability.json")
    doc = _scenario(root, trace, prices, availability)
    scenario = root / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(doc, sort_keys=False))
    # predictive trains on >= 2 days of history: the whole 4-week trace, replayed from day 3
    doc["workload"].update(path=str(DATA / "traces" / "google2019_mean_instance_cpu_5min.csv"),
                           start="2019-05-03T00:00:00")  # fmt: skip
    doc["control"].update(policy="predictive", params={"model": "seasonal-naive-1d"})
    doc["duration_days"] = 0.01  # the history is scaled like the window: train and replay alike
    predictive = root / "predictive.yaml"
    predictive.write_text(yaml.safe_dump(doc, sort_keys=False))
    events, event_labels = _events(root)
    nab_data, nab_windows = _nab(root)
    run, store, models = root / "run", root / "store" / "store.duckdb", root / "models"
    with threadpool_limits(1):
        quiet_main(["replay", "default", "--days", "0.05", "--out", str(run)])
        quiet_main(["features", "build", str(run), "--store", str(store)])
        quiet_main(["train", "scaling", "--scenario", str(predictive), "--model",
                    "seasonal-naive-1d", "--models", str(models), "--store",
                    str(root / "train-store" / "store.duckdb")])  # fmt: skip
    shutil.rmtree(store.parent / "lake", ignore_errors=True)
    registry = open_registry(models)
    (trained,) = registry.versions()
    # the files a replay reads: the drift reference beside them is for the lifecycle monitors
    scaling_model = shutil.copytree(
        registry.fetch(trained, root / "fetch"),
        root / "scaling_model",
        ignore=shutil.ignore_patterns(REFERENCE_FILE),
    )
    empty = open_registry(root / "empty_registry")
    empty.versions()  # creates the store's tables once (a copy per example is cheap)
    return Seeds(
        root=root,
        trace=trace,
        spot_prices=prices,
        availability=availability,
        scenario=scenario,
        predictive_scenario=predictive,
        events=events,
        event_labels=event_labels,
        nab_data=nab_data,
        nab_windows=nab_windows,
        run=run,
        store=store,
        training_labels=_training_labels(root, run),
        scaling_model=Path(scaling_model),
        cost_model=_cost_model(root),
        empty_registry=root / "empty_registry",
    )
