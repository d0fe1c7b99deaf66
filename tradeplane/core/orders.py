"""Order status as a transition table, and the tracker that applies venue events to orders.

``unknown`` is where an ambiguous outcome (timeout or disconnect during submit) waits until the
venue is asked; it is never resolved by guessing (DESIGN invariant 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from tradeplane.core.errors import InvariantError
from tradeplane.core.exposure import QTY_EPS
from tradeplane.core.model import Fill, Intent, OrderType, Side
from tradeplane.core.statemachine import TransitionTable


class OrderStatus(StrEnum):
    PENDING_SUBMIT = "pending_submit"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


_S = OrderStatus
_WORKING_EXITS = frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED, _S.UNKNOWN})

ORDER_STATUS = TransitionTable[OrderStatus](
    "order status",
    {
        _S.PENDING_SUBMIT: frozenset({_S.SUBMITTED, _S.REJECTED, _S.UNKNOWN}),
        # A venue may fill or reject before (or instead of) acknowledging.
        _S.SUBMITTED: frozenset({_S.ACCEPTED, _S.REJECTED} | _WORKING_EXITS | {_S.PENDING_CANCEL}),
        _S.ACCEPTED: _WORKING_EXITS | {_S.PENDING_CANCEL},
        _S.PARTIALLY_FILLED: _WORKING_EXITS | {_S.PENDING_CANCEL},
        # A refused cancel returns the order to working; a fill may race the cancel, and so may
        # the venue's refusal of an order cancelled before it was acknowledged.
        _S.PENDING_CANCEL: frozenset(
            {_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED, _S.UNKNOWN}
            | {_S.REJECTED}
        ),
        # Resolved only by what the venue reports.
        _S.UNKNOWN: frozenset(
            {_S.SUBMITTED, _S.ACCEPTED, _S.PARTIALLY_FILLED, _S.PENDING_CANCEL}
            | {_S.FILLED, _S.CANCELLED, _S.REJECTED, _S.EXPIRED}
        ),
        _S.FILLED: frozenset(),
        _S.CANCELLED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.EXPIRED: frozenset(),
    },
)

TERMINAL_STATUSES = frozenset(s for s in OrderStatus if ORDER_STATUS.is_terminal(s))
OPEN_STATUSES = frozenset(OrderStatus) - TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class Order:
    client_order_id: str
    intent_id: str
    strategy: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    limit_price: float | None
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    filled_quantity: float = 0.0
    avg_fill_price: float = 0.0
    fees: float = 0.0
    venue_order_id: str | None = None
    reason: str | None = None
    created_ts: float = 0.0
    updated_ts: float = 0.0
    fill_ids: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_intent(cls, intent: Intent, ts: float) -> Order:
        return cls(
            client_order_id=intent.client_order_id,
            intent_id=intent.intent_id,
            strategy=intent.strategy,
            symbol=intent.symbol,
            side=intent.side,
            quantity=intent.quantity,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
            created_ts=ts,
            updated_ts=ts,
        )

    @property
    def remaining_quantity(self) -> float:
        return max(0.0, self.quantity - self.filled_quantity)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def with_status(
        self,
        status: OrderStatus,
        ts: float,
        *,
        reason: str | None = None,
        venue_order_id: str | None = None,
    ) -> Order:
        if status == self.status and status is OrderStatus.PARTIALLY_FILLED:
            return replace(self, updated_ts=ts)
        ORDER_STATUS.check(self.status, status)
        return replace(
            self,
            status=status,
            updated_ts=ts,
            reason=reason if reason is not None else self.reason,
            venue_order_id=venue_order_id or self.venue_order_id,
        )

    def with_fill(self, fill: Fill) -> Order:
        """Apply a fill; a repeated fill id is ignored, an overfill is an invariant breach."""
        if fill.fill_id in self.fill_ids:
            return self
        if fill.client_order_id != self.client_order_id or fill.side is not self.side:
            raise InvariantError(f"fill {fill.fill_id} does not belong to {self.client_order_id}")
        filled = self.filled_quantity + fill.quantity
        if filled > self.quantity * (1 + 1e-9) + QTY_EPS:
            raise InvariantError(
                f"overfill on {self.client_order_id}: {filled} > ordered {self.quantity}"
            )
        avg = (self.avg_fill_price * self.filled_quantity + fill.price * fill.quantity) / filled
        done = math.isclose(filled, self.quantity, rel_tol=1e-9, abs_tol=QTY_EPS)
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        if status != self.status or status is not OrderStatus.PARTIALLY_FILLED:
            ORDER_STATUS.check(self.status, status)
        return replace(
            self,
            status=status,
            filled_quantity=self.quantity if done else filled,
            avg_fill_price=avg,
            fees=self.fees + fill.fee,
            updated_ts=fill.ts,
            venue_order_id=fill.venue_order_id or self.venue_order_id,
            fill_ids=self.fill_ids | {fill.fill_id},
        )


class OrderTracker:
    """All orders known to one broker, keyed by client order id."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, client_order_id: str) -> Order | None:
        return self._orders.get(client_order_id)

    def add(self, order: Order) -> Order:
        if order.client_order_id in self._orders:
            raise InvariantError(f"order {order.client_order_id} already tracked")
        self._orders[order.client_order_id] = order
        return order

    def restore(self, order: Order) -> None:
        self._orders[order.client_order_id] = order

    def discard(self, client_order_id: str) -> None:
        self._orders.pop(client_order_id, None)

    def update_status(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts: float,
        *,
        reason: str | None = None,
        venue_order_id: str | None = None,
    ) -> Order:
        order = self._require(client_order_id)
        if order.status is status and status is not OrderStatus.PARTIALLY_FILLED:
            return order
        updated = order.with_status(status, ts, reason=reason, venue_order_id=venue_order_id)
        self._orders[client_order_id] = updated
        return updated

    def apply_fill(self, fill: Fill) -> tuple[Order, bool]:
        """Returns the updated order and whether the fill was new."""
        order = self._require(fill.client_order_id)
        if fill.fill_id in order.fill_ids:
            return order, False
        updated = order.with_fill(fill)
        self._orders[fill.client_order_id] = updated
        return updated, True

    def open_orders(self) -> list[Order]:
        return [o for o in self._orders.values() if not o.is_terminal]

    def in_status(self, status: OrderStatus) -> list[Order]:
        return [o for o in self._orders.values() if o.status is status]

    def all(self) -> list[Order]:
        return list(self._orders.values())

    def _require(self, client_order_id: str) -> Order:
        order = self._orders.get(client_order_id)
        if order is None:
            raise InvariantError(f"unknown order {client_order_id}")
        return order
