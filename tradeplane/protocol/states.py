"""States that cross actor boundaries as values (journal records, remote calls, status)."""

from __future__ import annotations

from enum import StrEnum


class TradingState(StrEnum):
    """ACTIVE trades; REDUCING only lets exposure shrink; HALTED lets only the flatten through.

    Risk owns it; the broker holds a copy for its own gate; both journal and exchange it as this
    enum (a ``str``, so the wire and the journal keep the plain value)."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"
