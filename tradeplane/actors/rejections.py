"""Rejected venue messages as journal records, bounded per source (``RejectionLimiter``): the
feed's and the broker's shared way of journaling what a venue sent that was not used."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tradeplane.actors.records import event_record
from tradeplane.config.models import JournalConfig
from tradeplane.core.rejection_limit import RejectionLimiter, SuppressedWindow
from tradeplane.journal.records import JournalRecord
from tradeplane.protocol.events import EventKind


class BoundedRejections:
    """``venue_message_rejected`` records, the first few per window and source; the rest as one
    ``venue_messages_suppressed`` count per window."""

    def __init__(
        self,
        deployment: str,
        cfg: JournalConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.deployment = deployment
        self.limiter = RejectionLimiter(
            cfg.venue_rejections_per_window, cfg.venue_rejection_window_s, clock
        )
        self._wall = wall
        self.suppressed = 0

    def rejected(
        self,
        source: str,
        reason: str,
        data: dict[str, Any] | Callable[[], dict[str, Any]],
    ) -> list[JournalRecord]:
        """The records to journal for one rejection (``data``: the record's payload, or what
        makes it, called only when the rejection is journaled one by one)."""
        one, closed = self.limiter.admit(source, reason)
        out = self._summaries(closed)
        if one:
            out.append(
                event_record(
                    self.deployment,
                    EventKind.VENUE_MESSAGE_REJECTED,
                    self._wall(),
                    data() if callable(data) else data,
                )
            )
        else:
            self.suppressed += 1
        return out

    def due(self) -> list[JournalRecord]:
        """Summaries of the windows that are over (call from a periodic tick)."""
        return self._summaries(self.limiter.flush())

    def final(self) -> list[JournalRecord]:
        """Summaries of every window, over or not (call on stop)."""
        return self._summaries(self.limiter.drain())

    def _summaries(self, windows: list[SuppressedWindow]) -> list[JournalRecord]:
        ts = self._wall()
        return [
            event_record(self.deployment, EventKind.VENUE_MESSAGES_SUPPRESSED, ts, w.as_data())
            for w in windows
        ]
