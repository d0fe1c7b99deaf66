"""The broker's resolver: settles what a crash or a timeout left open. Orders in submitting or
unknown are settled by asking the venue (never by guessing), for the start-up reconciliation and
continuously while trading. A collaborator of the broker actor with its own state; the decision
for each answer is ``core.unconfirmed.settle``."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from tradeplane.core.errors import TransientError
from tradeplane.core.execution import ExecutionCore, OrderEvent
from tradeplane.core.orders import OrderStatus
from tradeplane.core.unconfirmed import NOT_RECEIVED, Settle, settle
from tradeplane.venues.base import VenueClient


class Resolver:
    def __init__(
        self,
        core: ExecutionCore,
        venue: VenueClient,
        *,
        grace_s: float,
        in_submit: set[str],
        venue_failed: Callable[[Exception], None],
        journal_events: Callable[[list[OrderEvent | None]], Awaitable[None]],
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``in_submit``: the broker's set of orders whose submit call is still running (left
        alone: their own call settles them)."""
        self.core = core
        self.venue = venue
        self.grace_s = grace_s
        self.in_submit = in_submit
        self.venue_failed = venue_failed
        self.journal_events = journal_events
        self.now = now
        self.monotonic = monotonic
        # Per open order: its ``updated_ts`` when first looked at, how old that was then (the
        # wall clock's: it may have been written by an earlier incarnation), and the monotonic
        # reading then; from there on it ages on the monotonic clock (``unanswered_for``).
        self._first_look: dict[str, tuple[float, float, float]] = {}
        # The venue incarnation each open order's submit was addressed to (recorded by the
        # broker before it journals ``order_submitting``; forgotten once the order is closed).
        self.submitted_to: dict[str, int] = {}
        # How each order was settled (for the start-up reconciliation report).
        self.resolutions: deque[dict[str, Any]] = deque(maxlen=1000)
        self._reported: set[str] = set()

    async def loop(self, every_s: float = 0.25) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.resolve_once()

    async def resolve_once(self) -> list[str]:
        """Ask the venue about every order in submitting/unknown; close those it never saw once
        the grace period has passed, or at once when a restarted venue's answer is final
        (``core.unconfirmed.settle``). Returns those still waiting for an answer."""
        pending = [
            o
            for status in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN)
            for o in self.core.orders.in_status(status)
            if o.client_order_id not in self.in_submit
        ]
        waiting: list[str] = []
        for order in pending:
            coid = order.client_order_id
            try:
                answer = await self.venue.lookup(coid)
            except TransientError as exc:
                self.venue_failed(exc)
                return [o.client_order_id for o in pending]
            seen = answer.state
            action = settle(
                at_venue=seen is not None,
                unanswered_for_s=self.unanswered_for(coid, order.updated_ts),
                grace_s=self.grace_s,
                submitted_to=self.submitted_to.get(coid),
                answered_by=answer.incarnation,
                answers_final=self.venue.final_lookups,
            )
            if action is Settle.FOUND:  # its events arrive on the stream
                status = seen.status if seen is not None else "?"
                self._resolved(coid, f"found at venue ({status})", order.status.value)
            elif action is Settle.WAIT:
                waiting.append(coid)
            else:
                event = self.core.close_unconfirmed(coid, NOT_RECEIVED)
                await self.journal_events([event])
                if event is not None:
                    self._resolved(coid, f"rejected {NOT_RECEIVED}", order.status.value)
        return waiting

    def forget(self, coids: list[str]) -> None:
        """These orders are closed: no question about them is left to settle."""
        for coid in coids:
            self.submitted_to.pop(coid, None)
            self._first_look.pop(coid, None)

    def unanswered_for(self, coid: str, updated_ts: float) -> float:
        """How long the order has gone unanswered. The grace it is judged by is what keeps a
        submit still on its way from being declared lost, so a wall-clock step must not age it
        at once (nor, stepped back, hold it for an hour): its wall age is read once, when first
        looked at (clamped at 0: a time in the future is no age), and it ages on the monotonic
        clock from there."""
        mono = self.monotonic()
        look = self._first_look.get(coid)
        if look is None or look[0] != updated_ts:
            look = (updated_ts, max(0.0, self.now() - updated_ts), mono)
            self._first_look[coid] = look
        return look[1] + (mono - look[2])

    def _resolved(self, coid: str, outcome: str, was: str) -> None:
        if coid not in self._reported:
            self._reported.add(coid)
            self.resolutions.append(
                {"client_order_id": coid, "was": was, "outcome": outcome, "ts": self.now()}
            )

    async def reconcile_inputs(self, cursor: Callable[[], int], timeout_s: float) -> dict[str, Any]:
        """Settle every order left in submitting/unknown by asking the venue, wait until the
        event stream (``cursor``) has caught up with the venue, then report the venue's live
        positions and open orders."""
        deadline = time.monotonic() + timeout_s
        while await self.resolve_once():
            if time.monotonic() > deadline:
                raise TransientError("orders in submitting/unknown still unanswered by the venue")
            await asyncio.sleep(0.1)
        target = await self.venue.last_seq()
        while cursor() < target:
            if time.monotonic() > deadline:
                raise TransientError(f"event stream at {cursor()}, venue at {target}")
            await asyncio.sleep(0.02)
        positions = await self.venue.positions()
        open_orders = await self.venue.open_orders()
        return {
            "positions": positions,
            "open_orders": open_orders,
            "resolutions": list(self.resolutions),
            "cursor": cursor(),
        }
