"""The broker's side of settling what a crash or a timeout left open: orders in submitting or
unknown are settled by asking the venue (never by guessing), for the start-up reconciliation
and continuously while trading."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.errors import TransientError
from tradeplane.core.execution import ExecutionCore
from tradeplane.core.orders import OrderStatus
from tradeplane.venues.base import VenueClient


class ResolvingMixin:
    """Mixed into the broker actor: reads its order book and venue, journals through it."""

    cfg: TradeplaneConfig
    core: ExecutionCore
    venue: VenueClient
    cursor: int
    resolutions: deque[dict[str, Any]]
    _in_submit: set[str]
    _reported: set[str]
    _ready: asyncio.Event

    def _venue_failed(self, exc: Exception) -> None:
        raise NotImplementedError

    async def _journal_events(self, events: list[Any]) -> None:
        raise NotImplementedError

    async def _resolve_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            await self._resolve_once()

    async def _resolve_once(self) -> list[str]:
        """Ask the venue about every order in submitting/unknown; close those it never saw once
        the grace period has passed. Returns those still waiting for an answer."""
        grace = self.cfg.supervisor.unconfirmed_grace_s
        now = time.time()
        pending = [
            o
            for status in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN)
            for o in self.core.orders.in_status(status)
            if o.client_order_id not in self._in_submit
        ]
        waiting: list[str] = []
        for order in pending:
            coid = order.client_order_id
            try:
                seen = await self.venue.order(coid)
            except TransientError as exc:
                self._venue_failed(exc)
                return [o.client_order_id for o in pending]
            if seen is not None:  # the venue has it; its events arrive on the stream
                self._resolved(coid, f"found at venue ({seen.status})", order.status.value)
                continue
            if now - order.updated_ts < grace:
                waiting.append(coid)
                continue
            event = self.core.close_unconfirmed(coid, "NOT_RECEIVED_BY_VENUE")
            await self._journal_events([event])
            if event is not None:
                self._resolved(coid, "rejected NOT_RECEIVED_BY_VENUE", order.status.value)
        return waiting

    def _resolved(self, coid: str, outcome: str, was: str) -> None:
        if coid not in self._reported:
            self._reported.add(coid)
            self.resolutions.append(
                {"client_order_id": coid, "was": was, "outcome": outcome, "ts": time.time()}
            )

    async def reconcile_inputs(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """For the start-up reconciliation: settle every order left in submitting/unknown by
        asking the venue (never guessing), catch the event stream up with the venue, then report
        the venue's live positions and open orders."""
        await self._ready.wait()
        deadline = time.monotonic() + timeout_s
        while await self._resolve_once():
            if time.monotonic() > deadline:
                raise TransientError("orders in submitting/unknown still unanswered by the venue")
            await asyncio.sleep(0.1)
        target = await self.venue.last_seq()
        while self.cursor < target:
            if time.monotonic() > deadline:
                raise TransientError(f"event stream at {self.cursor}, venue at {target}")
            await asyncio.sleep(0.02)
        positions = await self.venue.positions()
        open_orders = await self.venue.open_orders()
        return {
            "positions": positions,
            "open_orders": open_orders,
            "resolutions": list(self.resolutions),
            "cursor": self.cursor,
        }
