"""The IB bar source: against the fake TWS (ib_async's client on the real TWS socket protocol),
and on a scripted in-process ``IB`` for interleavings a socket cannot pin down. The pure
joining of live and historical minutes is tested in ``test_minutes``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from tests.standins.tws import FakeTws
from tests.unit.venues.support import Sink, running, stop, until
from tradeplane.config.venues import IbConfig
from tradeplane.core.model import Bar
from tradeplane.venues.ib.bars import IbBarSource
from tradeplane.venues.ib.session import IbSession

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def source_on(fake: FakeTws, connect_timeout_s: float = 3, **extra: float) -> IbBarSource:
    cfg = IbConfig(
        host="127.0.0.1",
        port=fake.port,
        client_id=20,
        connect_timeout_s=connect_timeout_s,
        **extra,  # type: ignore[arg-type]
    )
    return IbBarSource(cfg)


def test_source_on_the_fake_tws_then_minute_bars_once_and_in_order_across_a_1101() -> None:
    async def main() -> None:
        async with FakeTws(bar_start=int(T0.timestamp())) as fake:
            fake.set_price("SPY", 500.0)
            source = source_on(fake)
            sink = Sink()
            task = await running(source, sink)
            await until(lambda: source.state.connected and source._subscriptions)
            fake.advance_bars(24)
            await until(lambda: len(sink.got) == 2)
            fake.connectivity_lost()
            await until(lambda: source.session.link.state.value == "lost")
            fake.connectivity_restored(data_lost=True)
            await until(lambda: source.session.link.state.value == "up")
            fake.advance_bars(12)
            await until(lambda: len(sink.got) == 3)
            await stop(task)
            assert sink.rejections == []
            assert [b.ts for b in sink.got] == [T0 + timedelta(minutes=k) for k in range(3)]
            for a, b in itertools.pairwise(sink.got):
                assert b.ts - a.ts == timedelta(minutes=1)

    asyncio.run(main())


def test_minutes_lost_in_a_1101_outage_then_backfilled_from_history_once_and_in_order() -> None:
    async def main() -> None:
        async with FakeTws(bar_start=int(T0.timestamp())) as fake:
            fake.set_price("SPY", 500.0)
            source = source_on(fake)
            sink = Sink()
            task = await running(source, sink)
            await until(lambda: source.state.connected and source._subscriptions)
            fake.advance_bars(12)
            await until(lambda: len(sink.got) == 1)
            fake.connectivity_lost()
            await until(lambda: source.session.link.state.value == "lost")
            fake.advance_bars(36)  # three minutes TWS could not pass on
            fake.connectivity_restored(data_lost=True, drop_held=True)
            await until(lambda: len(sink.got) == 4)
            fake.advance_bars(12)
            await until(lambda: len(sink.got) == 5)
            await stop(task)
            assert source.state.backfilled_bars == 3
            assert [b.ts for b in sink.got] == [T0 + timedelta(minutes=k) for k in range(5)]

    asyncio.run(main())


def test_bad_real_time_bars_from_tws_then_each_rejected_with_a_reason_and_minutes_go_on() -> None:
    async def main() -> None:
        async with FakeTws(bar_start=int(T0.timestamp())) as fake:
            source = source_on(fake)
            sink = Sink()
            task = await running(source, sink)
            await until(lambda: source.state.connected and source._subscriptions)
            at = str(int(T0.timestamp()) + 20)
            for o, h, low, c in (
                ("nan", "1", "1", "1"),
                ("-5", "1", "1", "1"),
                ("2", "1", "3", "2"),
            ):
                fake.push_realtime_bar("SPY", [at, o, h, low, c, "10", "1", "1"])
            await until(lambda: len(sink.rejections) == 3)
            fake.advance_bars(24)
            await until(lambda: len(sink.got) == 2)
            await stop(task)
            assert all(r.startswith("ib: bad real-time bar: ") for r, _ in sink.rejections)
            assert all("SPY" in raw for _, raw in sink.rejections)
            assert [b.ts for b in sink.got] == [T0, T0 + MIN]

    asyncio.run(main())


def test_tws_silent_then_the_feed_heartbeat_goes_unanswered_and_it_reconnects() -> None:
    async def main() -> None:
        async with FakeTws(bar_start=int(T0.timestamp())) as fake:
            source = source_on(fake, connect_timeout_s=1, heartbeat_s=0.5)
            task = await running(source, Sink())
            await until(lambda: source.state.connected and source._subscriptions)
            fake.set_silent(True)
            await until(lambda: source.state.disconnects == 1, timeout_s=5)
            assert "TWS silent" in (source.state.last_error or "")
            fake.set_silent(False)
            await until(lambda: source.state.connected and source.state.connects == 2, 10)
            await stop(task)

    asyncio.run(main())


# -- the source's own ordering, on an in-process stand-in for ib_async (no socket, no clock) ----


class _Event:
    """ib_async's event as the source uses it: ``+=`` a handler, emitted in order."""

    def __init__(self) -> None:
        self.handlers: list[Callable[..., None]] = []

    def __iadd__(self, handler: Callable[..., None]) -> _Event:
        self.handlers.append(handler)
        return self

    def emit(self, *args: Any) -> None:
        for handler in list(self.handlers):
            handler(*args)


class _RealTimeBars(list[Any]):
    def __init__(self, contract: Any) -> None:
        super().__init__()
        self.contract = contract
        self.updateEvent = _Event()


class ScriptedIb:
    """ib_async's ``IB`` as the feed uses it, answering from what the test sets: TWS's time
    (``now``) and the minutes its history has (``history``)."""

    def __init__(self, now: datetime) -> None:
        self.client = SimpleNamespace(MaxRequests=0, RequestsInterval=0)
        self.errorEvent = _Event()
        self.disconnectedEvent = _Event()
        self.now = now
        self.history: list[datetime] = []
        self.history_asked = 0
        self.subscriptions: list[_RealTimeBars] = []

    async def connectAsync(self, *args: Any, **kwargs: Any) -> ScriptedIb:
        return self

    def managedAccounts(self) -> list[str]:
        return ["DU1234567"]

    def isConnected(self) -> bool:
        return True

    def disconnect(self) -> None:
        return None

    async def reqCurrentTimeAsync(self) -> datetime:
        return self.now

    async def qualifyContractsAsync(self, contract: Any) -> list[Any]:
        return [SimpleNamespace(symbol=contract.symbol)]

    def reqRealTimeBars(self, contract: Any, *args: Any) -> _RealTimeBars:
        bars = _RealTimeBars(contract)
        self.subscriptions.append(bars)
        return bars

    def cancelRealTimeBars(self, bars: _RealTimeBars) -> None:
        self.subscriptions.remove(bars)

    async def reqHistoricalDataAsync(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.history_asked += 1
        return [
            SimpleNamespace(date=t, open=7, high=7, low=7, close=7, volume=70) for t in self.history
        ]

    def minute(self, start: datetime) -> None:
        """Twelve 5-second bars of the minute ``start`` to every subscription."""
        for k in range(12):
            self.now = start + timedelta(seconds=5 * k + 5)
            for bars in self.subscriptions:
                bar = SimpleNamespace(time=start + timedelta(seconds=5 * k), volume=10)
                bar.open_ = bar.high = bar.low = bar.close = 100.0
                bars.append(bar)
                bars.updateEvent.emit(bars, True)

    def code(self, code: int) -> None:
        self.errorEvent.emit(-1, code, f"connectivity {code}")


class GatedSink(Sink):
    """A sink whose first hand-over waits until the test opens it (a slow feed actor)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def bars(self, bars: list[Bar]) -> None:
        if not self.got:
            self.waiting.set()
            await self.gate.wait()
        await super().bars(bars)


def scripted_source(ib: ScriptedIb, last: datetime) -> IbBarSource:
    cfg = IbConfig(host="127.0.0.1", port=4002, client_id=20)
    source = IbBarSource(cfg, session=IbSession(cfg, ib_factory=lambda: ib))
    source.resume_after({"SPY": last})  # a restarted feed: history fills what it missed
    return source


def test_live_minutes_queued_behind_a_busy_sink_then_a_1101_backfill_never_overtakes_them() -> None:
    """Minutes closed live wait their turn while the sink takes an earlier one; TWS then loses
    and regains IB with data lost (1101): the backfill that follows comes after them, not
    before (the strategy would take an overtaken minute as out of order and never see it)."""

    async def main() -> None:
        ib = ScriptedIb(T0 + timedelta(seconds=1))
        ib.history = [T0 - MIN]
        source = scripted_source(ib, T0 - MIN)
        sink = GatedSink()
        task = await running(source, sink)
        await until(lambda: ib.subscriptions)
        ib.minute(T0)  # closes T0: the sink starts taking it and stays busy
        await until(lambda: sink.waiting.is_set())
        ib.minute(T0 + MIN)  # closes T0+1 while T0 is being handed over
        ib.code(1100)
        ib.code(1101)
        ib.now, ib.history = T0 + 3 * MIN + timedelta(seconds=10), [T0 + k * MIN for k in range(3)]
        sink.gate.set()
        await until(lambda: len(sink.got) == 3)
        await until(lambda: source.session.link.state.value == "up")
        ib.minute(T0 + 3 * MIN)
        await until(lambda: len(sink.got) == 4)
        await stop(task)
        assert [b.ts for b in sink.got] == [T0 + k * MIN for k in range(4)]
        assert source.state.backfilled_bars == 1

    asyncio.run(main())


def test_live_resumes_on_a_00_bar_past_what_history_had_then_the_minute_between_backfilled() -> (
    None
):
    """The integration flake "minutes skipped 00:35 -> 00:37": history at (re)connect reaches
    T0-1, a minute passes before the subscription's first bar, which is T0+1's :00 bar, so
    T0+1 is whole. T0 must come from history before T0+1 is passed on."""

    async def main() -> None:
        ib = ScriptedIb(T0 - timedelta(seconds=1))
        ib.history = [T0 - MIN]
        source = scripted_source(ib, T0 - MIN)
        sink = Sink()
        task = await running(source, sink)
        await until(lambda: ib.subscriptions)
        ib.history = [T0 - MIN, T0, T0 + MIN]  # what history has once T0+1 has ended
        ib.minute(T0 + MIN)
        await until(lambda: len(sink.got) == 2)
        ib.minute(T0 + 2 * MIN)
        await until(lambda: len(sink.got) == 3)
        await stop(task)
        assert [b.ts for b in sink.got] == [T0 + k * MIN for k in range(3)]
        assert sink.got[0].open == 7 and sink.got[1].open == 100.0  # history's T0, live T0+1
        assert sink.rejections == [] and ib.history_asked == 2

    asyncio.run(main())
