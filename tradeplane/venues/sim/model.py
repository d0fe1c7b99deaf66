"""What the paper venue speaks: order requests, order states, fills, positions and the events it
streams, and how a fill nets into a position (pure data, shared by the engine and its store)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tradeplane.core.model import OrderType, Side

WORKING_STATUSES = frozenset({"accepted", "partially_filled"})
TERMINAL_STATUSES = frozenset({"filled", "cancelled", "rejected", "expired"})
STAT_NAMES = ("submits", "duplicate_submits", "rejects", "fills", "cancels")
VENUE_ORDER_PREFIX = "SIM-"

# Quantities closer than this (relative) to the ordered amount count as completely filled, so
# float dust never leaves an order working forever.
QTY_REL_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class VenueOrderRequest:
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    limit_price: float | None = None

    def __post_init__(self) -> None:
        # Enum fields are a programming contract (a typo is a bug, not a venue reject); numbers
        # are validated by the engine and rejected the way a real venue would.
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))


@dataclass(frozen=True, slots=True)
class VenueFill:
    fill_id: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts: float
    liquidity: str  # "maker" | "taker"

    @property
    def signed_quantity(self) -> float:
        return self.side.sign * self.quantity


@dataclass(frozen=True, slots=True)
class VenueOrderState:
    client_order_id: str
    venue_order_id: str | None
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    limit_price: float | None
    status: str  # accepted | partially_filled | filled | cancelled | rejected | expired
    filled_quantity: float
    avg_fill_price: float
    fees: float
    reason: str | None
    created_ts: float
    updated_ts: float

    @property
    def is_working(self) -> bool:
        return self.status in WORKING_STATUSES

    @property
    def remaining_quantity(self) -> float:
        return max(0.0, self.quantity - self.filled_quantity)


@dataclass(frozen=True, slots=True)
class VenueEvent:
    seq: int
    kind: str  # order_accepted | order_rejected | order_cancelled | order_filled | cancel_rejected
    client_order_id: str
    venue_order_id: str | None
    ts: float
    reason: str | None = None
    fill: VenueFill | None = None


@dataclass(frozen=True, slots=True)
class VenuePosition:
    symbol: str
    quantity: float  # signed, short < 0
    avg_price: float


@dataclass(slots=True)
class EngineChanges:
    """What changed since the last ``take_changes``; with the events (which carry the fills)
    this is exactly what a store must write."""

    orders: dict[str, VenueOrderState]  # latest state per client order id
    positions: dict[str, VenuePosition]  # quantity 0 = position closed
    last_prices: dict[str, float]
    last_seq: int
    order_counter: int
    stats: dict[str, int]


@dataclass(slots=True)
class EngineState:
    """Everything needed to rebuild an engine; events are kept by whoever persists them."""

    orders: list[VenueOrderState]
    fills: list[VenueFill]  # in the order they happened
    positions: dict[str, VenuePosition]
    last_prices: dict[str, float]
    last_seq: int
    order_counter: int
    stats: dict[str, int]


def is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def as_float(value: Any) -> float:
    """A rejected request still leaves a record; anything that is not a number becomes NaN."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


def apply_fill_to_position(
    position: VenuePosition | None, symbol: str, signed_qty: float, price: float
) -> VenuePosition:
    """Net a fill into a position; reducing keeps the entry price, a flip restarts it."""
    qty = position.quantity if position else 0.0
    avg = position.avg_price if position else 0.0
    new_qty = qty + signed_qty
    if abs(new_qty) <= QTY_REL_EPS * max(abs(qty), abs(signed_qty)):
        return VenuePosition(symbol, 0.0, 0.0)
    if qty == 0.0 or (qty > 0) == (signed_qty > 0):
        avg = (avg * abs(qty) + price * abs(signed_qty)) / abs(new_qty)
    elif (new_qty > 0) != (qty > 0):
        avg = price
    return VenuePosition(symbol, new_qty, avg)
