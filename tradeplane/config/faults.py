"""Fault injection settings (chaos testing): which faults exist, who carries each out, and one
fault's spec as the config lists it. The injection itself is ``tradeplane.venues.sim.faults``."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from tradeplane.config.base import FrozenModel

FaultTarget = Literal["feed", "venue"]


class FaultKind(StrEnum):
    DROP_CONNECTION = "drop_connection"
    SILENT = "silent"
    DELAY_ACKS = "delay_acks"
    DUPLICATE_FILLS = "duplicate_fills"
    REJECT_ORDERS = "reject_orders"
    MALFORMED = "malformed"


FEED_FAULTS: frozenset[FaultKind] = frozenset({FaultKind.SILENT})


def fault_target(kind: FaultKind | str) -> FaultTarget:
    """Which actor carries out ``kind``: the feed (silence) or the venue actor (the rest)."""
    return "feed" if FaultKind(kind) in FEED_FAULTS else "venue"


class FaultSpec(FrozenModel):
    """One fault: what goes wrong, when (for the config schedule), for how long and how often."""

    kind: FaultKind
    """What goes wrong: ``drop_connection``, ``silent`` (feed), ``delay_acks``,
    ``duplicate_fills``, ``reject_orders`` or ``malformed``. Required."""
    at_s: float = Field(default=0.0, ge=0)
    """When the schedule injects it, in seconds after deployment start. Default 0."""
    duration_s: float | None = Field(default=None, gt=0)
    """How long it stays active, in seconds; unset = until cleared. Default unset."""
    delay_s: float = Field(default=2.0, gt=0)
    """``delay_acks`` only: how long each submit's answer is held back, in seconds. Default 2."""
    probability: float = Field(default=1.0, gt=0, le=1)
    """Share (0, 1] of calls, orders, fills or batches affected while active; the draws are
    seeded, so a run repeats exactly. Default 1 (all)."""

    @property
    def target(self) -> FaultTarget:
        return fault_target(self.kind)
