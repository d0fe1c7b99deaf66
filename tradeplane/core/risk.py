"""Pre-trade risk: turns an intent into a ``SubmitOrder`` or an ``OrderDenied`` with a reason code.

Exposure counts what is filled plus what is still working, so a burst of intents cannot slip past
a position limit before the first fill arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tradeplane.core.clock import Clock
from tradeplane.core.model import Fill, Intent, OrderDenied, SubmitOrder


class DenyReason(StrEnum):
    MAX_ORDER_VALUE = "MAX_ORDER_VALUE"
    MAX_POSITION_VALUE = "MAX_POSITION_VALUE"
    NO_PRICE = "NO_PRICE"
    DUPLICATE_INTENT = "DUPLICATE_INTENT"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_order_value: float | None = None
    max_position_value: float | None = None

    def disabled(self) -> list[str]:
        return [name for name in self.__slots__ if getattr(self, name) is None]


@dataclass(slots=True)
class _Working:
    symbol: str
    signed_remaining: float


Check = Callable[[Intent, float], OrderDenied | None]


class RiskEngine:
    def __init__(self, limits: RiskLimits, *, clock: Clock) -> None:
        self.limits = limits
        self.clock = clock
        self._positions: dict[str, float] = {}  # net signed quantity over all strategies
        self._prices: dict[str, float] = {}
        self._working: dict[str, _Working] = {}  # client order id -> remaining signed quantity
        self._checks: list[Check] = [self._check_order_value, self._check_position_value]
        self.approved = 0
        self.denied: dict[str, int] = {}

    # -- facts ---------------------------------------------------------------------------------

    def mark(self, symbol: str, price: float) -> None:
        self._prices[symbol] = price

    def price(self, symbol: str) -> float | None:
        return self._prices.get(symbol)

    def on_fill(self, fill: Fill) -> None:
        self._positions[fill.symbol] = self._positions.get(fill.symbol, 0.0) + fill.signed_quantity
        w = self._working.get(fill.client_order_id)
        if w is not None:
            sign = 1.0 if w.signed_remaining > 0 else -1.0
            w.signed_remaining = sign * max(0.0, abs(w.signed_remaining) - fill.quantity)

    def on_order_closed(self, client_order_id: str) -> None:
        """The order reached a terminal state: it no longer counts as working exposure."""
        self._working.pop(client_order_id, None)

    def restore(self, positions: dict[str, float], working: dict[str, tuple[str, float]]) -> None:
        """Resume from the journal: net positions and the still-working orders."""
        self._positions = dict(positions)
        self._working = {coid: _Working(sym, qty) for coid, (sym, qty) in working.items()}

    def position(self, symbol: str) -> float:
        return self._positions.get(symbol, 0.0)

    def working_quantity(self, symbol: str, side: float = 0.0) -> float:
        """Net working quantity, or only the working quantity on ``side``'s sign when given."""
        return sum(
            w.signed_remaining
            for w in self._working.values()
            if w.symbol == symbol and (side == 0.0 or (w.signed_remaining > 0) == (side > 0))
        )

    # -- decision ------------------------------------------------------------------------------

    def check(self, intent: Intent) -> SubmitOrder | OrderDenied:
        if intent.client_order_id in self._working:
            return self._deny(intent, DenyReason.DUPLICATE_INTENT, "intent already approved", {})
        price = intent.limit_price or self._prices.get(intent.symbol)
        if price is None:
            return self._deny(
                intent, DenyReason.NO_PRICE, f"no price seen yet for {intent.symbol}", {}
            )
        for check in self._checks:
            denial = check(intent, price)
            if denial is not None:
                self.denied[denial.reason] = self.denied.get(denial.reason, 0) + 1
                return denial
        self._working[intent.client_order_id] = _Working(
            intent.symbol, intent.side.sign * intent.quantity
        )
        self.approved += 1
        return SubmitOrder(intent=intent, approved_ts=self.clock.now(), reference_price=price)

    def _deny(
        self,
        intent: Intent,
        reason: DenyReason,
        message: str,
        figures: dict[str, float | str | None],
    ) -> OrderDenied:
        self.denied[reason] = self.denied.get(reason, 0) + 1
        return OrderDenied(intent, reason.value, message, figures, self.clock.now())

    def _check_order_value(self, intent: Intent, price: float) -> OrderDenied | None:
        limit = self.limits.max_order_value
        value = intent.quantity * price
        if limit is None or value <= limit:
            return None
        return OrderDenied(
            intent,
            DenyReason.MAX_ORDER_VALUE,
            f"order value {value:.2f} exceeds max_order_value {limit:.2f}",
            {"order_value": value, "limit": limit, "price": price},
            self.clock.now(),
        )

    def _check_position_value(self, intent: Intent, price: float) -> OrderDenied | None:
        limit = self.limits.max_position_value
        if limit is None:
            return None
        # Worst case: every working order on the same side fills. An order that does not
        # increase that exposure (a reduction) is never denied by this limit.
        signed = intent.side.sign * intent.quantity
        before = self.position(intent.symbol) + self.working_quantity(intent.symbol, side=signed)
        after = before + signed
        if abs(after) <= abs(before):
            return None
        value = abs(after) * price
        if value <= limit:
            return None
        return OrderDenied(
            intent,
            DenyReason.MAX_POSITION_VALUE,
            f"position value after order {value:.2f} exceeds max_position_value {limit:.2f}",
            {
                "position_value_after": value,
                "limit": limit,
                "price": price,
                "position": self.position(intent.symbol),
            },
            self.clock.now(),
        )
