"""Binance history for ``tradeplane bars fetch``: ``GET /api/v3/klines`` (1-minute klines, at
most 1000 a request) paged forward by ``startTime``. Closed means closed by the venue's clock
(``GET /api/v3/time``, asked once): the fetch stops before the minute still forming. A malformed
row ends the fetch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial

import aiohttp

from tradeplane.core.model import Bar
from tradeplane.venues.binance.klines import (
    MAX_LIMIT,
    BinanceError,
    BinanceRateLimited,
    klines_path,
    open_ms_of,
    parse_rest_klines,
)
from tradeplane.venues.history import HistoryError, Paced

MINUTE_MS = 60_000
TIME_PATH = "/api/v3/time"
# Klines cost weight 2 of 6000 a minute; ten requests a second stays far below.
MIN_INTERVAL_S = 0.1


def _retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, BinanceRateLimited):
        return exc.retry_after_s
    if isinstance(exc, BinanceError) and exc.status >= 500:
        return 0.0
    return None


async def server_time_ms(http: aiohttp.ClientSession, base: str, paced: Paced) -> int:
    async def ask() -> int:
        async with http.get(base + TIME_PATH) as resp:
            status, body = resp.status, await resp.read()
        if status != 200:
            raise BinanceError(status, None, body[:200].decode("utf-8", "replace"))
        try:
            return int(json.loads(body)["serverTime"])
        except (ValueError, KeyError, TypeError):
            raise HistoryError(f"Binance server time unreadable: {body[:200]!r}") from None

    return await paced.call(ask, _retry_after)


async def binance_history(
    http: aiohttp.ClientSession,
    rest_url: str,
    symbol: str,
    start: datetime,
    end: datetime,
    paced: Paced,
) -> AsyncIterator[list[Bar]]:
    """Closed 1-minute bars of ``symbol`` opening in ``[start, end)``, a page at a time, oldest
    first."""
    base = rest_url.rstrip("/")
    now_ms = await server_time_ms(http, base, paced)
    # The minute now forming and after it are not closed: never asked for.
    end_ms = min(int(end.timestamp() * 1000), now_ms - now_ms % MINUTE_MS)
    cursor = -(-int(start.timestamp() * 1000) // MINUTE_MS) * MINUTE_MS
    while cursor < end_ms:
        url = base + klines_path(symbol, limit=MAX_LIMIT, start_ms=cursor, end_ms=end_ms - 1)
        bars = await paced.call(partial(_page, http, url, symbol, now_ms), _retry_after)
        bars = [b for b in bars if cursor <= open_ms_of(b) < end_ms]
        if not bars:
            return  # nothing more in range (before the listing, or the range is done)
        yield bars
        cursor = open_ms_of(bars[-1]) + MINUTE_MS


async def _page(http: aiohttp.ClientSession, url: str, symbol: str, now_ms: int) -> list[Bar]:
    async with http.get(url) as resp:
        status, body, retry = resp.status, await resp.read(), resp.headers.get("Retry-After")
    batch = parse_rest_klines(symbol, status, body, now_ms=now_ms, retry_after=retry)
    if batch.rejected:
        first = batch.rejected[0]
        raise HistoryError(f"Binance sent a malformed {symbol} row: {first.reason}: {first.raw}")
    return batch.bars
