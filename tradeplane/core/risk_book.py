"""The risk core's book: net positions, working orders, marks, cash flow and equity.

Exposure counts what is filled plus what is still working, so a burst of intents cannot slip past
a limit before the first fill arrives. Equity = starting equity + cash flow + sum of position x
last mark, where each fill adds ``-signed_qty * price - fee`` to the cash flow; it is unknown
while a held symbol has no mark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tradeplane.core.exposure import QTY_EPS, increases_exposure, is_flat, reduces_position
from tradeplane.core.model import Fill

_INF = math.inf  # (a global: ``math.inf`` is a lookup in a module on every mark)


@dataclass(slots=True)
class Working:
    symbol: str
    signed_remaining: float


class Book:
    def __init__(self) -> None:
        self.positions: dict[str, float] = {}  # net signed quantity over all strategies
        self.prices: dict[str, float] = {}
        self.mark_ts: dict[str, float] = {}  # monotonic reading at each symbol's last mark
        self.working: dict[str, Working] = {}  # client order id -> remaining signed quantity
        self.cash_flow = 0.0
        self._avg_price: dict[str, float] = {}  # average entry of the net position
        self.realized = 0.0  # realized P&L net of fees since the engine started (or restore)

    # -- facts ---------------------------------------------------------------------------------

    def mark(self, symbol: str, price: float, ts: float) -> None:
        if not 0.0 < price < _INF:  # NaN fails too: one comparison on every mark
            raise ValueError(f"mark price for {symbol} must be finite and > 0, got {price}")
        self.prices[symbol] = price
        self.mark_ts[symbol] = ts
        # (is_flat inlined: this runs on every bar of a backtest)
        if symbol not in self._avg_price and not (
            -QTY_EPS <= self.positions.get(symbol, 0.0) <= QTY_EPS
        ):
            self._avg_price[symbol] = price  # restored position: entry unknown, start from here

    def apply_fill(self, fill: Fill) -> float:
        """Book a fill; returns the P&L it realized (net of its fee)."""
        sym, signed = fill.symbol, fill.signed_quantity
        before = self.position(sym)
        after = before + signed
        realized = -fill.fee
        avg = self._avg_price.get(sym, fill.price)
        if before * signed < 0:  # reduces (and maybe flips)
            closed = min(abs(signed), abs(before))
            realized += closed * (fill.price - avg) * (1.0 if before > 0 else -1.0)
            if is_flat(after):
                self._avg_price.pop(sym, None)
            elif after * before < 0:
                self._avg_price[sym] = fill.price
        elif not is_flat(after):
            self._avg_price[sym] = (abs(before) * avg + abs(signed) * fill.price) / abs(after)
        self.positions[sym] = 0.0 if is_flat(after) else after
        self.cash_flow += -signed * fill.price - fill.fee
        self.realized += realized
        w = self.working.get(fill.client_order_id)
        if w is not None:
            sign = 1.0 if w.signed_remaining > 0 else -1.0
            w.signed_remaining = sign * max(0.0, abs(w.signed_remaining) - fill.quantity)
        return realized

    def close_order(self, client_order_id: str) -> None:
        self.working.pop(client_order_id, None)

    def add_working(self, client_order_id: str, symbol: str, signed: float) -> None:
        self.working[client_order_id] = Working(symbol, signed)

    def restore(
        self,
        positions: dict[str, float],
        working: dict[str, tuple[str, float]],
        cash_flow: float | None,
    ) -> None:
        self.positions = {s: float(q) for s, q in positions.items() if not is_flat(q)}
        self.working = {coid: Working(sym, float(q)) for coid, (sym, q) in working.items()}
        avg = {s: self._avg_price.get(s) or self.prices.get(s) for s in self.positions}
        self._avg_price = {s: p for s, p in avg.items() if p is not None}
        if cash_flow is not None:
            if not math.isfinite(cash_flow):
                raise ValueError(f"cash_flow must be finite, got {cash_flow}")
            self.cash_flow = float(cash_flow)

    # -- views ---------------------------------------------------------------------------------

    def position(self, symbol: str) -> float:
        return self.positions.get(symbol, 0.0)

    def held(self) -> list[str]:
        return [s for s, q in self.positions.items() if not is_flat(q)]

    def working_quantity(self, symbol: str, side: float = 0.0) -> float:
        """Net working quantity, or only the working quantity on ``side``'s sign when given."""
        return sum(
            w.signed_remaining
            for w in self.working.values()
            if w.symbol == symbol and (side == 0.0 or (w.signed_remaining > 0) == (side > 0))
        )

    def exposure_before_after(self, symbol: str, signed: float) -> tuple[float, float]:
        """Signed worst-case exposure (position + same-side working) before and after an order."""
        before = self.position(symbol) + self.working_quantity(symbol, side=signed)
        return before, before + signed

    def increases(self, symbol: str, signed: float) -> bool:
        """Whether an order of ``signed`` quantity raises the symbol's worst-case |exposure|."""
        before, _ = self.exposure_before_after(symbol, signed)
        return increases_exposure(before, signed)

    def reduces(self, symbol: str, signed: float) -> bool:
        """Whether an order of ``signed`` quantity only shrinks the symbol's worst-case exposure
        (``core.exposure.reduces_position``: a flip or an opening order does not)."""
        before, _ = self.exposure_before_after(symbol, signed)
        return reduces_position(before, signed)

    def worst_case_quantity(self, symbol: str) -> float:
        """Largest |position| reachable if every working order on one side fills."""
        pos = self.position(symbol)
        return max(
            abs(pos + self.working_quantity(symbol, side=1.0)),
            abs(pos + self.working_quantity(symbol, side=-1.0)),
        )

    def active_symbols(self) -> set[str]:
        """Symbols with a position or a working order."""
        out = set(self.held())
        out.update(w.symbol for w in self.working.values() if not is_flat(w.signed_remaining))
        return out

    def equity(self, starting_equity: float) -> float | None:
        # Evaluated on every mark: the loop of ``held`` inlined (same flatness rule).
        total = starting_equity + self.cash_flow
        prices = self.prices
        for sym, quantity in self.positions.items():
            if -QTY_EPS <= quantity <= QTY_EPS:
                continue
            price = prices.get(sym)
            if price is None:
                return None
            total += quantity * price
        return total

    def unmarked(self) -> list[str]:
        return sorted(s for s in self.held() if s not in self.prices)
