"""The OKX source end to end against the OKX stand-in (real HTTP and websocket on loopback):
only closed bars, each once, in order, and gaps filled over REST after a reconnect."""

from __future__ import annotations

import asyncio

from tests.standins.okx import OkxStandin
from tests.unit.venues.support import Sink, assert_contiguous, running, stop, until
from tradeplane.config.venues import OkxFeedConfig
from tradeplane.venues.okx.source import OkxCandleSource

SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def cfg(okx: OkxStandin, **extra: object) -> OkxFeedConfig:
    return OkxFeedConfig(
        rest_url=okx.rest_url,
        ws_url=okx.ws_url,
        ping_interval_s=0.5,
        reconnect_backoff_max_s=0.3,
        poll_interval_s=0.2,
        **extra,  # type: ignore[arg-type]
    )


def source_for(okx: OkxStandin, config: OkxFeedConfig) -> OkxCandleSource:
    """A source on the stand-in's clock (its bars close when the test moves it)."""
    return OkxCandleSource(config, SYMBOLS, clock=lambda: okx.now_ms / 1000)


def test_websocket_minutes_close_then_each_closed_bar_once_in_order_never_the_evolving() -> None:
    async def main() -> None:
        with OkxStandin(symbols=SYMBOLS) as okx:
            sink = Sink()
            source = source_for(okx, cfg(okx))
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))  # the latest closed bar
            for _ in range(3):
                okx.advance(1)
            await until(lambda: all(len(sink.of(s)) == 4 for s in SYMBOLS))
            await stop(task)
            for s in SYMBOLS:
                assert_contiguous(sink.of(s))
                assert sink.of(s)[-1].ts.timestamp() * 1000 < okx.now_ms  # closed, not evolving
            assert source.state.connected and source.state.connects == 1

    asyncio.run(main())


def test_connection_dropped_while_bars_close_then_gap_backfilled_without_repeats() -> None:
    async def main() -> None:
        with OkxStandin(symbols=SYMBOLS) as okx:
            sink = Sink()
            source = source_for(okx, cfg(okx))
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))
            okx.refuse_connections(True)
            okx.disconnect_all(abrupt=True)
            await until(lambda: not source.state.connected)
            okx.advance(3)  # three bars close while we are away
            okx.refuse_connections(False)
            await until(lambda: all(len(sink.of(s)) == 4 for s in SYMBOLS))
            okx.advance(1)
            await until(lambda: all(len(sink.of(s)) == 5 for s in SYMBOLS))
            await stop(task)
            for s in SYMBOLS:
                assert_contiguous(sink.of(s))
            assert source.state.connects >= 2 and source.state.disconnects >= 1
            assert source.state.backfilled_bars >= 6

    asyncio.run(main())


def test_silent_connection_then_pinged_and_missed_bars_filled_before_the_next_push() -> None:
    async def main() -> None:
        with OkxStandin(symbols=SYMBOLS) as okx:
            sink = Sink()
            source = source_for(okx, cfg(okx))
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))
            okx.set_silent(True)
            okx.advance(2)  # pushed to nobody
            await until(lambda: okx.pings >= 1)
            okx.set_silent(False)
            okx.advance(1)
            await until(lambda: all(len(sink.of(s)) == 4 for s in SYMBOLS))
            await stop(task)
            for s in SYMBOLS:
                assert_contiguous(sink.of(s))

    asyncio.run(main())


def test_malformed_pushes_and_rate_limits_then_rejected_and_the_stream_goes_on() -> None:
    async def main() -> None:
        with OkxStandin(symbols=SYMBOLS) as okx:
            sink = Sink()
            source = source_for(okx, cfg(okx))
            okx.rate_limit(1)
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))
            okx.send_raw('{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["x"')
            okx.send_raw(
                '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},'
                '"data":[["1700000000000","NaN","1","1","1","1","1","1","1"]]}'
            )
            okx.advance(1)
            await until(lambda: all(len(sink.of(s)) == 2 for s in SYMBOLS))
            await stop(task)
            assert len(sink.rejections) >= 2
            assert all(reason.startswith("okx: ") for reason, _ in sink.rejections)
            assert source.state.rate_limited == 1

    asyncio.run(main())


def test_rest_polling_then_closed_bars_in_order_and_a_restart_resumes_after_the_last() -> None:
    async def main() -> None:
        with OkxStandin(symbols=SYMBOLS) as okx:
            sink = Sink()
            rest = cfg(okx, transport="rest")
            source = source_for(okx, rest)
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))
            okx.advance(2)
            await until(lambda: all(len(sink.of(s)) == 3 for s in SYMBOLS))
            await stop(task)
            okx.advance(2)
            again = source_for(okx, rest)
            again.resume_after({s: sink.of(s)[-1].ts for s in SYMBOLS})
            task = await running(again, sink)
            await until(lambda: all(len(sink.of(s)) == 5 for s in SYMBOLS))
            await stop(task)
            for s in SYMBOLS:
                assert_contiguous(sink.of(s))

    asyncio.run(main())
