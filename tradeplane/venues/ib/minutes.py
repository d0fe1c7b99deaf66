"""IB's 1-minute bars joined from two streams (pure, no IO, TWS time passed in): TWS's 5-second
real-time bars folded into minutes, and historical 1-minute bars for what the live stream left
out.

A minute is closed when its last 5-second bar (the one starting at :55) arrives, or when a bar of
a later minute arrives first, or 10 s after its end by TWS's clock (a 5-second bar was missed:
the minute closes with what it has).

Each minute is passed on once, in order, and none is passed over unseen. A live minute is whole
only when its :00 bar was seen. One that is not (joined or resumed mid-minute), and a whole one
that comes after a hole (minutes the live stream never showed: an outage, a resubscription, a
backfill answered just before a minute ended), make the symbol wait for history: the live
minutes after the hole are held until history has settled every minute before them. History
settles a minute by having it, or by having a later one without it (no trades). History that
still falls short after ``HISTORY_ASKS`` answers is given up on: the minutes it could not give
are reported (``Missing``), never skipped silently, and the held live minutes go on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tradeplane.core.model import Bar

MINUTE = timedelta(minutes=1)
FIVE_S = timedelta(seconds=5)
LAST_SLOT_S = 55
# How long past its end a minute waits for a missed :55 bar before closing without it.
LAST_BAR_GRACE = timedelta(seconds=10)
# A minute's row reaches IB's history a moment after the minute ends: ask no sooner.
HISTORY_SETTLE = timedelta(seconds=2)
# IB counts an identical historical request within 15 s as a pacing violation (error 162), and
# every request of ours for a symbol is identical: never two for one symbol closer than this.
HISTORY_RETRY = timedelta(seconds=15)
# Answers short of the minute history must bring before it is given up on (about a minute).
HISTORY_ASKS = 4


@dataclass(frozen=True)
class Missing:
    """Minutes ``first``..``last`` of ``symbol`` that neither live bars nor history could give."""

    symbol: str
    first: datetime
    last: datetime
    why: str

    @property
    def minutes(self) -> int:
        return int((self.last - self.first) / MINUTE) + 1

    def describe(self) -> str:
        span = f"{self.first:%Y-%m-%d %H:%M}"
        if self.last != self.first:
            span += f"..{self.last:%H:%M}"
        return f"{self.symbol} minute bars {span} UTC missing ({self.why}): passed over"


@dataclass
class Joined:
    """What an answer from history lets through: minutes to pass on, in order."""

    bars: list[Bar] = field(default_factory=list)
    backfilled: int = 0  # how many of ``bars`` came from history (the rest were held live)
    missing: list[Missing] = field(default_factory=list)


@dataclass
class _Minute:
    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    partial: bool  # its first 5-second bar was not the :00 one (subscribed or resumed late)

    def bar(self, symbol: str) -> Bar:
        return Bar(symbol, self.start, self.open, self.high, self.low, self.close, self.volume)


class MinuteAggregator:
    """Per symbol: 5-second bars and history answers in, closed 1-minute bars out, each minute
    once and in order across both (the caller passes them on in the order they come out)."""

    def __init__(self) -> None:
        self._open: dict[str, _Minute] = {}
        # The newest minute settled: passed on, or known to have no bar (history skipped it,
        # or it was given up on and reported).
        self._last_closed: dict[str, datetime] = {}
        # Symbols waiting for history: a minute up to ``_needed`` is not settled yet, and the
        # live minutes after it are held until it is.
        self.from_history: set[str] = set()
        self._held: dict[str, list[Bar]] = {}
        self._needed: dict[str, datetime] = {}
        self._traded: dict[str, set[datetime]] = {}  # partial minutes live saw trades in
        self._ask_at: dict[str, datetime] = {}  # when history should have the needed minute
        self._not_before: dict[str, datetime] = {}  # IB's 15 s rule, from the last ask
        self._short: dict[str, int] = {}  # answers that fell short of the needed minute
        # TWS's clock as its bars tell it: the end of the newest 5-second bar.
        self.market_time: datetime | None = None

    def seed(self, symbol: str, last_closed: datetime) -> None:
        self._last_closed[symbol] = last_closed

    def last(self, symbol: str) -> datetime | None:
        return self._last_closed.get(symbol)

    def _frontier(self, symbol: str) -> datetime | None:
        """The newest minute already passed on, held, or left to history."""
        held = self._held.get(symbol)
        known = [
            self._last_closed.get(symbol),
            self._needed.get(symbol),
            held[-1].ts if held else None,
        ]
        return max((t for t in known if t is not None), default=None)

    def add(
        self, symbol: str, ts: datetime, o: float, h: float, lo: float, c: float, v: float
    ) -> list[Bar]:
        """One 5-second bar (``ts`` its start, UTC); returns the minutes it closed. Raises
        ``InvalidMarketData`` for a bar that cannot be one (the caller journals it)."""
        Bar(symbol, ts, o, h, lo, c, max(0.0, v))  # the same checks as every bar
        ts = ts.astimezone(UTC)
        start = ts.replace(second=0, microsecond=0)
        if self.market_time is None or ts + FIVE_S > self.market_time:
            self.market_time = ts + FIVE_S
        frontier = self._frontier(symbol)
        if frontier is not None and start <= frontier:
            return []  # a minute passed on, held or left to history (a replay, say)
        out: list[Bar] = []
        current = self._open.get(symbol)
        if current is not None and start < current.start:
            return []  # late: its minute was left behind when a later one began
        if current is not None and current.start < start:
            out += self._close(symbol, current)
            current = None
        if current is None:
            current = _Minute(start, o, h, lo, c, max(0.0, v), partial=ts.second != 0)
            self._open[symbol] = current
        else:
            current.high = max(current.high, h)
            current.low = min(current.low, lo)
            current.close = c
            current.volume += max(0.0, v)
        if ts.second >= LAST_SLOT_S:
            out += self._close(symbol, current)
        return out

    def drop_open(self) -> None:
        """Forget the minutes being built: an outage cut them, history rebuilds them whole."""
        self._open.clear()

    def close_due(self, cutoff: datetime) -> list[Bar]:
        """Minutes that ended at or before ``cutoff`` and still wait for their :55 bar: it was
        missed and no later bar came (the session's last minute), so they close as they are."""
        due = [(s, m) for s, m in self._open.items() if m.start + MINUTE <= cutoff]
        return [bar for s, m in due for bar in self._close(s, m)]

    def history_due(self, now: datetime) -> set[str]:
        """The symbols whose missing minutes history should have by ``now`` (TWS time) and that
        were not asked too recently."""
        return {
            s
            for s in self.from_history
            if max(self._ask_at.get(s, now), self._not_before.get(s, now)) <= now
        }

    def accept_closed(
        self, symbol: str, bars: Iterable[Bar], now: datetime | None = None
    ) -> Joined:
        """An answer from history for ``symbol`` (asked at about ``now``, TWS time): the minutes
        it settles after the last one passed on, with the live minutes held for them, in order
        (a live minute wins over history's copy of it). None after a fresh start: no history is
        replayed into strategies. History never takes the minute live is building.

        History short of the minute it must bring (asked a moment too soon, or its answer lost)
        settles what it has; the rest waits and history is asked again after ``HISTORY_RETRY``,
        up to ``HISTORY_ASKS`` answers: then those minutes are reported missing and passed over.
        """
        if now is not None:
            self._not_before[symbol] = now + HISTORY_RETRY
        held = self._held.pop(symbol, [])
        last = self._last_closed.get(symbol)
        if last is None:  # a fresh start
            self._settle(symbol, held, None)
            return Joined(held)
        building = self._open.get(symbol)
        rows = {
            bar.ts: bar
            for bar in bars
            if bar.symbol == symbol
            and bar.ts > last
            and (building is None or bar.ts < building.start)
        }
        newest = max(rows, default=None)
        needed = self._needed.get(symbol)
        if needed is None or (newest is not None and newest >= needed):
            joined = self._merge(rows, held, None)
            joined.missing = self._not_in_history(symbol, last, needed, joined.bars)
            self._settle(symbol, joined.bars, needed)
            return joined
        # Short of the needed minute: what history has is settled, the rest waits.
        self._short[symbol] = self._short.get(symbol, 0) + 1
        joined = Joined()
        waiting = held
        if newest is not None:
            joined = self._merge(rows, held, newest)
            joined.missing = self._not_in_history(symbol, last, newest, joined.bars)
            waiting = [b for b in held if b.ts > newest]
            self._last_closed[symbol] = newest
        if self._short[symbol] < HISTORY_ASKS:
            if waiting:
                self._held[symbol] = waiting
            if now is not None:
                self._ask_at[symbol] = now + HISTORY_RETRY
            return joined
        # Given up: the minutes history could not give are reported, the live ones go on.
        live = {b.ts for b in waiting}
        gone = [t for t in _minutes_after(newest or last, needed) if t not in live]
        joined.missing += _runs(symbol, gone, f"not in IB's history after {HISTORY_ASKS} asks")
        joined.bars += waiting
        self._settle(symbol, joined.bars, needed)
        return joined

    def _merge(self, rows: dict[datetime, Bar], held: list[Bar], upto: datetime | None) -> Joined:
        """History's rows and the held live minutes up to ``upto`` (None: all), in order."""
        live = {b.ts: b for b in held if upto is None or b.ts <= upto}
        history = [b for ts, b in rows.items() if ts not in live and (upto is None or ts <= upto)]
        merged = sorted([*history, *live.values()], key=lambda b: b.ts)
        return Joined(merged, len(history))

    def _not_in_history(
        self, symbol: str, after: datetime, upto: datetime | None, passed: list[Bar]
    ) -> list[Missing]:
        """Minutes after ``after`` up to ``upto`` that live saw trades in and that history,
        which settled them, does not have (each reported once)."""
        traded = self._traded.get(symbol)
        if upto is None or not traded:
            return []
        have = {b.ts for b in passed}
        settled = {t for t in traded if after < t <= upto}
        traded -= settled
        return _runs(symbol, sorted(settled - have), "traded live but not in IB's history")

    def _settle(self, symbol: str, passed: list[Bar], needed: datetime | None) -> None:
        """Everything up to ``needed`` and the minutes ``passed`` on is settled."""
        known = [self._last_closed.get(symbol), needed, passed[-1].ts if passed else None]
        newest = max((t for t in known if t is not None), default=None)
        if newest is not None:
            self._last_closed[symbol] = newest
            pending = self._open.get(symbol)
            if pending is not None and pending.start <= newest:
                del self._open[symbol]
        self.from_history.discard(symbol)
        for waits in (self._needed, self._ask_at, self._short, self._traded):
            waits.pop(symbol, None)

    def _close(self, symbol: str, minute: _Minute) -> list[Bar]:
        self._open.pop(symbol, None)
        if minute.partial:  # never passed on as if whole: history gives it
            if minute.volume > 0:
                self._traded.setdefault(symbol, set()).add(minute.start)
            self._await_history(symbol, minute.start)
            return []
        frontier = self._frontier(symbol)
        if frontier is not None and minute.start > frontier + MINUTE:
            self._await_history(symbol, minute.start - MINUTE)  # the hole before it
        bar = minute.bar(symbol)
        if symbol in self.from_history:  # history's minutes come first: hold this one
            self._held.setdefault(symbol, []).append(bar)
            return []
        self._last_closed[symbol] = minute.start
        return [bar]

    def _await_history(self, symbol: str, minute: datetime) -> None:
        """Nothing after ``minute`` is passed on before history has settled it."""
        self.from_history.add(symbol)
        self._needed[symbol] = max(self._needed.get(symbol, minute), minute)
        self._ask_at.setdefault(symbol, minute + MINUTE + HISTORY_SETTLE)


def _minutes_after(first: datetime, last: datetime) -> list[datetime]:
    """The minutes after ``first`` up to ``last``."""
    n = int((last - first) / MINUTE)
    return [first + MINUTE * k for k in range(1, n + 1)]


def _runs(symbol: str, minutes: list[datetime], why: str) -> list[Missing]:
    """Consecutive minutes grouped into one report each."""
    out: list[Missing] = []
    for t in sorted(minutes):
        if out and out[-1].last + MINUTE == t:
            out[-1] = Missing(symbol, out[-1].first, t, why)
        else:
            out.append(Missing(symbol, t, t, why))
    return out
