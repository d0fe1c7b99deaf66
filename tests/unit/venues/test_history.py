"""Paced history requests (``venues.history``): spaced, transient failures retried with the
venue's wait or the backoff, final ones ending the fetch; time injected, never slept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from tradeplane.core.retry import Backoff
from tradeplane.venues.history import HistoryError, Paced, missing_after


class Limited(Exception):
    retry_after_s = 7.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    async def sleep(self, s: float) -> None:
        self.slept.append(round(s, 6))
        self.now += s


def paced(clock: Clock, interval_s: float = 1.0, attempts: int = 4) -> Paced:
    return Paced(
        interval_s,
        attempts=attempts,
        backoff=Backoff(0.5, 30.0, jitter=0.0),
        sleep=clock.sleep,
        clock=lambda: clock.now,
    )


def answers(*outcomes: object) -> Callable[[], Awaitable[object]]:
    left = list(outcomes)

    async def request() -> object:
        outcome = left.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return request


def hint(exc: BaseException) -> float | None:
    return exc.retry_after_s if isinstance(exc, Limited) else None


def test_requests_then_spaced_by_the_interval() -> None:
    clock = Clock()
    p = paced(clock)

    async def main() -> list[object]:
        return [await p.call(answers(1), hint), await p.call(answers(2), hint)]

    assert asyncio.run(main()) == [1, 2] and clock.slept == [1.0]


def test_rate_limited_then_waits_the_venues_retry_after_and_retries() -> None:
    clock = Clock()
    p = paced(clock, interval_s=0.0)
    result = asyncio.run(p.call(answers(Limited(), "page"), hint))
    assert result == "page" and clock.slept == [7.0] and p.retries == 1


def test_dropped_connection_then_backoff_doubles() -> None:
    clock = Clock()
    p = paced(clock, interval_s=0.0)
    drop = aiohttp.ClientConnectionError("reset")
    assert asyncio.run(p.call(answers(drop, drop, "page"), hint)) == "page"
    assert clock.slept == [0.5, 1.0]


def test_final_error_then_history_error_at_once() -> None:
    clock = Clock()
    with pytest.raises(HistoryError, match="unknown symbol"):
        asyncio.run(paced(clock).call(answers(ValueError("unknown symbol")), hint))
    assert clock.slept == []


def test_transient_error_every_time_then_gives_up_after_the_attempts() -> None:
    clock = Clock()
    with pytest.raises(HistoryError, match="gave up after 3 attempts"):
        asyncio.run(paced(clock, 0.0, attempts=3).call(answers(*[Limited()] * 3), hint))


T = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
M = timedelta(minutes=1)


def test_missing_after_then_the_stretch_before_the_first_kept_bar() -> None:
    assert missing_after(T, [T + 5 * M, T + 6 * M], T + 9 * M, M) == (T + M, T + 5 * M)
    assert missing_after(T, [T + M], T + 9 * M, M) is None  # kept from the very next bar
    assert missing_after(T, [], T + 9 * M, M) == (T + M, T + 9 * M)  # nothing kept


def test_okx_source_history_then_closed_bars_of_the_stretch_from_rest() -> None:
    from tests.standins.okx import OkxStandin
    from tradeplane.config.venues import OkxFeedConfig
    from tradeplane.venues.okx.source import OkxCandleSource

    with OkxStandin(("BTC-USDT",)) as okx:
        source = OkxCandleSource(OkxFeedConfig(rest_url=okx.rest_url), ["BTC-USDT"])
        end = datetime(2024, 6, 1, tzinfo=UTC) + 3 * M  # past the stand-in's open minute
        start = end - 200 * M
        bars = asyncio.run(source.history("BTC-USDT", start, end))
    assert [b.ts for b in bars] == [start + i * M for i in range(197)]


def test_binance_source_history_then_closed_klines_of_the_stretch_from_rest() -> None:
    from tests.standins.binance import BinanceStandin
    from tradeplane.config.venues import BinanceFeedConfig
    from tradeplane.venues.binance.source import BinanceKlineSource

    with BinanceStandin(("BTCUSDT",)) as bn:
        source = BinanceKlineSource(BinanceFeedConfig(rest_url=bn.rest_url), ["BTCUSDT"])
        now = datetime(2024, 1, 1, tzinfo=UTC)
        bars = asyncio.run(source.history("BTCUSDT", now - 30 * M, now + 5 * M))
    assert [b.ts for b in bars] == [now - 30 * M + i * M for i in range(30)]
