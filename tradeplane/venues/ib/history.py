"""IB history for ``tradeplane bars fetch ib``: ``reqHistoricalData`` through ib_async on a
read-only API connection, 1-minute TRADES bars of regular hours, a day (``86400 S``) per request,
paged forward so each window is written before the next is asked for.

Closed means closed by TWS's clock (``reqCurrentTime``): the minute still forming is left out.
IB paces historical requests (at most 60 in any 10 minutes; an identical one within 15 s is a
violation, error 162): requests are spaced ``MIN_INTERVAL_S`` apart and a pacing violation or a
timeout is retried with the adapters' backoff; a refused contract (error 200) ends the fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.model import Bar
from tradeplane.venues.history import HistoryError, Paced

WINDOW = timedelta(days=1)
MINUTE = timedelta(minutes=1)
MIN_INTERVAL_S = 10.0  # 60 requests in 10 minutes
PACING_VIOLATION = 162
RETRYABLE = frozenset({PACING_VIOLATION, 366, 1100})  # paced, no data yet, link down
REQUEST_TIMEOUT_S = 60.0


class IbHistoryRetry(Exception):
    """TWS answered a historical request with a transient error: ask again."""


def _retry_after(exc: BaseException) -> float | None:
    return 15.0 if isinstance(exc, IbHistoryRetry) else None


def _end_text(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


async def ib_history(
    ib: Any, symbol: str, start: datetime, end: datetime, paced: Paced
) -> AsyncIterator[list[Bar]]:
    """Closed 1-minute bars of the US stock ``symbol`` (SMART, USD) opening in ``[start, end)``,
    a day at a time, oldest first. ``ib``: a connected ``ib_async.IB``."""
    import ib_async

    qualified = await ib.qualifyContractsAsync(ib_async.Stock(symbol, "SMART", "USD"))
    if not qualified or qualified[0] is None:
        raise HistoryError(f"IB does not know the US stock {symbol!r}")
    contract = qualified[0]
    now: datetime = await ib.reqCurrentTimeAsync()
    end = min(end, now.astimezone(UTC).replace(second=0, microsecond=0))
    cursor = start
    while cursor < end:
        window_end = min(end, cursor + WINDOW)
        seconds = int((window_end - cursor).total_seconds())
        rows = await paced.call(partial(_request, ib, contract, window_end, seconds), _retry_after)
        bars = []
        for r in rows:
            ts = r.date if isinstance(r.date, datetime) else None
            if ts is None:
                raise HistoryError(f"IB sent a {symbol} bar with no time: {r!r}")
            ts = ts.astimezone(UTC)
            if not cursor <= ts < window_end or ts + MINUTE > now:
                continue
            try:
                bars.append(
                    Bar(symbol, ts, r.open, r.high, r.low, r.close, max(0.0, float(r.volume)))
                )
            except (InvalidMarketData, TypeError, ValueError) as exc:
                raise HistoryError(f"IB sent a malformed {symbol} bar: {exc}") from None
        bars.sort(key=lambda b: b.ts)
        yield bars
        cursor = window_end


async def _request(ib: Any, contract: Any, end: datetime, seconds: int) -> list[Any]:
    errors: list[tuple[int, str]] = []

    def on_error(req_id: int, code: int, message: str, *_: Any) -> None:
        if not 2100 <= code < 2200:  # the farm notices are not about this request
            errors.append((code, message))

    ib.errorEvent += on_error
    try:
        # Our own timeout: ib_async's answers a timeout with an empty list, a day "without
        # bars" that would be skipped in silence.
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            rows = await ib.reqHistoricalDataAsync(
                contract, _end_text(end), f"{seconds} S", "1 min", "TRADES", True,
                formatDate=2, timeout=0,
            )  # fmt: skip
    except TimeoutError:
        raise IbHistoryRetry("IB historical request timed out") from None
    finally:
        ib.errorEvent -= on_error
    for code, message in errors:
        if code in RETRYABLE:
            raise IbHistoryRetry(f"IB error {code}: {message}")
        raise HistoryError(f"IB error {code}: {message}")
    return list(rows or [])
