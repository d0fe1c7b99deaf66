"""The supervisor's pure core: children and their lifecycle, the restart policy, and health.

The actor feeds it observations (a death, a heartbeat, a timeout) with the current time and
carries out the step it returns; no Ray here, so every rule is unit-testable.
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
from tradeplane.core.watchdog import LIFECYCLE, Lifecycle, RestartDecision, RestartPolicy

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


class SupervisorCore:
    def __init__(
        self,
        roles: list[str],
        policy: RestartPolicy,
        *,
        heartbeat_timeout_s: float,
        feed_silence_s: float,
    ) -> None:
        self.children = {role: Child(role, i) for i, role in enumerate(roles)}
        self.policy = policy
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.feed_silence_s = feed_silence_s
        self.phase = Phase.STARTING
        self.health = HealthTracker()
        self.failure: str | None = None

    def set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            self.phase = PHASE.check(self.phase, phase)

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

    def on_death(self, role: str, now: float, error: str) -> RestartDecision | None:
        child = self.children[role]
        if child.state in (Lifecycle.STOPPING, Lifecycle.STOPPED, Lifecycle.GAVE_UP):
            return None
        if child.state is Lifecycle.DEAD:
            return None
        child.move(Lifecycle.DEAD)
        child.last_error = error
        if self.phase in (Phase.STOPPING, Phase.STOPPED, Phase.FAILED):
            return None
        decision = self.policy.on_death(role, now)
        if decision.restart:
            child.move(Lifecycle.RESTARTING)
            child.restarts += 1
        else:
            child.move(Lifecycle.GAVE_UP)
            self.failure = decision.reason
        return decision

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
        return tuple(c.role for c in self.children.values() if c.state is not Lifecycle.RUNNING)

    def restart_order(self, roles: list[str]) -> list[str]:
        """Dependencies first: journal, venue, broker, risk, strategies, feed."""
        return sorted(roles, key=lambda r: self.children[r].order)

    def observe_health(self, facts: HealthFacts) -> tuple[HealthReading, HealthChange | None]:
        reading = derive_health(facts)
        return reading, self.health.observe(reading, facts.now)
