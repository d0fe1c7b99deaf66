"""What the supervisor's core is told (observations, past tense) and what it asks the shell to do
(commands, imperative). Plain data: the core never does IO, the shell never decides.

The shell feeds each observation to ``SupervisorCore.step`` with the current time and carries
out the commands it returns, in order; the outcome of a command that can fail comes back as
another observation (``RecoveryFinished``, ``ResyncFinished``, ``HaltFinished``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tradeplane.core.health import HealthChange, HealthReading
from tradeplane.core.watchdog import RecoveryDecision
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.states import TradingState

# -- observations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildDied:
    role: str
    cause: str


@dataclass(frozen=True, slots=True)
class HeartbeatReceived:
    role: str
    beat: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HeartbeatMissed:
    role: str


@dataclass(frozen=True, slots=True)
class TickEnded:
    """Every child that answered has been heard this tick: compare desired with observed (a
    running feed that does not stream, a venue connection back and waiting for a resync)."""


@dataclass(frozen=True, slots=True)
class HealthRead:
    reading: HealthReading
    change: HealthChange | None


@dataclass(frozen=True, slots=True)
class RecoveryFinished:
    """A queued recovery was carried out; ``error`` None when every role is running again."""

    target: str
    roles: tuple[str, ...]
    attempt: int
    cause: str
    started_ts: float
    """The supervisor's monotonic reading when it began (``took_s`` is measured from it)."""
    error: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    unplaceable: bool = False
    """No live node could take a role (its resources or labels): waiting will not help."""
    started_wall: float | None = None
    """The wall time it began, for the record (``status``'s restarts)."""


@dataclass(frozen=True, slots=True)
class ResyncFinished:
    """The reconcile after a venue reconnect: its result, or the error that stopped it."""

    decision: RecoveryDecision
    started_ts: float
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ResyncEnded:
    """The broker was told the resync is over (``error`` None) or the call failed."""

    decision: RecoveryDecision
    started_ts: float
    summary: Any
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StopRequested:
    reason: str


@dataclass(frozen=True, slots=True)
class HaltFinished:
    """The broker answered ``set_trading_state(HALTED)`` (``error`` None) or did not."""

    error: str | None = None


@dataclass(frozen=True, slots=True)
class HaltRetryDue:
    pass


@dataclass(frozen=True, slots=True)
class JournalWasLost:
    """The journal (re)started for the running deployment is not its journal (missing,
    another one, or shorter than acknowledged): fail closed, never recover onto it."""

    reason: str


@dataclass(frozen=True, slots=True)
class HaltIssued:
    """Every halt command has been carried out (whatever the broker answered)."""


Observation = (
    ChildDied
    | HeartbeatReceived
    | HeartbeatMissed
    | TickEnded
    | HealthRead
    | RecoveryFinished
    | ResyncFinished
    | ResyncEnded
    | StopRequested
    | HaltFinished
    | HaltRetryDue
    | HaltIssued
    | JournalWasLost
)

# -- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """Append an event (the run id is added by the shell). ``durable``: wait for the commit
    before the next command; ``run_state``: write the run's phase with it."""

    kind: EventKind
    data: dict[str, Any]
    durable: bool = False
    run_state: bool = False


@dataclass(frozen=True, slots=True)
class KillActor:
    role: str


@dataclass(frozen=True, slots=True)
class WakeRecovery:
    """A recovery was queued: the worker looks at the queue again."""


@dataclass(frozen=True, slots=True)
class Rewire:
    """``role`` is back: siblings resend what it missed, it learns who is suspended."""

    role: str


@dataclass(frozen=True, slots=True)
class StartStreaming:
    pass


@dataclass(frozen=True, slots=True)
class StopStreaming:
    pass


@dataclass(frozen=True, slots=True)
class Resync:
    """Reconcile with the reconnected venue after ``decision.delay_s``."""

    decision: RecoveryDecision


@dataclass(frozen=True, slots=True)
class EndResync:
    """Tell the broker orders may leave again; its answer comes back as ``ResyncEnded``."""

    decision: RecoveryDecision
    started_ts: float
    summary: Any


@dataclass(frozen=True, slots=True)
class SuspendActor:
    """Out of restarts and not critical: nobody sends to it any more; a strategy's working
    orders are cancelled."""

    role: str
    decision: RecoveryDecision


@dataclass(frozen=True, slots=True)
class SetTradingState:
    state: TradingState
    kill_switch: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CancelOpenOrders:
    reason: str


@dataclass(frozen=True, slots=True)
class ScheduleWake:
    """Feed ``then`` back to the core after ``delay_s``."""

    delay_s: float
    then: Observation


@dataclass(frozen=True, slots=True)
class Observe:
    """Derive health now (the phase or a child's state changed)."""


@dataclass(frozen=True, slots=True)
class StopDeployment:
    reason: str


Command = (
    JournalEvent
    | KillActor
    | WakeRecovery
    | Rewire
    | StartStreaming
    | StopStreaming
    | Resync
    | EndResync
    | SuspendActor
    | SetTradingState
    | CancelOpenOrders
    | ScheduleWake
    | Observe
    | StopDeployment
)
