"""The supervisor's sense of time, injected: the host's clocks in production, a fake in unit tests
(which drive time forward themselves, so nothing there really sleeps).

Two readings, never mixed: ``now`` (wall, seconds since the epoch) for what is recorded or shown
and for the market calendar; ``monotonic`` for every duration, timeout, deadline and age the
supervisor measures itself (heartbeat timeouts, recovery backoff and windows, feed silence), so
that a step of the wall clock (NTP, an operator) neither trips nor hides any of them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...
    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...
    async def wait(self, event: asyncio.Event, timeout_s: float | None) -> bool:
        """Until ``event`` is set (True) or ``timeout_s`` passed (False; None: no timeout)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout_s: float | None) -> bool:
        # A timeout is the normal way out of the wait, not an error.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()
                return True
        return False
