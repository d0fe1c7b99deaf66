"""Builders for journal records shaped like the ones the actors write."""

from __future__ import annotations

from typing import Any

from tradeplane.journal.records import JournalRecord
from tradeplane.protocol.events import EventKind, event_kind

DEPLOYMENT = "demo"
T0 = 1_700_000_000.0


# A kind the journal only records (no projection): the filler of tests about the record itself.
NOTE = EventKind.BAR_SUMMARY


def rec(
    event_id: str, kind: EventKind | str = NOTE, data: dict[str, Any] | None = None, **kw: Any
) -> JournalRecord:
    kw.setdefault("ts", T0)
    kw.setdefault("deployment", DEPLOYMENT)
    data = data if data is not None else {}
    return JournalRecord(event_id=event_id, kind=event_kind(kind), data=data, **kw)


def notes(n: int, start: int = 0, prefix: str = "n") -> list[JournalRecord]:
    return [rec(f"{prefix}{i}", data={"i": i}, ts=T0 + i) for i in range(start, start + n)]


def order_fields(
    n: int,
    *,
    strategy: str = "s1",
    symbol: str = "BTC-USDT",
    side: str = "buy",
    quantity: float = 2.0,
    limit_price: float | None = 100.0,
) -> dict[str, Any]:
    return {
        "client_order_id": f"c{n}",
        "intent_id": f"i{n}",
        "strategy": strategy,
        "symbol": symbol,
        "side": side,
        "quantity": quantity,
        "order_type": "limit" if limit_price is not None else "market",
        "limit_price": limit_price,
    }


def _ids(n: int, strategy: str) -> dict[str, Any]:
    return {"strategy": strategy, "intent_id": f"i{n}", "client_order_id": f"c{n}"}


def intent(n: int, *, strategy: str = "s1", **fields: Any) -> JournalRecord:
    data = {**order_fields(n, strategy=strategy, **fields), "ts": T0, "trigger": f"bar:{n}"}
    data["traceparent"] = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    return rec(f"intent/{n}", "intent", data, traceparent=data["traceparent"], **_ids(n, strategy))


def denied(n: int, reason: str, *, strategy: str = "s1") -> JournalRecord:
    return rec(f"denied/{n}", "order_denied", {"reason": reason}, **_ids(n, strategy))


def submitting(n: int, *, strategy: str = "s1", **fields: Any) -> JournalRecord:
    data = order_fields(n, strategy=strategy, **fields)
    return rec(f"submitting/{n}", "order_submitting", data, ts=T0 + 1, **_ids(n, strategy))


def status(n: int, kind: str, *, strategy: str = "s1", **data: Any) -> JournalRecord:
    return rec(f"{kind}/{n}", kind, data, ts=T0 + 2, **_ids(n, strategy))


def filled(
    n: int,
    fill_id: str,
    quantity: float,
    price: float,
    *,
    cumulative: float,
    avg: float,
    order_status: str,
    side: str = "buy",
    symbol: str = "BTC-USDT",
    fee: float = 0.1,
    strategy: str = "s1",
    event_id: str | None = None,
) -> JournalRecord:
    fill = {
        "fill_id": fill_id,
        "symbol": symbol,
        "side": side,
        "quantity": quantity,
        "price": price,
        "fee": fee,
        "ts": T0 + 3,
        "liquidity": "taker",
        "venue_order_id": f"v{n}",
    }
    data = {
        "fill": fill,
        "status": order_status,
        "filled_quantity": cumulative,
        "avg_fill_price": avg,
        "fees": fee,
    }
    return rec(event_id or f"fill/{fill_id}", "order_filled", data, ts=T0 + 3, **_ids(n, strategy))


def trade(
    n: int,
    side: str,
    quantity: float,
    price: float,
    *,
    strategy: str = "s1",
    symbol: str = "BTC-USDT",
    fee: float = 0.0,
) -> list[JournalRecord]:
    """A whole order filled at once: submitting + one fill."""
    return [
        submitting(n, strategy=strategy, side=side, quantity=quantity, symbol=symbol),
        filled(
            n,
            f"f{n}",
            quantity,
            price,
            cumulative=quantity,
            avg=price,
            order_status="filled",
            side=side,
            symbol=symbol,
            fee=fee,
            strategy=strategy,
        ),
    ]
