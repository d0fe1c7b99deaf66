"""The supervisor's pure core: children and their lifecycle, the recovery policy, health, and the
fail-closed halt.

The shell feeds it observations (``commands``: a death, a heartbeat, a timeout, a health reading,
a recovery's result, a stop request, the broker's answer to a halt) through ``step`` with the
current time and carries out the commands it returns; no Ray and no IO here, so every rule is
unit-testable.

Time: ``now`` throughout is the supervisor's *monotonic* reading. Everything the core keeps of
time is a duration within this process (heartbeat timeouts, recovery backoff, the restart
budget's window, how long a recovery took), so a wall-clock step can neither fire nor hold back
any of them. What is recorded with a wall time gets it from the shell.

Recoveries are queued and carried out one at a time, dependencies first (journal before venue
before broker before risk before strategies before feed): a broker restarted before its journal
would only wait for it. A strategy has its own restart budget; when it is spent the strategy is
suspended and the others trade on. Any other budget spent means the deployment stops fail-closed.
"""

from __future__ import annotations

from typing import Any

from tradeplane.core.health import (
    Health,
    HealthChange,
    HealthFacts,
    HealthReading,
    HealthTracker,
    Phase,
    derive_health,
)
from tradeplane.core.watchdog import LIFECYCLE, Lifecycle, RecoveryDecision, RecoveryPolicy
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import ROLE_BROKER, ROLE_FEED
from tradeplane.protocol.states import TradingState
from tradeplane.supervisor import halting
from tradeplane.supervisor.commands import (
    ChildDied,
    Command,
    EndResync,
    HaltFinished,
    HaltIssued,
    HaltRetryDue,
    HealthRead,
    HeartbeatMissed,
    HeartbeatReceived,
    JournalEvent,
    JournalWasLost,
    KillActor,
    Observation,
    Observe,
    RecoveryFinished,
    Resync,
    ResyncEnded,
    ResyncFinished,
    Rewire,
    SetTradingState,
    StartStreaming,
    StopDeployment,
    StopRequested,
    SuspendActor,
    TickEnded,
    WakeRecovery,
)
from tradeplane.supervisor.model import (
    ACTIVE_PHASES,
    FEED_SILENCE,
    HALTED,
    PHASE,
    UNPLACEABLE,
    VENUE_CONNECTION,
    Child,
    Halt,
    Recovery,
)

__all__ = ["FEED_SILENCE", "VENUE_CONNECTION", "Child", "Recovery", "SupervisorCore"]


class SupervisorCore:
    def __init__(
        self,
        roles: list[str],
        policy: RecoveryPolicy,
        *,
        heartbeat_timeout_s: float,
        feed_silence_s: float,
        strategy_max_restarts: int | None = None,
        cancel_orders_on_exhausted: bool = False,
        on_recovery_exhausted: str = "failed",
        halt_retry_s: float = 0.5,
        halt_retry_max_s: float = 10.0,
        broker_role: str = ROLE_BROKER,
        feed_role: str = ROLE_FEED,
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
        self.in_progress: set[str] = set()  # targets being recovered now
        self.cancel_orders_on_exhausted = cancel_orders_on_exhausted
        self.on_recovery_exhausted = on_recovery_exhausted
        self.halt_retry_s, self.halt_retry_max_s = halt_retry_s, halt_retry_max_s
        self.broker_role, self.feed_role = broker_role, feed_role
        self.halt: Halt | None = None
        self.resync_running = False
        self.restart_log: list[dict[str, Any]] = []

    # -- phase and liveness ---------------------------------------------------------------------

    def set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            self.phase = PHASE.check(self.phase, phase)

    @property
    def active(self) -> bool:
        """Recovering and watching: ready or running, and not giving up."""
        return self.phase in ACTIVE_PHASES and self.halt is None

    def running(self, role: str) -> None:
        child = self.children[role]
        if child.state is not Lifecycle.RUNNING:
            child.move(Lifecycle.RUNNING)
        child.hung_since = None

    def on_heartbeat(self, role: str, beat: dict[str, Any], now: float) -> None:
        child = self.children[role]
        child.last_heartbeat, child.last_heartbeat_mono, child.hung_since = beat, now, None

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
            self._queue(decision, (role,), now, error)
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
            self._queue(decision, roles, now, cause)
        return decision

    def _queue(
        self, decision: RecoveryDecision, roles: tuple[str, ...], now: float, cause: str
    ) -> None:
        due = now + decision.delay_s
        self.queue[decision.target] = Recovery(
            decision.target, roles, due, decision.attempt, decision.max_attempts, cause
        )

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
            and FEED_SILENCE not in self.in_progress
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

    def next_recoveries(self, now: float) -> tuple[list[Recovery], float]:
        """``next_recovery``, and with it every other due recovery of strategies alone when it
        is one: strategies depend on nothing but the state roles, so the strategies a lost node
        took with it come back together, not one after another."""
        first, wait_s = self.next_recovery(now)
        if first is None or wait_s > 0:
            return ([] if first is None else [first]), wait_s
        if not self._strategies_only(first):
            return [first], 0.0
        others = [
            r
            for r in self.queue.values()
            if r is not first and r.due_ts <= now and self._strategies_only(r)
        ]
        return [first, *others], 0.0

    def _strategies_only(self, recovery: Recovery) -> bool:
        return all(self.children[role].is_strategy for role in recovery.roles)

    def begin(self, recovery: Recovery) -> None:
        self.queue.pop(recovery.target, None)
        self.in_progress.add(recovery.target)
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

    def stopped(self, role: str) -> None:
        """The stop killed it (from any state: every state has a way to stopped)."""
        child = self.children[role]
        if child.state is Lifecycle.STOPPED:
            return
        if not LIFECYCLE.allowed(child.state, Lifecycle.STOPPED):
            child.move(Lifecycle.STOPPING)
        child.move(Lifecycle.STOPPED)

    def end(self, target: str) -> None:
        self.in_progress.discard(target)

    def _order(self, role: str) -> int:
        return self.children[role].order

    # -- queries --------------------------------------------------------------------------------

    def feed_should_start(self, feed_role: str) -> bool:
        """Desired vs observed: a running deployment's feed streams. True when it says it
        does not (a restarted feed, or a start that failed)."""
        feed = self.children.get(feed_role)
        return (
            self.phase is Phase.RUNNING
            and self.halt is None
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

    # -- the step function ----------------------------------------------------------------------

    def step(self, obs: Observation, now: float) -> list[Command]:
        """One observation in, the commands that follow from it out (to carry out in order)."""
        match obs:
            case ChildDied(role, cause):
                return self._died(role, cause, now)
            case HeartbeatReceived(role, beat):
                self.on_heartbeat(role, beat, now)
                return []
            case HeartbeatMissed(role):
                # Hung: killing it lets the death watch report it like any other death.
                return [KillActor(role)] if self.on_heartbeat_missed(role, now) else []
            case TickEnded():
                start = [StartStreaming()] if self.feed_should_start(self.feed_role) else []
                return start + self._venue_back(now)
            case HealthRead(reading, change):
                return self._health(reading, change, now)
            case RecoveryFinished():
                return self._recovered(obs, now)
            case ResyncFinished():
                return self._resynced(obs)
            case ResyncEnded():
                return self._resync_ended(obs, now)
            case StopRequested(reason):
                if self.phase is Phase.STOPPED:
                    return []
                self.set_phase(Phase.STOPPING)
                return [WakeRecovery(), StopDeployment(reason)]
            case HaltFinished(error):
                return halting.halt_answered(self, error)
            case HaltRetryDue():
                return halting.halt_retry(self)
            case HaltIssued():
                return halting.halt_issued(self)
            case JournalWasLost(reason):
                return halting.journal_lost(self, reason)
        raise TypeError(f"not an observation: {obs!r}")

    def _died(self, role: str, cause: str, now: float) -> list[Command]:
        decision = self.on_death(role, now, cause)
        if decision is None:
            return []
        died = {"role": role, "cause": cause, "attempt": decision.attempt, "retry": decision.retry}
        return [JournalEvent(EventKind.ACTOR_DIED, died), *self._after(decision, (role,))]

    def _after(self, decision: RecoveryDecision, roles: tuple[str, ...]) -> list[Command]:
        cmds: list[Command]
        if decision.retry:
            cmds = [WakeRecovery()]
        elif self.exhausted is not None:
            cmds = halting.give_up(self, decision)
        else:
            cmds = [
                SuspendActor(role, decision)
                for role in roles
                if self.children[role].state is Lifecycle.SUSPENDED
            ]
        return [*cmds, Observe()]

    def _health(
        self, reading: HealthReading, change: HealthChange | None, now: float
    ) -> list[Command]:
        cmds: list[Command] = []
        if change is not None:
            data = {
                "component": "deployment",
                "previous": change.previous.value,
                "health": change.current.value,
                "reason": change.reason,
            }
            cmds.append(JournalEvent(EventKind.HEALTH_CHANGED, data))
        # A silent feed while the market is open: the broker/feed pair restarted through the
        # policy (once queued, not again).
        if self.active and reading.health is Health.FEED_SILENT and self.silence_recovery_due():
            pair = tuple(r for r in (self.broker_role, self.feed_role) if r in self.children)
            decision = self.on_fault(FEED_SILENCE, now, reading.reason, pair)
            cmds += self._after(decision, pair)
        return cmds

    def _recovered(self, done: RecoveryFinished, now: float) -> list[Command]:
        cmds: list[Command]
        if done.error is not None:
            failed = {"target": done.target, "attempt": done.attempt, "error": done.error[:500]}
            cmds = [JournalEvent(EventKind.RECOVERY_FAILED, failed)]
            if done.unplaceable:
                cmds += self._unplaceable(done, now)
            for role in done.roles:
                if self.children[role].state is not Lifecycle.RUNNING:
                    cmds.append(KillActor(role))  # a half-started actor must not linger
                    cmds += self._died(role, f"restart failed: {done.error}", now)
            return cmds
        took = now - done.started_ts
        self.restart_log.append(
            {"target": done.target, "roles": list(done.roles), "cause": done.cause}
            | {"ts": done.started_wall, "took_s": took}
        )
        del self.restart_log[:-50]
        cmds = []
        if self.halt is not None and self.broker_role in done.roles:
            # A broker restarted after the give-up (its restart was under way) came up trading:
            # halted again before anyone resends to it.
            self.halt.confirmed, self.halt.given_up = False, None
            cmds.append(SetTradingState(TradingState.HALTED, dict(HALTED)))
        cmds += [Rewire(role) for role in done.roles]
        if self.feed_role in done.roles and self.phase is Phase.RUNNING and self.halt is None:
            # Not left to the next tick: every moment without bars is a moment not trading.
            cmds.append(StartStreaming())
        succeeded = {
            "target": done.target,
            "roles": list(done.roles),
            "attempt": done.attempt,
            "took_s": round(took, 3),
            "phases": done.phases,
        }
        cmds.append(JournalEvent(EventKind.RECOVERY_SUCCEEDED, succeeded))
        return cmds

    def _unplaceable(self, done: RecoveryFinished, now: float) -> list[Command]:
        """A strategy no live node can take is suspended at once (``strategy_unplaceable``):
        retrying would only wait for a node nobody has promised. Other roles go through the
        policy as a failed restart."""
        cmds: list[Command] = []
        for role in done.roles:
            child = self.children[role]
            if not child.is_strategy or child.state is not Lifecycle.RESTARTING:
                continue
            child.move(Lifecycle.DEAD)
            child.last_error = done.error
            child.move(Lifecycle.SUSPENDED)
            decision = RecoveryDecision(
                role,
                retry=False,
                delay_s=0.0,
                attempt=done.attempt,
                max_attempts=self.strategy_max_restarts or self.policy.max_attempts,
                reason=f"{UNPLACEABLE}: {done.error}",
            )
            cmds.append(SuspendActor(role, decision))
        return cmds

    # -- venue connection -----------------------------------------------------------------------

    def _venue_back(self, now: float) -> list[Command]:
        """The broker lost the venue and reached it again: reconcile before trading resumes."""
        broker = self.children.get(self.broker_role)
        beat = broker.last_heartbeat if broker is not None else {}
        if not (beat.get("resyncing") and beat.get("connected")) or self.resync_running:
            return []
        if self.phase is not Phase.RUNNING or self.exhausted is not None:
            return []
        decision = self.on_fault(VENUE_CONNECTION, now, "venue reconnected")
        if not decision.retry:
            return self._after(decision, ())
        self.resync_running = True
        return [Resync(decision)]

    def _resynced(self, done: ResyncFinished) -> list[Command]:
        decision = done.decision
        if done.error is not None or done.result is None:
            self.resync_running = False
            error = (done.error or "no result")[:500]
            failed = {"target": VENUE_CONNECTION, "attempt": decision.attempt, "error": error}
            return [JournalEvent(EventKind.RECOVERY_FAILED, failed)]
        if done.result["action"] == "block_start":
            self.resync_running = False
            reason = f"reconciliation mismatch after reconnect: {done.result['summary']}"
            return halting.give_up(self, decision, reason)
        return [EndResync(decision, done.started_ts, done.result["summary"])]

    def _resync_ended(self, done: ResyncEnded, now: float) -> list[Command]:
        self.resync_running = False
        attempt = done.decision.attempt
        if done.error is not None:
            failed = {"target": VENUE_CONNECTION, "attempt": attempt, "error": done.error[:500]}
            return [JournalEvent(EventKind.RECOVERY_FAILED, failed)]
        succeeded = {
            "target": VENUE_CONNECTION,
            "attempt": attempt,
            "took_s": round(now - done.started_ts, 3),
            "reconciliation": done.summary,
        }
        return [JournalEvent(EventKind.RECOVERY_SUCCEEDED, succeeded)]
