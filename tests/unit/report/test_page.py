"""The HTML page (``tradeplane.report.page``): self-contained, no script, ids unique."""

from __future__ import annotations

import re
from pathlib import Path

from tests.report_samples import CAPITAL, DEP, write_drift_csv
from tradeplane.report.build import live_report
from tradeplane.report.model import ReportData
from tradeplane.report.page import render_page


def page_of(state: Path, baseline: Path | None = None) -> str:
    return live_report(state, deployment=DEP, capital=CAPITAL, baseline=baseline).html()


def test_the_page_has_no_script_and_fetches_nothing(state: Path, backtest_dir: Path) -> None:
    write_drift_csv(state)
    page = page_of(state, backtest_dir)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower() and "@import" not in page
    # The only URLs are SVG's namespace names, which are never fetched.
    urls = set(re.findall(r"""https?://[^"'\s)]+""", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert not re.search(r"""(src|href)=["'](?!#)""", page)


def test_each_drawn_section_holds_one_inline_svg(state: Path) -> None:
    page = page_of(state)
    for key in ("equity", "drawdown", "fills", "denials", "health", "tick_to_order"):
        section = re.search(rf'<section id="{key}"[^>]*>(.*?)</section>', page, re.S)
        assert section is not None, key
        assert section.group(1).count("<svg") == 1, key
    assert '<section id="drift" class="empty" data-plot="none">' in page


def test_ids_are_unique_across_the_figures(state: Path, backtest_dir: Path) -> None:
    page = page_of(state, backtest_dir)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    # every internal reference points at an id of the page
    refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', page))
    assert refs and refs <= set(ids)


def test_text_from_the_journal_is_escaped() -> None:
    data = ReportData(title="<b>x</b>", source="<script>alert(1)</script>", kind="live")
    data.facts = [("deployment", "<img src=x>")]
    data.notes = ["a & b"]
    page = render_page(data, [])
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page and "a &amp; b" in page


def test_each_fill_and_incident_mark_has_its_hover_text(state: Path) -> None:
    page = page_of(state)
    titles = re.findall(r"<title>([^<]*)</title>", page)
    assert "buy 100 AAA at 100 (s1), 2023-11-14 22:13:32 UTC" in titles
    assert "sell 100 AAA at 110 (s1), 2023-11-14 22:14:21 UTC" in titles
    assert "actor_died: feed: SIGKILL, 2023-11-14 22:13:51 UTC" in titles
    assert len([t for t in titles if " at " in t]) == 3  # one per fill
