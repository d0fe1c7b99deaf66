"""What a backtest writes: the CSV columns issue16-shared.md fixes, a compact equity series, and
the report's downsampled curve and drawdown (``backtest.outputs``)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradeplane.backtest.engine import StepResult
from tradeplane.backtest.outputs import (
    EQUITY_COLUMNS,
    FILL_COLUMNS,
    INTENT_COLUMNS,
    BacktestWriter,
    EquitySeries,
    _drawdown,
    downsample,
    write_report,
)

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_csv_headers_then_the_shared_schema(tmp_path: Path) -> None:
    BacktestWriter(tmp_path, ["a"]).close()
    heads = {}
    for name in ("equity.csv", "fills.csv", "intents.csv"):
        with (tmp_path / name).open() as f:
            heads[name] = tuple(next(csv.reader(f)))
    assert heads["equity.csv"] == EQUITY_COLUMNS == (
        "ts", "strategy", "equity", "cash", "position_value"
    )  # fmt: skip
    assert heads["fills.csv"] == FILL_COLUMNS and FILL_COLUMNS[4] == "fill_id"
    assert heads["intents.csv"] == INTENT_COLUMNS and INTENT_COLUMNS[-2:] == ("decision", "reason")


def test_equity_rows_per_strategy_then_a_total_row(tmp_path: Path) -> None:
    writer = BacktestWriter(tmp_path, ["a", "b"])
    writer.write(StepResult(T0, T0.timestamp() + 60, 2, equity=((90.0, 15.0), (100.0, 0.0))))
    writer.close()
    with (tmp_path / "equity.csv").open() as f:
        rows = [(r["strategy"], float(r["equity"])) for r in csv.DictReader(f)]
    assert rows == [("a", 105.0), ("b", 100.0), ("total", 205.0)]
    assert list(writer.series.total) == [205.0] and len(writer.series) == 1


def test_one_strategy_then_its_series_is_the_total() -> None:
    series = EquitySeries(["only"])
    series.add(1.0, [5.0], 5.0)
    assert series.total is series.by_strategy["only"] and list(series.total) == [5.0]


def test_downsample_then_at_most_n_points_first_and_last_kept() -> None:
    ts = [float(i * 60) for i in range(10_001)]
    curve = downsample(ts, [float(i) for i in range(10_001)], points=100)
    assert len(curve) == 100
    assert curve[0][1] == 0.0 and curve[-1][1] == 10_000.0
    assert len(downsample(ts[:5], [1.0] * 5, points=100)) == 5


def test_drawdown_then_deepest_fall_and_longest_time_under_a_peak() -> None:
    depth, duration = _drawdown([0.0, 1.0, 2.0, 3.0, 4.0], [100.0, 80.0, 90.0, 100.0, 95.0])
    assert depth == pytest.approx(0.2) and duration == 2.0
    assert _drawdown([], []) == (None, None)


def test_report_with_a_nan_then_refused_rather_than_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_report(tmp_path, {"x": float("nan")})
    write_report(tmp_path, {"x": None})
    assert json.loads((tmp_path / "backtest_report.json").read_text()) == {"x": None}
