"""The supervisor under a wall-clock step (NTP correcting a slow clock, an operator setting it):
feed silence, hung children, recovery backoff and status figures are measured on the monotonic
clock, so a step forward trips none of them and a step back hides none. Fake adapter and clock,
no Ray, no sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.unit.supervisor.fakes import FakeAdapter, FakeClock, eventually, supervisor
from tradeplane.core.health import Health
from tradeplane.core.watchdog import Lifecycle
from tradeplane.supervisor.supervisor import Supervisor

HOUR = 3600.0
SILENCE_S = 10.0


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


async def running(**cfg: Any) -> tuple[Supervisor, FakeAdapter, FakeClock]:
    sup, adapter, clock = supervisor(**cfg)
    await sup.deploy()
    await sup.start_feed()
    await sup.tick()
    return sup, adapter, clock


async def seconds_until_silent(sup: Supervisor, clock: FakeClock, limit_s: float) -> float:
    """Advance in quarter seconds until health says the feed is silent; how long that took."""
    began = clock.monotonic()
    while clock.monotonic() - began <= limit_s:
        if sup.reading.health is Health.FEED_SILENT:
            return clock.monotonic() - began
        await clock.advance(0.25)
    raise AssertionError(f"feed silence not detected within {limit_s}s")


def test_wall_clock_steps_forward_an_hour_then_flowing_feed_not_silent_and_nothing_restarted() -> (
    None
):
    async def scenario() -> None:
        sup, adapter, clock = await running(feed_silence_s=SILENCE_S, monitor_interval_s=0.25)
        adapter.feed_bar_interval_s = 5.0  # the last bar came before the step
        clock.step_wall(HOUR)
        for _ in range(int(3 * SILENCE_S / 0.25)):
            await clock.advance(0.25)
            assert sup.reading.health is Health.OK, sup.reading.reason
        assert "recovery_attempt" not in adapter.kinds()
        assert all(c.state is Lifecycle.RUNNING for c in sup.core.children.values())

    run(scenario)


def test_wall_clock_steps_back_an_hour_then_feed_silence_still_detected_on_time() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(feed_silence_s=SILENCE_S, monitor_interval_s=0.25)
        adapter.silence_feed()  # the last bar, then nothing
        clock.step_wall(-HOUR)
        took = await seconds_until_silent(sup, clock, limit_s=HOUR)
        # Not before the bound, and within it plus one steady tick (the cadence while all is
        # well: min(2, 5/2, lease/6, 10/20) = 0.5 s) and a monitor tick.
        assert SILENCE_S < took <= SILENCE_S + 0.5 + 0.25
        await eventually(
            lambda: any(e["target"] == "feed_silence" for e in adapter.events("recovery_attempt")),
            "silence recovered",
        )

    run(scenario)


def test_wall_clock_steps_back_an_hour_while_silent_then_silence_not_hidden() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(feed_silence_s=SILENCE_S, monitor_interval_s=0.25)
        adapter.silence_feed()
        for _ in range(int((SILENCE_S - 2.0) / 0.25)):  # 8 s without a bar: not yet silent
            await clock.advance(0.25)
        assert sup.reading.health is Health.OK
        clock.step_wall(-HOUR)
        took = await seconds_until_silent(sup, clock, limit_s=HOUR)
        assert 2.0 - 0.25 <= took <= 2.0 + 0.5 + 0.25

    run(scenario)


def test_feed_node_clock_an_hour_ahead_then_its_bar_age_still_counts_not_its_timestamp() -> None:
    """The feed on another node whose wall clock is an hour ahead: its ``last_bar_recv_ts`` is in
    the supervisor's future (a wall age of -1 h would read as fresh); the age it measured on
    its own monotonic clock is what counts."""

    async def scenario() -> None:
        sup, adapter, clock = await running(feed_silence_s=SILENCE_S, monitor_interval_s=0.25)
        adapter.silence_feed()
        adapter.beats["feed"] = {"last_bar_recv_ts": clock.now() + HOUR}
        took = await seconds_until_silent(sup, clock, limit_s=HOUR)
        assert SILENCE_S < took <= SILENCE_S + 0.5 + 0.25

    run(scenario)


def test_feed_stops_answering_heartbeats_then_its_bar_age_grows_on_the_supervisors_clock() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(
            feed_silence_s=SILENCE_S, monitor_interval_s=0.25, heartbeat_timeout_s=60.0
        )
        adapter.silence_feed()
        adapter.fail("feed", "heartbeat", 10_000, TimeoutError())
        clock.step_wall(-HOUR)
        took = await seconds_until_silent(sup, clock, limit_s=HOUR)
        assert SILENCE_S < took <= SILENCE_S + 0.5 + 0.25

    run(scenario)


def test_wall_clock_steps_forward_an_hour_then_no_child_counted_hung() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(heartbeat_timeout_s=3.0)
        adapter.fail("venue", "heartbeat", 1, TimeoutError())  # one beat missed
        await clock.advance(1.0)
        assert sup.core.children["venue"].hung_since is not None
        clock.step_wall(HOUR)
        for _ in range(3):
            await clock.advance(1.0)
        assert "venue" not in adapter.killed
        assert sup.core.children["venue"].hung_since is None

    run(scenario)


def test_wall_clock_steps_back_an_hour_then_hung_child_still_killed_after_heartbeat_timeout() -> (
    None
):
    async def scenario() -> None:
        _, adapter, clock = await running(heartbeat_timeout_s=3.0)
        adapter.fail("venue", "heartbeat", 100, TimeoutError())
        await clock.advance(1.0)
        clock.step_wall(-HOUR)
        for _ in range(4):
            await clock.advance(1.0)
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert "venue" in adapter.killed

    run(scenario)


def test_wall_clock_steps_back_an_hour_then_restart_retried_after_its_cooldown_not_an_hour() -> (
    None
):
    async def scenario() -> None:
        sup, adapter, clock = await running(max_recovery_attempts=3)
        adapter.create_failures["risk"] = 1
        adapter.crash("risk")
        await eventually(lambda: "recovery_failed" in adapter.kinds(), "failed restart")
        clock.step_wall(-HOUR)
        await clock.advance(1.0)  # recovery_cooldown_s
        await eventually(lambda: sup.core.children["risk"].state is Lifecycle.RUNNING)

    run(scenario)


def test_wall_clock_steps_forward_an_hour_then_restart_not_retried_before_its_cooldown() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(max_recovery_attempts=3, recovery_cooldown_s=5.0)
        adapter.create_failures["risk"] = 1
        adapter.crash("risk")
        await eventually(lambda: "recovery_failed" in adapter.kinds(), "failed restart")
        clock.step_wall(HOUR)
        await clock.advance(1.0)
        assert sup.core.children["risk"].state is Lifecycle.DEAD
        assert [e["attempt"] for e in adapter.events("recovery_attempt")] == [1]
        await clock.advance(4.0)
        await eventually(lambda: sup.core.children["risk"].state is Lifecycle.RUNNING)

    run(scenario)


def test_wall_clock_steps_back_an_hour_then_restart_budget_window_still_counts_attempts() -> None:
    """``max_recovery_attempts`` within ``recovery_window_s``: a step back must not make the
    attempts look an hour in the future (never expiring), nor a step forward expire them."""

    async def scenario() -> None:
        sup, adapter, clock = await running(max_recovery_attempts=3, recovery_window_s=60.0)
        adapter.crash("risk")
        await eventually(lambda: sup.core.children["risk"].restarts == 1, "restarted")
        clock.step_wall(HOUR)
        assert sup.status()["recovery"]["attempts"]["risk"] == 1
        clock.step_wall(-2 * HOUR)
        await clock.advance(61.0)
        assert sup.status()["recovery"]["attempts"]["risk"] == 0

    run(scenario)


def test_wall_clock_steps_back_then_status_uptime_and_heartbeat_ages_not_negative() -> None:
    async def scenario() -> None:
        sup, _, clock = await running()
        await clock.advance(5.0)
        clock.step_wall(-HOUR)
        status = sup.status()
        assert status["uptime_s"] >= 5.0
        ages = [c["heartbeat_age_s"] for c in status["children"].values()]
        assert all(a is not None and 0.0 <= a <= 5.0 for a in ages)

    run(scenario)


def test_restart_recorded_with_the_wall_time_it_began_and_its_monotonic_duration() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        began = clock.now()
        adapter.crash("risk")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        (restart,) = sup.status()["restarts"]
        assert restart["ts"] == began and restart["took_s"] >= 0.0

    run(scenario)


def test_wall_clock_steps_back_an_hour_then_the_step_is_journaled_for_the_operator() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        await clock.advance(sup.tick_interval())
        assert adapter.events("wall_clock_stepped") == []
        clock.step_wall(-HOUR)
        await clock.advance(sup.tick_interval())  # the next tick sees it
        await eventually(lambda: adapter.events("wall_clock_stepped") != [], "journaled")
        [event] = adapter.events("wall_clock_stepped")
        assert event["step_s"] == -HOUR

    run(scenario)
