"""The supervisor core's data: the deployment's phases, a child and its lifecycle, a queued
recovery, the fail-closed halt. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tradeplane.core.health import Phase
from tradeplane.core.statemachine import TransitionTable
from tradeplane.core.watchdog import LIFECYCLE, Lifecycle
from tradeplane.protocol.roles import ROLE_DRIFT, ROLE_TELEMETRY, is_strategy_role

PHASE = TransitionTable[Phase](
    "deployment phase",
    {
        Phase.STARTING: frozenset({Phase.READY, Phase.STOPPING, Phase.FAILED}),
        Phase.READY: frozenset({Phase.RUNNING, Phase.STOPPING, Phase.FAILED}),
        Phase.RUNNING: frozenset({Phase.STOPPING, Phase.FAILED}),
        Phase.STOPPING: frozenset({Phase.STOPPED, Phase.FAILED}),
        Phase.STOPPED: frozenset(),
        Phase.FAILED: frozenset({Phase.STOPPING, Phase.STOPPED}),
    },
)
# Actors whose loss never stops trading: out of restarts, they are suspended, not fatal.
NON_CRITICAL_ROLES = frozenset({ROLE_TELEMETRY, ROLE_DRIFT})
FEED_SILENCE = "feed_silence"  # recovery target: the broker/feed pair
VENUE_CONNECTION = "venue_connection"  # recovery target: resync after a reconnect
UNPLACEABLE = "strategy_unplaceable"  # why a strategy no live node can take is suspended
ACTIVE_PHASES = (Phase.READY, Phase.RUNNING)


@dataclass(slots=True)
class Child:
    role: str
    order: int
    state: Lifecycle = Lifecycle.CREATING
    restarts: int = 0
    last_heartbeat: dict[str, Any] = field(default_factory=dict)
    # Both on the supervisor's monotonic clock (the core's time): durations, never shown as times.
    last_heartbeat_mono: float | None = None
    last_error: str | None = None
    hung_since: float | None = None

    def move(self, to: Lifecycle) -> None:
        self.state = LIFECYCLE.check(self.state, to)

    @property
    def is_strategy(self) -> bool:
        return is_strategy_role(self.role)

    @property
    def suspendable(self) -> bool:
        """Out of restarts it is suspended and the deployment trades on."""
        return self.is_strategy or self.role in NON_CRITICAL_ROLES


@dataclass(frozen=True, slots=True)
class Recovery:
    """One queued recovery: restart ``roles`` (in order) at ``due_ts`` (the supervisor's
    monotonic clock)."""

    target: str
    roles: tuple[str, ...]
    due_ts: float
    attempt: int
    max_attempts: int
    cause: str


@dataclass(slots=True)
class Halt:
    """The fail-closed halt, once decided: whether the broker has confirmed it, how many of its
    calls failed, and why retrying stopped (``given_up``) if it did."""

    target: str
    reason: str
    cause: str = "recovery_exhausted"
    """What made the supervisor give up: ``recovery_exhausted`` or ``journal_lost``."""
    failures: int = 0
    confirmed: bool = False
    given_up: str | None = None


HALTED = {"active": True, "reason": "recovery_exhausted", "source": "supervisor"}
GONE = (Lifecycle.DEAD, Lifecycle.GAVE_UP, Lifecycle.STOPPING, Lifecycle.STOPPED)
