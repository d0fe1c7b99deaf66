"""Builders for the journal records every actor writes, so kinds and ids stay consistent."""

from __future__ import annotations

import logging
from typing import Any

from tradeplane.core.execution import OrderEvent, order_event_data
from tradeplane.core.ids import unique_event_id
from tradeplane.core.model import Intent, OrderDenied, OrderType, Side, SubmitOrder
from tradeplane.journal.records import JournalRecord, StateWrite
from tradeplane.protocol.events import EventKind

log = logging.getLogger("tradeplane.records")

# Where the safety layer keeps its state in the journal's record (scope, key).
RISK_SCOPE = "risk"
RISK_STATE_KEY = "state"
KILL_SWITCH_KEY = "kill_switch"
RECONCILIATION_SCOPE, RECONCILIATION_KEY = "reconciliation", "last"


def kill_switch_state(
    active: bool, reason: str, source: str, ts: float, **extra: Any
) -> StateWrite:
    """The operator-facing record of the kill switch; authoritative on start (the CLI writes it
    directly when the deployment is not running)."""
    value = {"active": active, "reason": reason, "source": source, "ts": ts, **extra}
    return StateWrite(RISK_SCOPE, KILL_SWITCH_KEY, value, ts)


def intent_record(intent: Intent, extra: dict[str, Any] | None = None) -> JournalRecord:
    data: dict[str, Any] = {
        "intent_id": intent.intent_id,
        "client_order_id": intent.client_order_id,
        "strategy": intent.strategy,
        "symbol": intent.symbol,
        "side": intent.side.value,
        "quantity": intent.quantity,
        "order_type": intent.order_type.value,
        "limit_price": intent.limit_price,
        "trigger": intent.trigger,
        "ts": intent.ts,
        "bar_recv_ts": intent.bar_recv_ts,
    }
    if extra:
        data.update(extra)
    return JournalRecord(
        event_id=f"intent/{intent.intent_id}",
        kind=EventKind.INTENT,
        ts=intent.ts,
        deployment=intent.deployment,
        data=data,
        strategy=intent.strategy,
        intent_id=intent.intent_id,
        client_order_id=intent.client_order_id,
        traceparent=intent.traceparent,
    )


def carried_intent(intent: Intent) -> dict[str, Any]:
    """What a decision's record carries of its intent beyond the order fields (the intent record
    may be lost: it is journaled off the critical path)."""
    return {
        "ts": intent.ts,
        "trigger": intent.trigger,
        "bar_recv_ts": intent.bar_recv_ts,
        "order_type": intent.order_type.value,
        "traceparent": intent.traceparent,
    }


def denial_record(
    denial: OrderDenied, *, received_ts: float | None = None, traceparent: str | None = None
) -> JournalRecord:
    """``received_ts`` (when risk got the intent) and ``traceparent`` (its ``risk.check`` span)
    are what the exporter needs to build that span from this record."""
    i = denial.intent
    return JournalRecord(
        event_id=f"order_denied/{i.intent_id}",
        kind=EventKind.ORDER_DENIED,
        ts=denial.ts,
        deployment=i.deployment,
        data={
            "reason": denial.reason,
            "message": denial.message,
            "figures": dict(denial.figures),
            "symbol": i.symbol,
            "side": i.side.value,
            "quantity": i.quantity,
            "limit_price": i.limit_price,
            "received_ts": received_ts,
            "intent": carried_intent(i),
        },
        strategy=i.strategy,
        intent_id=i.intent_id,
        client_order_id=i.client_order_id,
        traceparent=traceparent or i.traceparent,
    )


def order_record(
    deployment: str,
    ev: OrderEvent,
    *,
    venue_seq: int | None = None,
    traceparent: str | None = None,
    extra: dict[str, Any] | None = None,
) -> JournalRecord:
    """``traceparent`` is the order's ``broker.submit`` span when the broker knows it; ``extra``
    adds span timings (``received_ts``, ``sent_ts``, ``trace``) to the payload."""
    o = ev.order
    if ev.fill is not None:
        event_id = f"{ev.kind}/{ev.fill.fill_id}"
    elif venue_seq is not None:
        event_id = f"{ev.kind}/{o.client_order_id}/v{venue_seq}"
    elif ev.kind in (EventKind.ORDER_SUBMITTING, EventKind.ORDER_SUBMITTED):
        event_id = f"{ev.kind}/{o.client_order_id}"
    else:
        event_id = f"{ev.kind}/{o.client_order_id}/{unique_event_id('x')[2:]}"
    return JournalRecord(
        event_id=event_id,
        kind=ev.kind,
        ts=ev.ts,
        deployment=deployment,
        data={**order_event_data(ev), **extra} if extra else order_event_data(ev),
        strategy=o.strategy,
        intent_id=o.intent_id,
        client_order_id=o.client_order_id,
        traceparent=traceparent,
    )


def submitting_record(
    deployment: str,
    ev: OrderEvent,
    cmd: SubmitOrder,
    *,
    broker_received_ts: float,
    traceparent: str | None = None,
    venue_incarnation: int | None = None,
) -> JournalRecord:
    """The broker's ``order_submitting``: the only record durable before an order leaves, so it
    also carries the intent (``intent``: what the strategy's intent record holds beyond the
    order's own fields, with the intent's root ``traceparent``) and risk's decision
    (``decision``); the strategy's intent record and risk's approval, journaled off the critical
    path, can then be lost without losing the intent, its decision or a span of its trace.
    ``venue_incarnation``: the venue incarnation the submit is addressed to, when known."""
    i = cmd.intent
    timing = {
        "risk_received_ts": cmd.received_ts,
        "approved_ts": cmd.approved_ts,
        "broker_received_ts": broker_received_ts,
    }
    extra: dict[str, Any] = {
        "trace": timing,
        "intent": carried_intent(i),
        "decision": {
            "decision": "approved",
            "approved_ts": cmd.approved_ts,
            "received_ts": cmd.received_ts,
            "reference_price": cmd.reference_price,
            "reduces_position": cmd.reduces_position,
            "flatten": cmd.flatten,
            "traceparent": cmd.traceparent,
        },
    }
    if venue_incarnation is not None:
        extra["venue_incarnation"] = venue_incarnation
    return order_record(deployment, ev, traceparent=traceparent, extra=extra)


def event_record(
    deployment: str,
    kind: EventKind,
    ts: float,
    data: dict[str, Any],
    *,
    strategy: str | None = None,
    event_id: str | None = None,
) -> JournalRecord:
    return JournalRecord(
        event_id=event_id or unique_event_id(kind),
        kind=kind,
        ts=ts,
        deployment=deployment,
        data=data,
        strategy=strategy,
    )


def intent_from_row(deployment: str, row: dict[str, Any]) -> Intent | None:
    """An intent as the journal's projection holds it; None for a row that cannot be one."""
    try:
        return Intent(
            intent_id=str(row["intent_id"]),
            client_order_id=str(row["client_order_id"]),
            deployment=deployment,
            strategy=str(row["strategy"]),
            symbol=str(row["symbol"]),
            side=Side(row["side"]),
            quantity=float(row["quantity"]),
            order_type=OrderType(row["order_type"]),
            limit_price=None if row.get("limit_price") is None else float(row["limit_price"]),
            ts=float(row["ts"]),
            trigger=str(row.get("trigger") or ""),
            traceparent=row.get("traceparent"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        log.error("intent %s in the journal is unreadable: %s", row.get("intent_id"), exc)
        return None
