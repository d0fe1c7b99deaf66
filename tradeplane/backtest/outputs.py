"""What a backtest writes in ``--out``: ``equity.csv``, ``fills.csv`` and ``intents.csv``, streamed
row by row as the engine steps (memory flat in the number of bars), while the report's figures
accumulate (``report_builder.ReportAccumulator``) for ``backtest_report.json``.

``equity.csv``   ts,strategy,equity,cash,position_value: one row per bar time per strategy, then
                 one ``total`` row (the strategies summed); ``ts`` is the bar time (open time).
``fills.csv``    ts,strategy,intent_id,client_order_id,fill_id,symbol,side,quantity,price,fee,
                 liquidity; ``ts`` is when it filled on the engine's clock (the bar's close).
``intents.csv``  ts,strategy,intent_id,trigger,symbol,side,quantity,order_type,limit_price,
                 decision,reason; ``decision`` is approved or denied, ``reason`` the denial code.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tradeplane.backtest.engine import StepResult
from tradeplane.backtest.report_builder import ReportAccumulator

EQUITY_COLUMNS = ("ts", "strategy", "equity", "cash", "position_value")
FILL_COLUMNS = (
    "ts",
    "strategy",
    "intent_id",
    "client_order_id",
    "fill_id",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
    "liquidity",
)
INTENT_COLUMNS = (
    "ts",
    "strategy",
    "intent_id",
    "trigger",
    "symbol",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "decision",
    "reason",
)
TOTAL = "total"


def _csv_field(text: str) -> str:
    """``text`` as one field of a csv row (quoted only where the csv module would)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([text])
    return out.getvalue()[:-1]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


class BacktestWriter:
    """Streams a run's rows to the three CSV files; ``close`` flushes and closes them."""

    def __init__(self, out_dir: Path, strategies: Sequence[str], report: ReportAccumulator) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.strategies = tuple(strategies)
        self.report = report
        self._files: list[TextIO] = []
        self._equity = self._open("equity.csv", EQUITY_COLUMNS)
        self._equity_file = self._files[-1]
        # Names as the csv module writes them (quoted if they hold a comma or a quote): the
        # equity rows, one per strategy per bar time, are formatted here instead (see below).
        self._names = [_csv_field(name) for name in self.strategies]
        self._total_name = _csv_field(TOTAL)
        self._fills = self._open("fills.csv", FILL_COLUMNS)
        self._intents = self._open("intents.csv", INTENT_COLUMNS)
        self._iso_cache: tuple[float, str] = (math.nan, "")

    def _open(self, name: str, columns: Sequence[str]) -> Any:
        f = (self.out_dir / name).open("w", newline="", encoding="utf-8", buffering=1 << 20)
        self._files.append(f)
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        return writer

    def _iso(self, ts: float) -> str:
        cached = self._iso_cache
        if cached[0] == ts:
            return cached[1]
        text = iso(ts)
        self._iso_cache = (ts, text)
        return text

    def write(self, step: StepResult) -> None:
        if step.bars:  # the on_stop step (no bar) adds no bar time
            self._write_equity(step)
        self._write_events(step)

    def _write_equity(self, step: StepResult) -> None:
        # The rows the csv module would write (numbers as ``str``; an ISO time and numbers
        # never need quoting), formatted in one string: several times cheaper per bar time.
        bar_ts = step.ts.isoformat()
        names = self._names
        lines = []
        equities = []
        total_cash = total_value = 0.0
        for name, (cash, value) in zip(names, step.equity, strict=True):
            equity = cash + value
            equities.append(equity)
            total_cash += cash
            total_value += value
            lines.append(f"{bar_ts},{name},{equity},{cash},{float(value)}\n")
        total = total_cash + total_value
        lines.append(f"{bar_ts},{self._total_name},{total},{total_cash},{float(total_value)}\n")
        self._equity_file.write("".join(lines))
        self.report.add(step.ts.timestamp(), equities, step.exposed)

    def _write_events(self, step: StepResult) -> None:
        report = self.report
        for d in step.decisions:
            i = d.intent
            report.add_intent(i.strategy)
            if d.decision == "denied":
                report.add_denial(i.strategy, d.reason or "unknown")
            else:
                report.add_order(i.strategy)
            self._intents.writerow(
                (
                    self._iso(i.ts),
                    i.strategy,
                    i.intent_id,
                    i.trigger,
                    i.symbol,
                    i.side.value,
                    i.quantity,
                    i.order_type.value,
                    "" if i.limit_price is None else i.limit_price,
                    d.decision,
                    d.reason or "",
                )
            )
        for f in step.fills:
            report.add_fill(f)
            self._fills.writerow(
                (
                    self._iso(f.ts),
                    f.strategy,
                    f.intent_id,
                    f.client_order_id,
                    f.fill_id,
                    f.symbol,
                    f.side.value,
                    f.quantity,
                    f.price,
                    f.fee,
                    f.liquidity,
                )
            )

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files = []
