"""The broker's pure core: which orders exist, what a venue event does to them, and what must be
journaled. The actor shell adds only IO (journal, venue calls, notifications).

At most once per client order id: ``begin_submit`` refuses an id it has seen, whatever state the
order is in. Venue events are applied from one ordered stream; a status the order already passed
is ignored, and a fill on a closed order is an invariant breach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tradeplane.core.clock import Clock
from tradeplane.core.errors import InvariantError
from tradeplane.core.model import Fill, OrderType, Side, SubmitOrder
from tradeplane.core.orders import ORDER_STATUS, Order, OrderStatus, OrderTracker
from tradeplane.protocol.events import EventKind, VenueEventKind


class VenueFillLike(Protocol):
    @property
    def fill_id(self) -> str: ...
    @property
    def venue_order_id(self) -> str: ...
    @property
    def quantity(self) -> float: ...
    @property
    def price(self) -> float: ...
    @property
    def fee(self) -> float: ...
    @property
    def ts(self) -> float: ...
    @property
    def liquidity(self) -> str: ...


class VenueEventLike(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def client_order_id(self) -> str: ...
    @property
    def venue_order_id(self) -> str | None: ...
    @property
    def ts(self) -> float: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def fill(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A change to an order worth journaling; ``kind`` is the journal kind."""

    kind: EventKind
    order: Order
    ts: float
    fill: Fill | None = None
    reason: str | None = None


_EVENT_STATUS: dict[str, tuple[EventKind, OrderStatus]] = {
    VenueEventKind.ORDER_ACCEPTED: (EventKind.ORDER_ACCEPTED, OrderStatus.ACCEPTED),
    VenueEventKind.ORDER_REJECTED: (EventKind.ORDER_REJECTED, OrderStatus.REJECTED),
    VenueEventKind.ORDER_CANCELLED: (EventKind.ORDER_CANCELLED, OrderStatus.CANCELLED),
    VenueEventKind.ORDER_EXPIRED: (EventKind.ORDER_EXPIRED, OrderStatus.EXPIRED),
}


class ExecutionCore:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.orders = OrderTracker()
        self.duplicates_blocked = 0
        self.unmatched_events = 0
        self.ignored_events = 0
        self._cancel_after_submit: set[str] = set()

    # -- restore -------------------------------------------------------------------------------

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Rebuild from journal order rows (``journal.queries.orders``)."""
        for r in rows:
            self.orders.restore(
                Order(
                    client_order_id=r["client_order_id"],
                    intent_id=r["intent_id"],
                    strategy=r["strategy"],
                    symbol=r["symbol"],
                    side=Side(r["side"]),
                    quantity=float(r["quantity"]),
                    order_type=OrderType(r["order_type"]),
                    limit_price=r["limit_price"],
                    status=OrderStatus(r["status"]),
                    filled_quantity=float(r["filled_quantity"] or 0.0),
                    avg_fill_price=float(r["avg_fill_price"] or 0.0),
                    fees=float(r["fees"] or 0.0),
                    venue_order_id=r.get("venue_order_id"),
                    reason=r.get("reason"),
                    created_ts=float(r.get("created_ts") or 0.0),
                    updated_ts=float(r.get("updated_ts") or 0.0),
                    fill_ids=frozenset(r.get("fill_ids") or ()),
                )
            )

    # -- our side ------------------------------------------------------------------------------

    def begin_submit(self, cmd: SubmitOrder) -> OrderEvent | None:
        coid = cmd.intent.client_order_id
        if coid in self.orders:
            self.duplicates_blocked += 1
            return None
        now = self.clock.now()
        order = self.orders.add(Order.from_intent(cmd.intent, now))
        return OrderEvent(EventKind.ORDER_SUBMITTING, order, now)

    def forget_unsent(self, coid: str) -> None:
        """An order whose ``order_submitting`` the journal refused: it never left and nothing
        recorded it, so it is forgotten (a later approval of the same intent may go ahead)."""
        order = self.orders.get(coid)
        if order is not None and order.status is _S.PENDING_SUBMIT:
            self.orders.discard(coid)

    def submitted(self, coid: str) -> OrderEvent | None:
        """The venue took the submit call. Its own events may already have moved the order on."""
        order = self.orders.get(coid)
        if order is None or order.status not in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN):
            return None
        now = self.clock.now()
        updated = self.orders.update_status(coid, _S.SUBMITTED, now)
        return OrderEvent(EventKind.ORDER_SUBMITTED, updated, now)

    def unknown(self, coid: str, reason: str) -> OrderEvent | None:
        """Timeout or disconnect during submit: the outcome is unknown until the venue says.

        Only an order still pending submit becomes unknown. One the venue's own events already
        moved on (the venue took it and said so before the call's answer was lost) is known:
        marking it unknown would leave it an open question that no further event may answer."""
        order = self.orders.get(coid)
        if order is None or order.status is not _S.PENDING_SUBMIT:
            return None
        now = self.clock.now()
        updated = self.orders.update_status(coid, _S.UNKNOWN, now, reason=reason)
        return OrderEvent(EventKind.ORDER_UNKNOWN, updated, now, reason=reason)

    def close_unconfirmed(self, coid: str, reason: str) -> OrderEvent | None:
        """The venue, asked after the grace period, has never seen this order."""
        order = self.orders.get(coid)
        if order is None or order.status not in (_S.PENDING_SUBMIT, _S.UNKNOWN):
            return None
        now = self.clock.now()
        updated = self.orders.update_status(coid, _S.REJECTED, now, reason=reason)
        return OrderEvent(EventKind.ORDER_REJECTED, updated, now, reason=reason)

    def request_cancel(self, coid: str) -> tuple[OrderEvent | None, bool]:
        """Returns (event, send_now). An order still being submitted is cancelled once it is."""
        order = self.orders.get(coid)
        if order is None or order.is_terminal:
            return None, False
        if order.status in (_S.PENDING_SUBMIT, _S.UNKNOWN):
            self._cancel_after_submit.add(coid)
            return None, False
        if order.status is _S.PENDING_CANCEL:
            return None, False
        now = self.clock.now()
        return OrderEvent(
            EventKind.ORDER_PENDING_CANCEL,
            self.orders.update_status(coid, _S.PENDING_CANCEL, now),
            now,
        ), True

    def take_deferred_cancel(self, coid: str) -> bool:
        order = self.orders.get(coid)
        working = (_S.SUBMITTED, _S.ACCEPTED, _S.PARTIALLY_FILLED)
        if coid in self._cancel_after_submit and order is not None and order.status in working:
            self._cancel_after_submit.discard(coid)
            return True
        return False

    # -- venue side ----------------------------------------------------------------------------

    def apply_venue_event(self, ev: VenueEventLike) -> list[OrderEvent]:
        order = self.orders.get(ev.client_order_id)
        if order is None:
            self.unmatched_events += 1
            return []
        out: list[OrderEvent] = []
        if (
            order.status in (_S.PENDING_SUBMIT, _S.UNKNOWN)
            and ev.kind != VenueEventKind.CANCEL_REJECTED
        ):
            # The venue has it, so it was submitted, whatever our submit call reported.
            order = self.orders.update_status(ev.client_order_id, _S.SUBMITTED, ev.ts)
            out.append(OrderEvent(EventKind.ORDER_SUBMITTED, order, ev.ts))
        if ev.kind == VenueEventKind.ORDER_FILLED:
            out.append(self._apply_fill(order, ev))
            return out
        if ev.kind == VenueEventKind.CANCEL_REJECTED:
            if order.status is _S.PENDING_CANCEL:
                back = _S.PARTIALLY_FILLED if order.filled_quantity > 0 else _S.ACCEPTED
                updated = self.orders.update_status(order.client_order_id, back, ev.ts)
                out.append(
                    OrderEvent(EventKind.ORDER_CANCEL_REJECTED, updated, ev.ts, reason=ev.reason)
                )
            return out
        change = _EVENT_STATUS.get(ev.kind)
        if change is None:
            self.ignored_events += 1
            return out
        journal_kind, status = change
        if order.status is status or not ORDER_STATUS.allowed(order.status, status):
            # Already there or already past it (a replayed event): nothing to do.
            self.ignored_events += 1
            return out
        updated = self.orders.update_status(
            order.client_order_id,
            status,
            ev.ts,
            reason=ev.reason,
            venue_order_id=ev.venue_order_id,
        )
        out.append(OrderEvent(journal_kind, updated, ev.ts, reason=ev.reason))
        return out

    def _apply_fill(self, order: Order, ev: VenueEventLike) -> OrderEvent:
        vf: VenueFillLike = ev.fill
        if vf is None:
            raise InvariantError(f"fill event {ev.seq} for {order.client_order_id} has no fill")
        fill = Fill(
            fill_id=vf.fill_id,
            client_order_id=order.client_order_id,
            intent_id=order.intent_id,
            strategy=order.strategy,
            symbol=order.symbol,
            side=order.side,
            quantity=vf.quantity,
            price=vf.price,
            fee=vf.fee,
            ts=vf.ts,
            venue_order_id=vf.venue_order_id,
            liquidity=vf.liquidity,
        )
        if fill.fill_id in order.fill_ids:
            self.ignored_events += 1
            return OrderEvent(EventKind.ORDER_FILL_DUPLICATE, order, ev.ts, fill=fill)
        if order.is_terminal:
            raise InvariantError(
                f"fill {fill.fill_id} on {order.client_order_id} which is already {order.status}"
            )
        updated, _ = self.orders.apply_fill(fill)
        return OrderEvent(EventKind.ORDER_FILLED, updated, ev.ts, fill=fill)


_S = OrderStatus


def order_event_data(ev: OrderEvent) -> dict[str, Any]:
    """The journal payload of an order event: the order's fields after it, and the fill."""
    o = ev.order
    data: dict[str, Any] = {
        "client_order_id": o.client_order_id,
        "intent_id": o.intent_id,
        "strategy": o.strategy,
        "symbol": o.symbol,
        "side": o.side.value,
        "quantity": o.quantity,
        "order_type": o.order_type.value,
        "limit_price": o.limit_price,
        "status": o.status.value,
        "filled_quantity": o.filled_quantity,
        "avg_fill_price": o.avg_fill_price,
        "fees": o.fees,
        "venue_order_id": o.venue_order_id,
    }
    if ev.reason is not None:
        data["reason"] = ev.reason
    if ev.fill is not None:
        f = ev.fill
        data["fill"] = {
            "fill_id": f.fill_id,
            "symbol": f.symbol,
            "side": f.side.value,
            "quantity": f.quantity,
            "price": f.price,
            "fee": f.fee,
            "ts": f.ts,
            "liquidity": f.liquidity,
            "venue_order_id": f.venue_order_id,
        }
    return data
