"""Status read from a state dir without Ray: the journal database opened read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradeplane.actors.records import (
    KILL_SWITCH_KEY,
    RECONCILIATION_KEY,
    RECONCILIATION_SCOPE,
    RISK_SCOPE,
    RISK_STATE_KEY,
)
from tradeplane.core.exposure import is_flat
from tradeplane.journal.reader import JournalReader


def offline_status(state_dir: Path, *, tail: int = 10) -> dict[str, Any]:
    reader = JournalReader.open(state_dir)
    try:
        positions = reader.positions()
        strategies: dict[str, Any] = {}
        for (strategy, symbol), pos in positions.items():
            entry = strategies.setdefault(strategy, {"positions": {}, "pnl": {}, "stats": {}})
            if not is_flat(float(pos.get("quantity", 0.0))):
                entry["positions"][symbol] = pos
        return {
            "state_dir": str(state_dir),
            "run": reader.get_state("supervisor", "run") or {},
            "health": reader.get_state("health", "deployment") or {},
            "orders": reader.order_counts_by_status(),
            "open_orders": reader.orders(open_only=True),
            "strategies": strategies,
            "risk_state": reader.get_state(RISK_SCOPE, RISK_STATE_KEY) or {},
            "kill_switch": reader.get_state(RISK_SCOPE, KILL_SWITCH_KEY) or {"active": False},
            "reconciliation": reader.get_state(RECONCILIATION_SCOPE, RECONCILIATION_KEY),
            "tail": reader.tail(tail),
            "last_seq": reader.meta().get("last_seq"),
        }
    finally:
        reader.close()
