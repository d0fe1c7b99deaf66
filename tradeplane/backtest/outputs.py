"""What a backtest writes in ``--out``: ``equity.csv``, ``fills.csv`` and ``intents.csv``, streamed
row by row as the engine steps (memory flat in the number of bars), and ``backtest_report.json``.

``equity.csv``   ts,strategy,equity,cash,position_value: one row per bar time per strategy, then
                 one ``total`` row (the strategies summed); ``ts`` is the bar time (open time).
``fills.csv``    ts,strategy,intent_id,client_order_id,fill_id,symbol,side,quantity,price,fee,
                 liquidity; ``ts`` is when it filled on the engine's clock (the bar's close).
``intents.csv``  ts,strategy,intent_id,trigger,symbol,side,quantity,order_type,limit_price,
                 decision,reason; ``decision`` is approved or denied, ``reason`` the denial code.

The report's equity curve is kept compact while the run goes: one float per bar time per series
in ``array('d')`` (8 bytes), downsampled to at most ``CURVE_POINTS`` when the report is built.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tradeplane.backtest.engine import BacktestEngine, StepResult

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
CURVE_POINTS = 2000
REPORT_SCHEMA = 1


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


class EquitySeries:
    """Equity per bar time, per strategy and in total: epoch seconds and floats in arrays."""

    def __init__(self, strategies: Sequence[str]) -> None:
        self.strategies = tuple(strategies)
        self.ts = array("d")
        self.by_strategy = {name: array("d") for name in self.strategies}
        # One strategy: the total is that strategy's equity (the same sum), kept once.
        self._own_total = len(self.strategies) != 1
        self.total = array("d") if self._own_total else self.by_strategy[self.strategies[0]]

    def add(self, ts: float, equities: Sequence[float], total: float) -> None:
        self.ts.append(ts)
        for series, value in zip(self.by_strategy.values(), equities, strict=True):
            series.append(value)
        if self._own_total:
            self.total.append(total)

    def __len__(self) -> int:
        return len(self.ts)


class BacktestWriter:
    """Streams a run's rows to the three CSV files; ``close`` flushes and closes them."""

    def __init__(self, out_dir: Path, strategies: Sequence[str]) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.strategies = tuple(strategies)
        self.series = EquitySeries(self.strategies)
        self._files: list[TextIO] = []
        self._equity = self._open("equity.csv", EQUITY_COLUMNS)
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
        bar_ts = step.ts.isoformat()
        rows = []
        equities = []
        total_cash = total_value = 0.0
        for name, (cash, value) in zip(self.strategies, step.equity, strict=True):
            equity = cash + value
            equities.append(equity)
            total_cash += cash
            total_value += value
            rows.append((bar_ts, name, equity, cash, float(value)))
        total = total_cash + total_value
        rows.append((bar_ts, TOTAL, total, total_cash, float(total_value)))
        self._equity.writerows(rows)
        self.series.add(step.ts.timestamp(), equities, total)

    def _write_events(self, step: StepResult) -> None:
        for d in step.decisions:
            i = d.intent
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


# -- report --------------------------------------------------------------------------------------


def config_hash(cfg: Any) -> str:
    """sha256 of the config as used, canonical JSON (sorted keys; secrets appear masked)."""
    data = cfg.model_dump(mode="json")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def downsample(ts: Sequence[float], values: Sequence[float], points: int = CURVE_POINTS) -> list:
    """At most ``points`` [ISO ts, value] pairs, evenly spaced, first and last kept."""
    n = len(ts)
    if n <= points:
        index: Sequence[int] = range(n)
    else:
        index = sorted({i * (n - 1) // (points - 1) for i in range(points)})
    return [[iso(ts[i]), _number(values[i])] for i in index]


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _drawdown(ts: Sequence[float], values: Sequence[float]) -> tuple[float | None, float | None]:
    """Largest fall from a running peak (fraction) and the longest time below a peak (s)."""
    if not values:
        return None, None
    peak, peak_ts, worst, longest = values[0], ts[0], 0.0, 0.0
    for t, v in zip(ts, values, strict=True):
        if v >= peak:
            peak, peak_ts = v, t
            continue
        if peak > 0:
            worst = max(worst, (peak - v) / peak)
        longest = max(longest, t - peak_ts)
    return worst, longest


def _block(
    starting: float,
    ts: Sequence[float],
    curve: Sequence[float],
    counts: Mapping[str, Any],
    steps: int,
) -> dict[str, Any]:
    final = curve[-1] if curve else starting
    drawdown, duration = _drawdown(ts, curve)
    return {
        "starting_equity": starting,
        "final_equity": _number(final),
        "total_return": _number(final / starting - 1.0) if starting else None,
        "annualised_volatility": None,
        "sharpe": None,
        "sortino": None,
        "max_drawdown": _number(drawdown),
        "max_drawdown_duration_s": _number(duration),
        "turnover": _number(counts["traded_value"] / starting) if starting else None,
        "exposure": _number(counts["exposed_steps"] / steps) if steps else None,
        "intents": counts["intents"],
        "orders": counts["orders"],
        "fills": counts["fills"],
        "trades": counts["trades"],
        "fees": counts["fees"],
        "denials_by_reason": dict(sorted(counts["denials"].items())),
        "equity_curve": downsample(ts, curve),
    }


def build_report(
    *,
    engine: BacktestEngine,
    series: EquitySeries,
    deployment: str,
    config_sha256: str,
    code_hashes: Mapping[str, str],
    source: str,
    calendar: str,
    generated_at: float,
) -> dict[str, Any]:
    """A minimal ``backtest_report.json`` (issue16-shared.md's schema): what the engine knows;
    the figures of ``tradeplane.backtest.metrics`` (Sharpe, Sortino, volatility) are null until
    the metrics helper's builder replaces this one."""
    steps = len(series)
    interval = engine.interval_s
    strategies = {}
    for spec in engine.specs:
        t = engine.totals[spec.name]
        counts = {
            "intents": t.intents,
            "orders": t.orders,
            "fills": t.fills,
            "trades": t.trades,
            "fees": t.fees,
            "traded_value": t.traded_value,
            "exposed_steps": t.exposed_steps,
            "denials": t.denials,
        }
        strategies[spec.name] = _block(
            spec.capital, series.ts, series.by_strategy[spec.name], counts, steps
        )
    all_totals = list(engine.totals.values())
    total_counts = {
        "intents": sum(t.intents for t in all_totals),
        "orders": sum(t.orders for t in all_totals),
        "fills": sum(t.fills for t in all_totals),
        "trades": sum(t.trades for t in all_totals),
        "fees": math.fsum(t.fees for t in all_totals),
        "traded_value": math.fsum(t.traded_value for t in all_totals),
        "exposed_steps": engine.exposed_steps,
        "denials": engine.denials(),
    }
    starting_total = math.fsum(s.capital for s in engine.specs)
    last_ts = engine.last_ts
    return {
        "schema": REPORT_SCHEMA,
        "kind": "backtest_report",
        "generated_at": iso(generated_at),
        "deployment": deployment,
        "config_hash": config_sha256,
        "strategy_code_hashes": dict(code_hashes),
        "bars": {
            "source": source,
            "first_ts": None if engine.first_ts is None else engine.first_ts.isoformat(),
            "last_ts": None if last_ts is None else last_ts.isoformat(),
            "count": engine.bars,
            "symbols": list(engine.symbols),
            "interval_s": interval,
        },
        "calendar": calendar,
        "periods_per_year": 365.0 * 86_400.0 / interval if calendar == "24/7" else None,
        "strategies": strategies,
        "total": _block(starting_total, series.ts, series.total, total_counts, steps),
    }


def write_report(out_dir: Path, report: Mapping[str, Any]) -> Path:
    """Write ``backtest_report.json`` atomically (a reader never sees half a file)."""
    path = out_dir / "backtest_report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
