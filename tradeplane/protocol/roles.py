"""Role names of a deployment's actors, typed by the interface each one serves.

A ``Role`` is a ``str`` (the role's name: a dict key, a journal value, part of the Ray actor
name) that also carries, for the type checker only, the interface of the actor behind it. So
``outbox.send(ROLE_RISK, RiskApi.on_intents, env)`` is checked by mypy: the method must exist on
that role's interface and the arguments must fit it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from tradeplane.protocol.api import (
        BrokerApi,
        ChildApi,
        DriftApi,
        FeedApi,
        JournalApi,
        ReconcilerApi,
        RiskApi,
        StrategyApi,
        SupervisorApi,
        TelemetryApi,
        VenueApi,
    )

NAMESPACE = "tradeplane"
STRATEGY_PREFIX = "strategy/"

Api_co = TypeVar("Api_co", covariant=True)


class Role(str, Generic[Api_co]):
    """The name of an actor's role in a deployment; ``Api_co`` is the interface it serves."""

    __slots__ = ()


ROLE_JOURNAL: Role[JournalApi] = Role("journal")
ROLE_VENUE: Role[VenueApi] = Role("venue")
ROLE_BROKER: Role[BrokerApi] = Role("broker")
ROLE_RISK: Role[RiskApi] = Role("risk")
ROLE_FEED: Role[FeedApi] = Role("feed")
ROLE_RECONCILER: Role[ReconcilerApi] = Role("reconciler")
ROLE_SUPERVISOR: Role[SupervisorApi] = Role("supervisor")
ROLE_TELEMETRY: Role[TelemetryApi] = Role("telemetry")
ROLE_DRIFT: Role[DriftApi] = Role("drift")


def child_role(name: str) -> Role[ChildApi]:
    """Any child by name, when only the interface all children share is needed."""
    return Role(name)


def strategy_role(strategy: str) -> Role[StrategyApi]:
    return Role(f"{STRATEGY_PREFIX}{strategy}")


def is_strategy_role(role: str) -> bool:
    return role.startswith(STRATEGY_PREFIX)


def strategy_name(role: str) -> str:
    """The strategy's name from its role (``strategy/<name>``)."""
    if not is_strategy_role(role):
        raise ValueError(f"{role!r} is not a strategy role")
    return role[len(STRATEGY_PREFIX) :]


def actor_name(deployment: str, role: str) -> str:
    """The Ray actor name of ``role`` in ``deployment`` (namespace ``NAMESPACE``)."""
    return f"{deployment}/{role}"
