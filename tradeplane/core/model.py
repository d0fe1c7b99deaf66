"""Domain values that cross actor boundaries. Immutable, picklable, validated on creation.

Prices and quantities are floats validated to be finite; every message is wrapped in an
``Envelope`` carrying its id, timestamps and the W3C traceparent of the span that caused it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.slot_init import slot_init


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is _BUY else -1

    @property
    def opposite(self) -> Side:
        return _SELL if self is _BUY else _BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


# The members as module names, for hot paths: an enum class's attribute lookup (``Side.BUY``)
# costs several times a global's on Python 3.11, and an intent's round trip makes dozens.
_BUY, _SELL = Side.BUY, Side.SELL
_LIMIT = OrderType.LIMIT


def _finite_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidMarketData(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidMarketData(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidMarketData(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


@dataclass(frozen=True, slots=True, init=False)
class Bar:
    """A closed OHLCV bar. ``ts`` is the bar's open time, timezone-aware UTC."""

    symbol: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __init__(
        self,
        symbol: str,
        ts: datetime,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> None:
        # Written by hand instead of the dataclass's (a backtest builds millions of bars): the
        # slots' own setters cost about half of ``object.__setattr__`` by name, which a frozen
        # dataclass's generated ``__init__`` calls per field.
        _set_symbol(self, symbol)
        _set_ts(self, ts)
        _set_open(self, open)
        _set_high(self, high)
        _set_low(self, low)
        _set_close(self, close)
        _set_volume(self, volume)
        self.__post_init__()

    def __post_init__(self) -> None:
        # (The name is the dataclass's: the feed re-checks bars from any source with it.)
        # The common case first, in a few comparisons: float prices finite and > 0, volume
        # finite and >= 0, consistent, symbol and an aware ts. Anything else takes the checks
        # of ``_check``, which name what is wrong.
        o, h, lo, c, v = self.open, self.high, self.low, self.close, self.volume
        if (
            type(o) is float
            and type(h) is float
            and type(lo) is float
            and type(c) is float
            and type(v) is float
            and 0.0 < lo <= o <= h < math.inf
            and lo <= c <= h
            and 0.0 <= v < math.inf
            and self.symbol
            and self.ts.utcoffset() is not None
        ):
            return
        self._check()

    def _check(self) -> None:
        if not self.symbol:
            raise InvalidMarketData("bar symbol is empty")
        if self.ts.tzinfo is None or self.ts.utcoffset() is None:
            raise InvalidMarketData(f"bar ts must be timezone-aware, got {self.ts!r}")
        for name in ("open", "high", "low", "close"):
            _finite_positive(f"{self.symbol} {name}", getattr(self, name))
        _finite_positive(f"{self.symbol} volume", self.volume, allow_zero=True)
        if self.high < max(self.open, self.close, self.low) or self.low > min(
            self.open, self.close
        ):
            raise InvalidMarketData(
                f"{self.symbol} bar at {self.ts.isoformat()} is inconsistent: "
                f"o={self.open} h={self.high} l={self.low} c={self.close}"
            )

    @property
    def ts_epoch(self) -> float:
        return self.ts.timestamp()

    def __reduce__(self) -> tuple[Any, ...]:
        # Bars cross actor boundaries by the thousand: as a plain tuple they pickle several
        # times cheaper than through the dataclass's generic state, and a receiver rebuilds
        # them without checking again what was checked where they were built.
        return (
            _checked_bar,
            (self.symbol, self.ts, self.open, self.high, self.low, self.close, self.volume),
        )


# Each slot's own setter: frozen dataclasses refuse ``bar.x = ...``, the slot does not.
_SLOTS = Bar.__dict__
_set_symbol = _SLOTS["symbol"].__set__
_set_ts = _SLOTS["ts"].__set__
_set_open = _SLOTS["open"].__set__
_set_high = _SLOTS["high"].__set__
_set_low = _SLOTS["low"].__set__
_set_close = _SLOTS["close"].__set__
_set_volume = _SLOTS["volume"].__set__
_new_bar = object.__new__


def trusted_bar(
    symbol: str, ts: datetime, open: float, high: float, low: float, close: float, volume: float
) -> Bar:
    """A bar from values already checked where they came from, built without checking again.

    For a reader that validated its rows in bulk, a bar that was checked when first built
    (unpickling, a replay of checked bars) and the benchmark's replayed path: about a third of
    ``Bar(...)``. Never for a venue's or a file's raw values: those go through ``Bar(...)``."""
    bar = _new_bar(Bar)
    _set_symbol(bar, symbol)
    _set_ts(bar, ts)
    _set_open(bar, open)
    _set_high(bar, high)
    _set_low(bar, low)
    _set_close(bar, close)
    _set_volume(bar, volume)
    return bar


_checked_bar = trusted_bar  # the name pickles of bars refer to (``Bar.__reduce__``)


class BarBatch(list[Bar]):
    """Bars on their way to another actor: a plain list of ``Bar`` to both ends, pickled as
    columns (symbols, the distinct open times, the numbers), which costs a fraction of pickling
    each bar as an object. The receiver gets a plain list."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        # One entry per distinct open time (and offset, which its isoformat shows): a push holds
        # one or a few ticks, so a few datetimes instead of one per bar.
        stamps: dict[tuple[datetime, Any], int] = {}
        index = tuple(stamps.setdefault((b.ts, b.ts.utcoffset()), len(stamps)) for b in self)
        numbers = tuple(v for b in self for v in (b.open, b.high, b.low, b.close, b.volume))
        symbols = tuple(b.symbol for b in self)
        return (_unpack_bars, (symbols, tuple(ts for ts, _ in stamps), index, numbers))


def _unpack_bars(
    symbols: tuple[str, ...],
    stamps: tuple[datetime, ...],
    index: tuple[int, ...],
    numbers: tuple[float, ...],
) -> list[Bar]:
    out = []
    for i, symbol in enumerate(symbols):
        o, h, lo, c, v = numbers[5 * i : 5 * i + 5]
        out.append(_checked_bar(symbol, stamps[index[i]], o, h, lo, c, v))
    return out


@slot_init
@dataclass(frozen=True, slots=True)
class Intent:
    """A strategy's wish to trade. Ids are deterministic: see ``tradeplane.core.ids``."""

    intent_id: str
    client_order_id: str
    deployment: str
    strategy: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    limit_price: float | None
    ts: float
    trigger: str
    bar_recv_ts: float | None = None
    traceparent: str | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.quantity) or self.quantity <= 0:
            raise ValueError(f"intent quantity must be finite and > 0, got {self.quantity}")
        if self.order_type is _LIMIT:
            if self.limit_price is None or not math.isfinite(self.limit_price):
                raise ValueError("a limit intent needs a finite limit_price")
            if self.limit_price <= 0:
                raise ValueError(f"limit_price must be > 0, got {self.limit_price}")
        elif self.limit_price is not None:
            raise ValueError("a market intent takes no limit_price")


@slot_init
@dataclass(frozen=True, slots=True)
class CancelIntent:
    """A strategy's wish to cancel the order its earlier intent produced."""

    intent_id: str
    client_order_id: str
    strategy: str
    ts: float
    traceparent: str | None = None


@slot_init
@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Command from risk to broker: send this order, at most once per client order id."""

    intent: Intent
    approved_ts: float
    reference_price: float | None
    reduces_position: bool = False
    """At approval the order only shrank the symbol's worst-case exposure, never flipping it
    (``core.exposure.reduces_position``): it may still leave while REDUCING."""
    flatten: bool = False
    """Risk's own flatten order: it may leave in any trading state."""
    traceparent: str | None = None
    """The ``risk.check`` span that approved it: the broker's span is its child."""
    received_ts: float | None = None
    """When risk received the intent (the ``risk.check`` span's start)."""
    approved_by: tuple[tuple[str, int], ...] = ()
    """(role, epoch) of the incarnations it rests on (the risk that approved it, the strategy
    that asked for it): the broker's ``order_submitting`` carries them, so an order from a
    replaced risk or strategy is refused by the journal before it can leave."""


@dataclass(frozen=True, slots=True)
class CancelOrder:
    client_order_id: str
    strategy: str
    reason: str
    ts: float


@slot_init
@dataclass(frozen=True, slots=True)
class OrderDenied:
    """Event: risk refused an intent. ``reason`` is a standard code, ``figures`` what tripped it."""

    intent: Intent
    reason: str
    message: str
    figures: dict[str, float | str | None] = field(default_factory=dict)
    ts: float = 0.0


@slot_init
@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    client_order_id: str
    intent_id: str
    strategy: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts: float
    venue_order_id: str | None = None
    liquidity: str = "taker"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            raise ValueError(f"fill quantity must be finite and > 0, got {self.quantity}")
        if not (math.isfinite(self.price) and self.price > 0):
            raise ValueError(f"fill price must be finite and > 0, got {self.price}")
        if not math.isfinite(self.fee):
            raise ValueError("fill fee must be finite")

    @property
    def signed_quantity(self) -> float:
        # ``side.sign * quantity`` without the property's call (the same number either way);
        # a side that is not a ``Side`` still fails as it did.
        side = self.side
        if side is _BUY:
            return self.quantity
        if side is _SELL:
            return -self.quantity
        return side.sign * self.quantity


@slot_init
@dataclass(frozen=True, slots=True)
class Position:
    """A net position: signed quantity (short < 0), average entry price, realized P&L."""

    symbol: str
    quantity: float
    avg_price: float
    realized_pnl: float = 0.0

    def market_value(self, price: float) -> float:
        return self.quantity * price

    def unrealized_pnl(self, price: float) -> float:
        return self.quantity * (price - self.avg_price)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Every message between actors: id, kind, event/receive times, payload, trace context."""

    event_id: str
    kind: str
    ts_event: float
    ts_recv: float
    payload: Any
    traceparent: str | None = None
    deployment: str | None = None
    strategy: str | None = None
    intent_id: str | None = None
    client_order_id: str | None = None
    sender: tuple[str, int] | None = None
    """(role, epoch) of the incarnation that sent it, where what follows must rest on it (a
    strategy's intents: an order they lead to is refused once that strategy is replaced)."""
