"""``report.html`` of ``opsbench bench all``: the sweep and the model evaluations as one
self-contained page (:func:`render_report`).

The page needs nothing but itself: inline CSS, figures as inline SVG
(:mod:`bench.report_svg`), no script, no URL; its Content-Security-Policy forbids loading
anything else, so a browser reports any reference that slips in. Every string from the
data is escaped. Equal data give equal bytes.

Sections: the run (commit, packages, settings, wall time); the seed's claims (the model
dashboard and the business-impact claims, :class:`~bench.report_data.SeedClaimRow`); the
replays (means over seeds per scenario and policy, skipped pairs); the replay figures
(load against capacity, cumulative cost, savings against ``on-demand``, SLO attainment
against cost); the model evaluations (table, decision latency, a NAB example, the
security detection curve). A figure whose data the run lacks is one line saying so.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from bench import report_figures as figures
from bench.report_data import EvalRow, ReportData, SeedClaimRow
from bench.report_summary import (
    BASELINE_POLICY,
    BOUND_POLICY,
    check_document,
    first_seed_series,
    mean_metric,
    ordered,
    policies,
    runs_of,
    savings,
    scenarios,
)
from bench.report_svg import REPORT_RC, SVG_STYLE, inline_svg
from bench.sweep_results import REPORT_COLUMNS

NOT_MEASURED = "Not measured in this run"
SEED_TABLES = (
    ("models", "Model Metrics Dashboard", "The seed's model metrics beside ours."),
    ("business", "Business-impact claims", "The seed's business claims beside ours."),
)
SECTION_TITLES = {
    "forecast": "Load forecasting",
    "nab": "Anomaly detection (NAB)",
    "security": "Security detection",
    "hdfs": "Log anomalies (HDFS)",
    "latency": "Decision latency",
}
UNIT_FORMATS = {
    "share": "{:.2%}",
    "ratio": "{:.3f}",
    "score": "{:.1f}",
    "ms": "{:,.3f} ms",
    "count": "{:,.0f}",
    "per_s": "{:,.1f}/s",
}
"""How an :class:`~bench.report_data.EvalRow` value is shown, by its unit."""
VERDICT_CLASSES = {
    "reproduced": "ok",
    "not reproduced": "bad",
    "not measured here": "none",
}
NUMERIC = ' class="num"'
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing but the page itself: a reference to anything else is blocked and logged."""

CSS = (
    """
:root{--ink:#1d2330;--muted:#5b6475;--line:#dfe3ea;--band:#f5f7fa;--accent:#1f5fa6}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px 28px 64px}
header{border-bottom:2px solid var(--accent);padding-bottom:12px;margin-bottom:8px}
h1{font-size:26px;margin:0 0 6px}
h2{font-size:20px;margin:36px 0 8px;padding-top:8px;border-top:1px solid var(--line)}
h3{font-size:16px;margin:22px 0 6px}
p.lead{color:var(--muted);margin:4px 0 12px}
p.missing{color:var(--muted);font-style:italic;margin:6px 0 12px}
nav{font-size:13px;margin:10px 0 0}
nav a{color:var(--accent);margin-right:14px;text-decoration:none}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0}
code{font:12.5px ui-monospace,"DejaVu Sans Mono",monospace;background:var(--band);padding:0 3px}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:var(--band);font-weight:600;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.group th{background:#eef2f8;color:var(--accent);font-weight:600}
.verdict{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;white-space:nowrap}
.verdict.ok{background:#dff3e4;color:#17612e}
.verdict.bad{background:#fbe1e1;color:#8a1c1c}
.verdict.none{background:#eceef2;color:#4a5263}
.packages{font-size:12.5px;color:var(--muted)}
figure{margin:10px 0 22px}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
svg.plot{display:block;width:100%;height:auto}
details{margin:6px 0}
details>summary{cursor:pointer;font-weight:600;color:var(--accent)}
ul.skipped{margin:4px 0 12px}
"""
    + SVG_STYLE
    + "\n"
)


def render_report(data: ReportData) -> str:
    """The whole ``report.html`` of ``data`` (InputError when ``data.document`` lacks a
    field of results.json the page shows)."""
    document = data.document
    check_document(document)
    colours = figures.policy_colours(
        ordered([*policies(document), *(s.policy for s in data.series)])
    )
    with matplotlib.rc_context(REPORT_RC):
        sections = [
            _run_section(data),
            _seed_section(data.seed_tables),
            _replay_section(document),
            _load_section(data),
            _cost_section(data, colours),
            _savings_section(document, colours),
            _pareto_section(document, colours),
            _evaluation_section(data),
        ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>opsbench bench all: {_e(_short_commit(document))}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- helpers


def _e(value: object) -> str:
    """``value`` as escaped HTML text (quotes too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def _short_commit(document: Mapping[str, Any]) -> str:
    commit = str(document["git_commit"])
    head, dirty, _ = commit.partition("-dirty")
    return head[:12] + ("-dirty" if dirty else "")


def _missing(what: str) -> str:
    return f'<p class="missing">{NOT_MEASURED}: {_e(what)}.</p>'


def _figure(fig: Figure, name: str, caption: str) -> str:
    return (
        f"<figure>{inline_svg(fig, name, caption)}<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(head: Sequence[str], rows: Sequence[str], numeric_from: int) -> str:
    cells = "".join(
        f"<th{NUMERIC if i >= numeric_from else ''}>{_e(h)}</th>" for i, h in enumerate(head)
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _row(cells: Sequence[str], numeric_from: int) -> str:
    """A table row of already escaped ``cells``."""
    return (
        "<tr>"
        + "".join(
            f"<td{NUMERIC if i >= numeric_from else ''}>{c}</td>" for i, c in enumerate(cells)
        )
        + "</tr>"
    )


def _group_row(title: str, width: int) -> str:
    return f'<tr class="group"><th colspan="{width}">{_e(title)}</th></tr>'


# --------------------------------------------------------------------------- sections


def _run_section(data: ReportData) -> str:
    document = data.document
    settings = document["settings"]
    days = settings.get("days")
    facts = [
        ("commit", f"<code>{_e(document['git_commit'])}</code>"),
        ("replays", f"{len(document['runs'])} ({len(document['skipped'])} pairs skipped)"),
        ("scenarios", _e(", ".join(scenarios(document)) or "none")),
        ("policies", _e(", ".join(policies(document)) or "none")),
        ("seeds", _e(settings.get("seeds", "?"))),
        ("simulated days", "each scenario's own" if days is None else _e(f"{float(days):g}")),
        (
            "executor",
            _e(f"{settings.get('executor', '?')}, {settings.get('workers', '?')} workers")
            + (" (quick)" if settings.get("quick") else ""),
        ),
        ("sweep wall time", _e(f"{float(document['wall_s']):,.1f} s (with the executor's start)")),
    ]
    if data.evaluations is not None and data.evaluations.wall_s:
        walls = ", ".join(f"{k} {v:,.1f} s" for k, v in data.evaluations.wall_s.items())
        facts.append(("evaluations wall time", _e(walls)))
    packages = ", ".join(f"{name} {ver}" for name, ver in document["packages"].items())
    links = "".join(
        f'<a href="#{anchor}">{_e(title)}</a>'
        for anchor, title in (
            ("seed", "seed claims"),
            ("replays", "replays"),
            ("load", "load"),
            ("cost", "cost"),
            ("savings", "savings"),
            ("pareto", "SLO vs cost"),
            ("evaluations", "model evaluations"),
        )
    )
    return (
        '<header id="run"><h1>opsbench bench all</h1>'
        '<p class="lead">Every policy replayed on every scenario and seed, and the models '
        "measured on their own, in one run.</p>"
        '<dl class="facts">'
        + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts)
        + f'</dl><p class="packages">packages: {_e(packages)}</p>'
        f"<nav>{links}</nav></header>"
    )


def _seed_section(rows: Sequence[SeedClaimRow]) -> str:
    parts = [
        '<section id="seed"><h2>The seed\'s claims beside our measurements</h2>',
        '<p class="lead">Each claim of the source pipeline verbatim, what we measure for it, '
        "our figure, the reference beside it and whether the claim holds.</p>",
    ]
    head = ("item", "seed's claim", "definition", "measured", "anchor", "verdict", "note")
    for table, title, lead in SEED_TABLES:
        parts.append(f'<h3 id="seed-{table}">{_e(title)}</h3>')
        chosen = [r for r in rows if r.table == table]
        if not chosen:
            parts.append(_missing(f"no {title.lower()} rows"))
            continue
        parts.append(f'<p class="lead">{_e(lead)}</p>')
        body = [
            _row(
                [
                    _e(r.item),
                    _e(r.claim),
                    _e(r.definition),
                    _e(r.measured),
                    _e(r.anchor),
                    f'<span class="verdict {VERDICT_CLASSES[r.verdict]}">{_e(r.verdict)}</span>',
                    _e(r.note),
                ],
                numeric_from=len(head),
            )
            for r in chosen
        ]
        parts.append(_table(head, body, numeric_from=len(head)))
    parts.append("</section>")
    return "".join(parts)


def _replay_section(document: Mapping[str, Any]) -> str:
    head = ["policy", "seeds", "days"] + [label for _, label, _ in REPORT_COLUMNS]
    rows: list[str] = []
    for scenario in scenarios(document):
        rows.append(_group_row(scenario, len(head)))
        for policy in policies(document):
            runs = runs_of(document, scenario, policy)
            if not runs:
                continue
            days = sorted({float(r.get("sim_days", float("nan"))) for r in runs})
            cells = [_e(policy), _e(len(runs)), _e(", ".join(f"{d:g}" for d in days))]
            for metric, _, fmt in REPORT_COLUMNS:
                mean = mean_metric(runs, metric)
                cells.append("-" if mean is None else _e(fmt.format(mean)))
            rows.append(_row(cells, numeric_from=1))
    table = _table(head, rows, numeric_from=1) if rows else _missing("no replay")
    skipped = document["skipped"]
    if skipped:
        items = "".join(
            f"<li>{_e(s.get('scenario', '?'))} / {_e(s.get('policy', '?'))}: "
            f"{_e(s.get('reason', ''))}</li>"
            for s in skipped
        )
        skipped_html = f'<h3>Skipped pairs</h3><ul class="skipped">{items}</ul>'
    else:
        skipped_html = "<h3>Skipped pairs</h3><p>None: every policy ran on every scenario.</p>"
    return (
        '<section id="replays"><h2>Replays</h2>'
        '<p class="lead">Means over seeds per scenario and policy. SLO attainment: the share of '
        "simulated minutes whose p95 latency met the scenario's SLO with no request dropped; "
        "cost in dollars over the replayed days.</p>"
        f"{table}{skipped_html}</section>"
    )


def _load_section(data: ReportData) -> str:
    parts = ['<section id="load"><h2>Load, capacity and served load</h2>']
    by_scenario = first_seed_series(data.series)
    if not by_scenario:
        parts.append(_missing("no run series"))
    else:
        parts.append(
            '<p class="lead">Per scenario, a panel per policy (its first seed): the offered '
            "load as a line on top, the served load as the area under it, the unserved part "
            "shaded between them, and the serving capacity at the target utilisation.</p>"
        )
    for i, (scenario, series) in enumerate(by_scenario.items()):
        figure = _figure(
            figures.load_figure(series),
            f"load-{i}",
            f"{scenario}: offered, served and capacity (requests/s) per policy",
        )
        opened = " open" if i == 0 else ""
        parts.append(f"<details{opened}><summary>{_e(scenario)}</summary>{figure}</details>")
    parts.append("</section>")
    return "".join(parts)


def _cost_section(data: ReportData, colours: Mapping[str, str]) -> str:
    by_scenario = first_seed_series(data.series)
    if not by_scenario:
        content = _missing("no run series")
    else:
        content = _figure(
            figures.cost_figure(by_scenario, colours),
            "cost",
            "Cumulative cost (USD) per policy, a panel per scenario (first seed)",
        )
    return f'<section id="cost"><h2>Cumulative cost</h2>{content}</section>'


def _savings_section(document: Mapping[str, Any], colours: Mapping[str, str]) -> str:
    rows = [r for r in savings(document) if r.savings or r.bound is not None]
    if not rows:
        content = _missing(f"no scenario with the {BASELINE_POLICY} policy and a cost policy")
    else:
        content = (
            f'<p class="lead">Per scenario with spot and on-demand pools, each cost policy\'s '
            f"saving against the {_e(BASELINE_POLICY)} policy's cost (seeds paired, mean over "
            f"seeds); the dashed line is the {_e(BOUND_POLICY)} policy's saving, which knows "
            "the prices and interruptions ahead: the bound; the dotted line, what the market "
            "allowed: the saving of paying the cheapest spot price on offer every minute "
            "(on-demand's when no spot was on offer), which is not a bound (spot nodes "
            "already running outlive a drop in availability).</p>"
            + _figure(
                figures.savings_figure(rows, colours),
                "savings",
                f"Saving against {BASELINE_POLICY} per cost policy and scenario",
            )
        )
    return f'<section id="savings"><h2>Savings against on-demand</h2>{content}</section>'


def _pareto_section(document: Mapping[str, Any], colours: Mapping[str, str]) -> str:
    points: dict[str, list[tuple[str, int, float, float]]] = {}
    for run in document["runs"]:
        metrics = run["metrics"]
        if "cost_usd" in metrics and "slo_attainment" in metrics:
            points.setdefault(run["scenario"], []).append(
                (
                    run["policy"],
                    int(run["seed"]),
                    float(metrics["cost_usd"]),
                    float(metrics["slo_attainment"]),
                )
            )
    if not points:
        content = _missing("no run with both cost_usd and slo_attainment")
    else:
        content = (
            '<p class="lead">A point per policy and seed; the ringed points joined by the '
            "step line are the Pareto front (no other run is both cheaper and better on "
            "SLO).</p>"
            + _figure(
                figures.pareto_figure(points, colours),
                "pareto",
                "SLO attainment against cost per scenario, with the Pareto front",
            )
        )
    return f'<section id="pareto"><h2>SLO attainment against cost</h2>{content}</section>'


def _evaluation_section(data: ReportData) -> str:
    evaluations = data.evaluations
    parts = ['<section id="evaluations"><h2>Model evaluations</h2>']
    if evaluations is None:
        parts.append(_missing("no model evaluation"))
        parts.append("</section>")
        return "".join(parts)
    parts.append(_evaluation_table(evaluations.rows))
    parts.append(
        _optional_figure(
            "Decision latency",
            "latency",
            bool(evaluations.latency),
            lambda: figures.latency_figure(evaluations.latency),
            "Decision wall time per call, in-process against http, per model",
            "no latency samples",
        )
    )
    example = evaluations.nab_example
    parts.append(
        _optional_figure(
            "NAB example",
            "nab",
            example is not None,
            lambda: figures.nab_figure(example),  # type: ignore[arg-type]
            "A NAB file: values, labelled windows, probationary period and the alerts",
            "no NAB example",
        )
    )
    curve = evaluations.security_curve
    parts.append(
        _optional_figure(
            "Security detection: recall against false-positive rate",
            "security",
            curve is not None,
            lambda: figures.security_figure(curve),  # type: ignore[arg-type]
            "Recall of malicious events against the false-positive rate on normal events",
            "no security curve",
        )
    )
    parts.append("</section>")
    return "".join(parts)


def _optional_figure(
    title: str, name: str, present: bool, build: Callable[[], Figure], caption: str, why: str
) -> str:
    content = _figure(build(), name, caption) if present else _missing(why)
    return f'<h3 id="{name}">{_e(title)}</h3>{content}'


def _evaluation_table(rows: Sequence[EvalRow]) -> str:
    if not rows:
        return _missing("no evaluation figure")
    head = ("subject", "dataset", "metric", "value")
    body: list[str] = []
    for section in dict.fromkeys(r.section for r in rows):
        body.append(_group_row(SECTION_TITLES.get(section, section), len(head)))
        for r in rows:
            if r.section == section:
                value = UNIT_FORMATS[r.unit].format(r.value)
                body.append(
                    _row([_e(r.subject), _e(r.dataset), _e(r.metric), _e(value)], numeric_from=3)
                )
    return _table(head, body, numeric_from=3)
