"""The Interactive Brokers adapter's pure parts: what TWS's order states mean in our order table,
what its connectivity codes do to the connection (no IO).
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from typing import Any

from tradeplane.core.orders import OrderStatus
from tradeplane.core.statemachine import TransitionTable

# TWS order states (ib_async ``OrderStatus.status``) -> ours. ``filled`` quantities come from
# executions, not from these, so a partial fill is seen through its execDetails.
IB_STATUS: dict[str, OrderStatus] = {
    "ApiPending": OrderStatus.PENDING_SUBMIT,
    "PendingSubmit": OrderStatus.PENDING_SUBMIT,
    "PreSubmitted": OrderStatus.ACCEPTED,
    "Submitted": OrderStatus.ACCEPTED,
    "PendingCancel": OrderStatus.PENDING_CANCEL,
    "ApiCancelled": OrderStatus.CANCELLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Filled": OrderStatus.FILLED,
    "Inactive": OrderStatus.REJECTED,
}


def map_status(ib_status: str) -> OrderStatus:
    """Our status for a TWS order state; an unknown state is ``unknown`` (asked again, never
    guessed)."""
    return IB_STATUS.get(ib_status, OrderStatus.UNKNOWN)


# Codes TWS sends with reqId -1 about its own link to IB's servers. The API socket stays up
# through all of them (ib_async fires no disconnect), so they must be acted on here.
CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_KEPT = 1102
CLIENT_ID_IN_USE = 326
ORDER_ERRORS_BENIGN = frozenset({202})  # "order cancelled": an answer to our cancel


class Link(StrEnum):
    DOWN = "down"  # no API socket
    UP = "up"  # socket up, TWS connected to IB
    LOST = "lost"  # socket up, TWS lost IB (1100): nothing may be sent
    RESYNCING = "resyncing"  # IB back (1101/1102): reconcile before trading again


LINK = TransitionTable[Link](
    "ib_link",
    {
        Link.DOWN: frozenset({Link.UP}),
        Link.UP: frozenset({Link.LOST, Link.DOWN}),
        Link.LOST: frozenset({Link.RESYNCING, Link.DOWN}),
        Link.RESYNCING: frozenset({Link.UP, Link.LOST, Link.DOWN}),
    },
)


class LinkState:
    """The IB link as TWS reports it; ``needs_resubscribe`` after a 1101 (data lost)."""

    def __init__(self) -> None:
        self.state = Link.DOWN
        self.needs_resubscribe = False
        self.events: deque[tuple[Link, str]] = deque(maxlen=50)

    def _move(self, to: Link, why: str) -> None:
        self.state = LINK.check(self.state, to)
        self.events.append((to, why))

    def connected(self) -> None:
        self._move(Link.UP, "connected")

    def disconnected(self, why: str) -> None:
        if self.state is not Link.DOWN:
            self._move(Link.DOWN, why)

    def on_code(self, code: int) -> bool:
        """Apply a connectivity code; True when it changed the link."""
        if code == CONNECTIVITY_LOST and self.state in (Link.UP, Link.RESYNCING):
            self._move(Link.LOST, "1100 connectivity lost")
            return True
        if code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT) and self.state is Link.LOST:
            self.needs_resubscribe = self.needs_resubscribe or code == RESTORED_DATA_LOST
            self._move(Link.RESYNCING, f"{code} connectivity restored")
            return True
        return False

    def resynced(self) -> None:
        """Executions and orders were reconciled (and data resubscribed): trade again."""
        self.needs_resubscribe = False
        self._move(Link.UP, "resynced")

    @property
    def may_send(self) -> bool:
        return self.state is Link.UP


ACCOUNT_TAGS = {"NetLiquidation": "net_liquidation", "TotalCashValue": "total_cash"}
"""The account values preflight reports, by TWS tag."""


def account_figures(rows: list[tuple[str, str, str, str]], account: str) -> dict[str, Any]:
    """``net_liquidation``, ``total_cash`` and their ``currency`` from TWS account values or
    summary rows ``(account, tag, value, currency)`` of ``account``. TWS repeats some tags per
    currency; the ``BASE`` row (the account's base currency, in total) wins when there is one.
    A value that is not a number is left out, never guessed."""
    out: dict[str, Any] = {}
    for acct, tag, value, currency in rows:
        key = ACCOUNT_TAGS.get(tag)
        if key is None or (account and acct and acct != account):
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if key in out and currency != "BASE":
            continue
        out[key] = number
        if currency != "BASE":
            out.setdefault("currency", currency)
    return out
