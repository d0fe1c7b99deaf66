"""OKX history for ``tradeplane bars fetch``: ``GET /api/v5/market/history-candles`` (1-minute
bars, at most 100 a request), paged forward through fixed windows so each page is complete and
memory stays one page: ``before`` (open time newer than) and ``after`` (older than) bound a
window of 100 minutes. Only confirmed (closed) bars; a malformed row ends the fetch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial

import aiohttp

from tradeplane.core.model import Bar
from tradeplane.venues.history import HistoryError, Paced
from tradeplane.venues.okx.candles import (
    MINUTE_MS,
    OkxError,
    OkxRateLimited,
    datetime_to_ms,
    parse_rest_candles,
)

HISTORY_CANDLES_PATH = "/api/v5/market/history-candles"
HISTORY_PAGE = 100
# OKX allows 20 requests per 2 s on this endpoint; stay well below.
MIN_INTERVAL_S = 0.15


def history_candles_path(inst_id: str, *, newer_than_ms: int, older_than_ms: int) -> str:
    return (
        f"{HISTORY_CANDLES_PATH}?instId={inst_id}&bar=1m&limit={HISTORY_PAGE}"
        f"&before={newer_than_ms}&after={older_than_ms}"
    )


def _retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, OkxRateLimited):
        return exc.retry_after_s
    if isinstance(exc, OkxError) and exc.code in ("http", "parse") and " 5" in exc.msg[:8]:
        return 0.0  # HTTP 5xx (a body that is not OKX's JSON): the venue is briefly away
    return None


async def okx_history(
    http: aiohttp.ClientSession,
    rest_url: str,
    symbol: str,
    start: datetime,
    end: datetime,
    paced: Paced,
) -> AsyncIterator[list[Bar]]:
    """Closed 1-minute bars of ``symbol`` opening in ``[start, end)``, a page at a time, oldest
    first."""
    cursor = -(-datetime_to_ms(start) // MINUTE_MS) * MINUTE_MS  # the first minute in range
    end_ms = datetime_to_ms(end)
    base = rest_url.rstrip("/")
    while cursor < end_ms:
        window_end = min(end_ms, cursor + HISTORY_PAGE * MINUTE_MS)
        url = base + history_candles_path(
            symbol, newer_than_ms=cursor - 1, older_than_ms=window_end
        )
        bars = await paced.call(partial(_page, http, url, symbol), _retry_after)
        yield [b for b in bars if cursor <= datetime_to_ms(b.ts) < window_end]
        cursor = window_end


async def _page(http: aiohttp.ClientSession, url: str, symbol: str) -> list[Bar]:
    async with http.get(url) as resp:
        status, body, retry = resp.status, await resp.read(), resp.headers.get("Retry-After")
    batch = parse_rest_candles(symbol, status, body, retry)
    if batch.rejected:
        first = batch.rejected[0]
        raise HistoryError(f"OKX sent a malformed {symbol} row: {first.reason}: {first.raw}")
    return batch.bars
