"""The feed's source for ``venue.kind = "ib"``: TWS's 5-second real-time bars per symbol, folded
into 1-minute bars and joined with historical 1-minute bars for the minutes the live stream
left out (``minutes.MinuteAggregator``: the pure part). Everything it passes on, live or from
history, goes through one queue in the order the aggregator let it out, so a backfill never
overtakes a live minute closed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tenacity import RetryCallState

from tradeplane.config.venues import IbConfig
from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.model import Bar
from tradeplane.core.retry import Backoff, failure, retrying
from tradeplane.venues.ib.core import Link
from tradeplane.venues.ib.minutes import (
    LAST_BAR_GRACE,
    MINUTE,
    MinuteAggregator,
    Missing,
)
from tradeplane.venues.source import BarSink, Rejected, SourceState

__all__ = ["IbBarSource", "MinuteAggregator"]

log = logging.getLogger("tradeplane.venues.ib")


@dataclass(frozen=True)
class _Gap:
    """Minutes reported missing: journaled through the sink with why (``minutes_missing`` in
    the source's state counts them, apart from bad messages)."""

    missing: Missing


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
        self.state = SourceState(
            extra={"venue": "ib", "transport": "realtime bars", "minutes_missing": 0}
        )
        # What goes to the sink, in the order the aggregator let it out: minutes closed live
        # (from TWS's callbacks), backfills, bad bars, gaps. An item leaves once the sink took
        # it: one cut short (a cancelled run, a failing sink) goes again, never skipped.
        self._outbound: deque[list[Bar] | Rejected | _Gap] = deque()
        self._posted = asyncio.Event()
        # TWS's clock as last asked, and our monotonic reading then: TWS's time now is that
        # plus what passed on the monotonic clock, so a step of this host's wall clock does
        # not move it (minutes closed early, or held an hour: a silent feed). Until asked: ours.
        self._tws_synced: tuple[datetime, float] | None = None
        self._subscriptions: list[Any] = []

    def _tws_now(self) -> datetime:
        """TWS's clock: ours corrected by the last answer, and never behind its newest bar."""
        if self._tws_synced is None:
            now = datetime.now(UTC)
        else:
            at, mono = self._tws_synced
            now = at + timedelta(seconds=time.monotonic() - mono)
        bars = self.minutes.market_time
        return now if bars is None else max(now, bars)

    def _post(self, item: list[Bar] | Rejected | _Gap) -> None:
        if item:
            self._outbound.append(item)
            self._posted.set()

    async def _deliver(self, sink: BarSink) -> None:
        while self._outbound:
            item = self._outbound[0]
            if isinstance(item, _Gap):
                log.warning("ib: %s", item.missing.describe())
                with contextlib.suppress(Exception):
                    await sink.rejected(f"ib: {item.missing.describe()}", "")
            elif isinstance(item, Rejected):
                await self.state.reject(sink, item.reason, item.raw)
            else:
                await sink.bars(item)
            self._outbound.popleft()

    async def _sync_clock(self) -> datetime:
        now: datetime = await self.ib.reqCurrentTimeAsync()
        self._tws_synced = (now, time.monotonic())
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
            if due:  # minutes live left out: take them whole from history
                await self._backfill(sink, [c for c in contracts if c.symbol in due])
            self._post(self.minutes.close_due(self._tws_now() - LAST_BAR_GRACE))
            await self._deliver(sink)
            self._posted.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._posted.wait()
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
            self._post(Rejected(f"bad real-time bar: {exc}", raw))
            return
        self._post(closed)

    async def _backfill(self, sink: BarSink, contracts: list[Any]) -> None:
        """Historical 1-minute bars after the last minute passed on, joined with the live
        minutes held back for them; queued behind what live closed before them."""
        for contract in contracts:
            symbol = contract.symbol
            history = [] if self.minutes.last(symbol) is None else await self._history(contract)
            joined = self.minutes.accept_closed(symbol, history, self._tws_now())
            self.state.backfilled_bars += joined.backfilled
            for gap in joined.missing:
                self.state.extra["minutes_missing"] += gap.minutes
                self._post(_Gap(gap))
            self._post(joined.bars)
        await self._deliver(sink)

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
