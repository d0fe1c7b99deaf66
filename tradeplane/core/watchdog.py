"""Restart policy for supervised children, and the child lifecycle table.

Pure: the supervisor feeds it deaths with the current time and gets back a decision. Restart
intensity is counted inside a sliding window (attempts older than the window no longer count),
so a long-running deployment does not exhaust a lifetime budget.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from tradeplane.core.statemachine import TransitionTable


class Lifecycle(StrEnum):
    CREATING = "creating"
    RUNNING = "running"
    DEAD = "dead"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    GAVE_UP = "gave_up"


_L = Lifecycle
LIFECYCLE = TransitionTable[Lifecycle](
    "actor lifecycle",
    {
        _L.CREATING: frozenset({_L.RUNNING, _L.DEAD, _L.STOPPING}),
        _L.RUNNING: frozenset({_L.DEAD, _L.STOPPING}),
        _L.DEAD: frozenset({_L.RESTARTING, _L.GAVE_UP, _L.STOPPING, _L.STOPPED}),
        _L.RESTARTING: frozenset({_L.RUNNING, _L.DEAD, _L.STOPPING}),
        _L.STOPPING: frozenset({_L.STOPPED, _L.DEAD}),
        _L.STOPPED: frozenset(),
        _L.GAVE_UP: frozenset({_L.STOPPED}),
    },
)


@dataclass(frozen=True, slots=True)
class RestartDecision:
    restart: bool
    delay_s: float
    attempt: int
    reason: str


@dataclass(slots=True)
class RestartPolicy:
    max_restarts: int
    window_s: float
    cooldown_s: float = 0.0
    _attempts: dict[str, deque[float]] = field(default_factory=dict)

    def on_death(self, child: str, now: float) -> RestartDecision:
        attempts = self._attempts.setdefault(child, deque())
        while attempts and now - attempts[0] > self.window_s:
            attempts.popleft()
        if len(attempts) >= self.max_restarts:
            return RestartDecision(
                False,
                0.0,
                len(attempts),
                f"{child}: {len(attempts)} restarts within {self.window_s:.0f}s "
                f"(max_restarts {self.max_restarts})",
            )
        attempts.append(now)
        return RestartDecision(True, self.cooldown_s, len(attempts), f"{child} died")

    def attempts(self, child: str, now: float) -> int:
        return sum(1 for t in self._attempts.get(child, ()) if now - t <= self.window_s)
