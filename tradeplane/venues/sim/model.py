"""What the paper venue speaks: order requests, order states, fills, positions and the events it
streams, and how a fill nets into a position (pure data, shared by the engine and its store)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tradeplane.venues.base import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    VenueEvent,
    VenueFill,
    VenueOrderRequest,
    VenueOrderState,
    VenuePosition,
)

__all__ = [
    "TERMINAL_STATUSES",
    "WORKING_STATUSES",
    "EngineChanges",
    "EngineState",
    "VenueEvent",
    "VenueFill",
    "VenueOrderRequest",
    "VenueOrderState",
    "VenuePosition",
    "apply_fill_to_position",
    "as_float",
    "is_real",
]

STAT_NAMES = ("submits", "duplicate_submits", "rejects", "fills", "cancels")
VENUE_ORDER_PREFIX = "SIM-"

# Quantities closer than this (relative) to the ordered amount count as completely filled, so
# float dust never leaves an order working forever.
QTY_REL_EPS = 1e-9


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
