"""Binance 1-minute klines for the feed: the kline websocket stream, with REST backfill after
every (re)connect and whenever a closed kline arrives after a gap.

Only closed klines leave (``k.x`` true), each once and in time order per symbol. Protocol pings
are answered by the client library; a connection is replaced before Binance's 24 h limit, and
429/418 answers are waited out (``Retry-After``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import aiohttp

from tradeplane.config.venues import BinanceFeedConfig
from tradeplane.core.model import Bar
from tradeplane.venues.binance.klines import (
    MINUTE_MS,
    BinanceError,
    BinanceRateLimited,
    ClosedKlineTracker,
    KlineUpdate,
    Malformed,
    WsError,
    klines_path,
    open_ms_of,
    parse_rest_klines,
    parse_ws_message,
    should_reconnect,
    stream_path,
)
from tradeplane.venues.source import (
    Backoff,
    BarSink,
    SourceState,
    frame_text,
    keep_connected,
    pass_on,
)

log = logging.getLogger("tradeplane.venues.binance")
PAGE = 1000
RECEIVE_TIMEOUT_S = 60.0  # Binance pings every 20 s: a full minute of nothing is a dead link


class BinanceKlineSource:
    def __init__(
        self,
        cfg: BinanceFeedConfig,
        symbols: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
        receive_timeout_s: float = RECEIVE_TIMEOUT_S,
    ) -> None:
        self.cfg = cfg
        self.symbols = [s.upper() for s in symbols]
        self.clock = clock
        self.receive_timeout_s = receive_timeout_s
        self.state = SourceState(extra={"venue": "binance", "transport": "websocket"})
        self.tracker = ClosedKlineTracker()
        self._http: aiohttp.ClientSession | None = None

    async def history(self, symbol: str, start: datetime, end: datetime) -> list[Bar]:
        """Closed klines of ``symbol`` opening in ``[start, end)`` over REST (what the feed no
        longer keeps, for the recorded bars after a restart)."""
        from tradeplane.venues.binance.history import MIN_INTERVAL_S, binance_history
        from tradeplane.venues.history import Paced, collect

        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            pages = binance_history(
                http, self.cfg.rest_url, symbol.upper(), start, end, Paced(MIN_INTERVAL_S)
            )
            return await collect(pages)

    def resume_after(self, last: dict[str, datetime]) -> None:
        """Bars up to these open times were already delivered (the feed restarted)."""
        seed = {s.upper(): int(ts.timestamp() * 1000) for s, ts in last.items()}
        self.tracker = ClosedKlineTracker(seed)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def run(self, sink: BarSink) -> None:
        backoff = Backoff(0.5, self.cfg.reconnect_backoff_max_s)
        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            await keep_connected(
                lambda: self._stream(http, sink, backoff),
                self.state,
                backoff,
                log,
                rate_limited=BinanceRateLimited,
                describe_limit=lambda exc: (
                    f"{'banned' if exc.banned else 'rate limited'} ({exc.status})"
                ),
                errors=(aiohttp.ClientError, BinanceError, TimeoutError, ConnectionError),
            )

    async def _stream(self, http: aiohttp.ClientSession, sink: BarSink, backoff: Backoff) -> None:
        url = self.cfg.ws_url + stream_path(self.symbols)
        async with http.ws_connect(url, autoping=True, heartbeat=None) as ws:
            connected_at = self._now_ms()
            self.state.up()
            await self._backfill(http, sink)
            backoff.reset()
            while True:
                if should_reconnect(connected_at, self._now_ms()):
                    log.info("binance: replacing the connection before the 24 h limit")
                    return  # the caller's loop connects again (and backfills)
                try:
                    async with asyncio.timeout(self.receive_timeout_s):
                        msg = await ws.receive()
                except TimeoutError:
                    raise ConnectionError("nothing received, not even a ping") from None
                text = await frame_text(ws, msg, self.state, sink)
                if text is not None:
                    await self._on_text(http, sink, text)

    async def _on_text(self, http: aiohttp.ClientSession, sink: BarSink, text: str) -> None:
        parsed = parse_ws_message(text)
        if isinstance(parsed, KlineUpdate):
            if parsed.bar is None:
                return  # an update of the open kline: not a bar yet
            last = self.tracker.last(parsed.symbol)
            if last is not None and parsed.open_ms > last + MINUTE_MS:
                await self._backfill(http, sink)  # a kline went missing: fill it first
            await pass_on(self.tracker, sink, self.state, [parsed.bar], pushed=True)
        elif isinstance(parsed, WsError):
            raise BinanceError(0, parsed.code, parsed.msg)
        elif isinstance(parsed, Malformed):
            await self.state.reject(sink, parsed.reason, parsed.raw)

    async def _backfill(self, http: aiohttp.ClientSession, sink: BarSink) -> None:
        """Closed klines newer than the last delivered one per symbol; with none delivered yet,
        only the latest closed one (a fresh start does not replay history)."""
        now_ms = self._now_ms()
        for symbol in self.symbols:
            last = self.tracker.last(symbol)
            start = None if last is None else last + MINUTE_MS
            url = self.cfg.rest_url + klines_path(
                symbol, limit=PAGE if start else 2, start_ms=start
            )
            async with http.get(url) as resp:
                body = await resp.read()
                batch = parse_rest_klines(
                    symbol,
                    resp.status,
                    body,
                    now_ms=now_ms,
                    retry_after=resp.headers.get("Retry-After"),
                )
            for r in batch.rejected:
                await self.state.reject(sink, r.reason, r.raw)
            bars = batch.bars if last is not None else batch.bars[-1:]
            fresh = [b for b in bars if last is None or open_ms_of(b) > last]
            if fresh:
                self.state.backfilled_bars += len(fresh)
                await pass_on(self.tracker, sink, self.state, fresh, pushed=False)
