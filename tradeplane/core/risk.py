"""Pre-trade risk: turns an intent into a ``SubmitOrder`` or an ``OrderDenied`` with a reason code.

Pure: no Ray, no IO, time from the injected clock. Besides the pre-trade checks
(``risk_checks``) the engine keeps the account's equity from fills and marks and evaluates the kill
switch on *every* mark and fill, not only at submit; it rolls the risk day over by the session
calendar inside a long-running process; and it exports/restores its state for restarts.

Order of checks: reconciling -> symbol allowed/blocked -> duplicate intent -> market open ->
trading state -> price known / stale -> price deviation -> order qty/value -> position qty/value
-> gross exposure -> number of positions -> daily loss / drawdown -> rate limits -> duplicate
order window.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from tradeplane.core.clock import Clock
from tradeplane.core.exposure import QTY_EPS, is_flat
from tradeplane.core.model import Fill, Intent, OrderDenied, SubmitOrder
from tradeplane.core.risk_book import Book, Working
from tradeplane.core.risk_checks import DupKey, PreTradeChecks, dup_key
from tradeplane.core.risk_state import KillRecord, PersistentRiskState
from tradeplane.core.risk_types import (
    TRADING_STATES,
    DenyReason,
    Figures,
    KillSwitchActivated,
    KillSwitchCleared,
    KillSwitchPolicy,
    RiskDayRolledOver,
    RiskEvent,
    RiskLimits,
    TradingState,
)
from tradeplane.core.session import SessionCalendar, iso_utc, make_calendar

__all__ = [
    "DenyReason",
    "KillSwitchActivated",
    "KillSwitchCleared",
    "KillSwitchPolicy",
    "RiskDayRolledOver",
    "RiskEngine",
    "RiskEvent",
    "RiskLimits",
    "TradingState",
]

RECENT_ORDER_IDS = 50_000


class RiskEngine(PreTradeChecks, PersistentRiskState):
    def __init__(
        self,
        limits: RiskLimits,
        *,
        clock: Clock,
        calendar: SessionCalendar | None = None,
        starting_equity: float = 0.0,
        policy: KillSwitchPolicy | None = None,
    ) -> None:
        if not math.isfinite(starting_equity) or starting_equity < 0:
            raise ValueError(f"starting_equity must be finite and >= 0, got {starting_equity}")
        self.limits = limits
        self.clock = clock
        self.calendar = calendar or make_calendar()
        self.starting_equity = float(starting_equity)
        self.policy = policy or KillSwitchPolicy()
        self.book = Book()
        self.state = TradingState.ACTIVE
        self.approved = 0
        self.denied: dict[str, int] = {}
        self._kill: KillRecord | None = None
        self._reconciling = False
        now = clock.now()
        self._risk_day = self.calendar.risk_day(now)
        self._next_boundary = self.calendar.next_boundary(now)
        self._day_start_equity: float | None = None
        self._daily_realized = 0.0
        self._orders_today = 0
        self._hwm: float | None = None
        # The pace windows are kept on the monotonic clock (durations within this process: a wall
        # step must neither forget them nor hold them for an hour); ``export_state`` and the
        # restores convert to and from the wall times the record keeps.
        self._approvals: deque[float] = deque()  # approval times within the rate window
        self._duplicates: dict[DupKey, float] = {}  # order key -> last approval time
        self._rejections: deque[float] = deque()  # venue rejection times within their window
        self._recent_ids: deque[str] = deque(maxlen=RECENT_ORDER_IDS)
        self._recent_id_set: set[str] = set()
        self._breached: set[str] = set()  # loss limits beyond their limit at the last evaluation
        self._pending: list[RiskEvent] = []
        self._version = 0
        self._evaluated_at = -1  # the version at the last evaluation (see ``mark``)
        self._state_restored = False
        self._cash_flow_from_journal = False
        self._pending.extend(self._evaluate())

    # -- facts ---------------------------------------------------------------------------------

    def mark(self, symbol: str, price: float) -> list[RiskEvent]:
        """A new price; returns rollover / kill-switch events it caused."""
        now = self.clock.now()
        # The common case (nothing pending, the day goes on) allocates nothing: this runs on
        # every bar, millions of times in a backtest.
        events = self.roll_day_if_due() if self._pending or now >= self._next_boundary else None
        book = self.book
        book.mark(symbol, price, self.clock.monotonic())
        if self._evaluated_at == self._version:
            # Nothing the evaluation reads has changed since the last one (every such change
            # bumps the version; marks evaluate), and a symbol not held adds nothing to equity:
            # the evaluation would find the same equity and raise nothing. Skipping it is exact.
            quantity = book.positions.get(symbol, 0.0)
            if -QTY_EPS <= quantity <= QTY_EPS:  # as ``Book.equity`` skips a flat position
                return events or []
        evaluated = self._evaluate()
        return evaluated if not events else events + evaluated

    def on_fill(self, fill: Fill) -> list[RiskEvent]:
        # (as in ``mark``: with nothing pending and the day going on there is nothing to roll)
        events = (
            self.roll_day_if_due()
            if self._pending or self.clock.now() >= self._next_boundary
            else None
        )
        self._daily_realized += self.book.apply_fill(fill)
        self._bump()
        evaluated = self._evaluate()
        return evaluated if not events else events + evaluated

    def on_order_closed(self, client_order_id: str) -> None:
        """The order reached a terminal state: it no longer counts as working exposure."""
        self.book.close_order(client_order_id)

    def on_venue_rejection(self, client_order_id: str) -> list[RiskEvent]:
        """A venue rejected an order: ``max_venue_rejections`` in the window trips the switch."""
        now = self.clock.monotonic()
        window = self.policy.venue_rejection_window_s
        self._rejections.append(now)
        while self._rejections and self._rejections[0] <= now - window:
            self._rejections.popleft()
        self._bump()
        limit = self.policy.max_venue_rejections
        if limit is None or len(self._rejections) < limit:
            return []
        figures: Figures = {
            "count": len(self._rejections),
            "limit": limit,
            "window_s": window,
            "last_client_order_id": client_order_id,
        }
        self._rejections.clear()
        return self.activate_kill_switch("max_venue_rejections", source="risk", figures=figures)

    def set_reconciling(self, reconciling: bool) -> None:
        """While true every intent is denied ``RECONCILING`` (the broker is resyncing)."""
        self._reconciling = reconciling

    @property
    def reconciling(self) -> bool:
        return self._reconciling

    # -- views ---------------------------------------------------------------------------------

    def price(self, symbol: str) -> float | None:
        return self.book.prices.get(symbol)

    def position(self, symbol: str) -> float:
        return self.book.position(symbol)

    def working_quantity(self, symbol: str, side: float = 0.0) -> float:
        """Net working quantity, or only the working quantity on ``side``'s sign when given."""
        return self.book.working_quantity(symbol, side)

    @property
    def _positions(self) -> dict[str, float]:  # read by the current RiskActor
        return self.book.positions

    @property
    def _working(self) -> dict[str, Working]:  # read by the current RiskActor
        return self.book.working

    @property
    def trading_state(self) -> TradingState:
        return self.state

    @property
    def kill_switch_active(self) -> bool:
        return self._kill is not None

    @property
    def state_version(self) -> int:
        """Increases whenever anything in ``export_state()`` changes."""
        return self._version

    @property
    def risk_day(self) -> str:
        return self._risk_day

    def equity(self) -> float | None:
        return self.book.equity(self.starting_equity)

    def _loss_figures(self) -> tuple[float | None, float | None, float | None]:
        equity = self.equity()
        if equity is None:
            return None, None, None
        loss = None if self._day_start_equity is None else self._day_start_equity - equity
        hwm = self._hwm
        drawdown = None if hwm is None or hwm <= 0 else max(0.0, (hwm - equity) / hwm * 100.0)
        return equity, loss, drawdown

    def _kill_reason(self) -> str | None:
        return self._kill.reason if self._kill else None

    def drain_events(self) -> list[RiskEvent]:
        """Events raised inside ``check`` (rollover, kill switch), oldest first. ``mark``,
        ``on_fill`` and ``roll_day_if_due`` hand them back too, so none is lost."""
        pending = self._pending
        if not pending:  # the usual case: asked after every decision
            return []
        out = list(pending)
        pending.clear()
        return out

    # -- decision ------------------------------------------------------------------------------

    def expire(self, intent: Intent, age_s: float, max_age_s: float) -> OrderDenied:
        """An intent found undecided after a restart, too old to send: denied, so it ends with
        a journaled decision instead of none. A negative age: dated in the future (the clocks
        disagree), so how old it is is unknown."""
        old = f"{age_s:.1f}s old" if age_s >= 0 else f"dated {-age_s:.1f}s in the future"
        return self._deny(
            intent,
            DenyReason.INTENT_EXPIRED,
            f"intent found undecided after a restart, {old} "
            f"(recovered_intent_max_age_s {max_age_s:g})",
            {"age_s": round(age_s, 3), "max_age_s": max_age_s},
        )

    def check(self, intent: Intent, *, flatten: bool = False) -> SubmitOrder | OrderDenied:
        """Approve or deny. ``flatten`` marks the engine's own flatten order: it passes in any
        trading state as long as it only reduces the position, with only the price check."""
        if self.clock.now() >= self._next_boundary:
            # (Before the boundary ``roll_day_if_due`` would only hand back what is pending,
            # to be put back at once: nothing to do.)
            self._pending.extend(self.roll_day_if_due())
        if self._reconciling:
            return self._deny(
                intent,
                DenyReason.RECONCILING,
                "the broker is reconciling with the venue: no new orders until it is done",
                {"trading_state": self.state.value},
            )
        signed = float(intent.side.sign * intent.quantity)
        if flatten:
            denial = self._check_flatten(intent, signed)
            if denial is not None:
                return denial
            price, denial = self._resolve_price(intent, only_known=True)
            return denial or self._approve(intent, price)
        denial = self._check_symbol(intent)
        if denial is None and self._is_duplicate_intent(intent):
            denial = self._deny(
                intent,
                DenyReason.DUPLICATE_INTENT,
                f"intent {intent.client_order_id} already approved",
                {"client_order_id": intent.client_order_id},
            )
        denial = (
            denial or self._check_market_open(intent) or self._check_trading_state(intent, signed)
        )
        if denial is not None:
            return denial
        price, denial = self._resolve_price(intent)
        denial = (
            denial
            or self._check_order_size(intent, price)
            or self._check_position(intent, price, signed)
            or self._check_gross(intent, price, signed)
            or self._check_positions_count(intent, signed)
            or self._check_loss_and_trip(intent, signed)
            or self._check_rate(intent)
            or self._check_duplicate(intent)
        )
        return denial or self._approve(intent, price)

    def _is_duplicate_intent(self, intent: Intent) -> bool:
        coid = intent.client_order_id
        return coid in self.book.working or coid in self._recent_id_set

    def _check_loss_and_trip(self, intent: Intent, signed: float) -> OrderDenied | None:
        denial = self._check_loss(intent, signed)
        if denial is not None and denial.reason != DenyReason.NO_PRICE:
            daily = denial.reason == DenyReason.MAX_DAILY_LOSS
            name = "max_daily_loss" if daily else "max_drawdown"
            self._pending.extend(self.activate_kill_switch(name, "risk", dict(denial.figures)))
        return denial

    def _approve(self, intent: Intent, price: float) -> SubmitOrder:
        now, mono = self.clock.now(), self.clock.monotonic()
        coid = intent.client_order_id
        signed = float(intent.side.sign * intent.quantity)
        # Judged on the worst-case exposure before this order joins it, so two queued sells that
        # together would flip a long are not both "reducing" when the kill switch trips later.
        reduces = self.book.reduces(intent.symbol, signed)
        self.book.add_working(coid, intent.symbol, signed)
        self._approvals.append(mono)
        self._orders_today += 1
        if self._duplicates or self.limits.duplicate_order_window_s is not None:
            self._duplicates[dup_key(intent)] = mono
            self._prune_duplicates(mono)
        # else: without a window the key would be pruned at once (``now - now >= 0``), leaving
        # the map empty as it was: nothing to do.
        if len(self._recent_ids) == self._recent_ids.maxlen:
            self._recent_id_set.discard(self._recent_ids[0])
        self._recent_ids.append(coid)
        self._recent_id_set.add(coid)
        self.approved += 1
        self._bump()
        # (positional: intent, approved_ts, reference_price, reduces_position)
        return SubmitOrder(intent, now, price, reduces)

    def _prune_duplicates(self, now: float) -> None:
        window = self.limits.duplicate_order_window_s or 0.0
        for key in [k for k, ts in self._duplicates.items() if now - ts >= window]:
            del self._duplicates[key]

    # -- kill switch and P&L -------------------------------------------------------------------

    def activate_kill_switch(
        self, reason: str, source: str = "operator", figures: Figures | None = None
    ) -> list[RiskEvent]:
        """Trip the kill switch (idempotent: already active -> no event)."""
        if self._kill is not None:
            return []
        now = self.clock.now()
        target = self.policy.tripped_state
        self.state = TRADING_STATES.check(self.state, target)
        self._kill = KillRecord(reason, source, now, dict(figures or {}))
        self._bump()
        return [
            KillSwitchActivated(
                reason=reason,
                source=source,
                figures=dict(figures or {}),
                ts=now,
                trading_state=target,
                cancel_orders=self.policy.cancel_orders,
                flatten=self.policy.flatten,
            )
        ]

    def clear_kill_switch(self, reason: str, source: str = "operator") -> list[RiskEvent]:
        """Clear the kill switch: trading is ACTIVE again; nothing else is re-based."""
        if self._kill is None:
            return []
        self.state = TRADING_STATES.check(self.state, TradingState.ACTIVE)
        self._kill = None
        self._bump()
        return [KillSwitchCleared(reason=reason, source=source, ts=self.clock.now())]

    def _evaluate(self) -> list[RiskEvent]:
        """Update the high-water mark and trip the kill switch when a loss limit is crossed."""
        equity = self.book.equity(self.starting_equity)  # as equity(): this runs on every mark
        if equity is None:
            self._evaluated_at = self._version
            return []
        hwm = self._hwm
        if hwm is None or equity > hwm:
            hwm = self._hwm = equity
            self._bump()
        if self._day_start_equity is None:
            self._day_start_equity = equity
            self._bump()
        max_loss, max_drawdown = self.limits.max_daily_loss, self.limits.max_drawdown_pct
        if max_loss is None and max_drawdown is None and not self._breached:
            # No loss limit to judge (and none breached before): the figures below would be
            # computed only to be compared with nothing. A held symbol's every mark comes here.
            self._evaluated_at = self._version
            return []
        # As _loss_figures, from the equity just computed.
        loss = self._day_start_equity - equity
        drawdown = None if hwm <= 0 else max(0.0, (hwm - equity) / hwm * 100.0)
        if not (
            self._breached
            or (max_loss is not None and loss >= max_loss)
            or (max_drawdown is not None and drawdown is not None and drawdown >= max_drawdown)
        ):
            self._evaluated_at = self._version
            return []  # the common case: within both limits, none breached before
        events: list[RiskEvent] = []
        for name, value, limit, figure in (
            ("max_daily_loss", loss, self.limits.max_daily_loss, "daily_loss"),
            ("max_drawdown", drawdown, self.limits.max_drawdown_pct, "drawdown_pct"),
        ):
            beyond = limit is not None and value is not None and value >= limit
            if not beyond:
                self._breached.discard(name)
            elif name not in self._breached:  # crossed since the last evaluation
                self._breached.add(name)
                figures: Figures = {figure: value, "limit": limit, "equity": equity}
                if name == "max_drawdown":
                    figures["high_water_mark"] = self._hwm
                else:
                    figures["day_start_equity"] = self._day_start_equity
                events += self.activate_kill_switch(name, "risk", figures)
        self._evaluated_at = self._version
        return events

    # -- risk day ------------------------------------------------------------------------------

    def roll_day_if_due(self) -> list[RiskEvent]:
        """Reset the daily counters when the clock has passed the risk day's boundary.

        Also hands back events still pending from ``check`` (as ``drain_events`` does).

        The risk day is the wall clock's by nature (the calendar's). A day only ever rolls
        forward: after a step back across a boundary (this day began, then the clock went back
        into the one before), reaching that earlier boundary again finds no later day, so the
        day goes on (not rolled twice, nor back) until the clock passes its own end."""
        events = self.drain_events()
        now = self.clock.now()
        if now < self._next_boundary:
            return events
        if self.calendar.risk_day(now) <= self._risk_day:  # ISO dates: ordered as strings
            self._next_boundary = self.calendar.next_boundary(now)
            return events
        previous = self._risk_day
        equity, loss, _ = self._loss_figures()
        figures: Figures = {
            "orders": self._orders_today,
            "day_start_equity": self._day_start_equity,
            "equity": equity,
            "daily_loss": loss,
            "daily_realized_pnl": self._daily_realized,
        }
        self._start_day(now)
        self._day_start_equity = equity
        return [*events, RiskDayRolledOver(previous, self._risk_day, figures, now)]

    def _start_day(self, now: float) -> None:
        self._risk_day = self.calendar.risk_day(now)
        self._next_boundary = self.calendar.next_boundary(now)
        self._orders_today = 0
        self._daily_realized = 0.0
        self._day_start_equity = None
        self._breached.discard("max_daily_loss")
        self._bump()

    # -- persistence ---------------------------------------------------------------------------

    def _bump(self) -> None:
        self._version += 1

    def restore(
        self,
        positions: dict[str, float],
        working: dict[str, tuple[str, float]],
        cash_flow: float | None = None,
    ) -> None:
        """Resume from the journal: net positions, still-working orders and (optionally) the cash
        flow of all fills, which wins over the one in a restored risk state. Without a restored
        risk state the day's start equity (and, without a cash flow, the high-water mark) are
        re-based at the next complete mark."""
        self.book.restore(positions, working, cash_flow)
        self._cash_flow_from_journal = self._cash_flow_from_journal or cash_flow is not None
        if not self._state_restored:
            self._day_start_equity = None
            if cash_flow is None:
                self._hwm = None
        self._bump()

    def adopt(self, positions: dict[str, float], working: dict[str, tuple[str, float]]) -> None:
        """After reconciliation, take the venue's positions and working orders as the truth.

        Each difference is booked at the symbol's last mark, as if traded there, so adopting
        neither makes nor loses equity. Without a mark for a changed symbol, the day's start
        equity and the high-water mark are re-based at the next complete mark instead."""
        rebase = False
        for sym in set(positions) | set(self.book.positions):
            delta = positions.get(sym, 0.0) - self.book.position(sym)
            if is_flat(delta):
                continue
            price = self.book.prices.get(sym)
            if price is None:
                rebase = True
            else:
                self.book.cash_flow -= delta * price
        self.book.restore(positions, working, None)
        if rebase:
            self._day_start_equity = None
            self._hwm = None
            self._breached.clear()
        self._bump()

    # -- status --------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """JSON-safe figures for ``status``."""
        equity, loss, drawdown = self._loss_figures()
        kill = self._kill
        return {
            "trading_state": self.state.value,
            "reconciling": self._reconciling,
            "kill_switch": {
                "active": kill is not None,
                "reason": kill.reason if kill else None,
                "source": kill.source if kill else None,
                "ts": kill.ts if kill else None,
                "figures": dict(kill.figures) if kill else {},
            },
            "equity": equity,
            "daily_pnl": None if loss is None else -loss,
            "daily_realized_pnl": self._daily_realized,
            "daily_loss_limit": self.limits.max_daily_loss,
            "drawdown_pct": drawdown,
            "drawdown_limit_pct": self.limits.max_drawdown_pct,
            "high_water_mark": self._hwm,
            "orders_today": self._orders_today,
            "risk_day": self._risk_day,
            "next_boundary": iso_utc(self._next_boundary),
            "unmarked_symbols": self.book.unmarked(),
            "approved": self.approved,
            "denied": dict(self.denied),
        }
