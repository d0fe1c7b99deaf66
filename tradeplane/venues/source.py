"""What every external market-data source shares: where its bars go, how it reports its state,
and how long it waits before trying again.

A source runs until cancelled. It reconnects by itself with backoff, backfills what it missed
over REST, and hands the feed only closed bars, each once and in time order per symbol. Bad
messages are handed over as rejections with a reason (the feed journals them); they never end
the source.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from tenacity import RetryCallState

from tradeplane.core.model import Bar
from tradeplane.core.retry import Backoff, failure, retrying

RAW_LIMIT = 300  # characters of a rejected message kept with its reason


@dataclass(frozen=True)
class Rejected:
    """Something a venue sent that was not used, with why; ``raw`` keeps 300 characters."""

    reason: str
    raw: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", self.raw[:RAW_LIMIT])


@dataclass(frozen=True)
class Malformed(Rejected):
    """A websocket message that is none of the kinds the venue sends."""


class BarSink(Protocol):
    async def bars(self, bars: list[Bar]) -> None: ...
    async def rejected(self, reason: str, raw: str) -> None: ...


@dataclass
class SourceState:
    """What the feed's heartbeat shows of its source."""

    connected: bool = False
    connects: int = 0
    disconnects: int = 0
    last_error: str | None = None
    backfilled_bars: int = 0
    rejected_messages: int = 0
    rate_limited: int = 0
    repeated_bars: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def up(self) -> None:
        self.connected = True
        self.connects += 1

    def lost(self, why: str, log: logging.Logger) -> None:
        if self.connected:
            self.disconnects += 1
        self.connected = False
        self.last_error = why[:300]
        log.warning("%s: %s", self.extra.get("venue", "source"), why)

    async def reject(self, sink: BarSink, reason: str, raw: str) -> None:
        """Hand a bad message to the feed (it journals it); a failing sink never ends us."""
        self.rejected_messages += 1
        with contextlib.suppress(Exception):
            await sink.rejected(f"{self.extra.get('venue', 'source')}: {reason}", raw[:300])

    def as_dict(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "last_error": self.last_error,
            "backfilled_bars": self.backfilled_bars,
            "rejected_messages": self.rejected_messages,
            "rate_limited": self.rate_limited,
            "repeated_bars": self.repeated_bars,
            **self.extra,
        }


async def frame_text(
    ws: aiohttp.ClientWebSocketResponse, msg: aiohttp.WSMessage, state: SourceState, sink: BarSink
) -> str | None:
    """A websocket message's text. A close or an error raises ``ConnectionError`` (the caller
    reconnects); any other kind of frame is rejected with its reason (None)."""
    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
        raise ConnectionError(f"closed by the server ({ws.close_code})")
    if msg.type is aiohttp.WSMsgType.ERROR:
        raise ConnectionError(f"websocket error: {ws.exception()}")
    if msg.type is not aiohttp.WSMsgType.TEXT:
        await state.reject(sink, f"unexpected {msg.type.name} frame", repr(msg.data))
        return None
    return str(msg.data)


class Tracker(Protocol):
    def accept(self, bars: Iterable[Bar]) -> tuple[list[Bar], list[Any]]: ...


async def pass_on(
    tracker: Tracker, sink: BarSink, state: SourceState, bars: list[Bar], *, pushed: bool
) -> None:
    """Closed bars through the tracker to the sink, each once and in order. A repeat of the
    last bar is what a backfill overlapping the stream gives: counted, not reported. A bar
    older than the last one is reported when the venue pushed it as closed (an out-of-order
    message); one implied by the stream or paged from REST after the fact is only counted."""
    accepted, dropped = tracker.accept(bars)
    for r in dropped:
        if r.reason == "out of order" and pushed:
            await state.reject(sink, r.reason, r.raw)
        elif r.reason in ("duplicate", "out of order"):
            state.repeated_bars += 1
        else:
            await state.reject(sink, r.reason, r.raw)
    if accepted:
        await sink.bars(accepted)


async def keep_connected(
    connect_once: Callable[[], Awaitable[None]],
    state: SourceState,
    backoff: Backoff,
    log: logging.Logger,
    *,
    rate_limited: type[Exception],
    describe_limit: Callable[[Any], str],
    errors: tuple[type[Exception], ...],
) -> None:
    """Run ``connect_once`` forever: a rate limit waits its ``retry_after_s`` (at least the
    backoff), any of ``errors`` is a lost connection retried with backoff. ``connect_once``
    resets ``backoff`` once it is connected."""

    def wait(retry_state: RetryCallState) -> float:
        exc, pause = failure(retry_state), backoff.next()
        if isinstance(exc, rate_limited):
            return max(getattr(exc, "retry_after_s", 0.0), pause)
        return pause

    def lost(retry_state: RetryCallState) -> None:
        exc = failure(retry_state)
        if isinstance(exc, rate_limited):
            state.rate_limited += 1
            state.lost(describe_limit(exc), log)
        else:
            state.lost(f"{type(exc).__name__}: {exc}", log)

    reconnecting = retrying(wait, on=(rate_limited, *errors), before_sleep=lost)

    async def connect() -> None:  # an ``async def``: tenacity awaits only those
        await connect_once()

    while True:  # a connection that ended without an error is opened again at once
        await reconnecting(connect)
