"""The risk core's persisted state: a snapshot, its JSON-safe form, and a strict parser.

``parse_state`` raises ``ValueError`` naming the bad field, so a corrupt or foreign record stops
the risk actor (fail closed) instead of silently resetting daily loss or the kill switch.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradeplane.core.risk_book import Book
from tradeplane.core.risk_checks import RATE_WINDOW_S, DupKey
from tradeplane.core.risk_types import (
    Figures,
    KillSwitchPolicy,
    RiskDayRolledOver,
    RiskEvent,
    RiskLimits,
    TradingState,
)

if TYPE_CHECKING:
    from tradeplane.core.clock import Clock
    from tradeplane.core.session import SessionCalendar

STATE_VERSION = 1

_TOP_KEYS = frozenset(
    {
        "version",
        "trading_state",
        "kill_switch",
        "risk_day",
        "day_start_equity",
        "orders_today",
        "daily_realized_pnl",
        "high_water_mark",
        "cash_flow",
        "approvals",
        "duplicates",
        "venue_rejections",
        "breached_limits",
    }
)
LOSS_LIMITS = frozenset({"max_daily_loss", "max_drawdown"})
_KILL_KEYS = frozenset({"active", "reason", "source", "ts", "figures"})
_DUP_KEYS = frozenset({"strategy", "symbol", "side", "quantity", "order_type", "limit_price", "ts"})


@dataclass(frozen=True, slots=True)
class KillRecord:
    reason: str
    source: str
    ts: float
    figures: Figures = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    trading_state: TradingState
    kill: KillRecord | None
    risk_day: str
    day_start_equity: float | None
    orders_today: int
    daily_realized_pnl: float
    high_water_mark: float | None
    cash_flow: float
    approvals: tuple[float, ...]
    duplicates: tuple[tuple[DupKey, float], ...]
    venue_rejections: tuple[float, ...]
    breached: tuple[str, ...] = ()
    """Loss limits already beyond their limit: remembered so that an operator's clear is not
    undone by the first mark after a restart (only a new crossing trips again)."""


def state_to_dict(s: RiskSnapshot) -> dict[str, Any]:
    kill = s.kill
    return {
        "version": STATE_VERSION,
        "trading_state": s.trading_state.value,
        "kill_switch": {
            "active": kill is not None,
            "reason": kill.reason if kill else None,
            "source": kill.source if kill else None,
            "ts": kill.ts if kill else None,
            "figures": dict(kill.figures) if kill else {},
        },
        "risk_day": s.risk_day,
        "day_start_equity": s.day_start_equity,
        "orders_today": s.orders_today,
        "daily_realized_pnl": s.daily_realized_pnl,
        "high_water_mark": s.high_water_mark,
        "cash_flow": s.cash_flow,
        "approvals": list(s.approvals),
        "duplicates": [
            {
                "strategy": k[0],
                "symbol": k[1],
                "side": k[2],
                "quantity": k[3],
                "order_type": k[4],
                "limit_price": k[5],
                "ts": ts,
            }
            for k, ts in s.duplicates
        ],
        "venue_rejections": list(s.venue_rejections),
        "breached_limits": sorted(s.breached),
    }


def _fail(name: str, why: str) -> ValueError:
    return ValueError(f"risk state field {name!r}: {why}")


def _keys(d: Any, name: str, expected: frozenset[str]) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise _fail(name, f"must be an object, got {type(d).__name__}")
    missing = sorted(expected - d.keys())
    if missing:
        raise _fail(f"{name}.{missing[0]}" if name else missing[0], "missing")
    extra = sorted(set(d) - expected)
    if extra:
        raise _fail(f"{name}.{extra[0]}" if name else extra[0], "unknown field")
    return d


def _num(v: Any, name: str, *, optional: bool = False) -> float | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _fail(name, f"must be a number, got {type(v).__name__}")
    if not math.isfinite(v):
        raise _fail(name, f"must be finite, got {v}")
    return float(v)


def _req(v: Any, name: str) -> float:
    out = _num(v, name)
    assert out is not None
    return out


def _str(v: Any, name: str) -> str:
    if not isinstance(v, str) or not v:
        raise _fail(name, "must be a non-empty string")
    return v


def _times(v: Any, name: str) -> tuple[float, ...]:
    if not isinstance(v, list):
        raise _fail(name, f"must be a list, got {type(v).__name__}")
    return tuple(sorted(_req(t, f"{name}[{i}]") for i, t in enumerate(v)))


def _figures(v: Any, name: str) -> Figures:
    if not isinstance(v, dict):
        raise _fail(name, f"must be an object, got {type(v).__name__}")
    out: Figures = {}
    for k, x in v.items():
        if not isinstance(k, str):
            raise _fail(name, "keys must be strings")
        out[k] = x if x is None or isinstance(x, str) else _num(x, f"{name}.{k}")
    return out


def _kill(v: Any) -> KillRecord | None:
    d = _keys(v, "kill_switch", _KILL_KEYS)
    if not isinstance(d["active"], bool):
        raise _fail("kill_switch.active", "must be true or false")
    figures = _figures(d["figures"], "kill_switch.figures")
    if not d["active"]:
        return None
    return KillRecord(
        reason=_str(d["reason"], "kill_switch.reason"),
        source=_str(d["source"], "kill_switch.source"),
        ts=_req(d["ts"], "kill_switch.ts"),
        figures=figures,
    )


def _duplicates(v: Any) -> tuple[tuple[DupKey, float], ...]:
    if not isinstance(v, list):
        raise _fail("duplicates", f"must be a list, got {type(v).__name__}")
    out: list[tuple[DupKey, float]] = []
    for i, item in enumerate(v):
        n = f"duplicates[{i}]"
        d = _keys(item, n, _DUP_KEYS)
        key: DupKey = (
            _str(d["strategy"], f"{n}.strategy"),
            _str(d["symbol"], f"{n}.symbol"),
            _str(d["side"], f"{n}.side"),
            _req(d["quantity"], f"{n}.quantity"),
            _str(d["order_type"], f"{n}.order_type"),
            _num(d["limit_price"], f"{n}.limit_price", optional=True),
        )
        out.append((key, _req(d["ts"], f"{n}.ts")))
    return tuple(out)


def _breached(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or any(x not in LOSS_LIMITS for x in v):
        raise _fail("breached_limits", f"must be a list drawn from {sorted(LOSS_LIMITS)}")
    return tuple(sorted(set(v)))


def parse_state(data: Any) -> RiskSnapshot:
    """Validate an ``export_state()`` dict strictly; ``ValueError`` names the first bad field."""
    d = _keys(data, "", _TOP_KEYS)
    if d["version"] != STATE_VERSION or isinstance(d["version"], bool):
        raise _fail("version", f"unsupported version {d['version']!r}, expected {STATE_VERSION}")
    try:
        trading_state = TradingState(d["trading_state"])
    except ValueError:
        raise _fail("trading_state", f"unknown state {d['trading_state']!r}") from None
    kill = _kill(d["kill_switch"])
    if (kill is None) != (trading_state is TradingState.ACTIVE):
        raise _fail(
            "trading_state",
            f"{trading_state.value!r} contradicts kill_switch.active={kill is not None}",
        )
    orders = d["orders_today"]
    if isinstance(orders, bool) or not isinstance(orders, int) or orders < 0:
        raise _fail("orders_today", f"must be an integer >= 0, got {orders!r}")
    return RiskSnapshot(
        trading_state=trading_state,
        kill=kill,
        risk_day=_str(d["risk_day"], "risk_day"),
        day_start_equity=_num(d["day_start_equity"], "day_start_equity", optional=True),
        orders_today=orders,
        daily_realized_pnl=_req(d["daily_realized_pnl"], "daily_realized_pnl"),
        high_water_mark=_num(d["high_water_mark"], "high_water_mark", optional=True),
        cash_flow=_req(d["cash_flow"], "cash_flow"),
        approvals=_times(d["approvals"], "approvals"),
        duplicates=_duplicates(d["duplicates"]),
        venue_rejections=_times(d["venue_rejections"], "venue_rejections"),
        breached=_breached(d["breached_limits"]),
    )


class PersistentRiskState:
    """Mixin of ``RiskEngine``: export and restore of the state that must survive a restart."""

    limits: RiskLimits
    policy: KillSwitchPolicy
    clock: Clock
    calendar: SessionCalendar
    book: Book
    state: TradingState
    _kill: KillRecord | None
    _risk_day: str
    _day_start_equity: float | None
    _daily_realized: float
    _orders_today: int
    _hwm: float | None
    _approvals: deque[float]
    _duplicates: dict[DupKey, float]
    _rejections: deque[float]
    _breached: set[str]
    _state_restored: bool
    _cash_flow_from_journal: bool

    def _bump(self) -> None:
        raise NotImplementedError

    def _start_day(self, now: float) -> None:
        raise NotImplementedError

    def _prune_approvals(self, now: float) -> None:
        raise NotImplementedError

    def _prune_duplicates(self, now: float) -> None:
        raise NotImplementedError

    def export_state(self) -> dict[str, Any]:
        """JSON-safe state for the journal; ``restore_state`` takes it back. The pace windows,
        kept on the monotonic clock, are written as wall times (a restarted process has another
        monotonic clock)."""
        mono = self.clock.monotonic()
        self._prune_approvals(mono)
        self._prune_duplicates(mono)
        window = self.policy.venue_rejection_window_s
        wall = self.clock.now() - mono  # + a monotonic reading: its wall time
        return state_to_dict(
            RiskSnapshot(
                trading_state=self.state,
                kill=self._kill,
                risk_day=self._risk_day,
                day_start_equity=self._day_start_equity,
                orders_today=self._orders_today,
                daily_realized_pnl=self._daily_realized,
                high_water_mark=self._hwm,
                cash_flow=self.book.cash_flow,
                approvals=tuple(wall + t for t in self._approvals),
                duplicates=tuple((k, wall + t) for k, t in self._duplicates.items()),
                venue_rejections=tuple(wall + t for t in self._rejections if t > mono - window),
                breached=tuple(sorted(self._breached)),
            )
        )

    def restore_state(self, data: Any) -> list[RiskEvent]:
        """Take back ``export_state()``; ``ValueError`` names a bad field (nothing is changed).

        Returns a ``RiskDayRolledOver`` when the saved risk day is over: its daily counters are
        then dropped and the day's start equity is taken at the next complete mark."""
        snap = parse_state(data)
        now = self.clock.now()
        self._kill = snap.kill
        self.state = TradingState.ACTIVE
        if snap.kill is not None:  # the stricter of the saved state and today's policy
            halted = TradingState.HALTED in (snap.trading_state, self.policy.tripped_state)
            self.state = TradingState.HALTED if halted else TradingState.REDUCING
        self._hwm = snap.high_water_mark
        if not self._cash_flow_from_journal:  # the journal's fills are the record
            self.book.cash_flow = snap.cash_flow
        ages = _Ages(now, self.clock.monotonic())
        self._approvals = deque(sorted(ages.within(snap.approvals, RATE_WINDOW_S)))
        window = self.limits.duplicate_order_window_s or 0.0
        self._duplicates = {k: ages.mono(ts) for k, ts in snap.duplicates if ages.age(ts) < window}
        rej_window = self.policy.venue_rejection_window_s
        self._rejections = deque(sorted(ages.within(snap.venue_rejections, rej_window)))
        self._state_restored = True
        self._start_day(now)
        if snap.risk_day > self._risk_day:
            # The clock is behind the record (stepped back across a boundary since it was
            # saved): the saved day goes on, never rolled back (``roll_day_if_due``).
            self._risk_day = snap.risk_day
        # A new day's loss starts from zero; drawdown carries over.
        self._breached = set(snap.breached) - (
            set() if snap.risk_day == self._risk_day else {"max_daily_loss"}
        )
        if snap.risk_day == self._risk_day:
            self._orders_today = snap.orders_today
            self._daily_realized = snap.daily_realized_pnl
            self._day_start_equity = snap.day_start_equity
            return []
        figures: Figures = {
            "orders": snap.orders_today,
            "day_start_equity": snap.day_start_equity,
            "daily_realized_pnl": snap.daily_realized_pnl,
        }
        return [RiskDayRolledOver(snap.risk_day, self._risk_day, figures, now)]

    def restore_order_history(self, approved_ts: list[float]) -> None:
        """Merge approval times recovered from the journal into the rate windows and today's
        count. Idempotent: union of timestamps (the same wall time taken onto the monotonic
        clock twice differs by the jitter between the two clocks' readings: within a
        microsecond it is the same approval), max of counts."""
        times = set()
        for i, t in enumerate(approved_ts):
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
                raise ValueError(f"approved_ts[{i}] must be a finite number, got {t!r}")
            times.add(float(t))
        ages = _Ages(self.clock.now(), self.clock.monotonic())
        known = sorted(self._approvals)
        merged = sorted(
            [*known, *(t for t in ages.within(times, RATE_WINDOW_S) if not _near(known, t))]
        )
        today = sum(1 for t in times if self.calendar.risk_day(t) == self._risk_day)
        if merged != list(self._approvals) or today > self._orders_today:
            self._approvals = deque(merged)
            self._orders_today = max(self._orders_today, today)
            self._bump()


def _near(ordered: list[float], t: float, tolerance_s: float = 1e-6) -> bool:
    i = bisect.bisect_left(ordered, t - tolerance_s)
    return i < len(ordered) and ordered[i] <= t + tolerance_s


@dataclass(frozen=True, slots=True)
class _Ages:
    """Wall times from the record (a pace window's) judged now and taken onto the monotonic
    clock the windows are kept on. A time in the future (the wall clock stepped back since, or
    another node's clock ahead) is taken as just now: it counts in its window for the window's
    length, never for as long as the clock is behind."""

    wall: float
    monotonic: float

    def age(self, ts: float) -> float:
        return max(0.0, self.wall - ts)

    def mono(self, ts: float) -> float:
        return self.monotonic - self.age(ts)

    def within(self, times: Any, window_s: float) -> list[float]:
        return [self.mono(t) for t in times if self.age(t) < window_s]
