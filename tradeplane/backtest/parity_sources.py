"""The two sides of a parity check, read from disk: a deployment's journal (read-only) and a
backtest's output directory (``intents.csv``, ``fills.csv``)."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tradeplane.backtest.parity import FillTotal, IntentRow
from tradeplane.core.errors import OperationalError
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
