"""Errors classified by how the system reacts to them (see DEVELOPERS brief).

- ``TransientError``: retry with backoff.
- ``OperationalError``: halt and tell the operator.
- ``StrategyError``: isolate the strategy that raised.
- ``InvariantError``: crash the actor so the supervisor restarts it.
"""

from __future__ import annotations


class TradeplaneError(Exception):
    """Base of every error raised on purpose by tradeplane."""


class TransientError(TradeplaneError):
    """A fault expected to clear by itself; the caller retries with backoff."""


class OperationalError(TradeplaneError):
    """A fault an operator must look at; the component halts and says why."""


class StrategyError(TradeplaneError):
    """User strategy code raised; that strategy is isolated, others keep running."""


class InvariantError(TradeplaneError):
    """Something that must never happen did; the actor crashes and is restarted."""


class IllegalTransition(InvariantError):
    """A state machine was asked to move along an edge its table does not have."""

    def __init__(self, machine: str, current: str, requested: str) -> None:
        super().__init__(f"{machine}: illegal transition {current} -> {requested}")
        self.machine = machine
        self.current = current
        self.requested = requested


class StaleEpochError(OperationalError):
    """A write or command from an actor incarnation that has since been replaced (its epoch is
    fenced): refused. The writer has been replaced, so it stops itself; it must never retry.
    ``role``: whose epoch was refused (the writer's own, or the one it acted for)."""

    def __init__(self, message: str, role: str = "") -> None:
        super().__init__(message)
        self.role = role

    def __reduce__(self) -> tuple[type[StaleEpochError], tuple[str, str]]:
        return (type(self), (str(self), self.role))


class JournalLostError(OperationalError):
    """The journal found is not the one a running deployment writes to (missing, another one,
    or shorter than what was acknowledged): refused, never opened fresh in its place."""


class InvalidMarketData(TradeplaneError):
    """A bar or price failed validation; it is rejected with this reason and never used."""


def root_cause(exc: BaseException) -> BaseException:
    """The exception a remote call failed with, however many Ray task errors wrap it (each
    carries the one it wraps as ``cause``): its message, not a chain of remote tracebacks,
    is what an operator needs to read."""
    for _ in range(16):
        cause = getattr(exc, "cause", None)
        if not isinstance(cause, BaseException) or cause is exc:
            break
        exc = cause
    return exc
