"""Paper matching engine: fills resting orders against closed bars. Pure core, injected clock.

Orders only ever fill on a bar that arrives after they were submitted: a market order takes the
next bar's open (plus slippage), a limit order fills when the bar trades through its price. The
engine remembers every client order id it has ever seen so a repeated submit is refused rather
than traded twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from tradeplane.core.clock import Clock
from tradeplane.core.model import Bar, OrderType, Side
from tradeplane.protocol.events import VenueEventKind
from tradeplane.venues.sim.model import (
    QTY_REL_EPS,
    STAT_NAMES,
    VENUE_ORDER_PREFIX,
    WORKING_STATUSES,
    EngineChanges,
    EngineState,
    VenueEvent,
    VenueFill,
    VenueOrderRequest,
    VenueOrderState,
    VenuePosition,
    apply_fill_to_position,
    as_float,
    is_real,
)

# Hot-path names for enum members: ``Side.BUY`` (an enum class's attribute) costs several times a
# global's lookup on Python 3.11, and every order and fill asks a few times.
_BUY = Side.BUY
_MARKET, _LIMIT = OrderType.MARKET, OrderType.LIMIT
_ACCEPTED, _FILLED = VenueEventKind.ORDER_ACCEPTED, VenueEventKind.ORDER_FILLED


class _SymbolBook:
    """Working orders of one symbol, in arrival order (time priority within a bar).

    Tracks the highest buy limit, the lowest sell limit and how many market orders wait, so a
    bar that can fill nothing (the common case, thousands of times a second) is dismissed
    without looking at each order.
    """

    __slots__ = ("_stale", "ask_reach", "bid_reach", "market_orders", "orders")

    def __init__(self) -> None:
        self.orders: dict[str, VenueOrderState] = {}
        self.market_orders = 0
        self.bid_reach = -math.inf  # a bar with low <= this may fill a buy limit
        self.ask_reach = math.inf  # a bar with high >= this may fill a sell limit
        self._stale = False

    def put(self, order: VenueOrderState) -> None:
        """Add or update; an update keeps the order's place in the queue."""
        is_new = order.client_order_id not in self.orders
        self.orders[order.client_order_id] = order
        limit = order.limit_price
        if not is_new:
            return
        if limit is None:
            self.market_orders += 1
        elif order.side is _BUY:
            self.bid_reach = max(self.bid_reach, limit)
        else:
            self.ask_reach = min(self.ask_reach, limit)

    def remove(self, order: VenueOrderState) -> None:
        if self.orders.pop(order.client_order_id, None) is None:
            return
        limit = order.limit_price
        if limit is None:
            self.market_orders -= 1
        elif limit >= self.bid_reach if order.side is _BUY else limit <= self.ask_reach:
            self._stale = True  # recomputed lazily: several orders often leave on one bar

    def may_trade(self, low: float, high: float) -> bool:
        if self._stale:
            limits = [
                (o.side, o.limit_price) for o in self.orders.values() if o.limit_price is not None
            ]
            self.bid_reach = max((p for side, p in limits if side is Side.BUY), default=-math.inf)
            self.ask_reach = min((p for side, p in limits if side is Side.SELL), default=math.inf)
            self._stale = False
        return self.market_orders > 0 or low <= self.bid_reach or high >= self.ask_reach


def fill_id(order: VenueOrderState, earlier: list[VenueFill]) -> str:
    """The id of ``order``'s next fill: ``SIM-<client order id>-<ordinal>``.

    It depends only on the order itself, never on how many orders other strategies placed
    before it (as the venue order id does), so a fill's id, and the ids of the intents its
    ``on_fill`` emits, are the same live and in a backtest. Client order ids are unique per
    venue (a repeated one is refused), so fill ids are too. An order whose earlier fills carry
    the old ``<venue order id>-<ordinal>`` ids (a store written before this change) keeps
    numbering them that way, so its fill ids never change form halfway."""
    if earlier and order.venue_order_id is not None:
        old_form = f"{order.venue_order_id}-"
        if earlier[0].fill_id.startswith(old_form):
            return f"{old_form}{len(earlier) + 1}"
    return f"{VENUE_ORDER_PREFIX}{order.client_order_id}-{len(earlier) + 1}"


class PaperMatchingEngine:
    def __init__(
        self,
        *,
        clock: Clock,
        taker_fee_bps: float = 5.0,
        maker_fee_bps: float = 2.0,
        slippage_bps: float = 1.0,
        max_participation: float | None = None,
        keep_events: int | None = None,
        keep_closed_orders: bool = True,
    ) -> None:
        """``keep_events`` bounds the in-memory event history (None = keep all); a persistent
        store answers ``events_since`` from disk and keeps none here. ``keep_closed_orders=False``
        (a backtest) forgets an order and its fills once it is closed, so memory stays flat over
        millions of bars: its id is then no longer refused as a duplicate (the risk core refuses
        a repeated intent) and ``export_state`` holds only what is still open."""
        for name, value in (
            ("taker_fee_bps", taker_fee_bps),
            ("maker_fee_bps", maker_fee_bps),
            ("slippage_bps", slippage_bps),
        ):
            if not is_real(value) or not 0 <= value < 1e4:
                raise ValueError(f"{name} must be finite and in [0, 10000), got {value!r}")
        if max_participation is not None and not (
            is_real(max_participation) and 0 < max_participation <= 1
        ):
            raise ValueError(
                f"max_participation must be in (0, 1] or None, got {max_participation!r}"
            )
        self._clock = clock
        self._taker_fee = taker_fee_bps / 1e4
        self._maker_fee = maker_fee_bps / 1e4
        self._slippage = slippage_bps / 1e4
        self._max_participation = max_participation
        self._orders: dict[str, VenueOrderState] = {}
        self._working: dict[str, _SymbolBook] = {}
        self._fills: dict[str, list[VenueFill]] = {}
        self._positions: dict[str, VenuePosition] = {}
        self._last_prices: dict[str, float] = {}
        if keep_events is not None and keep_events < 0:
            raise ValueError(f"keep_events must be >= 0 or None, got {keep_events}")
        self._keep_events = keep_events
        self._keep_closed = keep_closed_orders
        # Contiguous by seq: events_since can index instead of scanning.
        self._events: list[VenueEvent] = []
        self._fill_log: list[VenueFill] = []
        self._seq = 0
        self._order_counter = 0
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        # Unsaved changes, handed to the store by take_changes().
        self._touched: dict[str, VenueOrderState] = {}
        self._touched_positions: dict[str, VenuePosition] = {}
        self._dirty_prices: set[str] = set()

    def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        return self._place(req, None)

    def reject(self, req: VenueOrderRequest, reason: str) -> list[VenueEvent]:
        """Take ``req`` in as ``submit`` does but refuse it with ``reason`` (fault injection): the
        order is recorded as rejected and ``order_rejected`` is emitted, like a genuine reject.
        A duplicate or otherwise invalid request is rejected for that reason instead."""
        if not reason or not isinstance(reason, str):
            raise ValueError(f"a rejection needs a reason, got {reason!r}")
        return self._place(req, reason)

    def _place(self, req: VenueOrderRequest, forced_reason: str | None) -> list[VenueEvent]:
        self._stats["submits"] += 1
        now = self._clock.now()
        duplicate = req.client_order_id in self._orders
        reason = "DUPLICATE_CLIENT_ORDER_ID" if duplicate else self._validate(req)
        reason = reason or forced_reason
        if duplicate or reason == "INVALID_CLIENT_ORDER_ID":
            # Leave no record: the original must stay untouched, and a blank id has no key.
            self._stats["duplicate_submits"] += int(duplicate)
            self._stats["rejects"] += 1
            return [
                self._emit(
                    VenueEventKind.ORDER_REJECTED, str(req.client_order_id), None, now, reason
                )
            ]
        venue_order_id = None
        if reason is None:
            self._order_counter += 1
            venue_order_id = f"{VENUE_ORDER_PREFIX}{self._order_counter:06d}"
        # Positional, in the fields' order (keywords cost a third more to bind, once per order)
        order = VenueOrderState(
            req.client_order_id,
            venue_order_id,
            req.symbol,
            req.side,
            as_float(req.quantity),  # quantity
            req.order_type,
            None if req.limit_price is None else as_float(req.limit_price),  # limit_price
            "rejected" if reason else "accepted",  # status
            0.0,  # filled_quantity
            0.0,  # avg_fill_price
            0.0,  # fees
            reason,
            now,  # created_ts
            now,  # updated_ts
        )
        self._store(order)
        if reason is not None:
            self._stats["rejects"] += 1
            return [
                self._emit(VenueEventKind.ORDER_REJECTED, order.client_order_id, None, now, reason)
            ]
        return [self._emit(_ACCEPTED, order.client_order_id, order.venue_order_id, now)]

    def cancel(self, client_order_id: str) -> list[VenueEvent]:
        now = self._clock.now()
        order = self._orders.get(client_order_id)
        if order is None or order.status not in WORKING_STATUSES:
            reason = "UNKNOWN_ORDER" if order is None else f"ORDER_ALREADY_{order.status.upper()}"
            venue_order_id = None if order is None else order.venue_order_id
            return [
                self._emit(
                    VenueEventKind.CANCEL_REJECTED, client_order_id, venue_order_id, now, reason
                )
            ]
        self._store(
            replace(order, status="cancelled", reason="CANCELLED_BY_CLIENT", updated_ts=now)
        )
        self._stats["cancels"] += 1
        return [
            self._emit(VenueEventKind.ORDER_CANCELLED, client_order_id, order.venue_order_id, now)
        ]

    def on_bar(self, bar: Bar) -> list[VenueEvent]:
        symbol = bar.symbol
        self._last_prices[symbol] = bar.close
        self._dirty_prices.add(symbol)
        book = self._working.get(symbol)
        if book is None or not book.may_trade(bar.low, bar.high):
            return []
        events: list[VenueEvent] = []
        cap = None if self._max_participation is None else self._max_participation * bar.volume
        if cap is not None and cap <= 0:
            return events
        low, high, buy = bar.low, bar.high, _BUY
        # Inline screen: a full book is scanned on every bar while a market order waits.
        reached = [
            o
            for o in book.orders.values()
            if o.limit_price is None
            or (o.limit_price >= low if o.side is buy else o.limit_price <= high)
        ]
        for order in reached:
            quote = self._match(order, bar)
            if quote is None:
                continue
            price, liquidity = quote
            remaining = order.quantity - order.filled_quantity
            quantity = remaining if cap is None else min(remaining, cap)
            if quantity <= 0:
                continue
            events.append(self._fill(order, quantity, price, liquidity))
        return events

    def on_bars(self, bars: Iterable[Bar]) -> list[VenueEvent]:
        """``on_bar`` for each bar in order; a symbol with no working order costs no call."""
        events: list[VenueEvent] = []
        working, last_prices, dirty = self._working, self._last_prices, self._dirty_prices
        for bar in bars:
            symbol = bar.symbol
            if symbol in working:
                events.extend(self.on_bar(bar))
            else:
                last_prices[symbol] = bar.close
                dirty.add(symbol)
        return events

    def order(self, client_order_id: str) -> VenueOrderState | None:
        return self._orders.get(client_order_id)

    def open_orders(self) -> list[VenueOrderState]:
        return [o for book in self._working.values() for o in book.orders.values()]

    def positions(self) -> dict[str, VenuePosition]:
        return dict(self._positions)

    def fills_for(self, client_order_id: str) -> list[VenueFill]:
        return list(self._fills.get(client_order_id, ()))

    def last_price(self, symbol: str) -> float | None:
        return self._last_prices.get(symbol)

    def events_since(self, seq: int, limit: int = 1000) -> list[VenueEvent]:
        """Events with seq > ``seq`` still held in memory (see ``keep_events``), ascending."""
        if limit <= 0 or not self._events:
            return []
        start = max(0, seq + 1 - self._events[0].seq)
        return self._events[start : start + limit]

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def take_changes(self) -> EngineChanges:
        """Hand over (and forget) everything changed since the previous call."""
        changes = EngineChanges(
            orders=self._touched,
            positions=self._touched_positions,
            last_prices={s: self._last_prices[s] for s in self._dirty_prices},
            last_seq=self._seq,
            order_counter=self._order_counter,
            stats=dict(self._stats),
        )
        self._touched, self._touched_positions, self._dirty_prices = {}, {}, set()
        return changes

    @property
    def has_unsaved_prices(self) -> bool:
        return bool(self._dirty_prices)

    def export_state(self) -> EngineState:
        return EngineState(
            orders=list(self._orders.values()),
            fills=list(self._fill_log),
            positions=dict(self._positions),
            last_prices=dict(self._last_prices),
            last_seq=self._seq,
            order_counter=self._order_counter,
            stats=dict(self._stats),
        )

    def import_state(self, state: EngineState) -> None:
        """Replace all state with ``state``; only valid on a fresh engine."""
        if self._seq or self._orders:
            raise RuntimeError("import_state needs a fresh engine")
        for fill in state.fills:
            self._fills.setdefault(fill.client_order_id, []).append(fill)
        for order in state.orders:
            self._store(order)
        self._touched = {}
        self._fill_log = list(state.fills)
        self._positions = {s: p for s, p in state.positions.items() if p.quantity != 0.0}
        self._last_prices = dict(state.last_prices)
        self._seq = state.last_seq
        self._order_counter = state.order_counter
        self._stats = {name: int(state.stats.get(name, 0)) for name in STAT_NAMES}

    @staticmethod
    def _validate(req: VenueOrderRequest) -> str | None:
        if not req.client_order_id or not isinstance(req.client_order_id, str):
            return "INVALID_CLIENT_ORDER_ID"
        if not req.symbol or not isinstance(req.symbol, str):
            return "INVALID_SYMBOL"
        if not is_real(req.quantity) or req.quantity <= 0:
            return "INVALID_QUANTITY"
        if req.order_type is _LIMIT:
            if not is_real(req.limit_price) or req.limit_price is None or req.limit_price <= 0:
                return "INVALID_PRICE"
        elif req.limit_price is not None:
            return "INVALID_PRICE"
        return None

    def _match(self, order: VenueOrderState, bar: Bar) -> tuple[float, str] | None:
        """Price and liquidity at which ``order`` trades on ``bar``, or None if it does not."""
        if order.order_type is _MARKET:
            adverse = 1.0 + self._slippage if order.side is _BUY else 1.0 - self._slippage
            return bar.open * adverse, "taker"
        limit = order.limit_price
        assert limit is not None  # validated on submit
        if order.side is _BUY:
            if bar.low > limit:
                return None
            # Opening below the bid means the order crossed on arrival: it took liquidity.
            return (bar.open, "taker") if bar.open < limit else (limit, "maker")
        if bar.high < limit:
            return None
        return (bar.open, "taker") if bar.open > limit else (limit, "maker")

    def _fill(
        self, order: VenueOrderState, quantity: float, price: float, liquidity: str
    ) -> VenueEvent:
        now = self._clock.now()
        assert order.venue_order_id is not None
        filled = order.filled_quantity + quantity
        done = order.quantity - filled <= QTY_REL_EPS * order.quantity
        if done:
            quantity = order.quantity - order.filled_quantity
            filled = order.quantity
        fee_rate = self._taker_fee if liquidity == "taker" else self._maker_fee
        fills = self._fills.setdefault(order.client_order_id, [])
        fill = VenueFill(
            fill_id(order, fills),
            order.client_order_id,
            order.venue_order_id,
            order.symbol,
            order.side,
            quantity,
            price,
            quantity * price * fee_rate,
            now,
            liquidity,
        )
        fills.append(fill)
        if self._keep_closed:
            self._fill_log.append(fill)
        # Built field by field: ``dataclasses.replace`` costs several times more (a fill per
        # few bars in a backtest).
        self._store(
            VenueOrderState(
                order.client_order_id,
                order.venue_order_id,
                order.symbol,
                order.side,
                order.quantity,
                order.order_type,
                order.limit_price,
                "filled" if done else "partially_filled",
                filled,
                (order.avg_fill_price * order.filled_quantity + price * quantity) / filled,
                order.fees + fill.fee,
                order.reason,
                order.created_ts,
                now,
            )
        )
        position = apply_fill_to_position(
            self._positions.get(order.symbol), order.symbol, fill.signed_quantity, price
        )
        if position.quantity == 0.0:
            self._positions.pop(order.symbol, None)
        else:
            self._positions[order.symbol] = position
        self._touched_positions[order.symbol] = position
        self._stats["fills"] += 1
        return self._emit(
            _FILLED,
            order.client_order_id,
            order.venue_order_id,
            now,
            None,
            fill,
        )

    def _book(self, symbol: str) -> _SymbolBook:
        book = self._working.get(symbol)
        if book is None:
            book = self._working[symbol] = _SymbolBook()
        return book

    def _store(self, order: VenueOrderState) -> None:
        """Record the latest state of ``order`` and keep the working-order index in step."""
        self._orders[order.client_order_id] = order
        self._touched[order.client_order_id] = order
        if order.status in WORKING_STATUSES:
            self._book(order.symbol).put(order)
            return
        book = self._working.get(order.symbol)
        if book is not None:
            book.remove(order)
            if not book.orders:
                del self._working[order.symbol]
        if not self._keep_closed:
            del self._orders[order.client_order_id]
            self._fills.pop(order.client_order_id, None)
            self._touched.pop(order.client_order_id, None)

    def _emit(
        self,
        kind: str,
        client_order_id: str,
        venue_order_id: str | None,
        ts: float,
        reason: str | None = None,
        fill: VenueFill | None = None,
    ) -> VenueEvent:
        self._seq += 1
        event = VenueEvent(self._seq, kind, client_order_id, venue_order_id, ts, reason, fill)
        if self._keep_events != 0:
            self._events.append(event)
            if self._keep_events is not None and len(self._events) > 2 * self._keep_events:
                # Trim in batches so the cost is amortised, not paid on every event.
                del self._events[: len(self._events) - self._keep_events]
        return event
