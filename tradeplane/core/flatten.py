"""Orders that bring every strategy's positions back to flat (kill switch, ``tradeplane flatten``).

Each position is closed by its own strategy's book, so the fill lands in the right virtual
portfolio; the intent ids derive from the flatten request, so repeating the same request (a
resend after a restart) cannot send a second set of orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tradeplane.core import ids
from tradeplane.core.exposure import is_flat
from tradeplane.core.model import Intent, OrderType, Side

FLATTEN_TRIGGER_PREFIX = "flatten:"
"""Every flatten intent's trigger starts so: a restarted risk never re-sends one on its own."""


def flatten_intents(
    deployment: str,
    positions: Mapping[tuple[str, str], Mapping[str, Any]],
    *,
    request_id: str,
    ts: float,
) -> list[Intent]:
    """One market intent per (strategy, symbol) that holds a position, opposite side, same size."""
    trigger = f"{FLATTEN_TRIGGER_PREFIX}{request_id}"
    out: list[Intent] = []
    for ordinal, ((strategy, symbol), row) in enumerate(sorted(positions.items())):
        qty = float(row.get("quantity") or 0.0)
        if is_flat(qty):
            continue
        intent_id = ids.intent_id(deployment, strategy, trigger, ordinal)
        out.append(
            Intent(
                intent_id=intent_id,
                client_order_id=ids.client_order_id(intent_id),
                deployment=deployment,
                strategy=strategy,
                symbol=symbol,
                side=Side.SELL if qty > 0 else Side.BUY,
                quantity=abs(qty),
                order_type=OrderType.MARKET,
                limit_price=None,
                ts=ts,
                trigger=trigger,
            )
        )
    return out


def cash_flow_from_positions(rows: Iterable[Mapping[str, Any]]) -> float:
    """Cash paid and received over all fills, from per-book positions: what was realized, less
    fees, less what the open quantity cost (avg price x signed quantity)."""
    return sum(
        float(r.get("realized_pnl") or 0.0)
        - float(r.get("fees") or 0.0)
        - float(r.get("quantity") or 0.0) * float(r.get("avg_price") or 0.0)
        for r in rows
    )
