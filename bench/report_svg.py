"""Matplotlib figures as SVG elements to paste into an HTML page.

:func:`inline_svg` turns a figure into one ``<svg>`` element that

- is the same bytes for the same figure: element ids are hashed with a fixed salt
  (``svg.hashsalt``), no date or creator is written;
- references nothing outside itself: no XML prolog or DOCTYPE, no namespace or metadata
  URLs (HTML's parser puts ``<svg>`` in the SVG namespace by itself), text drawn as glyph
  paths (``svg.fonttype = path``: no font needed), no comments (matplotlib writes each
  text as one);
- can sit beside other figures in one page: every id is prefixed with the figure's name,
  so two figures never share an id;
- scales with the page: no fixed width or height, only the ``viewBox``;
- is small: path coordinates keep two decimals (of a point), whitespace between tags goes.

The one style rule matplotlib puts in each SVG (:data:`SVG_STYLE`) is left out; the page
states it once.
"""

from __future__ import annotations

import html
import io
import re

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

SVG_STYLE = "svg.plot *{stroke-linejoin:round;stroke-linecap:butt}"
"""The style rule every matplotlib SVG carries, for the page's stylesheet."""

REPORT_RC = {"text.parse_math": False, "svg.fonttype": "path", "font.size": 9.0}
"""Matplotlib settings for the report's figures, to build them under (``rc_context``):
labels are drawn literally (a policy named ``a$b$`` is no formula, and a bad formula would
fail the figure), text as glyph paths."""

_METADATA_OFF = {"Date": None, "Creator": None, "Format": None, "Type": None}
_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(\bid="|\bhref="#|url\(#)([^")]+)')
_PATH_DATA = re.compile(r'\bd="[^"]*"')
_DECIMALS = re.compile(r"(\.\d{2})\d+")
"""Path coordinates (points) keep two decimals: a hundredth of a point is invisible."""
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def inline_svg(fig: Figure, name: str, label: str) -> str:
    """``fig`` as one ``<svg class="plot">`` element (see the module's docstring); the
    figure is closed. ``name`` (lower case, digits and dashes) prefixes its ids, its own id
    is ``figure-NAME``, and it must be unique in the page; ``label`` is its accessible name
    (escaped here)."""
    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r}: lower-case letters, digits and dashes")
    buffer = io.StringIO()
    try:
        with matplotlib.rc_context({**REPORT_RC, "svg.hashsalt": f"opsbench-{name}"}):
            fig.savefig(buffer, format="svg", metadata=_METADATA_OFF)
    finally:
        plt.close(fig)
    text = buffer.getvalue()
    start = text.index("<svg")
    root_end = text.index(">", start)
    view_box = re.search(r'viewBox="([^"]+)"', text[start:root_end])
    if view_box is None:
        raise ValueError("matplotlib wrote an SVG without a viewBox")
    body = text[root_end + 1 :]
    body = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    body = re.sub(r"<metadata>.*?</metadata>", "", body, flags=re.S)
    body = re.sub(r'<style type="text/css">[^<]*</style>', "", body)
    body = re.sub(r"\s*\n\s*", " ", body)
    body = re.sub(r">\s+<", "><", body).strip()
    body = _PATH_DATA.sub(lambda m: _DECIMALS.sub(r"\1", m.group(0)), body)
    body = _scope_ids(body, name)
    return (
        f'<svg class="plot" id="figure-{name}" viewBox="{view_box.group(1)}" role="img" '
        f'aria-label="{html.escape(label, quote=True)}">{body}'
    )


def _scope_ids(svg: str, prefix: str) -> str:
    """``svg`` with every id it defines, and every reference to one, prefixed."""
    ids = set(_ID.findall(svg))

    def rename(match: re.Match[str]) -> str:
        lead, ident = match.group(1), match.group(2)
        return f"{lead}{prefix}-{ident}" if ident in ids else match.group(0)

    return _REFERENCE.sub(rename, svg)
