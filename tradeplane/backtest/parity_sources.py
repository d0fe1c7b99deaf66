"""The two sides of a parity check, read from disk: a deployment's journal (read-only) and a
backtest's output directory (``intents.csv``, ``fills.csv``)."""

from __future__ import annotations

import bisect
import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tradeplane.backtest.bars_file import BarFilter
from tradeplane.backtest.bars_parquet import read_parquet_bars
from tradeplane.backtest.parity import LATE_BARS_SEARCHED, FillTotal, IntentRow
from tradeplane.core.errors import OperationalError
from tradeplane.journal.bar_store import bars_dir, read_chunks
from tradeplane.journal.reader import JournalReader
from tradeplane.protocol.events import STRATEGY_SNAPSHOT_SCOPE


@dataclass(slots=True)
class Side:
    intents: list[IntentRow]
    fills: dict[str, FillTotal]
    horizon: dict[str, datetime | None]  # live only: the last bar each strategy took


def live_side(state_dir: Path) -> Side:
    """The deployment's intents per strategy in the order it made them (its clock's stamps,
    the journal's order on a tie), their fills, and the last bar each strategy took."""
    with JournalReader.open(state_dir) as reader:
        rows = reader.intents()
        fills = reader.fills()
        snapshots = reader.states(STRATEGY_SNAPSHOT_SCOPE)
    rows.sort(key=lambda r: (float(r.get("ts") or 0.0), int(r["seq"])))
    intents = [
        IntentRow(
            str(r["strategy"]),
            str(r["intent_id"]),
            str(r.get("trigger") or ""),
            str(r["symbol"]),
            str(r["side"]),
            float(r["quantity"]),
        )
        for r in rows
    ]
    by_intent: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for f in fills:
        if f.get("intent_id"):
            by_intent[str(f["intent_id"])].append(
                (float(f["quantity"]), float(f["price"]), float(f["fee"] or 0.0))
            )
    horizon: dict[str, datetime | None] = {}
    for name, snap in snapshots.items():
        taken = [datetime.fromisoformat(t) for t in (snap.get("last_bar_ts") or {}).values()]
        horizon[name] = min(taken) if taken else None
    for r in intents:  # a strategy killed after its last snapshot took bars beyond it
        bar, seen = r.bar_time(), horizon.get(r.strategy)
        if bar is not None and (seen is None or bar > seen):
            horizon[r.strategy] = bar
    return Side(intents, {k: FillTotal.of(v) for k, v in by_intent.items()}, horizon)


def backtest_side(out_dir: Path) -> Side:
    """A backtest's intents (``intents.csv``, in the order made) and fills (``fills.csv``)."""
    intents_csv, fills_csv = out_dir / "intents.csv", out_dir / "fills.csv"
    for path in (intents_csv, fills_csv):
        if not path.is_file():
            raise OperationalError(f"{path}: not found (the --out of `tradeplane backtest`)")
    with intents_csv.open(newline="", encoding="utf-8") as f:
        intents = [
            IntentRow(
                r["strategy"],
                r["intent_id"],
                r["trigger"],
                r["symbol"],
                r["side"],
                float(r["quantity"]),
            )
            for r in csv.DictReader(f)
        ]
    by_intent: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    with fills_csv.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            by_intent[r["intent_id"]].append(
                (float(r["quantity"]), float(r["price"]), float(r["fee"] or 0.0))
            )
    return Side(intents, {k: FillTotal.of(v) for k, v in by_intent.items()}, {})


class RecordedOpens:
    """The recorded bars' opens per symbol (``<state_dir>/bars``), read once on first use: what
    ``parity.compare`` needs to tell a late fill apart. Without recorded bars, none; with bars
    that cannot be read, none either, and ``unreadable`` says why (the check goes on)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._opens: dict[str, tuple[list[datetime], list[float]]] | None = None
        self.unreadable: str | None = None

    def __call__(self, symbol: str, after: datetime) -> list[tuple[datetime, float]]:
        if self._opens is None:
            try:
                self._opens = self._read()
            except (OSError, ValueError) as exc:
                self._opens, self.unreadable = {}, f"{type(exc).__name__}: {exc}"[:300]
        times, opens = self._opens.get(symbol, ([], []))
        start = bisect.bisect_right(times, after)
        stop = start + LATE_BARS_SEARCHED + 1
        return list(zip(times[start:stop], opens[start:stop], strict=True))

    def _read(self) -> dict[str, tuple[list[datetime], list[float]]]:
        out: dict[str, tuple[list[datetime], list[float]]] = {}
        directory = bars_dir(self.state_dir)
        if not directory.is_dir():
            return out
        for bar in read_chunks(directory, lambda path: read_parquet_bars(path, BarFilter())):
            times, opens = out.setdefault(bar.symbol, ([], []))
            times.append(bar.ts)  # read_chunks yields non-decreasing times, each once
            opens.append(bar.open)
        return out
