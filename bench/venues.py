"""Venue adapter benchmark: IB order round trip and pacing, OKX and Binance candle throughput.

Against the protocol stand-ins in ``tests/standins`` on 127.0.0.1 (the real wire protocols), so
it is the adapters' own cost plus loopback, never an exchange's: how fast a venue can be driven
and whether the IB pacing holds under a burst. The stand-ins share this process's GIL, so the
rates are floors. ``make bench`` or ``python bench/venues.py`` (``--quick``: smoke run); JSON
lines on stdout, one object per measurement.

* ``venues.ib_round_trip``: ``IbVenueClient.submit`` -> its ``order_filled`` event, market
  orders one at a time at 25/s (under the client's 40/s pacing: none waits on the pacer).
* ``venues.ib_burst``: market orders submitted all at once: time until all are filled, orders/s
  (at most 40 in any second by the pacing, so a short burst averages more) and the most
  messages the client sent in any second over the whole connection, as the fake TWS counts
  them. Target: under 45 (IB disconnects above 50/s); ok when met and every order filled.
* ``venues.okx_candles`` / ``venues.binance_klines``: closed bars delivered per second over the
  websocket while the stand-in closes minutes for many symbols as fast as it can; ok when each
  symbol got every minute exactly once, in order, and nothing was rejected.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import emit, summary  # noqa: E402
from tests.standins.binance import BinanceStandin  # noqa: E402
from tests.standins.okx import OkxStandin  # noqa: E402
from tests.standins.tws import FakeTws  # noqa: E402
from tradeplane.config.venues import BinanceFeedConfig, IbConfig, OkxFeedConfig  # noqa: E402
from tradeplane.core.model import Bar, OrderType, Side  # noqa: E402
from tradeplane.venues.binance.source import BinanceKlineSource  # noqa: E402
from tradeplane.venues.ib.venue import IbVenueClient  # noqa: E402
from tradeplane.venues.okx.source import OkxCandleSource  # noqa: E402
from tradeplane.venues.sim import VenueOrderRequest  # noqa: E402

TARGET_MAX_MSGS_PER_S = 45
SEQUENTIAL_RATE_PER_S = 25.0
FILL_TIMEOUT_S = 5.0
MINUTE = timedelta(minutes=1)


def market(coid: str) -> VenueOrderRequest:
    return VenueOrderRequest(coid, "SPY", Side.BUY, 1.0, OrderType.MARKET, None)


class FillClock:
    """Follows the client's event stream; resolves each order's future when its fill arrives."""

    def __init__(self, client: IbVenueClient) -> None:
        self.client = client
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.rejected: list[str] = []

    def expect(self, coid: str) -> asyncio.Future[float]:
        self.waiting[coid] = asyncio.get_running_loop().create_future()
        return self.waiting[coid]

    async def follow(self) -> None:
        seq = 0
        while True:
            for event in await self.client.events_since(seq, 1000, 0.5):
                seq = event.seq
                fut = self.waiting.get(event.client_order_id or "")
                if event.kind == "order_rejected":
                    self.rejected.append(f"{event.client_order_id}: {event.reason}")
                elif event.kind == "order_filled" and fut is not None and not fut.done():
                    fut.set_result(time.perf_counter())


async def ib_bench(orders: int, burst: int) -> None:
    async with FakeTws() as fake:
        fake.set_price("SPY", 500.0)
        cfg = IbConfig(host="127.0.0.1", port=fake.port, client_id=11, connect_timeout_s=3)
        client = IbVenueClient(cfg)
        await client.open(0)
        fills = FillClock(client)
        follower = asyncio.get_running_loop().create_task(fills.follow())
        try:
            warm = fills.expect("tpWARM")  # the first order also qualifies the contract
            await client.submit(market("tpWARM"))
            await asyncio.wait_for(warm, FILL_TIMEOUT_S)
            await asyncio.sleep(1.0)  # a fresh pacing window
            lat: list[float] = []
            lost = 0
            began = time.perf_counter()
            for i in range(orders):
                due = began + i / SEQUENTIAL_RATE_PER_S
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                coid = f"tpL{i:05d}"
                fut = fills.expect(coid)
                t0 = time.perf_counter()
                await client.submit(market(coid))
                try:
                    lat.append((await asyncio.wait_for(fut, FILL_TIMEOUT_S) - t0) * 1000.0)
                except TimeoutError:
                    lost += 1
            emit(
                {
                    "bench": "venues.ib_round_trip",
                    "orders": orders,
                    "rate_per_s": SEQUENTIAL_RATE_PER_S,
                    "ms": summary(lat),
                    "unfilled": lost,
                    "ok": lost == 0 and not fills.rejected,
                }
            )
            await asyncio.sleep(1.0)
            coids = [f"tpB{i:05d}" for i in range(burst)]
            futs = [fills.expect(c) for c in coids]
            t0 = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(client.submit(market(c)) for c in coids)), 60.0)
            submitted_s = time.perf_counter() - t0
            done, pending = await asyncio.wait(futs, timeout=30.0)
            took = max((f.result() for f in done), default=t0) - t0
            rate = fake.max_client_msgs_per_s
            emit(
                {
                    "bench": "venues.ib_burst",
                    "orders": burst,
                    "filled": len(done),
                    "submit_s": submitted_s,
                    "all_filled_s": took,
                    "orders_per_s": len(done) / took if took > 0 else None,
                    "placed_at_tws": len(fake.placed_orders),
                    "rejected": fills.rejected[:5],
                    "pacing_config_per_s": cfg.max_messages_per_s,
                    "max_client_msgs_per_s": rate,
                    "target_max_msgs_per_s": TARGET_MAX_MSGS_PER_S,
                    "ok": rate < TARGET_MAX_MSGS_PER_S and not pending and not fills.rejected,
                }
            )
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            client.close()
            await asyncio.sleep(0.2)  # the fake's reader sees EOF before it is shut down


class CountingSink:
    """Keeps each symbol's bars and when the last one arrived."""

    def __init__(self, symbols: list[str]) -> None:
        self.got: dict[str, list[Bar]] = {s: [] for s in symbols}
        self.rejections: list[tuple[str, str]] = []
        self.last_at = 0.0

    async def bars(self, bars: list[Bar]) -> None:
        for bar in bars:
            self.got.setdefault(bar.symbol, []).append(bar)
        self.last_at = time.perf_counter()

    async def rejected(self, reason: str, raw: str) -> None:
        self.rejections.append((reason, raw))

    def all_have(self, n: int) -> bool:
        return all(len(bars) >= n for bars in self.got.values())

    def contiguous(self, n: int) -> bool:
        return all(
            len(bars) == n and all(b.ts - a.ts == MINUTE for a, b in itertools.pairwise(bars))
            for bars in self.got.values()
        )


async def wait_for(probe: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() >= end:
            return False
        await asyncio.sleep(0.01)
    return True


async def stop(task: asyncio.Task[None], tries: int = 10) -> int | None:
    """Cancel ``task`` until it ends (bounded); how many cancels it took. On Python 3.11 a
    cancel landing as ``asyncio.wait_for(ws.receive())`` completes is swallowed (the source
    reads on), so one may not be enough: a figure above 1 is that, not a benchmark error."""
    for n in range(1, tries + 1):
        task.cancel()
        if (await asyncio.wait([task], timeout=1.0))[0]:
            return n
    return None


async def candle_bench(
    name: str, advance: Callable[[int], None], source: Any, symbols: list[str], minutes: int
) -> None:
    """Start ``source``, wait for the latest closed bar of each symbol, then close ``minutes``
    more (10 at a time, off this loop so it keeps reading) and time their delivery."""
    sink = CountingSink(symbols)
    task = asyncio.get_running_loop().create_task(source.run(sink))
    try:
        started = await wait_for(lambda: sink.all_have(1), 15.0)
        first = {s: len(b) for s, b in sink.got.items()}
        t0 = time.perf_counter()
        for done in range(0, minutes, 10):
            await asyncio.to_thread(advance, min(10, minutes - done))
        want = max(first.values(), default=0) + minutes
        delivered = await wait_for(lambda: sink.all_have(want), 60.0)
        took = sink.last_at - t0
    finally:
        cancels = await stop(task)
    bars = sum(len(b) - first[s] for s, b in sink.got.items())
    emit(
        {
            "bench": name,
            "symbols": len(symbols),
            "minutes": minutes,
            "bars": bars,
            "seconds": took,
            "bars_per_s": bars / took if took > 0 else None,
            "connects": source.state.connects,
            "backfilled_bars": source.state.backfilled_bars,
            "rejections": len(sink.rejections),
            "cancels_to_stop": cancels,
            "ok": started
            and delivered
            and len(set(first.values())) == 1
            and sink.contiguous(want)
            and not sink.rejections,
        }
    )


async def feeds_bench(symbols: int, minutes: int) -> None:
    names = [f"C{i:02d}-USDT" for i in range(symbols)]
    with OkxStandin(symbols=names) as okx:
        okx_cfg = OkxFeedConfig(rest_url=okx.rest_url, ws_url=okx.ws_url)
        okx_src = OkxCandleSource(okx_cfg, names, clock=lambda: okx.now_ms / 1000)
        await candle_bench("venues.okx_candles", okx.advance, okx_src, names, minutes)
    names = [n.replace("-", "") for n in names]
    with BinanceStandin(symbols=names) as bn:
        bn_cfg = BinanceFeedConfig(rest_url=bn.rest_url, ws_url=bn.ws_url)
        bn_src = BinanceKlineSource(
            bn_cfg, names, clock=lambda: bn.now_ms / 1000, receive_timeout_s=1.0
        )
        await candle_bench("venues.binance_klines", bn.advance, bn_src, names, minutes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (smoke test, not a result)")
    args = ap.parse_args()
    orders, burst, symbols, minutes = (20, 30, 5, 20) if args.quick else (200, 150, 20, 300)
    asyncio.run(ib_bench(orders, burst))
    asyncio.run(feeds_bench(symbols, minutes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
