"""The Binance source end to end against the Binance stand-in (real HTTP and websocket on
loopback): only closed klines, each once, in order, gaps filled over REST."""

from __future__ import annotations

import asyncio

from tests.standins.binance import BinanceStandin
from tests.unit.venues.support import Sink, assert_contiguous, running, stop, until
from tradeplane.config.venues import BinanceFeedConfig
from tradeplane.venues.binance.source import BinanceKlineSource

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def source_for(bn: BinanceStandin) -> BinanceKlineSource:
    cfg = BinanceFeedConfig(rest_url=bn.rest_url, ws_url=bn.ws_url, reconnect_backoff_max_s=0.3)
    return BinanceKlineSource(cfg, SYMBOLS, clock=lambda: bn.now_ms / 1000, receive_timeout_s=1.0)


def test_stream_when_klines_close_then_each_closed_kline_once_in_order() -> None:
    async def main() -> None:
        with BinanceStandin(symbols=SYMBOLS) as bn:
            sink, source = Sink(), source_for(bn)
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))
            for _ in range(3):
                bn.tick()
                bn.advance(1)
            await until(lambda: all(len(sink.of(s)) == 4 for s in SYMBOLS))
            await stop(task)
            for s in SYMBOLS:
                assert_contiguous(sink.of(s))
            assert source.state.connects == 1

    asyncio.run(main())


def test_dropped_or_aged_out_connection_then_gap_backfilled_without_repeats() -> None:
    async def main() -> None:
        with BinanceStandin(symbols=SYMBOLS, max_connection_s=1.5) as bn:
            sink, source = Sink(), source_for(bn)
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))
            bn.refuse_connections(True)
            bn.disconnect_all(abrupt=True)
            await until(lambda: not source.state.connected)
            bn.advance(3)
            bn.refuse_connections(False)
            await until(lambda: all(len(sink.of(s)) == 4 for s in SYMBOLS))
            await until(lambda: source.state.connects >= 3)  # the server's age limit, again
            bn.advance(1)
            await until(lambda: all(len(sink.of(s)) == 5 for s in SYMBOLS))
            await stop(task)
            for s in SYMBOLS:
                assert_contiguous(sink.of(s))

    asyncio.run(main())


def test_silent_server_then_reconnected_and_missed_klines_backfilled() -> None:
    async def main() -> None:
        with BinanceStandin(symbols=SYMBOLS) as bn:
            sink, source = Sink(), source_for(bn)
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))
            bn.set_silent(True)
            bn.advance(2)
            await until(lambda: source.state.disconnects >= 1)
            bn.set_silent(False)
            await until(lambda: all(len(sink.of(s)) == 3 for s in SYMBOLS))
            await stop(task)
            for s in SYMBOLS:
                assert_contiguous(sink.of(s))

    asyncio.run(main())


def test_malformed_messages_and_429_then_rejected_with_reason_and_stream_goes_on() -> None:
    async def main() -> None:
        with BinanceStandin(symbols=SYMBOLS) as bn:
            sink, source = Sink(), source_for(bn)
            bn.rate_limit(1)
            task = await running(source, sink)
            await until(lambda: all(sink.of(s) for s in SYMBOLS))
            bn.send_raw('{"e":"kline","k":{"t":')
            bn.send_raw(
                '{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":0,"T":59999,"s":"BTCUSDT",'
                '"i":"1m","o":"-1","c":"1","h":"1","l":"1","v":"1","x":true}}'
            )
            bn.advance(1)
            await until(lambda: all(len(sink.of(s)) == 2 for s in SYMBOLS))
            await stop(task)
            assert len(sink.rejections) >= 2
            assert all(reason.startswith("binance: ") for reason, _ in sink.rejections)
            assert source.state.rate_limited == 1

    asyncio.run(main())
