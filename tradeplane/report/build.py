"""The two ways to make a report: from a deployment's state dir (its journal, its drift file, an
optional baseline backtest) or from a backtest's output dir."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tradeplane.journal.reader import JournalReader
from tradeplane.report.backtest_data import baseline_total, read_backtest_dir
from tradeplane.report.drift_csv import DRIFT_CSV, read_drift_csv
from tradeplane.report.figures import Plot, build_plots
from tradeplane.report.journal_data import read_journal
from tradeplane.report.model import ReportData, total_return
from tradeplane.report.page import render_page, write_pngs


@dataclass(frozen=True, slots=True)
class Report:
    data: ReportData
    plots: list[Plot]

    def html(self) -> str:
        return render_page(self.data, self.plots)

    def write_pngs(self, directory: Path) -> list[Path]:
        return write_pngs(self.plots, directory)


def live_report(
    state_dir: Path,
    *,
    deployment: str | None = None,
    capital: Mapping[str, float] | None = None,
    baseline: Path | None = None,
) -> Report:
    """From a deployment's journal (read-only: safe beside a running deployment)."""
    with JournalReader.open(state_dir, deployment=deployment) as reader:
        data = read_journal(reader, capital=capital)
    data.drift, data.drift_note = read_drift_csv(Path(state_dir) / DRIFT_CSV)
    if baseline is not None:
        data.baseline, data.baseline_source = baseline_total(baseline)
        if data.baseline is None:
            data.notes.append(f"the baseline {data.baseline_source} has no total equity curve")
        else:
            ret = total_return(data.baseline)
            if ret is not None:
                data.facts.append(("baseline total return", f"{ret:+.2%}"))
    return Report(data, build_plots(data))


def backtest_report(directory: Path) -> Report:
    data = read_backtest_dir(directory)
    return Report(data, build_plots(data))
