"""The supervisor's pure core: children and their lifecycle, the recovery policy, and health.

The actor feeds it observations (a death, a heartbeat, a timeout, a silent feed, a lost venue
connection) with the current time and carries out the step it returns; no Ray here, so every rule
is unit-testable.

Recoveries are queued and carried out one at a time, dependencies first (journal before venue
before broker before risk before strategies before feed): a broker restarted before its journal
would only wait for it. A strategy has its own restart budget; when it is spent the strategy is
suspended and the others trade on. Any other budget spent means the deployment stops fail-closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tradeplane.core.health import (
    HealthChange,
    HealthFacts,
    HealthReading,
    HealthTracker,
    Phase,
    derive_health,
)
from tradeplane.core.statemachine import TransitionTable
from tradeplane.core.watchdog import LIFECYCLE, Lifecycle, RecoveryDecision, RecoveryPolicy

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
STRATEGY_PREFIX = "strategy/"
# Actors whose loss never stops trading: out of restarts, they are suspended, not fatal.
NON_CRITICAL_ROLES = frozenset({"telemetry"})
FEED_SILENCE = "feed_silence"  # recovery target: the broker/feed pair
VENUE_CONNECTION = "venue_connection"  # recovery target: resync after a reconnect
_ACTIVE = (Phase.READY, Phase.RUNNING)


@dataclass(slots=True)
class Child:
    role: str
    order: int
    state: Lifecycle = Lifecycle.CREATING
    restarts: int = 0
    last_heartbeat: dict[str, Any] = field(default_factory=dict)
    last_heartbeat_ts: float | None = None
    last_error: str | None = None
    hung_since: float | None = None

    def move(self, to: Lifecycle) -> None:
        self.state = LIFECYCLE.check(self.state, to)

    @property
    def is_strategy(self) -> bool:
        return self.role.startswith(STRATEGY_PREFIX)

    @property
    def suspendable(self) -> bool:
        """Out of restarts it is suspended and the deployment trades on."""
        return self.is_strategy or self.role in NON_CRITICAL_ROLES


@dataclass(frozen=True, slots=True)
class Recovery:
    """One queued recovery: restart ``roles`` (in order) at ``due_ts``."""

    target: str
    roles: tuple[str, ...]
    due_ts: float
    attempt: int
    max_attempts: int
    cause: str


class SupervisorCore:
    def __init__(
        self,
        roles: list[str],
        policy: RecoveryPolicy,
        *,
        heartbeat_timeout_s: float,
        feed_silence_s: float,
        strategy_max_restarts: int | None = None,
    ) -> None:
        self.children = {role: Child(role, i) for i, role in enumerate(roles)}
        self.policy = policy
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.feed_silence_s = feed_silence_s
        self.strategy_max_restarts = strategy_max_restarts
        self.phase = Phase.STARTING
        self.health = HealthTracker()
        self.failure: str | None = None
        self.exhausted: RecoveryDecision | None = None
        self.queue: dict[str, Recovery] = {}  # by target
        self.in_progress: str | None = None

    # -- phase and liveness ---------------------------------------------------------------------

    def set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            self.phase = PHASE.check(self.phase, phase)

    @property
    def active(self) -> bool:
        return self.phase in _ACTIVE

    def running(self, role: str) -> None:
        child = self.children[role]
        if child.state is not Lifecycle.RUNNING:
            child.move(Lifecycle.RUNNING)
        child.hung_since = None

    def on_heartbeat(self, role: str, beat: dict[str, Any], now: float) -> None:
        child = self.children[role]
        child.last_heartbeat, child.last_heartbeat_ts, child.hung_since = beat, now, None

    def on_heartbeat_missed(self, role: str, now: float) -> bool:
        """True when the child has not answered for ``heartbeat_timeout_s``: treat it as hung."""
        child = self.children[role]
        if child.state is not Lifecycle.RUNNING:
            return False
        if child.hung_since is None:
            child.hung_since = now
        return now - child.hung_since >= self.heartbeat_timeout_s

    # -- failures -------------------------------------------------------------------------------

    def on_death(self, role: str, now: float, error: str) -> RecoveryDecision | None:
        """A child died (or its restart failed). None: nothing to decide (already known, or
        the deployment is not running). Otherwise the policy's decision, already applied: a
        recovery queued, a strategy suspended, or the deployment's recovery exhausted."""
        child = self.children[role]
        if child.state not in (Lifecycle.RUNNING, Lifecycle.RESTARTING, Lifecycle.CREATING):
            return None
        child.move(Lifecycle.DEAD)
        child.last_error = error
        if not self.active:
            return None
        limit = self.strategy_max_restarts if child.is_strategy else None
        decision = self.policy.on_failure(role, now, max_attempts=limit)
        if decision.retry:
            self.queue[role] = Recovery(
                role,
                (role,),
                now + decision.delay_s,
                decision.attempt,
                decision.max_attempts,
                error,
            )
        elif child.suspendable:
            child.move(Lifecycle.SUSPENDED)
        else:
            child.move(Lifecycle.GAVE_UP)
            self._exhaust(decision)
        return decision

    def on_fault(
        self, target: str, now: float, cause: str, roles: tuple[str, ...] = ()
    ) -> RecoveryDecision:
        """A fault that is not a death: a silent feed (``roles`` = the broker/feed pair to
        restart, queued) or a venue reconnect to resync (no roles: the actor runs it)."""
        decision = self.policy.on_failure(target, now)
        if not decision.retry:
            self._exhaust(decision)
        elif roles:
            self.queue[target] = Recovery(
                target,
                roles,
                now + decision.delay_s,
                decision.attempt,
                decision.max_attempts,
                cause,
            )
        return decision

    def _exhaust(self, decision: RecoveryDecision) -> None:
        if self.exhausted is None:
            self.exhausted = decision
            self.failure = f"recovery exhausted: {decision.reason}"

    def silence_recovery_due(self) -> bool:
        """Whether a silent feed should get a recovery now (not while one is queued or runs)."""
        return (
            self.phase is Phase.RUNNING
            and self.exhausted is None
            and FEED_SILENCE not in self.queue
            and self.in_progress != FEED_SILENCE
        )

    # -- the recovery queue ---------------------------------------------------------------------

    def next_recovery(self, now: float) -> tuple[Recovery | None, float]:
        """The queued recovery to run next (dependencies first) and how long to wait for it;
        ``(None, 0)`` when nothing is queued. A later-due journal still goes before a due
        broker: the broker's restart would only wait for it."""
        if not self.queue or not self.active:
            return None, 0.0
        first = min(self.queue.values(), key=lambda r: min(self._order(x) for x in r.roles))
        return first, max(0.0, first.due_ts - now)

    def begin(self, recovery: Recovery) -> None:
        self.queue.pop(recovery.target, None)
        self.in_progress = recovery.target
        for role in recovery.roles:
            child = self.children[role]
            if child.state is not Lifecycle.RESTARTING:
                child.move(Lifecycle.RESTARTING)

    def suspend(self, role: str) -> None:
        """Known suspended already (a re-attached supervisor read it from the journal)."""
        child = self.children[role]
        if child.state is not Lifecycle.DEAD:
            child.move(Lifecycle.DEAD)
        child.move(Lifecycle.SUSPENDED)

    def restarted(self, role: str) -> None:
        child = self.children[role]
        child.restarts += 1
        self.running(role)

    def end(self) -> None:
        self.in_progress = None

    def _order(self, role: str) -> int:
        return self.children[role].order

    # -- queries --------------------------------------------------------------------------------

    def feed_should_start(self, feed_role: str) -> bool:
        """Desired vs observed: a running deployment's feed streams. True when it says it
        does not (a restarted feed, or a start that failed)."""
        feed = self.children.get(feed_role)
        return (
            self.phase is Phase.RUNNING
            and feed is not None
            and feed.state is Lifecycle.RUNNING
            and bool(feed.last_heartbeat)
            and not feed.last_heartbeat.get("streaming")
        )

    def down(self) -> tuple[str, ...]:
        up = (Lifecycle.RUNNING, Lifecycle.SUSPENDED)
        return tuple(c.role for c in self.children.values() if c.state not in up)

    def suspended(self) -> tuple[str, ...]:
        return tuple(c.role for c in self.children.values() if c.state is Lifecycle.SUSPENDED)

    def attempts(self, target: str, now: float) -> int:
        return self.policy.attempts(target, now)

    def observe_health(self, facts: HealthFacts) -> tuple[HealthReading, HealthChange | None]:
        reading = derive_health(facts)
        return reading, self.health.observe(reading, facts.now)
