"""The watchdog policy: when to retry a recovery, how long to wait first, and when to give up.
Plus the lifecycle table of a supervised child.

Pure: the supervisor reports each failure (a death, a silent feed, a lost venue connection) with
the current time and gets back a decision. Restart intensity is counted OTP-style inside a sliding
window per target, so attempts older than ``window_s`` no longer count and a long-running
deployment does not spend a lifetime budget. The first attempt goes at once; further ones wait
``cooldown_s``, growing exponentially with jitter (so restarted peers do not retry in lock-step),
capped.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from tradeplane.core.statemachine import TransitionTable


class Lifecycle(StrEnum):
    CREATING = "creating"
    RUNNING = "running"
    DEAD = "dead"
    RESTARTING = "restarting"
    SUSPENDED = "suspended"
    STOPPING = "stopping"
    STOPPED = "stopped"
    GAVE_UP = "gave_up"


_L = Lifecycle
LIFECYCLE = TransitionTable[Lifecycle](
    "actor lifecycle",
    {
        _L.CREATING: frozenset({_L.RUNNING, _L.DEAD, _L.STOPPING}),
        _L.RUNNING: frozenset({_L.DEAD, _L.RESTARTING, _L.STOPPING}),
        _L.DEAD: frozenset({_L.RESTARTING, _L.GAVE_UP, _L.SUSPENDED, _L.STOPPING, _L.STOPPED}),
        _L.RESTARTING: frozenset({_L.RUNNING, _L.DEAD, _L.STOPPING}),
        _L.SUSPENDED: frozenset({_L.STOPPING, _L.STOPPED}),
        _L.STOPPING: frozenset({_L.STOPPED, _L.DEAD}),
        _L.STOPPED: frozenset(),
        _L.GAVE_UP: frozenset({_L.STOPPING, _L.STOPPED}),
    },
)


@dataclass(frozen=True, slots=True)
class RecoveryDecision:
    """``retry``: attempt number ``attempt`` after ``delay_s``; otherwise the budget is spent
    (or recovery is off) and ``reason`` says so."""

    target: str
    retry: bool
    delay_s: float
    attempt: int
    max_attempts: int
    reason: str


@dataclass(slots=True)
class RecoveryPolicy:
    max_attempts: int
    window_s: float
    cooldown_s: float = 0.0
    backoff_max_s: float = 30.0
    jitter: float = 0.2
    auto_recover: bool = True
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _attempts: dict[str, deque[float]] = field(default_factory=dict)

    def on_failure(
        self, target: str, now: float, *, max_attempts: int | None = None
    ) -> RecoveryDecision:
        """A failure of ``target`` at ``now``: retry (counted) or give up.

        ``max_attempts`` overrides the budget for this target (strategies have their own)."""
        limit = self.max_attempts if max_attempts is None else max_attempts
        attempts = self._window(target, now)
        if not self.auto_recover:
            return RecoveryDecision(target, False, 0.0, 0, limit, f"{target}: auto_recover is off")
        if len(attempts) >= limit:
            return RecoveryDecision(
                target,
                False,
                0.0,
                len(attempts),
                limit,
                f"{target}: {len(attempts)} recovery attempts within {self.window_s:g}s "
                f"(max_recovery_attempts {limit})",
            )
        attempts.append(now)
        n = len(attempts)
        return RecoveryDecision(target, True, self.delay_for(n), n, limit, f"{target} failed")

    def delay_for(self, attempt: int) -> float:
        """The first attempt in the window goes at once (most failures are one-offs and every
        moment down is a moment not trading); each further one waits ``cooldown_s`` doubled per
        attempt before it, jittered, then capped."""
        if attempt <= 1 or self.cooldown_s <= 0:
            return 0.0
        base = min(self.backoff_max_s, self.cooldown_s * 2 ** (attempt - 2))
        spread = 1.0 + self.jitter * (2.0 * self.rng.random() - 1.0)
        return min(self.backoff_max_s, base * spread)

    def targets(self) -> list[str]:
        """Every target that has had an attempt (inside the window or not)."""
        return list(self._attempts)

    def attempts(self, target: str, now: float) -> int:
        return len(self._window(target, now))

    def _window(self, target: str, now: float) -> deque[float]:
        attempts = self._attempts.setdefault(target, deque())
        while attempts and now - attempts[0] > self.window_s:
            attempts.popleft()
        return attempts
