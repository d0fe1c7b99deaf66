"""The report's figures from its data (``tradeplane.report.figures``), without a browser."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.collections import PathCollection

from tests.report_samples import CAPITAL, DEP, T0, backtest_report_doc, write_drift_csv
from tradeplane.journal.reader import JournalReader
from tradeplane.report.build import live_report
from tradeplane.report.figures import Plot, build_plots
from tradeplane.report.journal_data import read_journal
from tradeplane.report.model import FillMark, ReportData, Series

SECTIONS = ["equity", "drawdown", "drift", "fills", "denials", "health", "tick_to_order"]


def plots_by_key(plots: list[Plot]) -> dict[str, Plot]:
    return {p.key: p for p in plots}


def test_a_journal_with_everything_draws_every_section(state: Path, backtest_dir: Path) -> None:
    write_drift_csv(state)
    report = live_report(state, deployment=DEP, capital=CAPITAL, baseline=backtest_dir)
    assert [p.key for p in report.plots] == SECTIONS
    assert all(p.figure is not None for p in report.plots), [p.note for p in report.plots]


def test_live_equity_is_drawn_against_the_baseline_as_return(
    state: Path, backtest_dir: Path
) -> None:
    report = live_report(state, deployment=DEP, capital=CAPITAL, baseline=backtest_dir)
    fig = plots_by_key(report.plots)["equity"].figure
    assert fig is not None
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["live", "baseline"]
    assert ax.get_ylabel() == "return since start (%)"
    live = ax.get_lines()[0].get_ydata()
    assert live[0] == 0.0 and abs(live[-1] - 797 / 1500) < 1e-9  # +0.53 %


def test_a_baseline_from_another_time_is_drawn_by_elapsed_time(state: Path, tmp_path: Path) -> None:
    import json

    path = tmp_path / "old.json"
    path.write_text(json.dumps(backtest_report_doc(ts0=T0 - 10 * 86400)))
    report = live_report(state, deployment=DEP, capital=CAPITAL, baseline=path)
    fig = plots_by_key(report.plots)["equity"].figure
    assert fig is not None
    assert "hours since each one's start" in fig.axes[0].get_xlabel()


def test_fills_are_marked_per_symbol_buys_and_sells_apart(state: Path) -> None:
    with JournalReader.open(state) as reader:
        data = read_journal(reader, capital=CAPITAL)
    fig = plots_by_key(build_plots(data))["fills"].figure
    assert fig is not None
    marks = {
        ax.get_ylabel(): sorted(
            str(c.get_label()) for c in ax.collections if isinstance(c, PathCollection)
        )
        for ax in fig.axes
    }
    assert marks == {"AAA": ["buy (1)", "sell (1)"], "BBB": ["buy (1)"]}


def test_without_data_every_section_says_why_instead_of_drawing() -> None:
    plots = build_plots(ReportData(title="t", source="s", kind="live"))
    assert [p.key for p in plots] == SECTIONS
    assert all(p.figure is None and p.note for p in plots)
    assert plots_by_key(plots)["drift"].note == "no drift data"


def test_a_backtest_says_it_has_no_health_latency_or_drift(backtest_dir: Path) -> None:
    from tradeplane.report.build import backtest_report

    plots = plots_by_key(backtest_report(backtest_dir).plots)
    assert plots["health"].note == "no health data: a backtest has no health"
    assert plots["tick_to_order"].note.startswith("no latency data: a backtest")
    assert plots["drift"].note.startswith("no drift data")
    assert plots["equity"].figure is not None and plots["fills"].figure is not None


def test_names_with_dollars_and_markup_are_drawn_as_plain_text() -> None:
    data = ReportData(title="t", source="s", kind="live")
    data.equity = [Series("total", (T0, T0 + 60), (1.0, 2.0)), Series("$a$_<b>", (T0,), (1.0,))]
    data.prices = {"$X": Series("$X", (T0, T0 + 1), (1.0, 2.0))}
    data.fills = [FillMark(T0, "$a$", "$X", "buy", 1.0, 1.0)]
    data.denials = {"$reason$": 1}
    for p in build_plots(data):
        if p.figure is not None:
            p.figure.savefig(io.BytesIO(), format="svg")  # mathtext would raise on "$a$_<b>"


def test_without_a_baseline_the_total_is_drawn_above_each_strategys_pnl(state: Path) -> None:
    report = live_report(state, deployment=DEP, capital=CAPITAL)
    fig = plots_by_key(report.plots)["equity"].figure
    assert fig is not None
    top, bottom = fig.axes
    assert [line.get_label() for line in top.get_lines()] == ["total"]
    pnl = {str(line.get_label()): line.get_ydata() for line in bottom.get_lines()[:2]}
    assert set(pnl) == {"s1", "s2"}
    assert pnl["s1"][0] == 0.0 and abs(pnl["s1"][-1] - 998.0) < 1e-6
    assert abs(pnl["s2"][-1] + 201.0) < 1e-6


def test_only_the_most_recent_fills_are_marked_and_the_note_says_so() -> None:
    from tradeplane.report.figures import MAX_FILL_MARKS, fills_plot

    data = ReportData(title="t", source="s", kind="live")
    n = MAX_FILL_MARKS + 10
    data.prices = {"X": Series("X", (T0, T0 + n), (1.0, 2.0))}
    data.fills = [FillMark(T0 + i, "s", "X", "buy", 1.0, 1.5) for i in range(n)]
    plot = fills_plot(data)
    assert plot.figure is not None
    (scatter,) = [c for c in plot.figure.axes[0].collections if isinstance(c, PathCollection)]
    assert len(scatter.get_offsets()) == MAX_FILL_MARKS
    assert f"the last {MAX_FILL_MARKS} of {n} fills" in plot.note


def test_incidents_are_marked_below_the_health_line(state: Path) -> None:
    report = live_report(state, deployment=DEP, capital=CAPITAL)
    fig = plots_by_key(report.plots)["health"].figure
    assert fig is not None
    labels = sorted(
        str(c.get_label()) for c in fig.axes[0].collections if isinstance(c, PathCollection)
    )
    assert labels == ["actor_died (1)", "deployment_started (1)", "deployment_stopped (1)"]
