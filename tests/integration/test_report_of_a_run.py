"""`tradeplane report` of a journal written by a real short run of the demo: the page draws what
a paper run journals, and the equity it rebuilds from the journaled fills ends where each
strategy's own books do."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_run_cli import ROOT, TRADEPLANE, run_demo, run_env
from tradeplane.core.portfolio import VirtualPortfolio
from tradeplane.journal.reader import JournalReader
from tradeplane.report.build import live_report
from tradeplane.report.journal_data import SNAPSHOT_SCOPE


def test_report_of_a_demo_run_draws_its_journal(ray_address: str, tmp_path: Path) -> None:
    state = tmp_path / "demo"
    run = run_demo(ray_address, state)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    out = tmp_path / "report.html"
    png = tmp_path / "png"
    made = subprocess.run(
        [TRADEPLANE, "report", "--state-dir", str(state), "--out", str(out), "--png", str(png)],
        capture_output=True,
        text=True,
        timeout=120,
        env=run_env(),
        cwd=ROOT,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stdout.strip().endswith(str(out.resolve()))
    page = out.read_text()
    for key in ("equity", "drawdown", "fills", "health", "tick_to_order"):
        section = re.search(rf'<section id="{key}"[^>]*>(.*?)</section>', page, re.S)
        assert section is not None and "<svg" in section.group(1), key
        assert (png / f"{key}.png").is_file()

    report = live_report(state)
    with JournalReader.open(state) as reader:
        snapshots = reader.states(SNAPSHOT_SCOPE)
        fills = reader.fills()
    assert report.data.fills and len(report.data.fills) == len(fills)
    assert not report.data.equity_is_pnl  # capital from the snapshots
    assert report.data.tick_to_order_ms
    curves = {s.name: s for s in report.data.equity}
    for name, snap in snapshots.items():
        books = VirtualPortfolio.restore(snap["portfolio"])
        assert curves[name].values[-1] == pytest.approx(books.equity, abs=1e-6), name
