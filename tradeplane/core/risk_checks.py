"""The pre-trade checks of ``RiskEngine``, one method per limit, each returning a denial or None.

A denial is an ``OrderDenied`` event with a reason code, a human message and the figures that
tripped it, never an exception. Orders that do not raise the symbol's worst-case |exposure|
(position + same-side working) are never denied by the position, gross-exposure, positions-count
or loss limits.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from tradeplane.core.exposure import increases_exposure
from tradeplane.core.model import Intent, OrderDenied, OrderType
from tradeplane.core.risk_book import Book
from tradeplane.core.risk_types import DenyReason, Figures, RiskLimits, TradingState
from tradeplane.core.session import iso_utc

if TYPE_CHECKING:
    from tradeplane.core.clock import Clock
    from tradeplane.core.session import SessionCalendar

DupKey = tuple[str, str, str, float, str, float | None]
RATE_WINDOW_S = 60.0
# (module names: an enum class's attribute lookup costs several times a global's on Python 3.11)
_HALTED, _REDUCING = TradingState.HALTED, TradingState.REDUCING


def dup_key(intent: Intent) -> DupKey:
    """Strategy, symbol, side, quantity, type and limit price: what makes two orders the same."""
    return (
        intent.strategy,
        intent.symbol,
        intent.side.value,
        float(intent.quantity),
        intent.order_type.value,
        intent.limit_price,
    )


class PreTradeChecks:
    """Mixin: the checks read the engine's book, limits and clock."""

    limits: RiskLimits
    clock: Clock
    calendar: SessionCalendar
    book: Book
    state: TradingState
    denied: dict[str, int]
    _approvals: deque[float]
    _duplicates: dict[DupKey, float]

    def _kill_reason(self) -> str | None:
        raise NotImplementedError

    def _loss_figures(self) -> tuple[float | None, float | None, float | None]:
        """(equity, daily loss, drawdown %), each None while unknown."""
        raise NotImplementedError

    def _deny(
        self, intent: Intent, reason: DenyReason, message: str, figures: Figures
    ) -> OrderDenied:
        self.denied[reason.value] = self.denied.get(reason.value, 0) + 1
        return OrderDenied(intent, reason.value, message, figures, self.clock.now())

    # -- gatekeeping ---------------------------------------------------------------------------

    def _check_symbol(self, intent: Intent) -> OrderDenied | None:
        allowed, sym = self.limits.allowed_symbols, intent.symbol
        if allowed is not None and sym not in allowed:
            return self._deny(
                intent,
                DenyReason.SYMBOL_NOT_ALLOWED,
                f"{sym} is not in allowed_symbols",
                {"symbol": sym, "allowed_symbols": ",".join(allowed)},
            )
        if sym in self.limits.blocked_symbols:
            return self._deny(
                intent,
                DenyReason.SYMBOL_BLOCKED,
                f"{sym} is in blocked_symbols",
                {"symbol": sym},
            )
        return None

    def _check_market_open(self, intent: Intent) -> OrderDenied | None:
        now = self.clock.now()
        if not self.limits.deny_when_market_closed or self.calendar.is_open(now):
            return None
        opens = self.calendar.next_open(now)
        when = "" if opens is None else f"; it opens {iso_utc(opens)}"
        return self._deny(
            intent,
            DenyReason.MARKET_CLOSED,
            f"the market is closed{when}",
            {"next_open": opens},
        )

    def _check_trading_state(self, intent: Intent, signed: float) -> OrderDenied | None:
        if self.state is _HALTED:
            return self._deny(
                intent,
                DenyReason.TRADING_HALTED,
                f"trading is halted ({self._kill_reason()}): only the flatten order may pass",
                {"trading_state": self.state.value, "kill_switch_reason": self._kill_reason()},
            )
        # In REDUCING an order that grows, flips or opens the exposure is denied.
        if self.state is _REDUCING and not self.book.reduces(intent.symbol, signed):
            return self._reducing_denial(intent, signed, "trading is reducing-only")
        return None

    def _check_flatten(self, intent: Intent, signed: float) -> OrderDenied | None:
        if self.book.reduces(intent.symbol, signed):
            return None
        return self._reducing_denial(intent, signed, "a flatten order may only reduce the position")

    def _reducing_denial(self, intent: Intent, signed: float, why: str) -> OrderDenied:
        pos = self.book.position(intent.symbol)
        working = self.book.working_quantity(intent.symbol, side=signed)
        return self._deny(
            intent,
            DenyReason.REDUCING_ONLY,
            f"{why}: {intent.side.value} {intent.quantity} {intent.symbol} would raise or flip"
            f" the exposure (position {pos}, same-side working {working})",
            {
                "trading_state": self.state.value,
                "position": pos,
                "working_same_side": working,
                "order_quantity": signed,
            },
        )

    # -- price ---------------------------------------------------------------------------------

    def _resolve_price(
        self, intent: Intent, *, only_known: bool = False
    ) -> tuple[float, OrderDenied | None]:
        """The price to value the order at (limit price, else last mark) or a denial."""
        mark = self.book.prices.get(intent.symbol)
        needs_mark = not only_known and (
            self.limits.max_data_staleness_s is not None
            or (
                self.limits.max_price_deviation_pct is not None
                and intent.order_type is OrderType.LIMIT
            )
        )
        if mark is None and (intent.limit_price is None or needs_mark):
            return 0.0, self._deny(
                intent,
                DenyReason.NO_PRICE,
                f"no price seen yet for {intent.symbol}",
                {"symbol": intent.symbol},
            )
        price = intent.limit_price or mark
        assert price is not None
        if only_known or mark is None:
            return price, None
        return price, self._check_stale(intent) or self._check_deviation(intent, mark)

    def _check_stale(self, intent: Intent) -> OrderDenied | None:
        limit = self.limits.max_data_staleness_s
        if limit is None:
            return None
        # How long ago this process saw the price (the book keeps the monotonic reading): a wall
        # step must neither deny every order nor let a stale price pass for an hour.
        age = self.clock.monotonic() - self.book.mark_ts[intent.symbol]
        if age <= limit:
            return None
        mark_ts = self.clock.now() - age
        return self._deny(
            intent,
            DenyReason.STALE_DATA,
            f"last price of {intent.symbol} is {age:.1f}s old, max_data_staleness_s {limit}",
            {"age_s": age, "limit": limit, "mark_ts": mark_ts, "symbol": intent.symbol},
        )

    def _check_deviation(self, intent: Intent, mark: float) -> OrderDenied | None:
        limit = self.limits.max_price_deviation_pct
        if limit is None or intent.limit_price is None:
            return None
        deviation = abs(intent.limit_price - mark) / mark * 100.0
        if deviation <= limit:
            return None
        return self._deny(
            intent,
            DenyReason.PRICE_DEVIATION,
            f"limit price {intent.limit_price} is {deviation:.2f}% from the last price {mark},"
            f" max_price_deviation_pct {limit}",
            {
                "limit_price": intent.limit_price,
                "mark": mark,
                "deviation_pct": deviation,
                "limit": limit,
            },
        )

    # -- size ----------------------------------------------------------------------------------

    def _check_order_size(self, intent: Intent, price: float) -> OrderDenied | None:
        qty_limit = self.limits.max_order_quantity
        if qty_limit is not None and intent.quantity > qty_limit:
            return self._deny(
                intent,
                DenyReason.MAX_ORDER_QUANTITY,
                f"order quantity {intent.quantity} exceeds max_order_quantity {qty_limit}",
                {"order_quantity": intent.quantity, "limit": qty_limit},
            )
        limit = self.limits.max_order_value
        value = intent.quantity * price
        if limit is not None and value > limit:
            return self._deny(
                intent,
                DenyReason.MAX_ORDER_VALUE,
                f"order value {value:.2f} exceeds max_order_value {limit:.2f}",
                {"order_value": value, "limit": limit, "price": price},
            )
        return None

    def _check_position(self, intent: Intent, price: float, signed: float) -> OrderDenied | None:
        """Worst case: every working order on the same side fills."""
        qty_limit = self.limits.max_position_quantity
        limit = self.limits.max_position_value
        if qty_limit is None and limit is None:
            return None  # no position limit: the exposure would be worked out for nothing
        # (``book.increases`` would work out the same exposure: once, for both questions)
        before, after = self.book.exposure_before_after(intent.symbol, signed)
        if not increases_exposure(before, signed):
            return None
        pos = self.book.position(intent.symbol)
        if qty_limit is not None and abs(after) > qty_limit:
            return self._deny(
                intent,
                DenyReason.MAX_POSITION_QUANTITY,
                f"position after order {abs(after)} exceeds max_position_quantity {qty_limit}",
                {"position_quantity_after": abs(after), "limit": qty_limit, "position": pos},
            )
        value = abs(after) * price
        if limit is not None and value > limit:
            return self._deny(
                intent,
                DenyReason.MAX_POSITION_VALUE,
                f"position value after order {value:.2f} exceeds max_position_value {limit:.2f}",
                {"position_value_after": value, "limit": limit, "price": price, "position": pos},
            )
        return None

    def _check_gross(self, intent: Intent, price: float, signed: float) -> OrderDenied | None:
        limit = self.limits.max_gross_exposure
        if limit is None:
            return None
        before, after = self.book.exposure_before_after(intent.symbol, signed)
        if not increases_exposure(before, signed):
            return None
        pos = self.book.position(intent.symbol)
        other_side = abs(pos + self.book.working_quantity(intent.symbol, side=-signed))
        gross = max(abs(after), other_side) * price
        for sym in self.book.active_symbols() - {intent.symbol}:
            mark = self.book.prices.get(sym)
            if mark is None:
                return self._deny(
                    intent,
                    DenyReason.NO_PRICE,
                    f"gross exposure unknown: no price seen yet for {sym}",
                    {"symbol": sym},
                )
            gross += self.book.worst_case_quantity(sym) * mark
        if gross <= limit:
            return None
        return self._deny(
            intent,
            DenyReason.MAX_GROSS_EXPOSURE,
            f"gross exposure after order {gross:.2f} exceeds max_gross_exposure {limit:.2f}",
            {"gross_exposure_after": gross, "limit": limit, "price": price},
        )

    def _check_positions_count(self, intent: Intent, signed: float) -> OrderDenied | None:
        limit = self.limits.max_positions
        if limit is None or not self.book.increases(intent.symbol, signed):
            return None
        active = self.book.active_symbols()
        if intent.symbol in active or len(active) < limit:
            return None
        return self._deny(
            intent,
            DenyReason.MAX_POSITIONS,
            f"{intent.symbol} would be position {len(active) + 1}, max_positions {limit}",
            {"positions": len(active), "limit": limit, "symbol": intent.symbol},
        )

    # -- loss ----------------------------------------------------------------------------------

    def _check_loss(self, intent: Intent, signed: float) -> OrderDenied | None:
        lim = self.limits
        if (lim.max_daily_loss is None and lim.max_drawdown_pct is None) or not self.book.increases(
            intent.symbol, signed
        ):
            return None
        equity, daily_loss, drawdown = self._loss_figures()
        if equity is None:
            missing = ",".join(self.book.unmarked())
            return self._deny(
                intent,
                DenyReason.NO_PRICE,
                f"equity unknown (no price yet for {missing}): loss limits cannot be checked",
                {"unmarked": missing},
            )
        if (
            lim.max_daily_loss is not None
            and daily_loss is not None
            and daily_loss >= lim.max_daily_loss
        ):
            return self._deny(
                intent,
                DenyReason.MAX_DAILY_LOSS,
                f"daily loss {daily_loss:.2f} reached max_daily_loss {lim.max_daily_loss:.2f}",
                {"daily_loss": daily_loss, "limit": lim.max_daily_loss, "equity": equity},
            )
        if (
            lim.max_drawdown_pct is not None
            and drawdown is not None
            and drawdown >= lim.max_drawdown_pct
        ):
            return self._deny(
                intent,
                DenyReason.MAX_DRAWDOWN,
                f"drawdown {drawdown:.2f}% reached max_drawdown_pct {lim.max_drawdown_pct}",
                {"drawdown_pct": drawdown, "limit": lim.max_drawdown_pct, "equity": equity},
            )
        return None

    # -- pace ----------------------------------------------------------------------------------

    def _prune_approvals(self, now: float) -> None:
        while self._approvals and self._approvals[0] <= now - RATE_WINDOW_S:
            self._approvals.popleft()

    def _check_rate(self, intent: Intent) -> OrderDenied | None:
        now = self.clock.monotonic()
        self._prune_approvals(now)
        limits = self.limits
        if limits.max_orders_per_second is None and limits.max_orders_per_minute is None:
            return None  # (the usual backtest: no rate limit to count against)
        for window, span_s, limit in (
            ("per_second", 1.0, self.limits.max_orders_per_second),
            ("per_minute", RATE_WINDOW_S, self.limits.max_orders_per_minute),
        ):
            if limit is None:
                continue
            count = sum(1 for t in self._approvals if t > now - span_s)
            if count >= limit:
                return self._deny(
                    intent,
                    DenyReason.RATE_LIMIT,
                    f"{count} orders approved in the last {span_s:g}s, max_orders_{window} {limit}",
                    {"window": window, "count": count, "limit": limit},
                )
        return None

    def _check_duplicate(self, intent: Intent) -> OrderDenied | None:
        window = self.limits.duplicate_order_window_s
        if window is None:
            return None
        now = self.clock.monotonic()
        previous = self._duplicates.get(dup_key(intent))
        if previous is None or now - previous >= window:
            return None
        age = now - previous
        return self._deny(
            intent,
            DenyReason.DUPLICATE_ORDER,
            f"the same order was approved {age:.1f}s ago, duplicate_order_window_s {window}",
            {"age_s": age, "window_s": window, "previous_ts": self.clock.now() - age},
        )
