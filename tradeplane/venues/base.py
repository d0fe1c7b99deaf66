"""What every venue speaks, whichever it is (the sim venue, IB; OKX and Binance for market data):
the order request the broker sends, the order states, fills, positions and events a venue reports,
the client interface the broker talks through, and how a venue's report becomes the holdings that
reconciliation compares. No venue imports another; all import this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tradeplane.core.model import OrderType, Side
from tradeplane.core.reconcile import Holdings, LiveOrder
from tradeplane.core.slot_init import slot_init

if TYPE_CHECKING:
    from tradeplane.core.model import Bar

WORKING_STATUSES = frozenset({"accepted", "partially_filled"})
TERMINAL_STATUSES = frozenset({"filled", "cancelled", "rejected", "expired"})


@slot_init
@dataclass(frozen=True, slots=True)
class VenueOrderRequest:
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    limit_price: float | None = None
    venue_incarnation: int | None = None
    """The venue incarnation this submit is addressed to (``VenueClient.incarnation`` when the
    broker journaled it), or None. A venue with final lookups places it only there: a submit
    meant for an incarnation that has since been replaced is refused, never placed late."""

    def __post_init__(self) -> None:
        # Enum fields are a programming contract (a typo is a bug, not a venue reject); numbers
        # are validated by the engine and rejected the way a real venue would.
        # (Already the enum, the usual case: the Enum call would cost more than the rest of
        # the construction.)
        if type(self.side) is not Side:
            object.__setattr__(self, "side", Side(self.side))
        if type(self.order_type) is not OrderType:
            object.__setattr__(self, "order_type", OrderType(self.order_type))


@slot_init
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


@slot_init
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


@slot_init
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
class OrderLookup:
    """A venue's answer to "do you have this order?" and which incarnation of it answered."""

    state: VenueOrderState | None
    incarnation: int | None = None
    """The answering venue's incarnation, when the venue has them (``final_lookups``)."""


@slot_init
@dataclass(frozen=True, slots=True)
class VenuePosition:
    symbol: str
    quantity: float  # signed, short < 0
    avg_price: float


class VenueClient(Protocol):
    """What the broker needs from a venue. Every call may raise ``TransientError``."""

    async def open(self, cursor: int) -> None:
        """Connect; the event stream continues after ``cursor`` (the broker's journaled one)."""

    async def maintain(self) -> None:
        """The connection's upkeep for the broker's lifetime (returns at once if none)."""

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]: ...
    async def cancel(self, client_order_id: str) -> list[VenueEvent]: ...
    async def order(self, client_order_id: str) -> VenueOrderState | None: ...
    async def lookup(self, client_order_id: str) -> OrderLookup:
        """``order``, with the incarnation of the venue that answered."""

    async def open_orders(self) -> list[VenueOrderState]: ...
    async def positions(self) -> dict[str, VenuePosition]: ...
    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[VenueEvent]: ...
    async def last_seq(self) -> int: ...
    def on_bars(self, bars: list[Bar]) -> None: ...
    @property
    def connected(self) -> bool: ...
    @property
    def final_lookups(self) -> bool:
        """True when the venue's "I do not have it" is final for every order submitted to an
        earlier incarnation of it: that incarnation is gone and can place nothing any more, and
        a submit addressed to it (``VenueOrderRequest.venue_incarnation``) is never placed by a
        later one. Then an order the restarted venue does not have is closed at once instead of
        after ``unconfirmed_grace_s``. False for a real venue, where an order can arrive late."""

    @property
    def incarnation(self) -> int | None:
        """The incarnation of the venue the next call goes to, when known (else None)."""

    def close(self) -> None: ...


def holdings_from_venue(
    positions: Mapping[str, VenuePosition], orders: Iterable[VenueOrderState]
) -> Holdings:
    """Holdings from what a venue reports (``positions()``, ``open_orders()``), e.g. as they
    come back from the venue actor; orders no longer working are left out."""
    return Holdings(
        positions={s: p.quantity for s, p in positions.items() if p.quantity != 0.0},
        open_orders=tuple(_live_order(o) for o in orders if o.is_working),
    )


def _live_order(o: VenueOrderState) -> LiveOrder:
    return LiveOrder(
        client_order_id=o.client_order_id,
        venue_order_id=o.venue_order_id,
        symbol=o.symbol,
        side=o.side.value,
        quantity=o.quantity,
        remaining=o.remaining_quantity,
        order_type=o.order_type.value,
        limit_price=o.limit_price,
        status=o.status,
    )
