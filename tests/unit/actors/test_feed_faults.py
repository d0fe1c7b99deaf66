"""An injected ``silent`` fault on the feed: no Ray, the actor's class driven directly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tradeplane.actors.feed import MAX_TICKS_PER_PUSH, FeedActor
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.model import Bar
from tradeplane.venues.sim import MarketSimulator

# The plain class under @ray.remote: constructing it starts no actor and needs no cluster.
FeedClass: Any = FeedActor.__ray_metadata__.modified_class  # type: ignore[attr-defined]


@pytest.fixture
def feed() -> Any:
    cfg = TradeplaneConfig.model_validate(
        {
            "deployment": {"name": "t"},
            # 60 s bars at 60,000x: one tick per millisecond.
            "venue": {"sim": {"symbols": ["ACME"], "speed": 60_000.0}},
            "strategies": [{"name": "a", "path": "x.py", "class_name": "A"}],
        }
    )
    feed = FeedClass(cfg, "run-1", {})
    feed.sim = MarketSimulator(["ACME"], seed=1, start=datetime(2024, 1, 1, tzinfo=UTC))
    feed.published = []
    feed.pushes = []

    async def publish(bars: list[Bar], *, checked: bool = False) -> None:
        feed.published.extend(bars)
        feed.pushes.append(len(bars))

    feed._publish = publish
    return feed


def stream_for(feed: Any, seconds: float) -> None:
    async def scenario() -> None:
        feed.streaming = True
        task = asyncio.ensure_future(feed._run())
        await asyncio.sleep(seconds)
        feed.streaming = False
        await task

    asyncio.run(scenario())


def test_silent_feed_then_publishes_nothing_and_simulator_does_not_advance(feed: Any) -> None:
    next_ts = feed.sim.next_ts
    described = asyncio.run(feed.inject_fault("silent"))
    assert described["kind"] == "silent" and described["remaining_s"] is None
    stream_for(feed, 0.05)
    assert feed.published == []
    assert feed.sim.next_ts == next_ts
    beat = asyncio.run(feed.heartbeat())
    assert beat["faults"][0]["kind"] == "silent" and beat["faults"][0]["hits"] > 0


def test_silence_cleared_then_bars_resume_where_they_stopped(feed: Any) -> None:
    first_ts = feed.sim.next_ts
    asyncio.run(feed.inject_fault("silent"))
    stream_for(feed, 0.02)
    assert asyncio.run(feed.clear_faults()) == 1
    stream_for(feed, 0.02)
    assert feed.published and feed.published[0].ts == first_ts
    assert asyncio.run(feed.heartbeat())["faults"] == []


def test_venue_fault_sent_to_the_feed_then_refused(feed: Any) -> None:
    with pytest.raises(ValueError, match="venue"):
        asyncio.run(feed.inject_fault("reject_orders"))


def test_new_feed_then_starts_without_faults(feed: Any) -> None:
    assert feed.faults.describe() == []


def test_feed_behind_schedule_then_due_ticks_go_out_together_in_order_none_lost(feed: Any) -> None:
    feed.sim_cfg = feed.sim_cfg.model_copy(update={"speed": 1e12})  # unpaced: always behind
    first_ts = feed.sim.next_ts

    stream_for(feed, 0.05)

    assert max(feed.pushes) == MAX_TICKS_PER_PUSH  # one symbol: one bar per tick
    step = timedelta(seconds=feed.sim_cfg.bar_interval_s)
    assert [b.ts for b in feed.published] == [
        first_ts + i * step for i in range(len(feed.published))
    ]
