"""``report.html`` (:func:`bench.report_html.render_report`): self-contained (no URL, no
script), both seed tables and every figure given full data, one line instead of a figure
whose data is missing, every data string escaped, equal bytes for equal data; and the
numbers and SVG handling it rests on (:mod:`bench.report_summary`, :mod:`bench.report_svg`,
the thinning in :mod:`bench.report_figures`)."""

from __future__ import annotations

import html
import re
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bench.report_data import EvalRow, ReportData, RunSeries, SeedClaimRow
from bench.report_figures import MAX_POINTS, block_ends, block_means, envelope
from bench.report_html import NOT_MEASURED, render_report
from bench.report_summary import first_seed_series, pareto_front, savings
from bench.report_svg import REPORT_RC, inline_svg
from sim.errors import InputError
from tests.bench.report_fixture import report_fixture

EVERY_FIGURE = {
    "figure-load-0",
    "figure-load-1",
    "figure-load-2",
    "figure-cost",
    "figure-savings",
    "figure-pareto",
    "figure-latency",
    "figure-nab",
    "figure-security",
}
"""The fixture's figures: a load figure per scenario (three), then one of each."""


@pytest.fixture(scope="module")
def full_page() -> str:
    return render_report(report_fixture())


def small_data(**changes: Any) -> ReportData:
    """A small fixture (one spot scenario, four policies, one seed, six hours) with
    ``changes`` applied to its fields."""
    data = report_fixture(
        spot_scenarios=("default",),
        on_demand_only=(),
        scaling=("reactive",),
        cost=("on-demand", "cost-rl", "hindsight"),
        seeds=1,
        days=0.25,
    )
    return data.model_copy(update=changes)


def figure_ids(page: str) -> set[str]:
    return set(re.findall(r'<svg class="plot" id="([^"]+)"', page))


def section(page: str, start: str, end: str) -> str:
    """The text of ``page`` between the first ``start`` and the next ``end`` after it."""
    begin = page.index(start)
    return page[begin : page.index(end, begin + len(start))]


class TagCollector(HTMLParser):
    """Every start tag and its attributes, and the text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(page)
    collector.close()
    return collector


# --------------------------------------------------------------------------- the page


def test_page_references_nothing_outside_itself(full_page: str) -> None:
    assert "http://" not in full_page and "https://" not in full_page
    assert "<script" not in full_page.lower()
    assert "<metadata" not in full_page and "<!DOCTYPE svg" not in full_page
    for tag, attrs in parse(full_page).tags:
        for name in ("src", "href", "xlink:href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("#", "data:")), (tag, name, value)
    # CSS may only point inside the page
    assert re.findall(r"url\((?!#)", full_page) == []


def test_page_states_the_run(full_page: str) -> None:
    data = report_fixture()
    header = section(full_page, '<header id="run">', "</header>")
    assert data.document["git_commit"] in header
    assert "numpy 2.4.6" in header
    assert "123.5 s" in header
    assert "process, 2 workers" in header


def test_both_seed_tables_with_their_rows(full_page: str) -> None:
    data = report_fixture()
    for table, title in (("models", "Model Metrics Dashboard"), ("business", "Business-impact")):
        html_table = section(full_page, f'<h3 id="seed-{table}">', "</table>")
        assert title in html_table
        for column in ("item", "seed&#x27;s claim", "definition", "measured", "anchor", "verdict"):
            assert f"<th>{column}</th>" in html_table
        rows = [r for r in data.seed_tables if r.table == table]
        assert html_table.count("<tr>") == len(rows) + 1  # the header
        for r in rows:
            for text in (r.item, r.claim, r.definition, r.measured, r.anchor, r.note):
                assert f"<td>{html.escape(text)}</td>" in html_table
            assert f">{r.verdict}</span>" in html_table


def test_full_data_draws_every_figure(full_page: str) -> None:
    assert figure_ids(full_page) == EVERY_FIGURE
    assert NOT_MEASURED not in full_page
    for svg in re.findall(r'<svg class="plot".*?</svg>', full_page, flags=re.S):
        assert svg.count("<path") + svg.count("<use") > 50  # axes, lines, glyphs


def test_replay_table_means_over_seeds(full_page: str) -> None:
    data = report_fixture()
    runs = [
        r
        for r in data.document["runs"]
        if r["scenario"] == "spot-storm" and r["policy"] == "cost-rl"
    ]
    assert len(runs) == 2
    mean_cost = sum(r["metrics"]["cost_usd"] for r in runs) / 2
    table = section(full_page, ">spot-storm</th></tr>", '<tr class="group">')
    row = section(table, "<td>cost-rl</td>", "</tr>")
    assert f">{mean_cost:,.2f}<" in row
    skipped = section(full_page, "<h3>Skipped pairs</h3>", "</ul>")
    assert skipped.count("<li>") == len(data.document["skipped"]) == 4
    assert "nasa-diurnal / cost-rl: no spot and on-demand pools" in skipped


def test_every_id_in_the_page_is_unique(full_page: str) -> None:
    ids = Counter(re.findall(r'\bid="([^"]+)"', full_page))
    assert [i for i, n in ids.items() if n > 1] == []
    references = set(re.findall(r'(?:href="#|url\(#)([^")]+)', full_page))
    assert references <= set(ids)  # every reference resolves in the page


def _without_evaluation(field: str, value: Any) -> Any:
    def change(data: ReportData) -> dict[str, Any]:
        assert data.evaluations is not None
        return {"evaluations": data.evaluations.model_copy(update={field: value})}

    return change


def _without_on_demand(data: ReportData) -> dict[str, Any]:
    runs = [r for r in data.document["runs"] if r["policy"] != "on-demand"]
    return {"document": {**data.document, "runs": runs}}


def _without_slo(data: ReportData) -> dict[str, Any]:
    runs = [
        {**r, "metrics": {k: v for k, v in r["metrics"].items() if k != "slo_attainment"}}
        for r in data.document["runs"]
    ]
    return {"document": {**data.document, "runs": runs}}


SMALL_FIGURES = EVERY_FIGURE - {"figure-load-1", "figure-load-2"}


@pytest.mark.parametrize(
    ("change", "gone", "why", "lines"),
    [
        (lambda d: {"series": ()}, {"figure-load-0", "figure-cost"}, "no run series", 2),
        (_without_on_demand, {"figure-savings"}, "no scenario with the on-demand policy", 1),
        (_without_slo, {"figure-pareto"}, "no run with both cost_usd and slo_attainment", 1),
        (_without_evaluation("latency", ()), {"figure-latency"}, "no latency samples", 1),
        (_without_evaluation("nab_example", None), {"figure-nab"}, "no NAB example", 1),
        (_without_evaluation("security_curve", None), {"figure-security"}, "no security curve", 1),
        (
            lambda d: {"evaluations": None},
            {"figure-latency", "figure-nab", "figure-security"},
            "no model evaluation",
            1,
        ),
        (lambda d: {"seed_tables": ()}, set(), "no model metrics dashboard rows", 2),
    ],
    ids=["series", "savings", "pareto", "latency", "nab", "security", "evaluations", "seed"],
)
def test_missing_data_is_one_line_and_the_rest_stays(
    change: Any, gone: set[str], why: str, lines: int
) -> None:
    base = small_data()
    page = render_report(base.model_copy(update=change(base)))
    assert figure_ids(page) == SMALL_FIGURES - gone
    assert f'<p class="missing">{NOT_MEASURED}: {why}' in page
    assert page.count(f'<p class="missing">{NOT_MEASURED}') == lines


def test_hostile_strings_are_escaped() -> None:
    base = small_data()
    evil_policy = "<script>alert(1)</script>"
    evil_scenario = 'x"><img src=x onerror=alert(2)>'
    runs = [
        {**r, "policy": evil_policy if r["policy"] == "cost-rl" else r["policy"],
         "scenario": evil_scenario}
        for r in base.document["runs"]
    ]  # fmt: skip
    series = tuple(
        s.model_copy(
            update={
                "scenario": evil_scenario,
                "policy": evil_policy if s.policy == "cost-rl" else s.policy,
            }
        )
        for s in base.series
    )
    document = {
        **base.document,
        "runs": runs,
        "git_commit": "</code><b>x",
        "packages": {"<i>pkg": "1 & 2"},
        "skipped": [{"scenario": "<u>s", "policy": "p$x$", "reason": "</li><script>x()"}],
    }
    assert base.evaluations is not None and base.evaluations.nab_example is not None
    evaluations = base.evaluations.model_copy(
        update={
            "rows": (
                EvalRow(
                    section="nab",
                    subject="<svg onload=alert(3)>",
                    dataset="d&d",
                    metric='"m"',
                    value=1.0,
                    unit="score",
                ),
            ),
            "nab_example": base.evaluations.nab_example.model_copy(
                update={"file": "$\\frac{1}{0}$ </text>", "detector": "<det>"}
            ),
        }
    )
    seed = (
        SeedClaimRow(
            table="models",
            item="<th>item",
            claim="</table><script>y()</script>",
            definition="a < b",
            measured="&amp;",
            anchor="'q'",
            verdict="reproduced",
            note="<!-- n -->",
        ),
    )
    page = render_report(
        base.model_copy(
            update={
                "document": document,
                "series": series,
                "evaluations": evaluations,
                "seed_tables": seed,
            }
        )
    )
    parsed = parse(page)
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags and "img" not in tags and "b" not in tags and "i" not in tags
    assert all(not name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    text = "".join(parsed.text)
    shown_as_text = (
        evil_policy, evil_scenario, "</code><b>x", "<i>pkg", "1 & 2", "</li><script>x()",
        "</table><script>y()</script>", "a < b", "&amp;", "<svg onload=alert(3)>",
    )  # fmt: skip
    for shown in shown_as_text:
        assert shown in text, shown  # shown as text, not markup
    assert figure_ids(page) == SMALL_FIGURES  # a name with $ draws as text, not a formula


def test_equal_data_give_equal_bytes(full_page: str) -> None:
    assert render_report(report_fixture()) == full_page
    assert "dc:date" not in full_page


def test_a_document_without_runs_is_refused_naming_the_field() -> None:
    base = small_data()
    document = {k: v for k, v in base.document.items() if k != "runs"}
    with pytest.raises(InputError, match=r"^results\.json: runs: missing"):
        render_report(base.model_copy(update={"document": document}))
    broken = {**base.document, "runs": [{"scenario": "s", "policy": "p", "seed": 1}]}
    with pytest.raises(InputError, match=r"runs\[0\]\.metrics: missing"):
        render_report(base.model_copy(update={"document": broken}))
    with pytest.raises(InputError, match=r"packages: a list, not a dict"):
        render_report(base.model_copy(update={"document": {**base.document, "packages": []}}))


def test_a_security_curve_of_unequal_lengths_is_refused() -> None:
    base = small_data()
    assert base.evaluations is not None and base.evaluations.security_curve is not None
    curve = base.evaluations.security_curve.model_copy(update={"recall": (0.5,)})
    evaluations = base.evaluations.model_copy(update={"security_curve": curve})
    with pytest.raises(InputError, match=r"security_curve: recall: 1 values for 151 fpr"):
        render_report(base.model_copy(update={"evaluations": evaluations}))


# --------------------------------------------------------------------------- the numbers


def _run(scenario: str, policy: str, seed: int, cost: float) -> dict[str, Any]:
    return {"scenario": scenario, "policy": policy, "seed": seed, "metrics": {"cost_usd": cost}}


def test_savings_pair_seeds_and_take_only_cost_policies() -> None:
    runs = [
        _run("a", "on-demand", 1, 100.0),
        _run("a", "on-demand", 2, 200.0),
        _run("a", "cost-rl", 1, 50.0),  # saves 50%
        _run("a", "cost-rl", 2, 180.0),  # saves 10%
        _run("a", "cost-rl", 3, 1.0),  # no on-demand run with seed 3: left out
        _run("a", "hindsight", 1, 40.0),
        _run("a", "reactive", 1, 10.0),  # sizes only: not a cost policy
        _run("a", "reactive+uniform-progress", 1, 75.0),
        _run("b", "reactive", 1, 10.0),  # no on-demand run: no savings for b
    ]
    (row,) = savings({"runs": runs})
    assert row.scenario == "a" and row.baseline_usd == 150.0
    assert [(s.policy, round(s.share, 6), s.usd) for s in row.savings] == [
        ("cost-rl", 0.3, 35.0),
        ("reactive+uniform-progress", 0.25, 25.0),
    ]
    assert row.bound is not None and (row.bound.policy, row.bound.share) == ("hindsight", 0.6)
    assert row.cheapest_spot_saving is None  # the sweep did not say what the market allowed
    market = {"a": {"spot_on_offer_share": 0.9, "cheapest_spot_saving": 0.55}}
    (row,) = savings({"runs": runs, "markets": market})
    assert (row.cheapest_spot_saving, row.spot_on_offer_share) == (0.55, 0.9)


def test_pareto_front_keeps_the_undominated_points_by_cost() -> None:
    points = [(10.0, 0.90), (12.0, 0.95), (11.0, 0.80), (12.0, 0.99), (20.0, 0.99), (9.0, 0.5)]
    assert pareto_front(points) == [5, 0, 3]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0]
    assert pareto_front([]) == []


def test_first_seed_series_takes_each_policys_lowest_seed() -> None:
    def one(scenario: str, policy: str, seed: int) -> RunSeries:
        one_bin = (1.0,)
        return RunSeries(scenario=scenario, policy=policy, seed=seed, bin_min=1, hours=one_bin,
                         offered_rps=one_bin, served_rps=one_bin, capacity_rps=one_bin,
                         cost_usd=one_bin)  # fmt: skip

    chosen = first_seed_series(
        [one("a", "p", 7), one("b", "p", 1), one("a", "p", 3), one("a", "q", 9)]
    )
    assert {k: [(s.policy, s.seed) for s in v] for k, v in chosen.items()} == {
        "a": [("p", 3), ("q", 9)],
        "b": [("p", 1)],
    }
    assert list(chosen) == ["a", "b"]


def test_thinning_keeps_means_ends_and_spikes() -> None:
    values = np.arange(1000, dtype=float)
    means = block_means(values)
    assert len(means) <= MAX_POINTS and means[0] == pytest.approx(np.mean(values[:5]))
    assert block_ends(values)[-1] == 999.0
    spiky = np.zeros(5000)
    spiky[3333] = 7.0
    rows, kept = envelope(spiky)
    assert len(rows) <= MAX_POINTS and 3333 in rows and kept.max() == 7.0
    assert list(envelope([1.0, 2.0])[1]) == [1.0, 2.0]


# --------------------------------------------------------------------------- the SVG


def _figure() -> Any:
    with plt.rc_context(REPORT_RC):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1, 2], [1, 3, 2], label="a $x$ <b>")
        ax.legend()
        return fig


def test_inline_svg_is_scoped_and_standalone() -> None:
    svg = inline_svg(_figure(), "one", 'label "<x>"')
    assert svg.startswith('<svg class="plot" id="figure-one" viewBox="0 0 216 144"')
    assert 'aria-label="label &quot;&lt;x&gt;&quot;"' in svg
    assert "xmlns" not in svg and "<!--" not in svg and "<style" not in svg
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert len(ids) > 5 and all(i.startswith("one-") for i in ids[1:])
    assert all(r.startswith("one-") for r in re.findall(r'(?:href="#|url\(#)([^")]+)', svg))
    assert inline_svg(_figure(), "one", "x") == inline_svg(_figure(), "one", "x")
    with pytest.raises(ValueError, match="figure name"):
        inline_svg(_figure(), "One Two", "x")
