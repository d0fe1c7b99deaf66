"""Clocks are injected into every core so tests control time instead of patching it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds for measuring intervals."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told: ``advance`` moves both readings together (time
    passing); ``step_wall`` moves the wall clock alone, either way (NTP or an operator setting
    the clock), as a real host's clock can, while the monotonic reading does not move."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        self._mono += seconds

    def step_wall(self, seconds: float) -> None:
        """The wall clock jumps by ``seconds`` (negative: back); no time passes."""
        self._now += seconds


WALL_STEP_S = 1.0


class WallStepWatch:
    """Notices the wall clock stepping (NTP, an operator): between two looks the wall reading
    moved more than ``tolerance_s`` away from the monotonic one. Compared look to look, so a
    clock being slewed (at most 0.5 ms per second) is never taken for a step."""

    def __init__(self, tolerance_s: float = WALL_STEP_S) -> None:
        self.tolerance_s = tolerance_s
        self._offset: float | None = None

    def look(self, wall: float, monotonic: float) -> float | None:
        """The step (seconds, negative: back) since the last look, or None."""
        offset, last = wall - monotonic, self._offset
        self._offset = offset
        if last is None or abs(offset - last) < self.tolerance_s:
            return None
        return offset - last


def utc_from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
