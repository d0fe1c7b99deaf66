"""``live_drift.csv`` to the drift table (``tradeplane.report.drift_csv``)."""

from __future__ import annotations

from pathlib import Path

from tests.report_samples import T0, write_drift_csv
from tradeplane.report.drift_csv import read_drift_csv
from tradeplane.report.model import MAX_POINTS


def test_without_the_file_there_is_no_table_and_the_note_says_why(tmp_path: Path) -> None:
    table, note = read_drift_csv(tmp_path / "live_drift.csv")
    assert table is None
    assert note.startswith("no drift data") and "live_drift.csv" in note


def test_every_column_is_read_as_numbers_by_time(tmp_path: Path) -> None:
    table, note = read_drift_csv(write_drift_csv(tmp_path, rows=3))
    assert table is not None
    assert table.ts == (T0, T0 + 5, T0 + 10)
    assert table.columns["equity"] == (150_000.0, 150_050.0, 150_100.0)
    assert table.columns["tracking_error"] == (None, None, None)  # empty cells are gaps
    assert "3 snapshots" in note


def test_epoch_and_iso_timestamps_both_read_and_unreadable_rows_are_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live_drift.csv"
    path.write_text(
        "timestamp,equity,shortfall_vs_backtest\n"
        f"{T0},1,0.1\n"
        "2023-11-14T22:13:25Z,2,nan-ish\n"
        "yesterday,3,0.3\n"
    )
    table, note = read_drift_csv(path)
    assert table is not None
    assert table.ts == (T0, T0 + 5)
    assert table.columns["shortfall_vs_backtest"] == (0.1, None)
    assert "1 rows with an unreadable timestamp" in note


def test_a_file_without_a_timestamp_column_or_rows_is_no_data(tmp_path: Path) -> None:
    path = tmp_path / "live_drift.csv"
    path.write_text("time,equity\n1,2\n")
    assert read_drift_csv(path)[0] is None
    path.write_text("timestamp,equity\n")
    table, note = read_drift_csv(path)
    assert table is None and "no rows yet" in note


def test_a_long_file_is_thinned_to_the_point_budget_keeping_the_last_row(tmp_path: Path) -> None:
    path = tmp_path / "live_drift.csv"
    n = 3 * MAX_POINTS + 1
    path.write_text("timestamp,equity\n" + "".join(f"{T0 + i},{i}\n" for i in range(n)))
    table, _ = read_drift_csv(path)
    assert table is not None
    assert len(table.ts) <= MAX_POINTS + 1
    assert table.ts[0] == T0 and table.ts[-1] == T0 + n - 1


def test_a_tracker_file_with_a_row_per_strategy_then_the_total_rows_are_the_table(
    tmp_path: Path,
) -> None:
    from tradeplane.backtest.drift import COLUMNS

    path = tmp_path / "live_drift.csv"
    rows = [",".join(COLUMNS)]
    for minute in (0, 1):
        for strategy, equity in (("a", 100.0), ("b", 50.0), ("total", 150.0)):
            cells = {"timestamp": f"2026-01-01T00:0{minute}:00+00:00", "strategy": strategy,
                     "equity": str(equity + minute), "return_drift_pct": "0.5"}  # fmt: skip
            rows.append(",".join(cells.get(c, "") for c in COLUMNS))
    path.write_text("\n".join(rows) + "\n")
    table, _ = read_drift_csv(path)
    assert table is not None and len(table.ts) == 2
    assert table.columns["equity"] == (150.0, 151.0)
    assert "strategy" not in table.columns
