"""The simulated venue as its own actor (paper mode), and the clients the broker talks through.

Running the paper venue in its own process makes it behave like an external venue: an order the
broker sent before dying is still worked, and a restarted broker has to ask about it. Its events
are read as one ordered stream by sequence number, so nothing is missed across a broker restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import ray

from tradeplane.actors.common import Peers, Remote, SupervisedActor, process_info
from tradeplane.config.models import SimVenueConfig
from tradeplane.core.clock import SystemClock
from tradeplane.core.errors import TransientError
from tradeplane.core.model import Bar, Envelope
from tradeplane.protocol.api import Method, P, R, VenueApi
from tradeplane.protocol.events import VenueEventKind
from tradeplane.protocol.roles import ROLE_VENUE
from tradeplane.telemetry.metrics import ActorMetrics
from tradeplane.venues.base import (
    OrderLookup,
    VenueEvent,
    VenueOrderRequest,
    VenueOrderState,
    VenuePosition,
)
from tradeplane.venues.sim import SimVenue
from tradeplane.venues.sim.faults import (
    INJECTED_REJECT,
    FaultBook,
    FaultKind,
    VenueUnavailable,
    malformed_message,
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
    """A ``SimVenue`` plus a wake-up for long-polling readers of its event stream, and the
    injected faults that make it misbehave like a real venue (see ``faults``).

    Every call the broker makes goes through here, so faults apply to it; bars (the market) and
    the supervisor's own reads (``venue``, heartbeat) are never affected."""

    def __init__(
        self,
        venue: SimVenue,
        faults: FaultBook | None = None,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.venue = venue
        self.faults = faults if faults is not None else FaultBook(SystemClock(), target="venue")
        self._sleep = sleep
        self._changed = asyncio.Event()
        self.bars = 0
        self.stale_bars = 0
        self._last_bar_ts: dict[str, datetime] = {}
        self._malformed_sent = 0

    # ------------------------------------------------------------------------------ faults

    def inject_fault(
        self, kind: str, duration_s: float | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        described = self.faults.inject(kind, duration_s, **(params or {}))
        if kind == FaultKind.DROP_CONNECTION:
            self._changed.set()  # long-polling readers must see the drop now, not at timeout
        return described

    def clear_faults(self, kind: str | None = None) -> int:
        return self.faults.clear(kind)

    def _refuse_if_dropped(self, call: str) -> None:
        if self.faults.hit(FaultKind.DROP_CONNECTION):
            raise VenueUnavailable(f"venue connection dropped (injected fault): {call} refused")

    # ------------------------------------------------------------------------------ calls

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        self._refuse_if_dropped("submit")
        if self.faults.hit(FaultKind.REJECT_ORDERS):
            events = self._wake(self.venue.reject(req, INJECTED_REJECT))
        else:
            events = self._wake(self.venue.submit(req))
        delay = self.faults.active(FaultKind.DELAY_ACKS)
        if delay is not None and self.faults.hit(FaultKind.DELAY_ACKS):
            await self._sleep(delay.delay_s)
            # The order is placed; a drop while its answer was held back loses the answer.
            self._refuse_if_dropped("submit answer")
        return events

    async def cancel(self, client_order_id: str) -> list[VenueEvent]:
        self._refuse_if_dropped("cancel")
        return self._wake(self.venue.cancel(client_order_id))

    async def order(self, client_order_id: str) -> VenueOrderState | None:
        self._refuse_if_dropped("order")
        return self.venue.order(client_order_id)

    async def open_orders(self) -> list[VenueOrderState]:
        self._refuse_if_dropped("open_orders")
        return self.venue.open_orders()

    async def positions(self) -> dict[str, VenuePosition]:
        self._refuse_if_dropped("positions")
        return self.venue.positions()

    async def last_seq(self) -> int:
        self._refuse_if_dropped("last_seq")
        return self.venue.last_seq

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

    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[Any]:
        """Events after ``seq``; with faults, also duplicated fills and malformed messages."""
        self._refuse_if_dropped("events_since")
        events = self.venue.events_since(seq, limit)
        if not events and wait_s > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._changed.wait()
            self._refuse_if_dropped("events_since")  # the drop may have begun while we waited
            events = self.venue.events_since(seq, limit)
        return self._garble(events)

    def _garble(self, events: list[VenueEvent]) -> list[Any]:
        if not events or not self.faults:
            return list(events)
        out: list[Any] = []
        for ev in events:
            out.append(ev)
            if ev.kind == VenueEventKind.ORDER_FILLED and self.faults.hit(
                FaultKind.DUPLICATE_FILLS
            ):
                out.append(ev)  # the same event again: same seq, same fill id
        if self.faults.hit(FaultKind.MALFORMED):
            # Carries the seq before the batch: a reader that advanced its cursor on it anyway
            # would still not skip a real event.
            bad = malformed_message(self._malformed_sent, events[0], events[0].seq - 1)
            self._malformed_sent += 1
            out.insert(0, bad)
        return out

    def _wake(self, events: list[VenueEvent]) -> list[VenueEvent]:
        if events:
            self._changed.set()
        return events


@ray.remote
class SimVenueActor(SupervisedActor):
    def __init__(
        self, deployment: str, state_dir: str, cfg: SimVenueConfig, *, epoch: int = 0
    ) -> None:
        self.deployment = deployment
        # This incarnation (the supervisor's epoch, strictly increasing across restarts). Its
        # store is opened in exclusive locking mode, so it exists only once every earlier
        # incarnation has let go of the store: none of them can place an order any more.
        self.epoch = epoch
        # Faults live in memory only: a restarted venue actor starts healthy.
        faults = FaultBook(SystemClock(), seed=cfg.seed, target="venue")
        self.sim = StreamingSimVenue(open_sim_venue(sim_venue_db(Path(state_dir)), cfg), faults)
        self.metrics = ActorMetrics("venue", deployment)
        self._requests = self.metrics.counter("venue_requests", "Requests the sim venue served")
        self.metrics.gauge(
            "venue_last_seq",
            "Last event the venue published",
            "1",
            lambda: [(float(self.sim.venue.last_seq), {})],
        )

    async def ready(self) -> dict[str, Any]:
        return {"last_seq": self.sim.venue.last_seq}

    async def inject_fault(
        self, kind: str, duration_s: float | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Make the venue misbehave (chaos testing); returns what is now active."""
        return self.sim.inject_fault(kind, duration_s, params)

    async def clear_faults(self, kind: str | None = None) -> int:
        return self.sim.clear_faults(kind)

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        self._requests.add(1, {"request": "submit"})
        if req.venue_incarnation is not None and req.venue_incarnation != self.epoch:
            # Addressed to an incarnation this one replaced: the broker may already have been
            # told that this order is not here, so it must never be placed (final_lookups).
            raise VenueUnavailable(
                f"submit {req.client_order_id} was addressed to venue incarnation "
                f"{req.venue_incarnation}, this is {self.epoch}: not placed"
            )
        return await self.sim.submit(req)

    async def cancel(self, client_order_id: str) -> list[VenueEvent]:
        self._requests.add(1, {"request": "cancel"})
        return await self.sim.cancel(client_order_id)

    async def on_bars(self, envelope: Envelope) -> None:
        self.sim.on_bars(envelope.payload)

    async def events_since(self, seq: int, limit: int = 1000, wait_s: float = 1.0) -> list[Any]:
        return await self.sim.events_since(seq, limit, wait_s)

    async def order(self, client_order_id: str) -> VenueOrderState | None:
        return await self.sim.order(client_order_id)

    async def lookup(self, client_order_id: str) -> OrderLookup:
        return OrderLookup(await self.sim.order(client_order_id), self.epoch)

    async def incarnation(self) -> int:
        return self.epoch

    async def open_orders(self) -> list[VenueOrderState]:
        return await self.sim.open_orders()

    async def positions(self) -> dict[str, VenuePosition]:
        return await self.sim.positions()

    async def stats(self) -> dict[str, int]:
        return dict(self.sim.venue.stats)

    async def last_seq(self) -> int:
        return await self.sim.last_seq()

    async def heartbeat(self) -> dict[str, Any]:
        return {
            "role": ROLE_VENUE,
            "epoch": self.epoch,
            "ts": time.time(),
            "process": process_info(),
            "last_seq": self.sim.venue.last_seq,
            "bars": self.sim.bars,
            "stale_bars": self.sim.stale_bars,
            "stats": dict(self.sim.venue.stats),
            "open_orders": len(self.sim.venue.open_orders()),
            "faults": self.sim.faults.describe(),
        }

    async def close(self) -> None:
        self.sim.venue.close()


class _InProcessLink:
    """Nothing to connect or keep up: the sim venue's stream numbers itself."""

    @property
    def final_lookups(self) -> bool:
        return False

    @property
    def incarnation(self) -> int | None:
        return None

    async def open(self, cursor: int) -> None:
        return None

    async def maintain(self) -> None:
        return None


class LocalVenueClient(_InProcessLink):
    """Shadow mode: an in-process simulated venue fed by the broker's bars. Nothing leaves."""

    def __init__(self, venue: SimVenue) -> None:
        self.sim = StreamingSimVenue(venue)

    @property
    def connected(self) -> bool:
        return True

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        return await self.sim.submit(req)

    async def cancel(self, client_order_id: str) -> list[VenueEvent]:
        return await self.sim.cancel(client_order_id)

    async def order(self, client_order_id: str) -> VenueOrderState | None:
        return await self.sim.order(client_order_id)

    async def lookup(self, client_order_id: str) -> OrderLookup:
        return OrderLookup(await self.sim.order(client_order_id))

    async def open_orders(self) -> list[VenueOrderState]:
        return await self.sim.open_orders()

    async def positions(self) -> dict[str, VenuePosition]:
        return await self.sim.positions()

    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[VenueEvent]:
        events: list[VenueEvent] = await self.sim.events_since(seq, limit, wait_s)
        return events

    async def last_seq(self) -> int:
        return await self.sim.last_seq()

    def on_bars(self, bars: list[Bar]) -> None:
        self.sim.on_bars(bars)

    def close(self) -> None:
        self.sim.venue.close()


def refused_by_venue(exc: BaseException) -> VenueUnavailable | None:
    """The ``VenueUnavailable`` inside a failed Ray call, however Ray wrapped it."""
    # The cause first: Ray's dual-class wrapper is a VenueUnavailable too, but its message is
    # the remote traceback.
    cause = getattr(exc, "cause", None)
    if isinstance(cause, VenueUnavailable):
        return cause
    return exc if isinstance(exc, VenueUnavailable) else None


class RayVenueClient(_InProcessLink):
    """Paper mode on the sim venue: calls the venue actor with bounded timeouts.

    Its lookups are final (``final_lookups``): each handle is bound to the incarnation of the
    venue actor behind it (asked once, when the handle is new; Ray never moves a handle's calls
    to another actor, and the venue's actors are not restarted by Ray), and a submit addressed
    to an incarnation goes only to that incarnation's handle."""

    def __init__(self, peers: Peers, *, call_timeout_s: float = 5.0) -> None:
        self.peers = peers
        self.call_timeout_s = call_timeout_s
        self._connected = True
        self._bound: tuple[Any, int] | None = None  # (handle, its venue incarnation)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def final_lookups(self) -> bool:
        return True

    @property
    def incarnation(self) -> int | None:
        return None if self._bound is None else self._bound[1]

    async def _venue(self) -> tuple[Remote[VenueApi], int]:
        """The venue actor's handle and its incarnation (asked once per new handle)."""
        venue = self.peers.remote(ROLE_VENUE)
        if venue is None:
            self._bound = None
            self._connected = False
            raise TransientError("venue actor not found")
        if self._bound is None or self._bound[0] is not venue.handle:
            self._bound = None
            incarnation = await self._answer(
                self.call_timeout_s, "incarnation", venue.call(VenueApi.incarnation)
            )
            self._bound = (venue.handle, incarnation)
        return venue, self._bound[1]

    async def _answer(self, timeout_s: float, name: str, ref: Awaitable[R]) -> R:
        try:
            async with asyncio.timeout(timeout_s):
                result = await ref
        except (ray.exceptions.RayActorError, TimeoutError) as exc:
            self.peers.forget(ROLE_VENUE)
            self._bound = None
            self._connected = False
            raise TransientError(f"venue {name} failed: {type(exc).__name__}") from exc
        except ray.exceptions.RayTaskError as exc:
            refusal = refused_by_venue(exc)
            if refusal is None:
                raise
            # The actor is alive (keep its handle); only our connection to it is down.
            self._connected = False
            raise TransientError(f"venue {name} refused: {refusal}") from exc
        self._connected = True
        return result

    async def _call(
        self,
        method: Method[VenueApi, P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        return await self._call_within(self.call_timeout_s, method, *args, **kwargs)

    async def _call_within(
        self,
        timeout_s: float,
        method: Method[VenueApi, P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        venue, _ = await self._venue()
        return await self._answer(timeout_s, method.__name__, venue.call(method, *args, **kwargs))

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        venue, incarnation = await self._venue()
        addressed = req.venue_incarnation
        if addressed is not None and addressed != incarnation:
            # The venue was replaced after the broker journaled this order for the earlier
            # one: not sent, so "not at the venue" is the truth (the resolver closes it).
            raise TransientError(
                f"venue submit not sent: addressed to incarnation {addressed}, "
                f"the venue is now {incarnation}"
            )
        return await self._answer(self.call_timeout_s, "submit", venue.call(VenueApi.submit, req))

    async def lookup(self, client_order_id: str) -> OrderLookup:
        return await self._call(VenueApi.lookup, client_order_id)

    async def cancel(self, client_order_id: str) -> list[VenueEvent]:
        return await self._call(VenueApi.cancel, client_order_id)

    async def order(self, client_order_id: str) -> VenueOrderState | None:
        return await self._call(VenueApi.order, client_order_id)

    async def open_orders(self) -> list[VenueOrderState]:
        return await self._call(VenueApi.open_orders)

    async def positions(self) -> dict[str, VenuePosition]:
        return await self._call(VenueApi.positions)

    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[VenueEvent]:
        timeout_s = wait_s + self.call_timeout_s
        events: list[VenueEvent] = await self._call_within(
            timeout_s, VenueApi.events_since, seq, limit, wait_s
        )
        return events

    async def last_seq(self) -> int:
        return await self._call(VenueApi.last_seq)

    def on_bars(self, bars: list[Bar]) -> None:
        """The venue actor gets its bars from the feed directly."""

    def close(self) -> None:
        pass
