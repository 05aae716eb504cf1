"""``report.html`` in a real browser: headless Chromium opens the fixture's report from a
file, with no console message (the page has no script, and its Content-Security-Policy
makes the browser log any reference to something outside the page), and every figure
draws ink on the screen.

Chromium logs the page's console on stderr (``--enable-logging=stderr --v=1``) as
``...:INFO:CONSOLE:LINE] "message", source: URL (LINE)`` (older builds:
``INFO:CONSOLE(LINE)``), the same for every console level: any such line fails the
report. A page that calls ``console.error`` shows the check can fail.

The figures are measured on a contact sheet: each of the report's ``<svg>`` elements, as
the report has it, in a fixed 600 x 400 px cell, so each cell of the screenshot is one
figure; an empty cell on the same sheet must measure blank.

Skipped when no Chromium is installed (``make browser`` installs Debian's).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.report_html import render_report
from bench.report_svg import SVG_STYLE
from tests.bench.report_fixture import report_fixture

CONSOLE_LINE = re.compile(r":CONSOLE(?::\d+|\(\d+\))\]")
CELL_W, CELL_H, GAP, COLUMNS = 600, 400, 20, 2
INK_SHARE_MIN = 0.02
"""A drawn figure covers at least this share of its cell with non-white pixels."""
WHITE = 245
"""Grey level (0-255) from which a pixel counts as white."""


def find_chromium() -> str | None:
    """``chromium`` or ``chromium-browser`` on PATH, else ``/usr/bin/chromium``."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium (chromium or chromium-browser on PATH, or /usr/bin/chromium); "
    "`make browser` installs Debian's",
)


@dataclass(frozen=True)
class Screenshot:
    console: list[str]
    """Chromium's CONSOLE log lines for the page."""
    grey: np.ndarray
    """The screenshot, grey levels 0-255, rows x columns."""


def screenshot(page: Path, work: Path, height: int) -> Screenshot:
    """Open ``page`` in headless Chromium at 1280 x ``height`` px and take a screenshot."""
    assert CHROMIUM is not None
    png = work / f"{page.stem}.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={work / 'profile'}",  # own profile: tests may run side by side
        f"--screenshot={png}",
        f"--window-size=1280,{height}",
        "--enable-logging=stderr",
        "--v=1",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=180)
    assert png.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-3000:]}"
    console = [line for line in done.stderr.splitlines() if CONSOLE_LINE.search(line)]
    with Image.open(png) as image:
        grey = np.asarray(image.convert("L"))
    return Screenshot(console, grey)


def ink_share(grey: np.ndarray) -> float:
    """The share of non-white pixels."""
    return float(np.mean(grey < WHITE))


@pytest.fixture(scope="module")
def report_html() -> str:
    return render_report(report_fixture())


def plot_svgs(page: str) -> list[str]:
    """The report's figures, each a whole ``<svg class="plot">`` element."""
    return re.findall(r'<svg class="plot".*?</svg>', page, flags=re.S)


def test_report_opens_without_console_messages(report_html: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report_html)
    shot = screenshot(page, tmp_path, 2400)
    assert shot.console == []
    assert shot.grey.shape == (2400, 1280)
    assert ink_share(shot.grey) > INK_SHARE_MIN and float(shot.grey.std()) > 10.0


def test_a_console_error_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "error.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>probe</p>"
        '<script>console.error("opsbench-probe-error")</script></body></html>'
    )
    shot = screenshot(page, tmp_path, 300)
    assert any("opsbench-probe-error" in line for line in shot.console), shot.console


def test_a_blocked_outside_reference_is_caught(report_html: str, tmp_path: Path) -> None:
    """The report's Content-Security-Policy turns a reference that slipped in into a
    console message."""
    page = tmp_path / "leaky.html"
    page.write_text(
        report_html.replace("</main>", '<img src="https://example.invalid/x.png" alt=""></main>')
    )
    shot = screenshot(page, tmp_path, 300)
    assert any("Content Security Policy" in line for line in shot.console), shot.console


def test_every_figure_draws_ink(report_html: str, tmp_path: Path) -> None:
    svgs = plot_svgs(report_html)
    assert len(svgs) == 9
    control = '<svg class="plot" viewBox="0 0 100 60"></svg>'  # must measure blank
    cells = [*svgs, control]
    rows = -(-len(cells) // COLUMNS)
    boxes = [
        (GAP + (i % COLUMNS) * (CELL_W + GAP), GAP + (i // COLUMNS) * (CELL_H + GAP))
        for i in range(len(cells))
    ]
    body = "".join(
        f'<div class="cell" style="left:{x}px;top:{y}px">{svg}</div>'
        for (x, y), svg in zip(boxes, cells, strict=True)
    )
    page = tmp_path / "sheet.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>"
        f"body{{margin:0;background:#fff}}{SVG_STYLE}"
        f".cell{{position:absolute;width:{CELL_W}px;height:{CELL_H}px;overflow:hidden}}"
        ".cell svg{width:100%;height:100%}</style></head>"
        f"<body>{body}</body></html>"
    )
    shot = screenshot(page, tmp_path, GAP + rows * (CELL_H + GAP))
    assert shot.console == []
    shares = [ink_share(shot.grey[y : y + CELL_H, x : x + CELL_W]) for x, y in boxes]
    names = [*re.findall(r'<svg class="plot" id="([^"]+)"', report_html), "control"]
    drawn = dict(zip(names, shares, strict=True))
    assert drawn.pop("control") == 0.0, "an empty cell must measure blank"
    assert {n: s for n, s in drawn.items() if s < INK_SHARE_MIN} == {}


def test_every_inline_image_has_content(report_html: str) -> None:
    svgs = plot_svgs(report_html)
    assert len(svgs) == 9
    for svg in svgs:
        view_box = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
        assert view_box and float(view_box.group(1)) > 100 and float(view_box.group(2)) > 100
        assert svg.count("<path") + svg.count("<use") > 50, svg[:200]
    for image in re.findall(r"<img\b[^>]*>", report_html):
        source = re.search(r'src="(data:image/(?:png|svg\+xml);base64,[^"]+)"', image)
        assert source and len(source.group(1)) > 500, image[:200]
