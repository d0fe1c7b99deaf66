"""What a backtest writes: the CSV columns issue16-shared.md fixes, and what the report counts
(``backtest.outputs``; the report's figures are tested with ``report_builder``)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from tradeplane.backtest.engine import Decision, StepResult
from tradeplane.backtest.outputs import (
    EQUITY_COLUMNS,
    FILL_COLUMNS,
    INTENT_COLUMNS,
    BacktestWriter,
)
from tradeplane.backtest.report_builder import ReportAccumulator
from tradeplane.backtest.report_json import BarsInfo
from tradeplane.core import ids
from tradeplane.core.model import Fill, Intent, OrderType, Side

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_csv_headers_then_the_shared_schema(tmp_path: Path) -> None:
    BacktestWriter(tmp_path, ["a"], ReportAccumulator(["a"], [100.0])).close()
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
    writer = BacktestWriter(tmp_path, ["a", "b"], ReportAccumulator(["a", "b"], [100.0, 100.0]))
    writer.write(StepResult(T0, T0.timestamp() + 60, 2, equity=((90.0, 15.0), (100.0, 0.0))))
    writer.close()
    with (tmp_path / "equity.csv").open() as f:
        rows = [(r["strategy"], float(r["equity"])) for r in csv.DictReader(f)]
    assert rows == [("a", 105.0), ("b", 100.0), ("total", 205.0)]


def test_equity_rows_then_byte_for_byte_what_the_csv_module_writes(tmp_path: Path) -> None:
    names = ["plain", 'odd, "quoted" name', "int_cash"]
    writer = BacktestWriter(tmp_path, names, ReportAccumulator(names, [100.0, 100.0, 100.0]))
    equity = ((0.1 + 0.2, 1e-7), (1e22, -3.5), (100, 0))  # float reprs, an int
    writer.write(StepResult(T0, T0.timestamp() + 60, 3, equity=equity))
    writer.close()
    expected = tmp_path / "expected.csv"
    with expected.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(EQUITY_COLUMNS)
        ts = T0.isoformat()
        for name, (cash, value) in zip(names, equity, strict=True):
            w.writerow((ts, name, cash + value, cash, float(value)))
        cash = sum(c for c, _ in equity)
        value = sum(float(v) for _, v in equity)
        w.writerow((ts, "total", cash + value, cash, value))

    assert (tmp_path / "equity.csv").read_bytes() == expected.read_bytes()


def intent(strategy: str, n: int) -> Intent:
    iid = ids.intent_id("d", strategy, f"bar:AAA:{n}", 0)
    return Intent(
        iid, ids.client_order_id(iid), "d", strategy, "AAA", Side.BUY, 1.0, OrderType.MARKET,
        None, 0.0, f"bar:AAA:{n}",
    )  # fmt: skip


def test_decisions_and_fills_then_counted_by_the_report(tmp_path: Path) -> None:
    report = ReportAccumulator(["a"], [100.0])
    writer = BacktestWriter(tmp_path, ["a"], report)
    approved, denied = intent("a", 1), intent("a", 2)
    fill = Fill("F", approved.client_order_id, approved.intent_id, "a", "AAA", Side.BUY, 1.0,
                10.0, 0.01, T0.timestamp())  # fmt: skip
    writer.write(
        StepResult(
            T0,
            T0.timestamp() + 60,
            1,
            decisions=[Decision(approved, "approved"), Decision(denied, "denied", "max_orders")],
            fills=[fill],
            equity=((90.0, 10.0),),
            exposed=(True,),
        )
    )
    writer.close()
    bars = BarsInfo(source="t", first_ts=T0, last_ts=T0, count=1, symbols=("AAA",), interval_s=60)
    block = report.finish(
        deployment="d", config_hash="0" * 64, strategy_code_hashes={"a": "1" * 64}, bars=bars,
        calendar="24/7",
    ).strategies["a"]  # fmt: skip
    assert (block.intents, block.orders, block.fills) == (2, 1, 1)
    assert block.denials_by_reason == {"max_orders": 1} and block.exposure == 1.0
