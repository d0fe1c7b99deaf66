"""Property: whatever malformed message a venue pushes (truncated JSON, wrong types, NaN or
negative prices, high below low, times out of order), the running source rejects it with a
reason and goes on: the connection is not dropped for it, no bad bar is passed on, and the next
closed bar still arrives, once and in order. A repeat of the last bar (what a backfill
overlapping the stream gives) is dropped and counted, not reported. Real sources on real
websockets (the stand-ins)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.standins.binance import BinanceStandin
from tests.standins.okx import OkxStandin
from tests.unit.venues.support import Sink, assert_contiguous, running, stop, until
from tradeplane.config.venues import BinanceFeedConfig, OkxFeedConfig
from tradeplane.venues.binance.source import BinanceKlineSource
from tradeplane.venues.okx.source import OkxCandleSource

MINUTE_MS = 60_000
BAD_PRICES = ["NaN", "nan", "Infinity", "-inf", "-1", "-0.01", "0", "", "abc", "1e999"]
WRONG_TYPES: list[Any] = [None, True, [], {}, {"x": 1}, [1, 2], "twelve"]
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow],
)

# A malformed message is made from the last good bar's open time (ms): the text to push.
Maker = Callable[[int], str]


def okx_push(row: list[Any]) -> str:
    return json.dumps({"arg": {"channel": "candle1m", "instId": "BTC-USDT"}, "data": [row]})


def okx_row(ts_ms: int, **prices: Any) -> list[Any]:
    p = {"o": "100", "h": "101", "l": "99", "c": "100.5", **prices}
    return [str(ts_ms), p["o"], p["h"], p["l"], p["c"], "1", "100", "100", "1"]


def binance_push(ts_ms: int, **fields: Any) -> str:
    k = {
        "t": ts_ms,
        "T": ts_ms + MINUTE_MS - 1,
        "s": "BTCUSDT",
        "i": "1m",
        "o": "100",
        "c": "100.5",
        "h": "101",
        "l": "99",
        "v": "1",
        "x": True,
        **fields,
    }
    return json.dumps({"e": "kline", "E": ts_ms + MINUTE_MS, "s": "BTCUSDT", "k": k})


def malformed(push: Callable[..., str], prices: tuple[str, ...], time_key: str) -> Any:
    """Messages each of which must be rejected, given how ``push`` builds a good one."""

    def truncated(cut: float) -> Maker:
        def make(last: int) -> str:
            good = push(last + MINUTE_MS)
            return good[: max(1, min(len(good) - 1, int(len(good) * cut)))]

        return make

    def bad_price(field: str, value: str) -> Maker:
        return lambda last: push(last + MINUTE_MS, **{field: value})

    def wrong_type(field: str, value: Any) -> Maker:
        return lambda last: push(last + MINUTE_MS, **{field: value})

    def stale(minutes_back: int) -> Maker:
        return lambda last: push(last - minutes_back * MINUTE_MS)

    def repeat(last: int) -> str:  # the last bar again: what a backfill overlap looks like
        return push(last)

    def inverted(last: int) -> str:  # high below low
        return push(last + MINUTE_MS, **{prices[1]: "90", prices[2]: "110"})

    return st.one_of(
        st.floats(0.05, 0.95).map(truncated),
        st.builds(bad_price, st.sampled_from(prices), st.sampled_from(BAD_PRICES)),
        st.builds(wrong_type, st.sampled_from((*prices, time_key)), st.sampled_from(WRONG_TYPES)),
        st.integers(1, 30).map(stale),
        st.just(inverted),
        st.just(repeat),
    )


def okx_with(ts_ms: int, **fields: Any) -> str:
    row = okx_row(ts_ms, **{k: v for k, v in fields.items() if k != "ts"})
    if "ts" in fields:
        row[0] = fields["ts"]
    return okx_push(row)


OKX_MESSAGES = malformed(okx_with, ("o", "h", "l", "c"), "ts")
BINANCE_MESSAGES = malformed(binance_push, ("o", "h", "l", "c"), "t")


def check_rejected_and_stream_goes_on(
    standin: Any, source: Any, makers: list[Maker], advance: Callable[[], None]
) -> None:
    async def main() -> None:
        sink = Sink()
        task = await running(source, sink)
        await until(lambda: sink.got)  # the latest closed bar
        last = int(sink.got[-1].ts.timestamp() * 1000)
        repeats = sum(1 for make in makers if make.__name__ == "repeat")
        for make in makers:
            standin.send_raw(make(last))
        await until(lambda: len(sink.rejections) >= len(makers) - repeats)
        advance()
        await until(lambda: len(sink.got) == 2)
        await stop(task)
        assert source.state.connects == 1, "a malformed message cost the connection"
        assert len(sink.rejections) == len(makers) - repeats, sink.rejections
        assert source.state.repeated_bars == repeats  # dropped quietly, never passed on
        assert all(reason and raw is not None for reason, raw in sink.rejections)
        assert_contiguous(sink.got)
        for bar in sink.got:
            prices = (bar.open, bar.high, bar.low, bar.close)
            assert all(math.isfinite(p) and p > 0 for p in prices) and bar.low <= bar.high

    asyncio.run(main())


@SETTINGS
@given(st.lists(OKX_MESSAGES, min_size=1, max_size=6))
def test_okx_malformed_pushes_then_each_rejected_and_the_next_bar_arrives(
    makers: list[Maker],
) -> None:
    with OkxStandin(symbols=["BTC-USDT"]) as okx:
        cfg = OkxFeedConfig(rest_url=okx.rest_url, ws_url=okx.ws_url, ping_interval_s=0.5)
        source = OkxCandleSource(cfg, ["BTC-USDT"], clock=lambda: okx.now_ms / 1000)
        check_rejected_and_stream_goes_on(okx, source, makers, lambda: okx.advance(1))


@SETTINGS
@given(st.lists(BINANCE_MESSAGES, min_size=1, max_size=6))
def test_binance_malformed_pushes_then_each_rejected_and_the_next_kline_arrives(
    makers: list[Maker],
) -> None:
    with BinanceStandin(symbols=["BTCUSDT"]) as bn:
        cfg = BinanceFeedConfig(rest_url=bn.rest_url, ws_url=bn.ws_url)
        source = BinanceKlineSource(
            cfg, ["BTCUSDT"], clock=lambda: bn.now_ms / 1000, receive_timeout_s=1.0
        )
        check_rejected_and_stream_goes_on(bn, source, makers, lambda: bn.advance(1))
