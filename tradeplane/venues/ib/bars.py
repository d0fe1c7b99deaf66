"""1-minute stock bars from IB: TWS's 5-second real-time bars folded into minutes (pure), and
the feed source that subscribes to them and backfills missed minutes with historical bars.

A minute is closed when its last 5-second bar (the one starting at :55) arrives, or when a bar of
a later minute arrives first, or 10 s after its end by TWS's clock (a 5-second bar was missed:
the minute closes with what it has).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tenacity import RetryCallState

from tradeplane.config.venues import IbConfig
from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.model import Bar
from tradeplane.core.retry import Backoff, failure, retrying
from tradeplane.venues.ib.core import Link
from tradeplane.venues.source import BarSink, Rejected, SourceState

log = logging.getLogger("tradeplane.venues.ib")
MINUTE = timedelta(minutes=1)
LAST_SLOT_S = 55
# How long past its end a minute waits for a missed :55 bar before closing without it.
LAST_BAR_GRACE = timedelta(seconds=10)
# A minute's row reaches IB's history a moment after the minute ends: ask no sooner.
HISTORY_SETTLE = timedelta(seconds=2)
# IB counts an identical historical request within 15 s as a pacing violation (error 162).
HISTORY_RETRY = timedelta(seconds=15)


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
    """Per symbol, 5-second bars in, closed 1-minute bars out (each minute once, in order)."""

    def __init__(self) -> None:
        self._open: dict[str, _Minute] = {}
        self._last_closed: dict[str, datetime] = {}
        # Symbols whose minute closed without its start: that minute must come from history,
        # and the live minutes after it wait (held) until it has.
        self.from_history: set[str] = set()
        self._held: dict[str, list[Bar]] = {}
        self._needed: dict[str, datetime] = {}  # the latest minute history must bring
        self._ask_at: dict[str, datetime] = {}  # when history may be asked (TWS time)

    def seed(self, symbol: str, last_closed: datetime) -> None:
        self._last_closed[symbol] = last_closed

    def last(self, symbol: str) -> datetime | None:
        return self._last_closed.get(symbol)

    def add(
        self, symbol: str, ts: datetime, o: float, h: float, lo: float, c: float, v: float
    ) -> list[Bar]:
        """One 5-second bar (``ts`` its start, UTC); returns the minutes it closed. Raises
        ``InvalidMarketData`` for a bar that cannot be one (the caller journals it)."""
        Bar(symbol, ts, o, h, lo, c, max(0.0, v))  # the same checks as every bar
        start = ts.astimezone(UTC).replace(second=0, microsecond=0)
        last = self._last_closed.get(symbol)
        if last is not None and start <= last:
            return []  # a minute already passed on (a replay after resubscribing)
        out: list[Bar] = []
        current = self._open.get(symbol)
        if current is not None and current.start < start:
            out += self._close(symbol, current)
            current = None
        if current is None:
            partial = ts.astimezone(UTC).second != 0
            current = _Minute(start, o, h, lo, c, max(0.0, v), partial)
            self._open[symbol] = current
        else:
            current.high = max(current.high, h)
            current.low = min(current.low, lo)
            current.close = c
            current.volume += max(0.0, v)
        if ts.astimezone(UTC).second >= LAST_SLOT_S:
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
        """The symbols whose missing minute history should have by ``now`` (TWS time) and that
        were not asked too recently."""
        return {s for s in self.from_history if self._ask_at.get(s, now) <= now}

    def accept_closed(
        self, symbol: str, bars: Iterable[Bar], now: datetime | None = None
    ) -> tuple[list[Bar], list[Bar]]:
        """Whole minutes of ``symbol`` from history: those after the last one passed on and
        before the live minutes held back for them (none after a fresh start: no history is
        replayed into strategies). Returns them and the held live minutes, to pass on in
        that order; each minute once.

        History that does not reach the minute a late join left out yet (asked a moment too
        soon) is not taken as proof the minute is gone: what it has before that minute is
        passed on, the live minutes stay held, and history is asked again at ``now`` +
        ``HISTORY_RETRY``. A later minute in history with that one absent means it had no
        trades: then it is skipped."""
        rows = [bar for bar in bars if bar.symbol == symbol]
        held = self._held.pop(symbol, [])
        last = self._last_closed.get(symbol)
        needed = self._needed.get(symbol)
        newest = max((bar.ts for bar in rows), default=None)
        waiting = last is not None and needed is not None and (newest is None or newest < needed)
        until = needed if waiting else held[0].ts if held else None
        history: dict[datetime, Bar] = {}
        if last is not None:
            for bar in rows:
                if bar.ts > last and (until is None or bar.ts < until):
                    history[bar.ts] = bar
        filled = [history[ts] for ts in sorted(history)]
        if waiting:
            if held:
                self._held[symbol] = held
            if filled:
                self._last_closed[symbol] = filled[-1].ts
            if now is not None:
                self._ask_at[symbol] = now + HISTORY_RETRY
            return filled, []
        self.from_history.discard(symbol)
        self._needed.pop(symbol, None)
        self._ask_at.pop(symbol, None)
        out = filled + held
        if out:
            self._last_closed[symbol] = out[-1].ts
            pending = self._open.get(symbol)
            if pending is not None and pending.start <= out[-1].ts:
                del self._open[symbol]
        return filled, held

    def _close(self, symbol: str, minute: _Minute) -> list[Bar]:
        self._open.pop(symbol, None)
        if minute.partial:  # never passed on as if whole: its source asks history for it
            self.from_history.add(symbol)
            self._needed[symbol] = max(self._needed.get(symbol, minute.start), minute.start)
            self._ask_at.setdefault(symbol, minute.start + MINUTE + HISTORY_SETTLE)
            return []
        bar = minute.bar(symbol)
        if symbol in self.from_history:  # history's minutes come first: hold this one
            self._held.setdefault(symbol, []).append(bar)
            return []
        self._last_closed[symbol] = minute.start
        return [bar]


class IbBarSource:
    """The feed's source for ``venue.kind = "ib"``: its own API connection (client id + 1, so
    it never collides with the broker's), real-time bars per symbol, and historical 1-minute
    bars to fill what a reconnect or a 1101 (data lost) left out."""

    def __init__(self, cfg: IbConfig, session: Any | None = None) -> None:
        from tradeplane.venues.ib.session import IbSession

        feed_cfg = cfg.model_copy(update={"client_id": cfg.client_id + 1})
        self.cfg = cfg
        self.session = session or IbSession(feed_cfg)
        self.ib = self.session.ib
        self.symbols = list(cfg.symbols)
        self.minutes = MinuteAggregator()
        self.state = SourceState(extra={"venue": "ib", "transport": "realtime bars"})
        self._subscriptions: list[Any] = []
        # Closed minutes and bad bars, from TWS's callbacks to the loop that hands them on.
        self._queue: asyncio.Queue[list[Bar] | Rejected] = asyncio.Queue()
        self._tws_offset = timedelta(0)  # TWS's clock minus ours, as last asked

    def _tws_now(self) -> datetime:
        return datetime.now(UTC) + self._tws_offset

    async def _sync_clock(self) -> datetime:
        now: datetime = await self.ib.reqCurrentTimeAsync()
        self._tws_offset = now - datetime.now(UTC)
        return now

    def resume_after(self, last: dict[str, datetime]) -> None:
        for symbol, ts in last.items():
            self.minutes.seed(symbol, ts)

    async def run(self, sink: BarSink) -> None:
        while True:  # a fresh backoff once a session ended without an error
            # Every failure here is a reason to reconnect.
            reconnecting = retrying(Backoff(0.5, 30.0), on=(Exception,), before_sleep=self._lost)
            await reconnecting(self._connected_session, sink)

    def _lost(self, retry_state: RetryCallState) -> None:
        exc = failure(retry_state)
        self.state.lost(f"{type(exc).__name__}: {exc}", log)
        with contextlib.suppress(Exception):
            self.session.disconnect()

    async def _connected_session(self, sink: BarSink) -> None:
        import ib_async

        await self.session.connect()
        await self._sync_clock()
        self.state.up()
        self.minutes.drop_open()  # what the last connection was building lost its tail
        contracts = []
        for symbol in self.symbols:
            (contract,) = await self.ib.qualifyContractsAsync(
                ib_async.Stock(symbol, "SMART", "USD")
            )
            contracts.append(contract)
        await self._backfill(sink, contracts)
        self._subscribe(contracts)
        while self.ib.isConnected():
            # Bars stop when the market closes: a hung TWS must not wait for the open to be
            # found. Raises (and the run loop reconnects) when TWS does not answer.
            await self.session.heartbeat_if_due()
            if self.session.link.state is Link.RESYNCING:  # TWS back after 1101/1102
                self.minutes.drop_open()
                if self.session.link.needs_resubscribe:
                    self._subscribe(contracts)
                await self._backfill(sink, contracts)
                self.session.link.resynced()
            due = self.minutes.history_due(self._tws_now())
            if due:  # a minute joined late: take it whole from history
                await self._backfill(sink, [c for c in contracts if c.symbol in due])
            try:
                async with asyncio.timeout(1.0):
                    item = await self._queue.get()
            except TimeoutError:
                item = self.minutes.close_due(self._tws_now() - LAST_BAR_GRACE)
            if isinstance(item, Rejected):
                await self.state.reject(sink, item.reason, item.raw)
            elif item:
                await sink.bars(item)
        raise ConnectionError("TWS closed the connection")

    def _subscribe(self, contracts: list[Any]) -> None:
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                self.ib.cancelRealTimeBars(sub)
        self._subscriptions = []
        for contract in contracts:
            bars = self.ib.reqRealTimeBars(contract, 5, "TRADES", True)  # regular hours: XNYS
            bars.updateEvent += self._on_realtime
            self._subscriptions.append(bars)

    def _on_realtime(self, bars: Any, has_new_bar: bool) -> None:
        if not has_new_bar or not bars or self.session.link.state is not Link.UP:
            return  # while TWS is away or resyncing, history fills those minutes
        rt = bars[-1]
        symbol = bars.contract.symbol
        try:
            closed = self.minutes.add(
                symbol,
                rt.time,
                float(rt.open_),
                float(rt.high),
                float(rt.low),
                float(rt.close),
                float(rt.volume),
            )
        except (InvalidMarketData, TypeError, ValueError) as exc:
            raw = (
                f"{symbol} {rt.time} o={rt.open_} h={rt.high} l={rt.low} c={rt.close} v={rt.volume}"
            )
            self._queue.put_nowait(Rejected(f"bad real-time bar: {exc}", raw))
            return
        if closed:
            self._queue.put_nowait(closed)

    async def _backfill(self, sink: BarSink, contracts: list[Any]) -> None:
        """Historical 1-minute bars after the last minute passed on, then any live minutes
        held back for them."""
        for contract in contracts:
            symbol = contract.symbol
            history = [] if self.minutes.last(symbol) is None else await self._history(contract)
            filled, held = self.minutes.accept_closed(symbol, history, self._tws_now())
            self.state.backfilled_bars += len(filled)
            if filled or held:
                await sink.bars(filled + held)

    async def _history(self, contract: Any) -> list[Bar]:
        rows = await self.ib.reqHistoricalDataAsync(
            contract, "", "1 D", "1 min", "TRADES", True, formatDate=2
        )
        # TWS's clock, not ours: the last row is the minute still forming until it ends.
        now = await self._sync_clock()
        bars = []
        for r in rows or []:
            ts = r.date if isinstance(r.date, datetime) else None
            if ts is None or ts + MINUTE > now:
                continue  # not a closed minute
            with contextlib.suppress(InvalidMarketData, TypeError, ValueError):
                bars.append(
                    Bar(
                        contract.symbol,
                        ts.astimezone(UTC),
                        r.open,
                        r.high,
                        r.low,
                        r.close,
                        max(0.0, float(r.volume)),
                    )
                )
        return bars
