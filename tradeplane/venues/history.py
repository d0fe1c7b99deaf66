"""Downloading a venue's bar history (``tradeplane bars fetch``): paced, retried, checked.

Each venue's adapter yields pages of closed bars, oldest first; ``Paced`` spaces its requests
(``min_interval_s``, below the venue's published request limit) and retries the transient
failures the adapter names (rate limits, with the venue's ``Retry-After`` when it gives one;
5xx; a dropped connection) with the adapters' ``Backoff``; ``HistoryError`` ends a fetch the
venue refused for good (an unknown symbol, a malformed row: never skipped in silence).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import aiohttp

from tradeplane.core.errors import OperationalError
from tradeplane.core.model import Bar
from tradeplane.core.retry import Backoff

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class HistoryError(OperationalError):
    """The venue's history cannot be fetched as asked (the reason says why)."""


class Paced:
    """One request at a time, at most one per ``min_interval_s``, each retried up to
    ``attempts`` times while ``retry_after`` names its failure transient."""

    def __init__(
        self,
        min_interval_s: float,
        *,
        attempts: int = 8,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_interval_s, self.attempts = min_interval_s, attempts
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.sleep, self.clock = sleep, clock
        self._last: float | None = None
        self.requests = 0
        self.retries = 0

    async def call(
        self,
        request: Callable[[], Awaitable[T]],
        retry_after: Callable[[BaseException], float | None],
    ) -> T:
        """``request()``'s answer. ``retry_after(exc)``: None when ``exc`` is final, else the
        least wait the venue asked for (0 when it named none) before the backoff's own."""
        for attempt in range(1, self.attempts + 1):
            if self._last is not None:
                wait = self._last + self.min_interval_s - self.clock()
                if wait > 0:
                    await self.sleep(wait)
            self._last = self.clock()
            self.requests += 1
            try:
                answer = await request()
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure: BaseException = exc
                hint: float | None = 0.0
            except HistoryError:
                raise
            except Exception as exc:
                failure, hint = exc, retry_after(exc)
                if hint is None:
                    raise HistoryError(str(exc)) from exc
            else:
                self.backoff.reset()
                return answer
            if attempt == self.attempts:
                raise HistoryError(f"gave up after {attempt} attempts: {failure}") from failure
            self.retries += 1
            await self.sleep(max(hint or 0.0, self.backoff.next()))
        raise AssertionError("unreachable")


def missing_after(
    since: datetime, kept: Sequence[datetime], now: datetime, step: timedelta
) -> tuple[datetime, datetime] | None:
    """The open times after ``since`` that the bars ``kept`` (oldest first) do not reach back
    to: ``[since + step, kept[0])``, or up to ``now`` when none are kept; None when nothing is
    missing before them."""
    start = since + step
    end = kept[0] if kept else now
    return (start, end) if start < end else None


async def collect(pages: AsyncIterator[list[Bar]]) -> list[Bar]:
    return [bar async for page in pages for bar in page]
