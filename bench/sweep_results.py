"""The files a sweep writes into ``opsbench bench all --out DIR``, and their schema.

``results.parquet`` (schema version :data:`SCHEMA_VERSION`): one row per run and metric,
long format, so a reader pivots it as it needs. A replay's rows have ``kind`` ``replay``; a
model evaluation's (:mod:`bench.evaluations`: ``forecast``, ``nab``, ``security``,
``hdfs``, ``latency``) name the dataset in ``scenario``, the model in ``policy``, and have
no seed, telemetry hash or model version:

================== ======== ==========================================================
column             type     meaning
================== ======== ==========================================================
kind               string   ``replay`` or the evaluation's section
scenario           string   scenario id (``default``, ``spot-storm``, ...); for an
                            evaluation, its dataset (a trace, ``nab-dev``, ``invictus``)
policy             string   policy name (``opsbench policies``); for an evaluation, the
                            model, detector or baseline (``gbm-quantile``, ``sigma>=low``)
seed               int64    the replay's root seed (null for an evaluation)
sim_days           float64  simulated days replayed
run_id             string   the run's identity (:attr:`bench.runner.PreparedRun.run_id`)
telemetry_sha256   string   SHA-256 of every telemetry row the replay produced
model_version      string   registered model the policy decided with (``NAME/VERSION``),
                            null for a policy without a model
metric             string   metric name: a replay summary field (``cost_usd``,
                            ``slo_attainment``, ``slo_violation_minutes``,
                            ``p95_latency_ms``, ``dropped_requests``, ``interruptions``,
                            ...), a nested one as ``section.field``
                            (``detection.false_alerts_per_day``); units as in the
                            summary (dollars, a share in [0, 1], minutes, milliseconds,
                            requests, counts)
value              float64  the metric's value; a metric undefined for a run (e.g. a
                            detection delay with no fault) has no row
unit               string   an evaluation's unit (:data:`bench.report_data.Unit`); null
                            for a replay metric (units as in the summary, above)
wall_s             float64  wall seconds of the run's task (load, model, replay), or of
                            the evaluation's section: the column that differs between
                            executors and machines
git_commit         string   ``git rev-parse HEAD`` of the source tree (``-dirty`` appended
                            when tracked files were modified), ``unknown`` outside git
packages           string   JSON object: package name -> version (python, opsbench, simpy,
                            numpy, pandas, pyarrow, duckdb, scikit-learn, ...)
================== ======== ==========================================================

The file's key-value metadata holds ``opsbench.schema_version`` and ``opsbench.sweep`` (the
sweep's settings as JSON). ``results.json`` holds the same runs, one object per run with a
``metrics`` mapping, plus ``schema_version``, ``git_commit``, ``packages``, the sweep's
settings (``executor``, ``workers``, ``quick``, ``seeds``, ``days``), ``wall_s`` of the
whole sweep, the skipped (scenario, policy) pairs with the reason, ``markets`` (per
scenario a mix policy ran on: ``spot_on_offer_share``, the share of minutes with spot on
offer in some AZ, and ``cheapest_spot_saving``, the saving of the cheapest spot price on
offer each minute; :func:`bench.cost.market_figures`), ``series`` (the first
seed's binned time series per scenario and policy, :class:`~bench.report_data.RunSeries`),
``evaluations`` (:class:`~bench.report_data.Evaluations`) and ``seed_tables`` (the seed's
two tables, measured: :mod:`bench.seed_tables`). ``REPORT.md`` is the text for people:
per scenario and policy the mean over seeds of the headline metrics, the evaluations and
the seed's two tables; ``report.html`` the same with plots (:mod:`bench.report_html`),
self-contained.

The files are written into a hidden staging folder first and moved into ``DIR`` only when
all of them are complete (:mod:`sim.atomic`), each with one ``os.replace``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.report_data import Evaluations
from bench.seed_tables import seed_tables
from bench.sweep import RunRow
from sim.atomic import discard, staging_path
from sim.errors import InputError

SCHEMA_VERSION = 2
PACKAGES = (
    "opsbench", "simpy", "numpy", "pandas", "pyarrow", "duckdb", "pydantic", "scikit-learn",
    "stable-baselines3", "torch", "mlflow", "ray",
)  # fmt: skip
"""Packages whose versions are recorded with the results."""
RESULT_FILES = ("results.parquet", "results.json", "REPORT.md", "report.html")
SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("scenario", pa.string()),
        ("policy", pa.string()),
        ("seed", pa.int64()),
        ("sim_days", pa.float64()),
        ("run_id", pa.string()),
        ("telemetry_sha256", pa.string()),
        ("model_version", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("wall_s", pa.float64()),
        ("git_commit", pa.string()),
        ("packages", pa.string()),
    ]
)
REPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "cost $", "{:,.2f}"),
    ("slo_attainment", "SLO attainment", "{:.4%}"),
    ("slo_violation_minutes", "SLO violation min", "{:,.1f}"),
    ("p95_latency_ms", "p95 ms", "{:,.1f}"),
    ("dropped_requests", "dropped req", "{:,.0f}"),
    ("wasted_node_hours", "wasted node-h", "{:,.1f}"),
    ("interruptions", "interruptions", "{:,.1f}"),
)
"""The REPORT.md table: metric, header, format (means over seeds)."""


def git_commit(tree: Path | None = None) -> str:
    """The source tree's commit (``-dirty`` if tracked files changed), ``unknown``
    outside git."""
    tree = tree or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=tree, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def package_versions() -> dict[str, str]:
    """Python's and :data:`PACKAGES`' versions (those installed)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


IDENTITY_COLUMNS = {"scenario", "policy", "seed", "sim_days", "run_id", "telemetry_sha256",
                    "model_version", "wall_s"}  # fmt: skip


def results_table(
    rows: Sequence[RunRow],
    *,
    commit: str,
    packages: Mapping[str, str],
    settings: Mapping[str, Any],
    evaluations: Evaluations | None = None,
) -> pa.Table:
    """The long table of :data:`SCHEMA`: one row per run and metric, then one per
    evaluation figure."""
    columns: dict[str, list[Any]] = {field.name: [] for field in SCHEMA}
    packages_json = json.dumps(dict(packages), sort_keys=True)

    def add(**values: Any) -> None:
        for name in columns:
            columns[name].append(values.get(name))

    for row in rows:
        identity = row.model_dump(include=IDENTITY_COLUMNS)
        for metric, value in sorted(row.metrics.items()):
            add(kind="replay", **identity, metric=metric, value=value, git_commit=commit,
                packages=packages_json)  # fmt: skip
    if evaluations is not None:
        for e in evaluations.rows:
            add(kind=e.section, scenario=e.dataset, policy=e.subject,
                run_id=f"{e.section}/{e.subject}/{e.dataset}", metric=e.metric, value=e.value,
                unit=e.unit, wall_s=evaluations.wall_s.get(e.section), git_commit=commit,
                packages=packages_json)  # fmt: skip
    metadata = {
        "opsbench.schema_version": str(SCHEMA_VERSION),
        "opsbench.sweep": json.dumps(dict(settings), sort_keys=True),
    }
    return pa.table(columns, schema=SCHEMA.with_metadata(metadata))


def report_markdown(rows: Sequence[RunRow], document: Mapping[str, Any]) -> str:
    """REPORT.md: the sweep's settings, then per scenario and policy the mean over seeds
    of :data:`REPORT_COLUMNS`, then the skipped pairs."""
    settings = document["settings"]
    lines = [
        "# opsbench bench all: replay sweep",
        "",
        f"- commit `{document['git_commit']}`, opsbench {document['packages'].get('opsbench', '?')}"
        f", Python {document['packages']['python']}",
        f"- {len(rows)} replays: executor `{settings['executor']}`, {settings['workers']} "
        f"worker{'s' * (settings['workers'] != 1)}, {document['wall_s']:.1f} s wall (with the "
        "executor's start)",
        f"- seeds per scenario and policy: {settings['seeds']}; simulated days: "
        + ("the scenario's" if settings["days"] is None else f"{settings['days']:g}"),
        "",
        "Means over seeds. SLO attainment: the share of simulated minutes whose p95 latency "
        "met the scenario's SLO with no request dropped; cost in dollars over the replayed "
        "days; wasted node-hours: serving capacity above what the offered load needed.",
        "",
        "| scenario | policy | seeds | days | "
        + " | ".join(label for _, label, _ in REPORT_COLUMNS)
        + " |",
        "|---|---|---:|---:|" + "---:|" * len(REPORT_COLUMNS),
    ]
    groups: dict[tuple[str, str], list[RunRow]] = {}
    for row in rows:
        groups.setdefault((row.scenario, row.policy), []).append(row)
    for (scenario, policy), runs in groups.items():
        cells = []
        for key, _, fmt in REPORT_COLUMNS:
            values = [r.metrics[key] for r in runs if key in r.metrics]
            cells.append(fmt.format(sum(values) / len(values)) if values else "-")
        lines.append(
            f"| {scenario} | {policy} | {len(runs)} | {runs[0].sim_days:g} | "
            + " | ".join(cells)
            + " |"
        )
    skipped = document["skipped"]
    if skipped:
        lines += ["", "Not run (cost policies choose between spot and on-demand pools):", ""]
        lines += [f"- {s['scenario']} / {s['policy']}: {s['reason']}" for s in skipped]
    lines += _evaluations_markdown(document.get("evaluations"))
    lines += _seed_tables_markdown(document.get("seed_tables") or [])
    return "\n".join(lines) + "\n"


def _cell(text: object) -> str:
    """A Markdown table cell: pipes escaped, one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _evaluations_markdown(evaluations: Mapping[str, Any] | None) -> list[str]:
    if not evaluations or not evaluations.get("rows"):
        return []
    lines = ["", "## Models outside the replay", ""]
    walls = evaluations.get("wall_s", {})
    if walls:
        lines += ["Wall time per section: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in walls.items()) + ".", ""]  # fmt: skip
    lines += ["| section | model | dataset | metric | value | unit |",
              "|---|---|---|---|---:|---|"]  # fmt: skip
    for r in evaluations["rows"]:
        lines.append(
            f"| {r['section']} | {_cell(r['subject'])} | {_cell(r['dataset'])} | "
            f"{r['metric']} | {r['value']:.4g} | {r['unit']} |"
        )
    return lines


SEED_TABLE_TITLES = {
    "models": "The seed's Model Metrics Dashboard, measured",
    "business": "The seed's business-impact claims, measured",
}


def _seed_tables_markdown(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines: list[str] = []
    for table, title in SEED_TABLE_TITLES.items():
        chosen = [r for r in rows if r["table"] == table]
        if not chosen:
            continue
        lines += ["", f"## {title}", "",
                  "| item | the seed's claim | what we measure | measured | anchor | verdict |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for r in chosen:
            verdict = r["verdict"] + (f" ({r['note']})" if r.get("note") else "")
            lines.append("| " + " | ".join(_cell(x) for x in (
                r["item"], r["claim"], r["definition"], r["measured"], r["anchor"], verdict
            )) + " |")  # fmt: skip
    return lines


def check_out(out: Path, option: str = "--out") -> None:
    """``out`` (given as ``option``) must be a folder or creatable as one (checked before
    the sweep)."""
    if out.exists() and not out.is_dir():
        raise InputError(out, option, "exists and is not a directory", "a directory path")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise InputError(out, option, "cannot create a folder here", "a writable directory path")


def write_results(
    out: Path,
    rows: Sequence[RunRow],
    document: Mapping[str, Any],
    *,
    evaluations: Evaluations | None = None,
    report_html: str,
) -> None:
    """Write :data:`RESULT_FILES` into ``out``: staged first, moved in when all are done."""
    check_out(out)
    table = results_table(
        rows,
        commit=document["git_commit"],
        packages=document["packages"],
        settings=document["settings"],
        evaluations=evaluations,
    )
    staging = staging_path(out)
    staging.mkdir()
    try:
        pq.write_table(table, staging / "results.parquet")
        (staging / "results.json").write_text(json.dumps(document, indent=2) + "\n")
        (staging / "REPORT.md").write_text(report_markdown(rows, document))
        (staging / "report.html").write_text(report_html)
        out.mkdir(parents=True, exist_ok=True)
        for name in RESULT_FILES:
            os.replace(staging / name, out / name)
    finally:
        discard(staging)


def results_document(
    rows: Sequence[RunRow],
    *,
    settings: Mapping[str, Any],
    skipped: Sequence[tuple[str, str, str]],
    wall_s: float,
    evaluations: Evaluations | None = None,
    markets: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """results.json's content (the seed tables are computed here from the runs and the
    evaluations)."""
    runs = [row.model_dump(exclude={"series"}) for row in rows]
    return {
        "schema_version": SCHEMA_VERSION,
        "git_commit": git_commit(),
        "packages": package_versions(),
        "settings": dict(settings),
        "wall_s": round(wall_s, 3),
        "runs": runs,
        "skipped": [{"scenario": s, "policy": p, "reason": r} for s, p, r in skipped],
        "series": [row.series.model_dump() for row in rows if row.series is not None],
        "markets": {k: dict(v) for k, v in (markets or {}).items()},
        "evaluations": evaluations.model_dump() if evaluations is not None else None,
        "seed_tables": [r.model_dump() for r in seed_tables(runs, evaluations)],
    }
