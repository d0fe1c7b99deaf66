"""The shared retry policies: waits that double to a cap, with jitter, and loops that retry only
what they name and stop the moment they are cancelled."""

from __future__ import annotations

import asyncio
import random

import pytest
from tenacity import wait_exponential

from tradeplane.core.retry import Backoff, failure, retrying


class Recorded:
    """An injected sleep: records each wait, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_backoff_doubles_up_to_its_cap_then_starts_over_after_reset() -> None:
    backoff = Backoff(0.25, 5.0, jitter=0.0)
    assert [backoff.next() for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.25


def test_backoff_jitter_stays_within_its_spread_and_never_past_the_cap() -> None:
    backoff = Backoff(0.5, 30.0, jitter=0.2, rng=random.Random(7))
    for attempt in range(12):
        base = min(30.0, 0.5 * 2**attempt)
        assert base * 0.8 <= backoff.next() <= min(30.0, base * 1.2)


def test_retrying_when_named_error_then_waits_grow_and_the_call_succeeds() -> None:
    sleep, calls, seen = Recorded(), [], []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError(f"down {len(calls)}")
        return "up"

    policy = retrying(
        wait_exponential(0.05, max=0.1),
        on=(ConnectionError,),
        before_sleep=lambda rs: seen.append(str(failure(rs))),
        sleep=sleep,
    )
    assert asyncio.run(policy(flaky)) == "up"
    assert sleep.waits == [0.05, 0.1, 0.1]
    assert seen == ["down 1", "down 2", "down 3"]


def test_retrying_when_other_error_then_it_propagates_without_a_retry() -> None:
    sleep, calls = Recorded(), []

    async def broken() -> None:
        calls.append(1)
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        asyncio.run(
            retrying(wait_exponential(0.05, max=1.0), on=(ConnectionError,), sleep=sleep)(broken)
        )
    assert calls == [1] and sleep.waits == []


def test_retrying_when_it_gives_up_then_the_last_error_is_raised() -> None:
    async def down() -> None:
        raise ConnectionError("still down")

    policy = retrying(wait_exponential(0.01, max=0.02), on=(ConnectionError,), give_up_after_s=0.05)
    with pytest.raises(ConnectionError, match="still down"):
        asyncio.run(policy(down))


def test_retrying_when_cancelled_while_waiting_or_trying_then_it_stops_at_once() -> None:
    async def scenario(hang_in_call: bool) -> int:
        calls = []

        async def down() -> None:
            calls.append(1)
            if hang_in_call:
                await asyncio.Event().wait()
            raise ConnectionError

        policy = retrying(wait_exponential(3600.0, max=3600.0), on=(ConnectionError,))
        task = asyncio.create_task(policy(down))
        while not calls:
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return len(calls)

    assert asyncio.run(scenario(hang_in_call=False)) == 1  # cancelled in the hour-long wait
    assert asyncio.run(scenario(hang_in_call=True)) == 1  # cancelled inside the call
