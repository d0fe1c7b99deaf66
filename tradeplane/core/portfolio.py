"""A virtual portfolio: long and short positions, average price, realized and unrealized P&L,
fees, cash and equity.

Quantities are signed (short < 0), so ``equity = cash + sum(qty * mark)`` holds for shorts too:
selling short raises cash and the negative quantity carries the liability.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from tradeplane.core.exposure import is_flat
from tradeplane.core.model import Fill, Position

# Fill ids remembered to drop a fill delivered twice in quick succession. Older duplicates are
# stopped upstream (the strategy's journal-seq watermark), so the memory stays bounded.
REMEMBERED_FILL_IDS = 4096
_INF = math.inf  # (a global: ``math.inf`` is a lookup in a module on every mark)


@dataclass(slots=True)
class _Book:
    quantity: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0


class VirtualPortfolio:
    def __init__(self, starting_cash: float) -> None:
        if not math.isfinite(starting_cash):
            raise ValueError("starting_cash must be finite")
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.fees = 0.0
        self._books: dict[str, _Book] = {}
        self._positions: dict[str, Position] = {}  # built from _books, dropped on change
        self._marks: dict[str, float] = {}
        self._fill_ids: set[str] = set()
        self._fill_order: deque[str] = deque()

    def apply_fill(self, fill: Fill) -> bool:
        """Apply a fill once; a repeated fill id changes nothing and returns False."""
        if fill.fill_id in self._fill_ids:
            return False
        self._remember_fill(fill.fill_id)
        self.apply(fill.symbol, fill.signed_quantity, fill.price, fill.fee)
        self._marks.setdefault(fill.symbol, fill.price)
        return True

    def _remember_fill(self, fill_id: str) -> None:
        self._fill_ids.add(fill_id)
        self._fill_order.append(fill_id)
        if len(self._fill_order) > REMEMBERED_FILL_IDS:
            self._fill_ids.discard(self._fill_order.popleft())

    def apply(self, symbol: str, signed_qty: float, price: float, fee: float = 0.0) -> None:
        self._positions.pop(symbol, None)
        book = self._books.get(symbol)
        if book is None:  # (not ``setdefault``: that would build a _Book on every fill)
            book = self._books[symbol] = _Book()
        self.cash -= signed_qty * price + fee
        self.fees += fee
        q = book.quantity
        if is_flat(q) or (q > 0) == (signed_qty > 0):
            total = abs(q) + abs(signed_qty)
            book.avg_price = (abs(q) * book.avg_price + abs(signed_qty) * price) / total
            book.quantity = q + signed_qty
            return
        closed = min(abs(signed_qty), abs(q))
        book.realized_pnl += closed * (price - book.avg_price) * (1 if q > 0 else -1)
        new_q = q + signed_qty
        if is_flat(new_q):
            book.quantity, book.avg_price = 0.0, 0.0
        elif (new_q > 0) != (q > 0):
            book.quantity, book.avg_price = new_q, price  # flipped: the remainder opened at price
        else:
            book.quantity = new_q

    def mark(self, symbol: str, price: float) -> None:
        if 0.0 < price < _INF:  # finite and > 0 (NaN fails), in one comparison: every bar
            self._marks[symbol] = price

    def mark_price(self, symbol: str) -> float | None:
        return self._marks.get(symbol)

    def position(self, symbol: str) -> Position:
        # Strategies ask on every bar; a position changes only on a fill (``apply``), so the
        # immutable ``Position`` is built once per change, not once per question.
        position = self._positions.get(symbol)
        if position is None:
            book = self._books.get(symbol)
            if book is None:
                position = Position(symbol, 0.0, 0.0, 0.0)
            else:
                position = Position(symbol, book.quantity, book.avg_price, book.realized_pnl)
            self._positions[symbol] = position
        return position

    def positions(self, *, include_flat: bool = False) -> dict[str, Position]:
        return {
            s: self.position(s)
            for s, b in self._books.items()
            if include_flat or not is_flat(b.quantity)
        }

    def _price(self, symbol: str, book: _Book) -> float:
        return self._marks.get(symbol, book.avg_price)

    @property
    def market_value(self) -> float:
        marks = self._marks
        total = 0.0
        for s, b in self._books.items():  # a plain loop: a backtest asks once per bar time
            total += b.quantity * marks.get(s, b.avg_price)
        return total

    @property
    def gross_exposure(self) -> float:
        return sum(abs(b.quantity) * self._price(s, b) for s, b in self._books.items())

    @property
    def equity(self) -> float:
        return self.cash + self.market_value

    @property
    def realized_pnl(self) -> float:
        return sum(b.realized_pnl for b in self._books.values())

    @property
    def unrealized_pnl(self) -> float:
        return sum(b.quantity * (self._price(s, b) - b.avg_price) for s, b in self._books.items())

    @property
    def total_pnl(self) -> float:
        """Net of fees: equity minus starting cash."""
        return self.equity - self.starting_cash

    def snapshot(self) -> dict[str, Any]:
        return {
            "starting_cash": self.starting_cash,
            "cash": self.cash,
            "fees": self.fees,
            "books": {s: [b.quantity, b.avg_price, b.realized_pnl] for s, b in self._books.items()},
            "marks": dict(self._marks),
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> VirtualPortfolio:
        p = cls(float(data["starting_cash"]))
        p.cash = float(data["cash"])
        p.fees = float(data["fees"])
        p._books = {s: _Book(*map(float, v)) for s, v in data["books"].items()}
        p._marks = {s: float(v) for s, v in data["marks"].items()}
        return p

    def summary(self) -> dict[str, float]:
        return {
            "cash": self.cash,
            "equity": self.equity,
            "realized_pnl": self.realized_pnl,
            "unrealized_pnl": self.unrealized_pnl,
            "fees": self.fees,
            "total_pnl": self.total_pnl,
            "gross_exposure": self.gross_exposure,
        }
