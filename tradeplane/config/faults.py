"""Fault injection settings (chaos testing): which faults exist, who carries each out, and one
fault's spec as the config lists it, and the schedule that hands the configured faults out when
they fall due (pure; here rather than beside the injection, so the supervisor that runs the
schedule imports no venue). The injection itself is ``tradeplane.venues.sim.faults``."""

from __future__ import annotations

from collections.abc import Iterable
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


class FaultSchedule:
    """Faults from the config, each handed out once when its ``at_s`` has passed."""

    def __init__(self, specs: Iterable[FaultSpec]) -> None:
        self._pending = sorted(specs, key=lambda s: s.at_s)

    def due(self, elapsed_s: float) -> list[FaultSpec]:
        """Specs with ``at_s <= elapsed_s`` not handed out before, in ``at_s`` order."""
        n = 0
        while n < len(self._pending) and self._pending[n].at_s <= elapsed_s:
            n += 1
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    @property
    def pending(self) -> tuple[FaultSpec, ...]:
        return tuple(self._pending)

    def kinds_for(self, target: FaultTarget) -> frozenset[FaultKind]:
        """Kinds still to come that ``target`` carries out."""
        return frozenset(s.kind for s in self._pending if s.target == target)
