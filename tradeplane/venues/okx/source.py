"""OKX 1-minute candles for the feed: websocket pushes (business endpoint) with REST backfill
after every (re)connect, or REST polling.

Only closed bars leave (``confirm == "1"``, or an evolving bar once a newer one is pushed), each
once and in time order per symbol. Rate limits (code 50011, HTTP 429) back off; a dropped or
silent connection is replaced with backoff, and the gap it left is filled over REST.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import aiohttp

from tradeplane.config.venues import OkxFeedConfig
from tradeplane.core.model import Bar
from tradeplane.venues.okx.candles import (
    PING,
    CandleBatch,
    CandlePush,
    ClosedBarTracker,
    EvolvingBars,
    Malformed,
    OkxError,
    OkxRateLimited,
    Pong,
    WsError,
    candles_path,
    parse_rest_candles,
    parse_ws_message,
    subscribe_message,
)
from tradeplane.venues.source import (
    Backoff,
    BarSink,
    SourceState,
    frame_text,
    keep_connected,
    pass_on,
)

log = logging.getLogger("tradeplane.venues.okx")
PAGE = 300
MAX_BACKFILL_PAGES = 5  # OKX keeps 1,440 1-minute bars on this endpoint
PONG_WAIT_S = 5.0
MINUTE = timedelta(minutes=1)


class OkxCandleSource:
    def __init__(
        self,
        cfg: OkxFeedConfig,
        symbols: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.symbols = list(symbols)
        self.clock = clock
        self.state = SourceState(extra={"venue": "okx", "transport": cfg.transport})
        self.tracker = ClosedBarTracker()
        self.evolving = EvolvingBars()
        self._ids = itertools.count(1)
        self._http: aiohttp.ClientSession | None = None

    async def history(self, symbol: str, start: datetime, end: datetime) -> list[Bar]:
        """Closed bars of ``symbol`` opening in ``[start, end)`` from OKX's history endpoint
        (what the feed no longer keeps, for the recorded bars after a restart)."""
        from tradeplane.venues.history import Paced, collect
        from tradeplane.venues.okx.history import MIN_INTERVAL_S, okx_history

        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            pages = okx_history(http, self.cfg.rest_url, symbol, start, end, Paced(MIN_INTERVAL_S))
            return await collect(pages)

    def resume_after(self, last: dict[str, datetime]) -> None:
        """Bars up to these open times were already delivered (the feed restarted)."""
        for symbol, ts in last.items():
            self.tracker.seed(symbol, ts)

    async def run(self, sink: BarSink) -> None:
        backoff = Backoff(0.5, self.cfg.reconnect_backoff_max_s)
        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            attempt = self._poll if self.cfg.transport == "rest" else self._stream
            await keep_connected(
                lambda: attempt(http, sink, backoff),
                self.state,
                backoff,
                log,
                rate_limited=OkxRateLimited,
                describe_limit=lambda exc: f"rate limited ({exc.code})",
                errors=(aiohttp.ClientError, OkxError, TimeoutError, ConnectionError),
            )

    def _skips_ahead(self, bars: list[Bar]) -> bool:
        for bar in bars:
            last = self.tracker.last(bar.symbol)
            if last is not None and bar.ts > last + MINUTE:
                return True
        return False

    # -- websocket -----------------------------------------------------------------------------

    async def _stream(self, http: aiohttp.ClientSession, sink: BarSink, backoff: Backoff) -> None:
        async with http.ws_connect(self.cfg.ws_url, autoping=True, heartbeat=None) as ws:
            await ws.send_str(subscribe_message(self.symbols, str(next(self._ids))))
            self.state.up()
            # Whatever closed while we were away comes over REST, before any push is passed on.
            await self._backfill(http, sink)
            backoff.reset()
            awaiting_pong = False
            while True:
                try:
                    async with asyncio.timeout(
                        PONG_WAIT_S if awaiting_pong else self.cfg.ping_interval_s
                    ):
                        msg = await ws.receive()
                except TimeoutError:
                    if awaiting_pong:
                        raise ConnectionError("no pong: connection silent") from None
                    await ws.send_str(PING)
                    awaiting_pong = True
                    continue
                awaiting_pong = False
                text = await frame_text(ws, msg, self.state, sink)
                if text is not None:
                    await self._on_text(sink, text)

    async def _on_text(self, sink: BarSink, text: str) -> None:
        parsed = parse_ws_message(text)
        if isinstance(parsed, CandlePush):
            implied = self.evolving.on_push(parsed.batch)
            if self._http is not None and self._skips_ahead([*implied, *parsed.batch.bars]):
                # A bar went missing (a quiet spell on a live connection): fill it first.
                await self._backfill(self._http, sink)
            for r in parsed.batch.rejected:
                await self.state.reject(sink, r.reason, r.raw)
            await pass_on(self.tracker, sink, self.state, implied, pushed=False)
            await pass_on(self.tracker, sink, self.state, parsed.batch.bars, pushed=True)
        elif isinstance(parsed, WsError):
            raise OkxError(parsed.code, parsed.msg)
        elif isinstance(parsed, Malformed):
            await self.state.reject(sink, parsed.reason, parsed.raw)
        elif isinstance(parsed, Pong):
            return

    # -- REST ------------------------------------------------------------------------------------

    async def _poll(self, http: aiohttp.ClientSession, sink: BarSink, backoff: Backoff) -> None:
        while True:
            await self._backfill(http, sink, first_poll=not self.state.connected)
            if not self.state.connected:
                self.state.up()
            backoff.reset()
            await asyncio.sleep(self.cfg.poll_interval_s)

    async def _backfill(
        self, http: aiohttp.ClientSession, sink: BarSink, *, first_poll: bool = False
    ) -> None:
        """Closed bars newer than the last delivered one, per symbol, over REST (paged back
        through the 1,440 bars OKX keeps). With nothing delivered yet, only the latest closed
        bar: a fresh start does not replay history into the strategies."""
        now_ms = int(self.clock() * 1000)
        for symbol in self.symbols:
            last = self.tracker.last(symbol)
            batches: list[CandleBatch] = []
            after: int | None = None
            for _ in range(MAX_BACKFILL_PAGES):
                batch = await self._get(http, symbol, after)
                batches.append(batch)
                oldest = min((b.ts for b in batch.bars), default=None)
                if last is None or oldest is None or oldest <= last or len(batch.bars) < PAGE - 1:
                    break
                after = int(oldest.timestamp() * 1000)
            bars = sorted({b.ts: b for batch in batches for b in batch.bars}.values(), key=_ts)
            if last is None:
                bars = bars[-1:]
            fresh = [b for b in bars if last is None or b.ts > last]
            for batch in batches:
                for r in batch.rejected:
                    await self.state.reject(sink, r.reason, r.raw)
            if fresh:
                self.state.backfilled_bars += 0 if first_poll else len(fresh)
                await pass_on(self.tracker, sink, self.state, fresh, pushed=False)
        self.state.extra["last_poll_ms"] = now_ms

    async def _get(
        self, http: aiohttp.ClientSession, symbol: str, after: int | None
    ) -> CandleBatch:
        url = self.cfg.rest_url + candles_path(symbol, limit=PAGE, after_ms=after)
        async with http.get(url) as resp:
            body = await resp.read()
            return parse_rest_candles(symbol, resp.status, body, resp.headers.get("Retry-After"))

    # -- delivery ----------------------------------------------------------------------------------


def _ts(bar: Bar) -> datetime:
    return bar.ts
