"""Figures to one HTML file: every figure inline as SVG, the style inline, no script and nothing
fetched, so the page opens offline, in a mail attachment or a locked-down browser alike.

Text in the SVGs stays text (``svg.fonttype = none``): smaller, searchable, and the reader's
sans-serif draws it. Several SVGs share one document, so each one's ids (clip paths, markers)
get the section's prefix; otherwise a later figure would clip to an earlier one's rectangle.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import matplotlib
from matplotlib.figure import Figure

from tradeplane import __version__
from tradeplane.report.figures import Plot
from tradeplane.report.model import ReportData

# No RDF block: it names a date (the page would differ run to run) and namespace URLs.
_NO_METADATA: dict[str, str | None] = {"Creator": None, "Date": None, "Format": None, "Type": None}
_SVG_NS = "http://www.w3.org/2000/svg"
ElementTree.register_namespace("", _SVG_NS)
ElementTree.register_namespace("xlink", "http://www.w3.org/1999/xlink")
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222;
       background: #f6f7f9; }
header { background: #1f2d3d; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 20px; }
header p { margin: 0; opacity: 0.8; font-size: 13px; }
main { max-width: 1060px; margin: 0 auto; padding: 12px 20px 40px; }
table.facts { border-collapse: collapse; margin: 12px 0; background: #fff; font-size: 14px; }
table.facts th { text-align: left; padding: 4px 16px 4px 10px; color: #555; font-weight: 600; }
table.facts td { padding: 4px 10px; font-variant-numeric: tabular-nums; }
table.facts tr:nth-child(odd) { background: #f0f2f5; }
section { background: #fff; margin: 16px 0; padding: 10px 16px 14px; border-radius: 6px;
          box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
section h2 { font-size: 16px; margin: 4px 0 6px 0; }
section p.note { margin: 4px 0 0 0; color: #555; font-size: 13px; }
section.empty p.note { font-style: italic; }
figure.plot { margin: 0; }
figure.plot svg { width: 100%; height: auto; display: block; }
ul.notes { font-size: 13px; color: #555; }
"""


def svg_of(figure: Figure, prefix: str, tooltips: Mapping[str, list[str]] | None = None) -> str:
    """The figure as an inline ``<svg>`` element whose ids all start with ``prefix``; the marks
    of each scatter named in ``tooltips`` get its lines as their hover text (``<title>``: the
    browser shows it, no script needed)."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tradeplane-report"}):
        figure.savefig(buf, format="svg", metadata=_NO_METADATA)
    text = buf.getvalue()
    if tooltips:
        text = _with_titles(text, tooltips)
    text = text[text.index("<svg") :]  # the XML declaration and doctype belong to a file
    text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    return _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)


def _with_titles(svg: str, tooltips: Mapping[str, list[str]]) -> str:
    root = ElementTree.fromstring(svg)
    for gid, lines in tooltips.items():
        group = root.find(f".//{{{_SVG_NS}}}g[@id='{gid}']")
        marks = [] if group is None else group.findall(f".//{{{_SVG_NS}}}use")
        if len(marks) != len(lines):
            continue  # not the marks we drew: leave them without hover text
        for mark, line in zip(marks, lines, strict=True):
            ElementTree.SubElement(mark, f"{{{_SVG_NS}}}title").text = line
    return ElementTree.tostring(root, encoding="unicode")


def _section(plot: Plot) -> str:
    title = html.escape(plot.title)
    note = f'<p class="note">{html.escape(plot.note)}</p>' if plot.note else ""
    if plot.figure is None:
        return (
            f'<section id="{plot.key}" class="empty" data-plot="none">'
            f"<h2>{title}</h2>{note}</section>"
        )
    return (
        f'<section id="{plot.key}" data-plot="{plot.key}"><h2>{title}</h2>'
        f'<figure class="plot" id="plot-{plot.key}">'
        f"{svg_of(plot.figure, plot.key, plot.tooltips)}</figure>"
        f"{note}</section>"
    )


def render_page(data: ReportData, plots: list[Plot], *, now: datetime | None = None) -> str:
    made = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in data.facts
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
    sections = "".join(_section(p) for p in plots)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(data.title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(data.title)}</h1>"
        f"<p>from {html.escape(data.source)}; made {made} by tradeplane {__version__}</p></header>"
        f'<main><table class="facts">{rows}</table>'
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + f"{sections}</main></body></html>\n"
    )


def write_pngs(plots: list[Plot], directory: Path, dpi: int = 110) -> list[Path]:
    """The same figures as PNG files, ``<section>.png``; sections without a figure are skipped."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for p in plots:
        if p.figure is None:
            continue
        path = directory / f"{p.key}.png"
        p.figure.savefig(path, format="png", dpi=dpi)
        out.append(path)
    return out
