"""A backtest's output dir (``backtest_report.json``, ``equity.csv``, ``fills.csv``) to a report's
plain data, and a baseline's total equity curve for a live report.

``backtest_report.json`` is read by the shared loader (``tradeplane.backtest.report_json``).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeplane.backtest.bars_file import BarFileError, BarFilter, read_csv_bars
from tradeplane.backtest.report_json import ReportError, load_report
from tradeplane.core.errors import OperationalError
from tradeplane.report.drift_csv import parse_time
from tradeplane.report.model import FillMark, ReportData, Series, downsample, named, total_return

REPORT_JSON = "backtest_report.json"
EQUITY_CSV = "equity.csv"
FILLS_CSV = "fills.csv"
TOTAL = "total"


@dataclass(slots=True)
class BacktestReport:
    """What a report needs of ``backtest_report.json``; a field the file lacks is None."""

    path: Path
    deployment: str | None
    bars: dict[str, Any]
    total: dict[str, Any]
    strategies: dict[str, dict[str, Any]]
    curves: dict[str, Series] = field(default_factory=dict)  # "total" and per strategy
    problems: list[str] = field(default_factory=list)


def _curve(name: str, raw: Any, problems: list[str]) -> Series | None:
    if not isinstance(raw, list):
        return None
    ts: list[float] = []
    vals: list[float] = []
    for point in raw:
        t = parse_time(str(point[0])) if isinstance(point, list) and len(point) == 2 else None
        v = point[1] if t is not None else None
        if t is None or not isinstance(v, int | float) or not math.isfinite(v):
            problems.append(f"{name}: equity point {point!r} is not [time, number]; left out")
            continue
        ts.append(t)
        vals.append(float(v))
    return Series(name, tuple(ts), tuple(vals)) if ts else None


def read_backtest_report(path: Path) -> BacktestReport:
    """``backtest_report.json`` at ``path`` (or in the dir ``path``), read and checked by the
    shared loader (``backtest.report_json``): a malformed report is refused naming the field."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    if not path.is_file():
        raise OperationalError(f"{path} does not exist")
    try:
        loaded = load_report(path)
    except ReportError as exc:
        raise OperationalError(str(exc)) from exc
    doc = json.loads(loaded.to_json())
    strategies = {str(k): dict(v) for k, v in doc["strategies"].items()}
    report = BacktestReport(
        path=path,
        deployment=doc["deployment"],
        bars=dict(doc["bars"]),
        total=dict(doc["total"]),
        strategies=strategies,
    )
    for name, b in [(TOTAL, report.total), *strategies.items()]:
        curve = _curve(name, b.get("equity_curve"), report.problems)
        if curve is not None:
            report.curves[name] = curve
    return report


def read_equity_csv(path: Path) -> dict[str, Series]:
    """``equity.csv`` (``ts,strategy,equity,...``, one row per bar time per strategy and
    ``total``), streamed and downsampled per strategy."""
    ts: dict[str, list[float]] = {}
    vals: dict[str, list[float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            t = parse_time(row.get("ts") or "")
            try:
                v = float(row.get("equity") or "")
            except ValueError:
                continue
            if t is None or not math.isfinite(v):
                continue
            name = row.get("strategy") or TOTAL
            ts.setdefault(name, []).append(t)
            vals.setdefault(name, []).append(v)
    return {n: named(downsample(ts[n], vals[n]), n) for n in ts}


def read_fills_csv(path: Path) -> list[FillMark]:
    out: list[FillMark] = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            t = parse_time(row.get("ts") or "")
            try:
                qty, price = float(row.get("quantity") or ""), float(row.get("price") or "")
            except ValueError:
                continue
            if t is None or not row.get("symbol"):
                continue
            side = "sell" if row.get("side") == "sell" else "buy"
            out.append(FillMark(t, row.get("strategy") or "", row["symbol"], side, qty, price))
    return out


def _bar_closes(
    report: BacktestReport, directory: Path, symbols: frozenset[str], notes: list[str]
) -> dict[str, Series] | None:
    """The closes of the symbols traded, from the backtest's bars when they came from a CSV file
    still at the path the report names (else the fills' own prices are the line). Each close is
    placed at its bar's close time, when the backtest knew it."""
    source = report.bars.get("source")
    if not isinstance(source, str) or not source.lower().endswith(".csv") or not symbols:
        return None
    path = next((p for p in (Path(source), directory / source) if p.is_file()), None)
    if path is None:
        notes.append(f"the bars file {source} is not there: prices from the fills")
        return None
    interval = report.bars.get("interval_s")
    shift = float(interval) if isinstance(interval, int | float) else 0.0
    by_symbol: dict[str, tuple[list[float], list[float]]] = {}
    try:
        for bar in read_csv_bars(path, BarFilter(symbols=symbols)):
            t, v = by_symbol.setdefault(bar.symbol, ([], []))
            t.append(bar.ts.timestamp() + shift)
            v.append(bar.close)
    except BarFileError as exc:
        notes.append(f"prices from the fills: {exc}")
        return None
    return {s: named(downsample(t, v), s) for s, (t, v) in sorted(by_symbol.items())} or None


def _ordered(curves: dict[str, Series]) -> list[Series]:
    return [curves[n] for n in sorted(curves, key=lambda n: (n != TOTAL, n))]


def _pct(v: Any) -> str:
    return f"{v:+.2%}" if isinstance(v, int | float) else "-"


def _num(v: Any, fmt: str = "{:.2f}") -> str:
    return fmt.format(v) if isinstance(v, int | float) else "-"


def read_backtest_dir(directory: Path) -> ReportData:
    directory = Path(directory)
    if not directory.is_dir():
        raise OperationalError(f"{directory} is not a directory (a backtest's --out)")
    data = ReportData(
        title=f"tradeplane report: backtest {directory.name}",
        source=str(directory),
        kind="backtest",
    )
    report = read_backtest_report(directory) if (directory / REPORT_JSON).is_file() else None
    if report is None:
        data.notes.append(f"{REPORT_JSON} is not in {directory}: figures from the CSV files only")
    else:
        data.notes += report.problems
    if report is not None and report.curves:
        data.equity = _ordered(report.curves)
    elif (directory / EQUITY_CSV).is_file():
        data.equity = _ordered(read_equity_csv(directory / EQUITY_CSV))
    if (directory / FILLS_CSV).is_file():
        fills = read_fills_csv(directory / FILLS_CSV)
        data.fills = fills
        by_symbol: dict[str, tuple[list[float], list[float]]] = {}
        for f in fills:
            t, v = by_symbol.setdefault(f.symbol, ([], []))
            t.append(f.ts)
            v.append(f.price)
        data.prices = {s: named(downsample(t, v), s) for s, (t, v) in sorted(by_symbol.items())}
        data.price_source = "fills"
        bars = _bar_closes(report, directory, frozenset(by_symbol), data.notes) if report else None
        if bars:
            data.prices, data.price_source = bars, "the bars file's closes"
    total = report.total if report else {}
    denials = total.get("denials_by_reason")
    if isinstance(denials, dict):
        data.denials = {
            str(k): int(v)
            for k, v in sorted(denials.items(), key=lambda kv: (-kv[1], kv[0]))
            if isinstance(v, int | float)
        }
    data.health_until = None
    data.drift_note = "no drift data: a backtest has no live drift"
    data.facts = _facts(report, data)
    return data


def _facts(report: BacktestReport | None, data: ReportData) -> list[tuple[str, str]]:
    if report is None:
        curve = data.equity[0] if data.equity else None
        ret = total_return(curve) if curve else None
        return [("total return", _pct(ret)), ("fills", str(len(data.fills)))]
    t, bars = report.total, report.bars
    return [
        ("deployment", report.deployment or "-"),
        (
            "bars",
            f"{bars.get('count', '-')} from {bars.get('source', '-')}, "
            f"{bars.get('first_ts', '-')} to {bars.get('last_ts', '-')}",
        ),
        ("total return", _pct(t.get("total_return"))),
        ("annualised volatility", _pct(t.get("annualised_volatility")).lstrip("+")),
        ("Sharpe / Sortino", f"{_num(t.get('sharpe'))} / {_num(t.get('sortino'))}"),
        ("max drawdown", _pct(t.get("max_drawdown")).lstrip("+")),
        ("fills / fees", f"{t.get('fills', '-')} / {_num(t.get('fees'))}"),
    ]


def baseline_total(path: Path) -> tuple[Series | None, str]:
    """The baseline report's total equity curve (for a live report) and where it came from."""
    report = read_backtest_report(path)
    curve = report.curves.get(TOTAL)
    return (named(curve, "baseline") if curve else None), str(report.path)
