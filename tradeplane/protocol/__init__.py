"""The vocabulary every part of tradeplane shares, and nothing else: role names, the journal's
event kinds, the trading state on the wire and the typed interfaces of the actors.

Ray-free and IO-free, so the pure cores, the shells, the CLI and the tests can all import it.
"""

from tradeplane.protocol.events import EventKind, event_kind
from tradeplane.protocol.roles import (
    NAMESPACE,
    ROLE_BROKER,
    ROLE_DRIFT,
    ROLE_FEED,
    ROLE_JOURNAL,
    ROLE_RECONCILER,
    ROLE_RISK,
    ROLE_SUPERVISOR,
    ROLE_TELEMETRY,
    ROLE_VENUE,
    STRATEGY_PREFIX,
    Role,
    actor_name,
    is_strategy_role,
    strategy_name,
    strategy_role,
)
from tradeplane.protocol.states import TradingState

__all__ = [
    "NAMESPACE",
    "ROLE_BROKER",
    "ROLE_DRIFT",
    "ROLE_FEED",
    "ROLE_JOURNAL",
    "ROLE_RECONCILER",
    "ROLE_RISK",
    "ROLE_SUPERVISOR",
    "ROLE_TELEMETRY",
    "ROLE_VENUE",
    "STRATEGY_PREFIX",
    "EventKind",
    "Role",
    "TradingState",
    "actor_name",
    "event_kind",
    "is_strategy_role",
    "strategy_name",
    "strategy_role",
]
