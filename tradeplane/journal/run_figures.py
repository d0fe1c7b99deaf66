"""The run's figures from its journal: what ``tradeplane status`` shows, running or stopped.

One pure fold over journal lines in seq order (no Ray, no IO, no clock): denials by reason,
intents, orders by status, fills, and per strategy its positions (flat ones too, with what they
realized), equity and P&L; the day's figures by the session calendar's risk day; the kill switch.
Every such figure ``status`` prints comes from here, so a stopped deployment shows what its
journal holds and a running one shows the same figures, its heartbeats adding only freshness.

Where each figure comes from:

* intents: distinct intent ids a strategy's ``intent`` records name, and those its decisions
  (``order_denied``, ``order_submitting``) carry: the intent record goes off the critical path
  and may be missing after a crash, its decision not.
* denials: ``order_denied`` records by their reason code (and by strategy).
* orders: each client order id's last status, as the journal's ``orders`` projection keeps it.
* fills: ``order_filled`` records with a fill, counted once per fill id (as the ``fills`` table).
* positions and P&L: the virtual portfolio's arithmetic (``core.portfolio``, as the strategy's own
  books and the journal's ``positions``) over the fills: signed quantity (short < 0), average
  entry, realized P&L before fees, fees. Unrealized P&L and equity are marked at each symbol's
  last price in journal order: a bar's close (``bar``, ``bar_summary``) or a fill's price,
  whichever came later. Journal order, not the strategies' snapshots, whose marks are a periodic
  copy: the same lines always give the same figures, from ``journal.jsonl`` alone.
* equity: the strategy's capital (``deployment_started`` names it; before it did, the last
  snapshot's starting cash is the caller's to give) plus its total P&L, net of fees; None only
  when no capital is known. The deployment's total sums them.
* the day's figures: the risk day (``core.session``, by the calendar ``deployment_started``
  names, as the risk core rolls its day) of the last line; the equity as the day began (at its
  first line; the capital for a run that began that day), the day's P&L (equity now minus that),
  its realized P&L net of fees, orders sent, fills and denials that day.
* the kill switch and trading state: the last ``kill_switch_activated`` or ``_cleared``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from tradeplane.core.portfolio import VirtualPortfolio
from tradeplane.core.session import SessionCalendar, make_calendar
from tradeplane.protocol.events import ORDER_STATUS_KINDS, EventKind

FIGURE_KINDS: tuple[str, ...] = (
    EventKind.DEPLOYMENT_STARTED,
    EventKind.INTENT,
    EventKind.ORDER_DENIED,
    EventKind.ORDER_SUBMITTING,
    EventKind.ORDER_FILLED,
    *sorted(ORDER_STATUS_KINDS),
    EventKind.BAR,
    EventKind.BAR_SUMMARY,
    EventKind.KILL_SWITCH_ACTIVATED,
    EventKind.KILL_SWITCH_CLEARED,
)
"""The kinds the figures read: a reader fetches only these."""

UNATTRIBUTED = ""
"""The strategy name of fills whose order names none."""
_STATUS_OF: dict[str, str] = {str(k): k.removeprefix("order_") for k in ORDER_STATUS_KINDS}
_INTENT_CARRIERS = (EventKind.INTENT, EventKind.ORDER_DENIED, EventKind.ORDER_SUBMITTING)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def line_ts(line: Mapping[str, Any]) -> float | None:
    """A journal line's time in epoch seconds (ISO-8601 UTC in a line, a number in a record)."""
    ts = line.get("ts")
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return _num(ts)


class _Strategy:
    def __init__(self, capital: float | None) -> None:
        self.capital = capital
        self.book = VirtualPortfolio(capital or 0.0)
        self.intents: set[str] = set()
        self.denials: dict[str, int] = {}
        self.fills = 0
        self.fees: dict[str, float] = {}
        self.fill_counts: dict[str, int] = {}


class _Day:
    """The risk day the journal is in, and what happened in it so far."""

    def __init__(self, label: str, boundary: float, start_equity: float | None) -> None:
        self.label = label
        self.boundary = boundary
        self.start_equity = start_equity
        self.start_realized = 0.0  # the run's realized P&L net of fees as the day began
        self.began_with_run = False
        self.orders = 0
        self.fills = 0
        self.denials: dict[str, int] = {}


class RunFigures:
    """Feed journal lines in seq order (``feed``); ``figures()`` is what ``status`` shows.

    ``capital``: each strategy's starting cash where the journal's ``deployment_started`` does
    not name it (older journals: the caller reads it from the strategies' snapshots).
    ``calendar_for``: the session calendar by name (``deployment_started`` names it).
    """

    def __init__(
        self,
        *,
        capital: Mapping[str, float] | None = None,
        calendar_for: Callable[[str], SessionCalendar] = make_calendar,
    ) -> None:
        self.capital: dict[str, float] = dict(capital or {})
        self.calendar_for = calendar_for
        self.calendar: SessionCalendar | None = None
        self.strategies: dict[str, _Strategy] = {}
        self.marks: dict[str, float] = {}
        self.denials: dict[str, int] = {}
        self.orders: dict[str, tuple[str, str]] = {}  # client order id -> (strategy, status)
        self.fill_ids: set[str] = set()
        self.kill_switch: dict[str, Any] = {"active": False}
        self.trading_state = "active"
        self.day: _Day | None = None
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.last_seq = 0

    # -- the fold ------------------------------------------------------------------------------

    def feed(self, line: Mapping[str, Any]) -> None:
        kind = line.get("kind")
        data = line.get("data")
        if not isinstance(data, dict):
            data = {}
        seq = line.get("seq")
        if isinstance(seq, int):
            self.last_seq = max(self.last_seq, seq)
        if kind == EventKind.DEPLOYMENT_STARTED:
            self._started(data)
        ts = line_ts(line)
        if ts is not None:
            self._at(ts)
        strategy = str(line.get("strategy") or data.get("strategy") or "")
        if kind in _INTENT_CARRIERS:
            intent_id = line.get("intent_id") or data.get("intent_id")
            if isinstance(intent_id, str) and intent_id and strategy:
                self._strategy(strategy).intents.add(intent_id)
        if kind == EventKind.ORDER_DENIED:
            self._denied(strategy, str(data.get("reason") or "unknown"))
        elif kind == EventKind.ORDER_SUBMITTING:
            self._order(line, data, strategy, "pending_submit", new_only=True)
            if self.day is not None:
                self.day.orders += 1
        elif kind in _STATUS_OF:
            self._order(line, data, strategy, _STATUS_OF[str(kind)])
        elif kind == EventKind.ORDER_FILLED:
            self._filled(line, data, strategy)
        elif kind == EventKind.BAR:
            self._mark(data.get("symbol"), data.get("close"))
        elif kind == EventKind.BAR_SUMMARY:
            symbols = data.get("symbols")
            for symbol, s in (symbols if isinstance(symbols, dict) else {}).items():
                self._mark(symbol, (s or {}).get("close") if isinstance(s, dict) else None)
        elif kind == EventKind.KILL_SWITCH_ACTIVATED:
            self.kill_switch = {
                "active": True,
                "reason": data.get("reason"),
                "source": data.get("source"),
                "ts": _num(data.get("ts")) or ts,
                "figures": data.get("figures") or {},
            }
            self.trading_state = str(data.get("trading_state") or "halted")
        elif kind == EventKind.KILL_SWITCH_CLEARED:
            self.kill_switch = {
                "active": False,
                "reason": data.get("reason"),
                "source": data.get("source"),
                "ts": _num(data.get("ts")) or ts,
            }
            self.trading_state = "active"

    def _started(self, data: Mapping[str, Any]) -> None:
        capital = data.get("capital")
        for name, cash in (capital if isinstance(capital, dict) else {}).items():
            value = _num(cash)
            if value is not None:
                self.capital[str(name)] = value
                held = self.strategies.get(str(name))
                if held is not None and held.capital is None:
                    self._set_capital(held, value)
        for name in data.get("strategies") or []:
            self._strategy(str(name))
        calendar = data.get("session_calendar")
        if isinstance(calendar, str) and (self.calendar is None or calendar != self.calendar.name):
            self.calendar = self.calendar_for(calendar)
            if self.day is not None:  # another calendar: its day from here
                self.day.boundary = self.calendar.next_boundary(self.last_ts or 0.0)

    @staticmethod
    def _set_capital(s: _Strategy, capital: float) -> None:
        s.capital = capital
        s.book.starting_cash = capital
        s.book.cash += capital

    def _at(self, ts: float) -> None:
        """Time moves to ``ts``: a new risk day begins at its first line."""
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        day = self.day
        if day is not None and ts < day.boundary:
            return
        calendar = self.calendar or self.calendar_for("24/7")
        self.calendar = calendar
        # The first day starts at the capital (known by now, or once ``deployment_started``
        # names it: ``_day_figures``); a later one at the equity the journal stood at.
        start = None if day is None else self.equity()
        self.day = _Day(calendar.risk_day(ts), calendar.next_boundary(ts), start)
        self.day.began_with_run = day is None
        self.day.start_realized = self._realized_net()

    def _strategy(self, name: str) -> _Strategy:
        s = self.strategies.get(name)
        if s is None:
            # Fills no strategy placed (an order the venue reported, adopted at start-up) have
            # no capital of their own: their P&L counts in the deployment's equity as it is.
            capital = self.capital.get(name, 0.0 if name == UNATTRIBUTED else None)
            s = self.strategies[name] = _Strategy(capital)
            for symbol, price in self.marks.items():
                s.book.mark(symbol, price)
        return s

    def _denied(self, strategy: str, reason: str) -> None:
        self.denials[reason] = self.denials.get(reason, 0) + 1
        if strategy:
            s = self._strategy(strategy)
            s.denials[reason] = s.denials.get(reason, 0) + 1
        if self.day is not None:
            self.day.denials[reason] = self.day.denials.get(reason, 0) + 1

    def _order(
        self,
        line: Mapping[str, Any],
        data: Mapping[str, Any],
        strategy: str,
        status: str | None,
        *,
        new_only: bool = False,
    ) -> None:
        coid = line.get("client_order_id") or data.get("client_order_id")
        if not isinstance(coid, str) or not coid:
            return
        held = self.orders.get(coid)
        if held is None:
            self.orders[coid] = (strategy, status or "unknown")
        elif status is not None and not new_only:
            self.orders[coid] = (held[0] or strategy, status)

    def _filled(self, line: Mapping[str, Any], data: Mapping[str, Any], strategy: str) -> None:
        status = data.get("status")
        self._order(line, data, strategy, str(status) if isinstance(status, str) else None)
        fill = data.get("fill")
        if not isinstance(fill, dict):
            return
        fill_id = fill.get("fill_id")
        symbol = fill.get("symbol")
        qty, price = _num(fill.get("quantity")), _num(fill.get("price"))
        fee = _num(fill.get("fee")) or 0.0
        if (
            not isinstance(fill_id, str)
            or fill_id in self.fill_ids
            or not isinstance(symbol, str)
            or qty is None
            or price is None
        ):
            return  # a fill journaled twice counts once, as in the journal's fills table
        self.fill_ids.add(fill_id)
        s = self._strategy(strategy or str(fill.get("strategy") or ""))
        s.book.apply(symbol, qty if fill.get("side") == "buy" else -qty, price, fee)
        s.fills += 1
        s.fill_counts[symbol] = s.fill_counts.get(symbol, 0) + 1
        s.fees[symbol] = s.fees.get(symbol, 0.0) + fee
        if self.day is not None:
            self.day.fills += 1
        self._mark(symbol, price)

    def _mark(self, symbol: Any, price: Any) -> None:
        p = _num(price)
        if not isinstance(symbol, str) or p is None or not 0.0 < p < float("inf"):
            return
        self.marks[symbol] = p
        for s in self.strategies.values():
            s.book.mark(symbol, p)

    # -- the figures ---------------------------------------------------------------------------

    def _capital_total(self) -> float | None:
        known = [s.capital for s in self.strategies.values()]
        if not known or any(c is None for c in known):
            return None
        return float(sum(c for c in known if c is not None))

    def _realized_net(self) -> float:
        return sum(s.book.realized_pnl - s.book.fees for s in self.strategies.values())

    def equity(self) -> float | None:
        """The deployment's equity: every strategy's capital plus its P&L (None when a
        strategy's capital is unknown)."""
        if any(s.capital is None for s in self.strategies.values()):
            return None
        return sum(s.book.equity for s in self.strategies.values())

    def figures(self) -> dict[str, Any]:
        orders: dict[str, int] = {}
        by_strategy: dict[str, int] = {}
        for strategy, status in self.orders.values():
            orders[status] = orders.get(status, 0) + 1
            by_strategy[strategy] = by_strategy.get(strategy, 0) + 1
        strategies = {
            name: self._strategy_figures(s, by_strategy.get(name, 0))
            for name, s in sorted(self.strategies.items())
        }
        total_pnl = sum(s.book.total_pnl for s in self.strategies.values())
        return {
            "last_seq": self.last_seq,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "intents": sum(len(s.intents) for s in self.strategies.values()),
            "denials": dict(sorted(self.denials.items())),
            "denied": sum(self.denials.values()),
            "orders": dict(sorted(orders.items())),
            "fills": len(self.fill_ids),
            "strategies": strategies,
            "total": {
                "capital": self._capital_total(),
                "equity": self.equity(),
                "realized_pnl": sum(s.book.realized_pnl for s in self.strategies.values()),
                "unrealized_pnl": sum(s.book.unrealized_pnl for s in self.strategies.values()),
                "fees": sum(s.book.fees for s in self.strategies.values()),
                "total_pnl": total_pnl,
            },
            "marks": dict(sorted(self.marks.items())),
            "day": self._day_figures(),
            "kill_switch": dict(self.kill_switch),
            "trading_state": self.trading_state,
        }

    def _strategy_figures(self, s: _Strategy, orders: int) -> dict[str, Any]:
        book = s.book
        positions = {}
        for symbol, pos in sorted(book.positions(include_flat=True).items()):
            mark = book.mark_price(symbol)
            price = pos.avg_price if mark is None else mark
            positions[symbol] = {
                "quantity": pos.quantity,
                "avg_price": pos.avg_price,
                "mark": mark,
                "realized_pnl": pos.realized_pnl,
                "unrealized_pnl": pos.quantity * (price - pos.avg_price),
                "fees": s.fees.get(symbol, 0.0),
                "fills": s.fill_counts.get(symbol, 0),
            }
        return {
            "capital": s.capital,
            "equity": None if s.capital is None else book.equity,
            "realized_pnl": book.realized_pnl,
            "unrealized_pnl": book.unrealized_pnl,
            "fees": book.fees,
            "total_pnl": book.total_pnl,
            "intents": len(s.intents),
            "denials": dict(sorted(s.denials.items())),
            "denied": sum(s.denials.values()),
            "orders": orders,
            "fills": s.fills,
            "positions": positions,
        }

    def _day_figures(self) -> dict[str, Any] | None:
        day = self.day
        if day is None:
            return None
        equity = self.equity()
        start = self._capital_total() if day.began_with_run else day.start_equity
        return {
            "risk_day": day.label,
            "calendar": None if self.calendar is None else self.calendar.name,
            "start_equity": start,
            "equity": equity,
            "pnl": None if equity is None or start is None else equity - start,
            "realized_pnl": self._realized_net() - day.start_realized,
            "orders": day.orders,
            "fills": day.fills,
            "denials": dict(sorted(day.denials.items())),
            "denied": sum(day.denials.values()),
        }


PNL_KEYS = ("capital", "equity", "realized_pnl", "unrealized_pnl", "fees", "total_pnl")
STAT_KEYS = ("intents", "orders", "fills", "denied")


def status_strategy(figures: Mapping[str, Any]) -> dict[str, Any]:
    """One strategy's figures in the shape ``status`` always gave a strategy (its heartbeat's):
    ``positions``, ``pnl`` and ``stats``."""
    return {
        "positions": figures["positions"],
        "pnl": {k: figures[k] for k in PNL_KEYS},
        "stats": {k: figures[k] for k in STAT_KEYS},
    }


def run_figures(
    lines: Iterable[Mapping[str, Any]],
    *,
    capital: Mapping[str, float] | None = None,
    calendar_for: Callable[[str], SessionCalendar] = make_calendar,
) -> dict[str, Any]:
    """The run's figures from its journal lines in seq order (see the module docstring)."""
    fold = RunFigures(capital=capital, calendar_for=calendar_for)
    for line in lines:
        fold.feed(line)
    return fold.figures()
