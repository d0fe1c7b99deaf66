"""The report's page in a real headless chromium: it loads without a script error or a failed
request, and every plot draws (its region of a screenshot is not blank)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.report_samples import CAPITAL, DEP, write_backtest_dir, write_drift_csv, write_journal
from tradeplane.report.build import Report, backtest_report, live_report

pytestmark = pytest.mark.browser

MIN_STD = 8.0  # grey levels: a drawn plot's lines and text against white are far above this
MIN_INK = 0.02  # fraction of the region's pixels that differ from its most common colour


@dataclass
class Loaded:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    plots: dict[str, bytes] = field(default_factory=dict)  # section -> its figure's screenshot
    sizes: dict[str, tuple[float, float]] = field(default_factory=dict)
    empty_notes: dict[str, str] = field(default_factory=dict)


def load(browser: Any, html_path: Path) -> Loaded:
    out = Loaded()
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        page.on("console", lambda m: out.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: out.errors.append(str(e)))
        page.on("requestfailed", lambda r: out.errors.append(f"request failed: {r.url}"))
        page.on("request", lambda r: out.requests.append(r.url))
        page.goto(html_path.resolve().as_uri(), wait_until="load")
        for section in page.locator("section").all():
            key = section.get_attribute("id") or "?"
            figure = section.locator("figure.plot svg")
            if figure.count() == 0:
                out.empty_notes[key] = section.locator("p.note").inner_text()
                continue
            box = figure.bounding_box()
            assert box is not None, key
            out.sizes[key] = (box["width"], box["height"])
            out.plots[key] = figure.screenshot()
    finally:
        page.close()
    return out


def ink(png: bytes) -> tuple[float, float]:
    """The screenshot's grey-level spread and the fraction of pixels not of its main colour."""
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    values, counts = np.unique(grey, return_counts=True)
    main = values[np.argmax(counts)]
    return float(grey.std()), float(np.mean(grey != main))


def drawn(png: bytes) -> bool:
    std, share = ink(png)
    return std > MIN_STD and share > MIN_INK


def write(report: Report, path: Path) -> Path:
    path.write_text(report.html(), encoding="utf-8")
    return path


def test_a_live_report_loads_cleanly_and_every_plot_draws(browser: Any, tmp_path: Path) -> None:
    state = write_journal(tmp_path / "state")
    write_drift_csv(state)
    baseline = write_backtest_dir(tmp_path / "bt")
    report = live_report(state, deployment=DEP, capital=CAPITAL, baseline=baseline)
    loaded = load(browser, write(report, tmp_path / "report.html"))
    assert loaded.errors == []
    assert [u for u in loaded.requests if not u.startswith("file:")] == []
    expected = ["equity", "drawdown", "drift", "fills", "denials", "health", "tick_to_order"]
    assert sorted(loaded.plots) == sorted(expected)
    for key, png in loaded.plots.items():
        width, height = loaded.sizes[key]
        assert width > 500 and height > 80, (key, width, height)
        assert drawn(png), (key, ink(png))


def test_a_backtest_report_draws_its_plots_and_names_the_missing_ones(
    browser: Any, tmp_path: Path
) -> None:
    report = backtest_report(write_backtest_dir(tmp_path / "bt"))
    loaded = load(browser, write(report, tmp_path / "report.html"))
    assert loaded.errors == []
    assert sorted(loaded.plots) == ["denials", "drawdown", "equity", "fills"]
    assert all(drawn(png) for png in loaded.plots.values())
    assert loaded.empty_notes["health"] == "no health data: a backtest has no health"
    assert loaded.empty_notes["drift"].startswith("no drift data")


def test_a_blank_plot_and_a_script_error_are_caught(browser: Any, tmp_path: Path) -> None:
    """The checks above can fail: an empty figure is not drawn, a broken script is reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body>"
        '<section id="equity"><figure class="plot">'
        '<svg width="600" height="200" xmlns="http://www.w3.org/2000/svg">'
        '<rect width="600" height="200" fill="white"/></svg></figure></section>'
        "<script>undefinedFunction()</script></body></html>"
    )
    loaded = load(browser, page)
    assert any("undefinedFunction" in e for e in loaded.errors)
    assert not drawn(loaded.plots["equity"])
