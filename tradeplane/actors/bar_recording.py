"""The journal actor's recorded bars (``[journal] bars = "all"``), on the state node beside the
journal: a ``BarRecorder`` on its own thread (a chunk's write and fsync never wait on, or hold
up, a journal commit), closed on a timer as well as when full.

After a restart the open chunk of the killed predecessor is gone: on the first bars of each
symbol the recorder names the stretch missing (``BarRecorder.gaps``) and it is refetched
through the feed (``FeedApi.history_since``): its recent bars (for the sim venue, the venue's
own history) and, where the venue has REST history (OKX, Binance), what the feed no longer
keeps. What neither has (an IB feed that restarted too) stays a hole; a feed that cannot be
reached at all is counted in ``stats()["refill_short"]`` and logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tradeplane.actors.common import Peers
from tradeplane.config.models import JournalConfig
from tradeplane.core.model import Bar
from tradeplane.journal.bar_store import BarRecorder, bars_dir
from tradeplane.protocol.api import FeedApi
from tradeplane.protocol.roles import ROLE_FEED

T = TypeVar("T")
log = logging.getLogger("tradeplane.journal.bars")
REFILL_ATTEMPTS = 20
REFILL_RETRY_S = 0.5
RESTART_MARGIN_S = 120.0


class BarRecording:
    def __init__(self, deployment: str, state_dir: Path, cfg: JournalConfig) -> None:
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bars")
        self.recorder = self._thread.submit(
            lambda: BarRecorder(
                bars_dir(state_dir),
                max_bars=cfg.bar_chunk_max_bars,
                interval_s=cfg.bar_chunk_interval_s,
                fsync=cfg.fsync,
            )
        ).result()
        self.peers = Peers(deployment)
        self.interval_s = cfg.bar_chunk_interval_s
        # What a killed journal can have lost: its open chunk (at most one interval old) and
        # what came while it restarted; REST history further back is not this run's to record.
        self.lookback_s = 2 * cfg.bar_chunk_interval_s + RESTART_MARGIN_S
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.Task[None] | None = None
        self.errors = 0
        self.refills = 0
        self.refilled_bars = 0
        self.refill_short = 0

    async def _on_thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def record(self, bars: Sequence[Bar]) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._close_when_due())
        rec = self.recorder

        def add() -> dict[str, datetime]:
            gaps = rec.gaps(bars)
            rec.add(bars, time.monotonic())
            return gaps

        try:
            gaps = await self._on_thread(add)
        except Exception:  # disk full, permissions: the bars stay open, retried at the next roll
            self.errors += 1
            log.exception("recorded bars: writing a chunk failed")
            return
        if gaps:
            task = asyncio.get_running_loop().create_task(self._refill(gaps))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def open_chunk(self) -> list[Bar]:
        """The bars recorded but not yet in a closed chunk (read on the writer's thread)."""
        return await self._on_thread(self.recorder.open_chunk)

    async def _refill(self, gaps: dict[str, datetime]) -> None:
        since = {s: ts.isoformat() for s, ts in gaps.items()}
        bars: list[Bar] | None = None
        for _ in range(REFILL_ATTEMPTS):  # the feed may be restarting too
            feed = self.peers.remote(ROLE_FEED)
            if feed is not None:
                try:
                    bars = list(
                        await feed.call(FeedApi.history_since, list(gaps), since, self.lookback_s)
                    )
                    break
                except Exception:
                    self.peers.forget(ROLE_FEED)
            await asyncio.sleep(REFILL_RETRY_S)
        self.refills += 1
        if bars is None:
            self.refill_short += len(gaps)
            log.warning("recorded bars: no feed to refill %s from", sorted(gaps))
            return
        rec = self.recorder
        before = rec.bars_dropped
        await self._on_thread(lambda: rec.add(bars, time.monotonic(), refill=True))
        self.refilled_bars += len(bars) - (rec.bars_dropped - before)

    async def _close_when_due(self) -> None:
        rec = self.recorder
        while True:
            await asyncio.sleep(min(1.0, self.interval_s / 4))
            if rec.due(time.monotonic()):
                try:
                    await self._on_thread(rec.roll)
                except Exception:
                    self.errors += 1
                    log.exception("recorded bars: writing a chunk failed")

    async def close(self) -> None:
        """Close the open chunk (a graceful stop loses nothing)."""
        for task in [self._timer, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await self._on_thread(self.recorder.roll)
        self._thread.shutdown(wait=True)

    def stats(self) -> dict[str, Any]:
        return {
            **self.recorder.stats(),
            "errors": self.errors,
            "refills": self.refills,
            "refilled_bars": self.refilled_bars,
            "refill_short": self.refill_short,
        }
