"""How many rejected venue messages reach the journal: a bound per source and window.

A venue that sends garbage (a broken adapter, a hostile endpoint, a flood after an upgrade)
must not grow the journal without bound. Per source, the first ``per_window`` rejections of a
window are journaled one by one (with their reason and a bounded copy of the message); the rest
are only counted, and once the window is over one summary says how many were left out and for
which reasons. So the journal grows by at most ``per_window + 1`` records per source and window,
whatever the venue sends, and every rejection is still counted.

Pure: no IO; the clock is injected (a monotonic one: windows are durations in one process).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_REASONS = 8
"""Distinct reasons counted per window and source; the rest fall under ``OTHER_REASONS``."""
REASON_CHARS = 120
"""A reason is counted by its first characters (reasons quote the message's values)."""
OTHER_REASONS = "(other reasons)"


@dataclass(frozen=True)
class SuppressedWindow:
    """A closed window in which some rejections were counted but not journaled one by one."""

    source: str
    window_s: float
    journaled: int
    suppressed: int
    reasons: dict[str, int]
    """Suppressed rejections by reason (at most ``MAX_REASONS`` + ``OTHER_REASONS``)."""

    def as_data(self) -> dict[str, Any]:
        """The payload of the ``venue_messages_suppressed`` journal record."""
        return {
            "source": self.source,
            "window_s": self.window_s,
            "journaled": self.journaled,
            "suppressed": self.suppressed,
            "reasons": dict(self.reasons),
        }


@dataclass
class _Window:
    start: float
    journaled: int = 0
    suppressed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.suppressed += 1
        key = reason[:REASON_CHARS]
        if key not in self.reasons and len(self.reasons) >= MAX_REASONS:
            key = OTHER_REASONS
        self.reasons[key] = self.reasons.get(key, 0) + 1


class RejectionLimiter:
    """Decides, per rejected message, whether it is journaled one by one or only counted."""

    def __init__(self, per_window: int, window_s: float, clock: Callable[[], float]) -> None:
        if per_window < 0:
            raise ValueError(f"per_window must be >= 0, got {per_window}")
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.per_window = per_window
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self.total: dict[str, int] = {}
        """Every rejection admitted, journaled or not, by source (for heartbeats)."""

    def admit(self, source: str, reason: str) -> tuple[bool, list[SuppressedWindow]]:
        """Count one rejection from ``source``: whether to journal it one by one, and the
        summaries of windows that closed before it (to journal first)."""
        now = self._clock()
        closed = self.flush()
        self.total[source] = self.total.get(source, 0) + 1
        window = self._windows.get(source)
        if window is None:
            window = self._windows[source] = _Window(start=now)
        if window.journaled < self.per_window:
            window.journaled += 1
            return True, closed
        window.count(reason)
        return False, closed

    def flush(self) -> list[SuppressedWindow]:
        """Close the windows that are over; the summaries of those that suppressed any. Call
        it now and then (a heartbeat) so a flood that stopped is still summarised."""
        now = self._clock()
        out: list[SuppressedWindow] = []
        for source, window in list(self._windows.items()):
            if now - window.start >= self.window_s:
                del self._windows[source]
                out.extend(self._summary(source, window))
        return out

    def drain(self) -> list[SuppressedWindow]:
        """Close every window, over or not (on stop): nothing counted is left unsaid."""
        out: list[SuppressedWindow] = []
        for source, window in self._windows.items():
            out.extend(self._summary(source, window))
        self._windows.clear()
        return out

    def _summary(self, source: str, window: _Window) -> list[SuppressedWindow]:
        if not window.suppressed:
            return []
        return [
            SuppressedWindow(
                source=source,
                window_s=self.window_s,
                journaled=window.journaled,
                suppressed=window.suppressed,
                reasons=dict(window.reasons),
            )
        ]
