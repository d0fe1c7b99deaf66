"""Bars from a CSV file, for backtests (issue 16): streamed row by row, so memory stays flat in
the number of bars, and every bad row is refused with its line number, never skipped.

The schema (a header row first, columns in any order, names as below, extra columns refused):

=========  ==============================================================================
column     meaning
=========  ==============================================================================
symbol     the instrument, as the deployment's config names it (``BTC-USDT``, ``AAPL``)
ts         the bar's *open* time, UTC: ISO-8601 with ``Z`` or ``+00:00`` (``2026-01-02T
           14:30:00Z``), or seconds since the epoch (``1767364200``); a time without a zone
           is refused, since guessing one shifts every bar
open       first price of the bar, finite and > 0
high       highest price, >= open, close and low
low        lowest price, <= open and close
close      last price, finite and > 0
volume     traded quantity, finite and >= 0
=========  ==============================================================================

Within one symbol the bars must come in strictly increasing ``ts``: a bar at or before the
previous one of its symbol (a duplicate, or out of order) is refused with both line numbers.
Symbols may interleave. ``symbols`` keeps only those symbols; ``start`` / ``end`` keep bars whose
open time is in ``[start, end)``. Rows outside them are still checked, so a file is either
wholly valid or refused at its first bad row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tradeplane.core.errors import InvalidMarketData, TradeplaneError
from tradeplane.core.model import Bar

COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")


class BarFileError(TradeplaneError):
    """A bars file that cannot be used: which file, which line, and why."""

    def __init__(self, path: Path, line: int | None, reason: str, *, unit: str = "line") -> None:
        # ``unit``: "line" for a text file, "row" (1 = the first data row) for a Parquet file.
        where = f"{path}" if line is None else f"{path}, {unit} {line}"
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.reason = path, line, reason


@dataclass(frozen=True, slots=True)
class BarFilter:
    """Which bars a reader keeps (every row is checked regardless)."""

    symbols: frozenset[str] | None = None
    start: datetime | None = None
    end: datetime | None = None

    def keeps(self, bar: Bar) -> bool:
        if self.symbols is not None and bar.symbol not in self.symbols:
            return False
        if self.start is not None and bar.ts < self.start:
            return False
        return self.end is None or bar.ts < self.end


def parse_ts(text: str) -> datetime:
    """A bar's open time: ISO-8601 with a UTC offset, or epoch seconds. Refuses a naive time."""
    text = text.strip()
    if not text:
        raise ValueError("ts is empty")
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"ts {text[:40]!r} is out of range") from None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"ts {text[:40]!r} is neither ISO-8601 nor epoch seconds") from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"ts {text[:40]!r} has no time zone (write it in UTC, with Z)")
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01 at +05:00: before the first UTC instant
        raise ValueError(f"ts {text[:40]!r} is out of range") from None


def _number(row: dict[str, str], column: str) -> float:
    text = (row.get(column) or "").strip()
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a number") from None


def _header(path: Path, fields: list[str] | None) -> None:
    if not fields:
        raise BarFileError(path, 1, "no header row (expected: " + ",".join(COLUMNS) + ")")
    names = [f.strip() for f in fields]
    missing = [c for c in COLUMNS if c not in names]
    extra = [n for n in names if n not in COLUMNS]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if missing or extra or repeated:
        parts = [f"missing {missing}" if missing else "", f"unknown {extra}" if extra else ""]
        parts.append(f"repeated {repeated}" if repeated else "")
        raise BarFileError(path, 1, "header: " + ", ".join(p for p in parts if p))


def _bar(row: dict[str, str]) -> Bar:
    if None in row or any(v is None for v in row.values()):
        raise ValueError("wrong number of fields")
    return Bar(
        symbol=(row["symbol"] or "").strip(),
        ts=parse_ts(row["ts"] or ""),
        open=_number(row, "open"),
        high=_number(row, "high"),
        low=_number(row, "low"),
        close=_number(row, "close"),
        volume=_number(row, "volume"),
    )


class SymbolOrder:
    """Within one symbol, bars in strictly increasing ``ts``; a bar at or before the previous
    one of its symbol is refused with both line (or row) numbers."""

    def __init__(self, path: Path, unit: str = "line") -> None:
        self.path, self.unit = path, unit
        self.last: dict[str, tuple[datetime, int]] = {}

    def check(self, bar: Bar, line: int) -> None:
        previous = self.last.get(bar.symbol)
        if previous is not None and bar.ts <= previous[0]:
            what = "a duplicate of" if bar.ts == previous[0] else "out of order after"
            raise BarFileError(
                self.path,
                line,
                f"{bar.symbol} bar at {bar.ts.isoformat()} is {what} {self.unit} {previous[1]} "
                f"({previous[0].isoformat()})",
                unit=self.unit,
            )
        self.last[bar.symbol] = (bar.ts, line)


def checked_bars(path: Path, rows: Iterable[dict[str, str]], first_line: int = 2) -> Iterator[Bar]:
    """Every row as a ``Bar``, in file order, each checked (values, then order per symbol)."""
    order = SymbolOrder(path)
    for line, row in enumerate(rows, start=first_line):
        try:
            bar = _bar(row)
        except (ValueError, InvalidMarketData) as exc:
            raise BarFileError(path, line, str(exc)) from None
        order.check(bar, line)
        yield bar


def read_csv_bars(path: Path, keep: BarFilter | None = None) -> Iterator[Bar]:
    """The bars of a CSV file (schema above), streamed; ``BarFileError`` at the first bad row."""
    keep = keep or BarFilter()
    try:
        f = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise BarFileError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    with f:
        reader = csv.DictReader(f, skipinitialspace=True)
        try:
            _header(path, list(reader.fieldnames) if reader.fieldnames else None)
            for bar in checked_bars(path, reader):
                if keep.keeps(bar):
                    yield bar
        except UnicodeDecodeError as exc:
            raise BarFileError(path, None, f"not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            raise BarFileError(path, reader.line_num, f"malformed CSV: {exc}") from None


def read_bars_file(path: Path, keep: BarFilter | None = None) -> Iterator[Bar]:
    """A bars file by its extension: ``.parquet`` / ``.pq`` (``bars_parquet``), else CSV."""
    if path.suffix.lower() in (".parquet", ".pq"):
        from tradeplane.backtest.bars_parquet import read_parquet_bars  # pyarrow: only here

        return read_parquet_bars(path, keep)
    return read_csv_bars(path, keep)
