"""Giving up, fail-closed: what the supervisor's core does when a recovery budget is spent, and
how it makes sure the halt holds (a broker that does not confirm it is asked again). Pure
functions over ``SupervisorCore``'s state; ``SupervisorCore.step`` calls them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeplane.core.health import Phase
from tradeplane.core.watchdog import Lifecycle, RecoveryDecision
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.states import TradingState
from tradeplane.supervisor.commands import (
    CancelOpenOrders,
    Command,
    HaltIssued,
    HaltRetryDue,
    JournalEvent,
    Observe,
    ScheduleWake,
    SetTradingState,
    StopRequested,
    StopStreaming,
    WakeRecovery,
)
from tradeplane.supervisor.model import ACTIVE_PHASES, GONE, HALTED, Halt

if TYPE_CHECKING:
    from tradeplane.supervisor.core import SupervisorCore


def give_up(
    core: SupervisorCore, decision: RecoveryDecision, reason: str | None = None
) -> list[Command]:
    """Fail closed (DESIGN §4: halt trading, then journal ``recovery_exhausted``): hold back
    everything queued at the broker first (every moment before it is one more order an
    earlier approval lets leave; the durable journal write waits behind the broker's own
    commits), then journal why, durably, stop the bars (so no new intent), cancel working
    orders where configured; then health ``failed``, or a full stop when so configured."""
    if core.halt is not None:
        return []
    why = reason or core.failure or decision.reason
    core.failure = why
    core.halt = Halt(decision.target, why)
    exhausted = {
        "target": decision.target,
        "attempts": decision.attempt,
        "max_attempts": decision.max_attempts,
        "window_s": core.policy.window_s,
        "reason": why,
        "then": core.on_recovery_exhausted,
    }
    # No recovery starts once we give up (``active`` is false from here); the phase moves
    # to failed when the halt has been issued (``HaltIssued``).
    cmds: list[Command] = [
        SetTradingState(TradingState.HALTED, dict(HALTED)),
        JournalEvent(EventKind.RECOVERY_EXHAUSTED, exhausted, durable=True),
        WakeRecovery(),
        StopStreaming(),
    ]
    if core.cancel_orders_on_exhausted:
        cmds.append(CancelOpenOrders("recovery exhausted"))
    return [*cmds, ScheduleWake(0.0, HaltIssued())]


def journal_lost(core: SupervisorCore, reason: str, journal_role: str = "journal") -> list[Command]:
    """The running deployment's journal is gone or replaced: no recovery (a restart could only
    open another journal), trading halted first (nothing waits on a journal that is not there),
    the record queued for a journal that may never come back; then health ``failed``."""
    child = core.children.get(journal_role)
    if child is not None:
        child.last_error = reason
        if child.state in (Lifecycle.RUNNING, Lifecycle.RESTARTING, Lifecycle.CREATING):
            child.move(Lifecycle.DEAD)
        if child.state is Lifecycle.DEAD:
            child.move(Lifecycle.GAVE_UP)
    if core.halt is not None:
        return []
    core.failure = reason
    core.halt = Halt(journal_role, reason, cause="journal_lost")
    core.queue.clear()
    return [
        SetTradingState(TradingState.HALTED, dict(HALTED, reason="journal_lost")),
        StopStreaming(),
        JournalEvent(EventKind.JOURNAL_LOST, {"reason": reason}),
        ScheduleWake(0.0, HaltIssued()),
    ]


def halt_issued(core: SupervisorCore) -> list[Command]:
    halt = core.halt
    if halt is None or core.phase not in ACTIVE_PHASES:
        return []  # a stop under way goes on to stopped
    core.set_phase(Phase.FAILED)
    cmds: list[Command] = [
        JournalEvent(EventKind.DEPLOYMENT_FAILED, {"reason": halt.reason}, run_state=True),
        Observe(),
    ]
    if core.on_recovery_exhausted == "stopped":
        cmds.append(ScheduleWake(0.0, StopRequested(f"recovery exhausted: {halt.reason}")))
    return cmds


def halt_answered(core: SupervisorCore, error: str | None) -> list[Command]:
    """The broker's answer to the halt. A refusal or a lost call is recorded and retried
    with bounded backoff until the broker confirms, or is known gone (dead, or killed by
    the stop): a gone broker sends nothing, and it is not restarted once we gave up."""
    halt = core.halt
    if halt is None or halt.confirmed or halt.given_up is not None:
        return []
    if error is None:
        halt.confirmed = True
        if not halt.failures:
            return []
        return [JournalEvent(EventKind.HALT_SUCCEEDED, {"attempts": halt.failures + 1})]
    halt.failures += 1
    failed: dict[str, Any] = {"error": error[:500], "attempt": halt.failures}
    gone = broker_gone(core)
    if gone is not None:
        halt.given_up = gone
        return [
            JournalEvent(EventKind.HALT_FAILED, failed | {"retry_in_s": None, "given_up": gone})
        ]
    delay = min(core.halt_retry_s * 2 ** (halt.failures - 1), core.halt_retry_max_s)
    return [
        JournalEvent(EventKind.HALT_FAILED, failed | {"retry_in_s": delay}),
        ScheduleWake(delay, HaltRetryDue()),
    ]


def halt_retry(core: SupervisorCore) -> list[Command]:
    halt = core.halt
    if halt is None or halt.confirmed or halt.given_up is not None:
        return []
    gone = broker_gone(core)
    if gone is not None:
        halt.given_up = gone
        stopped = {"attempt": halt.failures, "retry_in_s": None, "given_up": gone}
        return [JournalEvent(EventKind.HALT_FAILED, {"error": None} | stopped)]
    return [SetTradingState(TradingState.HALTED, dict(HALTED))]


def broker_gone(core: SupervisorCore) -> str | None:
    broker = core.children.get(core.broker_role)
    if broker is None or broker.state in GONE:
        return "broker is down: nothing leaves it, and it is not restarted after a halt"
    if core.phase in (Phase.STOPPING, Phase.STOPPED):
        return "deployment stopping: the broker is closed and killed"
    return None
