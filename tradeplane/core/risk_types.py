"""Values of the risk core: reason codes, trading states, limits, kill-switch policy and events.

Import them from ``tradeplane.core.risk``; this module only keeps that one under its size budget.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar

from tradeplane.core.statemachine import TransitionTable
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.states import TradingState

Figures = dict[str, float | str | None]


class DenyReason(StrEnum):
    """Standard reason codes of an ``OrderDenied``."""

    RECONCILING = "RECONCILING"
    SYMBOL_NOT_ALLOWED = "SYMBOL_NOT_ALLOWED"
    SYMBOL_BLOCKED = "SYMBOL_BLOCKED"
    DUPLICATE_INTENT = "DUPLICATE_INTENT"
    TRADING_HALTED = "TRADING_HALTED"
    REDUCING_ONLY = "REDUCING_ONLY"
    NO_PRICE = "NO_PRICE"
    STALE_DATA = "STALE_DATA"
    PRICE_DEVIATION = "PRICE_DEVIATION"
    MAX_ORDER_QUANTITY = "MAX_ORDER_QUANTITY"
    MAX_ORDER_VALUE = "MAX_ORDER_VALUE"
    MAX_POSITION_QUANTITY = "MAX_POSITION_QUANTITY"
    MAX_POSITION_VALUE = "MAX_POSITION_VALUE"
    MAX_GROSS_EXPOSURE = "MAX_GROSS_EXPOSURE"
    MAX_POSITIONS = "MAX_POSITIONS"
    MAX_DAILY_LOSS = "MAX_DAILY_LOSS"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    RATE_LIMIT = "RATE_LIMIT"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    INTENT_EXPIRED = "INTENT_EXPIRED"
    MARKET_CLOSED = "MARKET_CLOSED"


TRADING_STATES: TransitionTable[TradingState] = TransitionTable(
    "trading_state",
    {
        TradingState.ACTIVE: frozenset({TradingState.REDUCING, TradingState.HALTED}),
        TradingState.REDUCING: frozenset({TradingState.ACTIVE, TradingState.HALTED}),
        TradingState.HALTED: frozenset({TradingState.ACTIVE, TradingState.REDUCING}),
    },
)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Pre-trade limits; ``None`` (or an empty block list) switches a limit off."""

    max_order_value: float | None = None
    max_order_quantity: float | None = None
    max_position_value: float | None = None
    max_position_quantity: float | None = None
    max_gross_exposure: float | None = None
    max_positions: int | None = None
    max_orders_per_second: int | None = None
    max_orders_per_minute: int | None = None
    max_daily_loss: float | None = None
    max_drawdown_pct: float | None = None
    max_price_deviation_pct: float | None = None
    max_data_staleness_s: float | None = None
    duplicate_order_window_s: float | None = None
    allowed_symbols: tuple[str, ...] | None = None
    blocked_symbols: tuple[str, ...] = ()
    deny_when_market_closed: bool = True

    def disabled(self) -> list[str]:
        """Names of the limits that are off."""
        return [f.name for f in fields(self) if getattr(self, f.name) in (None, ())]


@dataclass(frozen=True, slots=True)
class KillSwitchPolicy:
    """What tripping the kill switch does, and what trips it besides loss limits."""

    cancel_orders: bool = True
    flatten: bool = False
    allow_reducing: bool = True
    max_venue_rejections: int | None = None
    venue_rejection_window_s: float = 60.0

    @property
    def tripped_state(self) -> TradingState:
        return TradingState.REDUCING if self.allow_reducing else TradingState.HALTED


def _event_dict(kind: EventKind, event: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind}
    for f in fields(event):
        v = getattr(event, f.name)
        out[f.name] = str(v) if isinstance(v, StrEnum) else dict(v) if isinstance(v, dict) else v
    return out


@dataclass(frozen=True, slots=True)
class KillSwitchActivated:
    """Event: the kill switch tripped (or an operator pulled it)."""

    kind: ClassVar[EventKind] = EventKind.KILL_SWITCH_ACTIVATED
    reason: str
    source: str
    figures: Figures
    ts: float
    trading_state: TradingState
    cancel_orders: bool
    flatten: bool

    def to_dict(self) -> dict[str, Any]:
        return _event_dict(self.kind, self)


@dataclass(frozen=True, slots=True)
class KillSwitchCleared:
    """Event: the kill switch was cleared; trading is active again."""

    kind: ClassVar[EventKind] = EventKind.KILL_SWITCH_CLEARED
    reason: str
    source: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return _event_dict(self.kind, self)


@dataclass(frozen=True, slots=True)
class RiskDayRolledOver:
    """Event: a new risk day began; daily counters were reset (the kill switch was not)."""

    kind: ClassVar[EventKind] = EventKind.RISK_DAY_ROLLED_OVER
    previous_day: str
    day: str
    figures: Figures
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return _event_dict(self.kind, self)


RiskEvent = KillSwitchActivated | KillSwitchCleared | RiskDayRolledOver
