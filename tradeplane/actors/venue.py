"""The simulated venue as its own actor (paper mode), and the clients the broker talks through.

Running the paper venue in its own process makes it behave like an external venue: an order the
broker sent before dying is still worked, and a restarted broker has to ask about it. Its events
are read as one ordered stream by sequence number, so nothing is missed across a broker restart.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import ray

from tradeplane.actors.common import ROLE_VENUE, Peers, SupervisedActor, process_info
from tradeplane.config.models import SimVenueConfig
from tradeplane.core.clock import SystemClock
from tradeplane.core.errors import TransientError
from tradeplane.core.model import Bar, Envelope
from tradeplane.venues.sim import (
    SimVenue,
    VenueEvent,
    VenueOrderRequest,
    VenueOrderState,
    VenuePosition,
)
from tradeplane.venues.sim.snapshot import sim_venue_db


def open_sim_venue(path: Path | None, cfg: SimVenueConfig) -> SimVenue:
    return SimVenue.open(
        path,
        clock=SystemClock(),
        taker_fee_bps=cfg.taker_fee_bps,
        maker_fee_bps=cfg.maker_fee_bps,
        slippage_bps=cfg.slippage_bps,
        max_participation=cfg.max_participation,
    )


class StreamingSimVenue:
    """A ``SimVenue`` plus a wake-up for long-polling readers of its event stream."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self._changed = asyncio.Event()
        self.bars = 0
        self.stale_bars = 0
        self._last_bar_ts: dict[str, datetime] = {}

    def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        return self._wake(self.venue.submit(req))

    def cancel(self, client_order_id: str) -> list[VenueEvent]:
        return self._wake(self.venue.cancel(client_order_id))

    def on_bars(self, bars: list[Bar]) -> None:
        for bar in bars:
            last = self._last_bar_ts.get(bar.symbol)
            if last is not None and bar.ts <= last:
                # A restarted feed re-sends identical bars; matching one twice would fill
                # resting orders against a price that has passed.
                self.stale_bars += 1
                continue
            self._last_bar_ts[bar.symbol] = bar.ts
            self.bars += 1
            self._wake(self.venue.on_bar(bar))

    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[VenueEvent]:
        events = self.venue.events_since(seq, limit)
        if events or wait_s <= 0:
            return events
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), wait_s)
        except TimeoutError:
            return []
        return self.venue.events_since(seq, limit)

    def _wake(self, events: list[VenueEvent]) -> list[VenueEvent]:
        if events:
            self._changed.set()
        return events


@ray.remote
class SimVenueActor(SupervisedActor):
    def __init__(self, deployment: str, state_dir: str, cfg: SimVenueConfig) -> None:
        self.deployment = deployment
        self.sim = StreamingSimVenue(open_sim_venue(sim_venue_db(Path(state_dir)), cfg))

    async def ready(self) -> dict[str, Any]:
        return {"last_seq": self.sim.venue.last_seq}

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        return self.sim.submit(req)

    async def cancel(self, client_order_id: str) -> list[VenueEvent]:
        return self.sim.cancel(client_order_id)

    async def on_bars(self, envelope: Envelope) -> None:
        self.sim.on_bars(envelope.payload)

    async def events_since(self, seq: int, limit: int = 1000, wait_s: float = 1.0) -> list[Any]:
        return await self.sim.events_since(seq, limit, wait_s)

    async def order(self, client_order_id: str) -> VenueOrderState | None:
        return self.sim.venue.order(client_order_id)

    async def open_orders(self) -> list[VenueOrderState]:
        return self.sim.venue.open_orders()

    async def positions(self) -> dict[str, VenuePosition]:
        return self.sim.venue.positions()

    async def stats(self) -> dict[str, int]:
        return dict(self.sim.venue.stats)

    async def last_seq(self) -> int:
        return self.sim.venue.last_seq

    async def heartbeat(self) -> dict[str, Any]:
        return {
            "role": ROLE_VENUE,
            "ts": time.time(),
            "process": process_info(),
            "last_seq": self.sim.venue.last_seq,
            "bars": self.sim.bars,
            "stale_bars": self.sim.stale_bars,
            "stats": dict(self.sim.venue.stats),
            "open_orders": len(self.sim.venue.open_orders()),
        }

    async def close(self) -> None:
        self.sim.venue.close()


class VenueClient(Protocol):
    """What the broker needs from a venue. Every call may raise ``TransientError``."""

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]: ...
    async def cancel(self, client_order_id: str) -> list[VenueEvent]: ...
    async def order(self, client_order_id: str) -> VenueOrderState | None: ...
    async def open_orders(self) -> list[VenueOrderState]: ...
    async def positions(self) -> dict[str, VenuePosition]: ...
    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[VenueEvent]: ...
    async def last_seq(self) -> int: ...
    def on_bars(self, bars: list[Bar]) -> None: ...
    @property
    def connected(self) -> bool: ...
    def close(self) -> None: ...


class LocalVenueClient:
    """Shadow mode: an in-process simulated venue fed by the broker's bars. Nothing leaves."""

    def __init__(self, venue: SimVenue) -> None:
        self.sim = StreamingSimVenue(venue)

    @property
    def connected(self) -> bool:
        return True

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        return self.sim.submit(req)

    async def cancel(self, client_order_id: str) -> list[VenueEvent]:
        return self.sim.cancel(client_order_id)

    async def order(self, client_order_id: str) -> VenueOrderState | None:
        return self.sim.venue.order(client_order_id)

    async def open_orders(self) -> list[VenueOrderState]:
        return self.sim.venue.open_orders()

    async def positions(self) -> dict[str, VenuePosition]:
        return self.sim.venue.positions()

    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[VenueEvent]:
        return await self.sim.events_since(seq, limit, wait_s)

    async def last_seq(self) -> int:
        return self.sim.venue.last_seq

    def on_bars(self, bars: list[Bar]) -> None:
        self.sim.on_bars(bars)

    def close(self) -> None:
        self.sim.venue.close()


class RayVenueClient:
    """Paper mode on the sim venue: calls the venue actor with bounded timeouts."""

    def __init__(self, peers: Peers, *, call_timeout_s: float = 5.0) -> None:
        self.peers = peers
        self.call_timeout_s = call_timeout_s
        self._connected = True

    @property
    def connected(self) -> bool:
        return self._connected

    async def _call(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        handle = self.peers.get(ROLE_VENUE)
        if handle is None:
            self._connected = False
            raise TransientError("venue actor not found")
        try:
            result = await asyncio.wait_for(
                getattr(handle, method).remote(*args), timeout_s or self.call_timeout_s
            )
        except (ray.exceptions.RayActorError, TimeoutError) as exc:
            self.peers.forget(ROLE_VENUE)
            self._connected = False
            raise TransientError(f"venue {method} failed: {type(exc).__name__}") from exc
        self._connected = True
        return result

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        result: list[VenueEvent] = await self._call("submit", req)
        return result

    async def cancel(self, client_order_id: str) -> list[VenueEvent]:
        result: list[VenueEvent] = await self._call("cancel", client_order_id)
        return result

    async def order(self, client_order_id: str) -> VenueOrderState | None:
        result: VenueOrderState | None = await self._call("order", client_order_id)
        return result

    async def open_orders(self) -> list[VenueOrderState]:
        result: list[VenueOrderState] = await self._call("open_orders")
        return result

    async def positions(self) -> dict[str, VenuePosition]:
        result: dict[str, VenuePosition] = await self._call("positions")
        return result

    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[VenueEvent]:
        result: list[VenueEvent] = await self._call(
            "events_since", seq, limit, wait_s, timeout_s=wait_s + self.call_timeout_s
        )
        return result

    async def last_seq(self) -> int:
        result: int = await self._call("last_seq")
        return result

    def on_bars(self, bars: list[Bar]) -> None:
        """The venue actor gets its bars from the feed directly."""

    def close(self) -> None:
        pass
