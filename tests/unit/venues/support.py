"""What the venue-source tests share: a sink that records, bounded waits, order checks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tradeplane.core.model import Bar


class Sink:
    """Records what a source hands over: bars and rejections."""

    def __init__(self) -> None:
        self.got: list[Bar] = []
        self.rejections: list[tuple[str, str]] = []

    async def bars(self, bars: list[Bar]) -> None:
        self.got.extend(bars)

    async def rejected(self, reason: str, raw: str) -> None:
        self.rejections.append((reason, raw))

    def of(self, symbol: str) -> list[Bar]:
        return [b for b in self.got if b.symbol == symbol]


async def until(probe: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Poll ``probe`` until it is truthy; TimeoutError after ``timeout_s``."""

    async def poll() -> None:
        while not probe():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout_s)


def assert_contiguous(bars: list[Bar]) -> None:
    assert bars, "no bars"
    for a, b in itertools.pairwise(bars):
        assert b.ts - a.ts == timedelta(minutes=1), f"gap or repeat between {a.ts} and {b.ts}"


async def running(source: Any, sink: Sink) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(source.run(sink))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
