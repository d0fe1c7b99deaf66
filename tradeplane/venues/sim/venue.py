"""The simulated venue: the paper matching engine, optionally made durable in SQLite.

Every call that changes state is written in one transaction before it returns, so whatever a
caller was told (accepted, filled, cancelled) survives a crash. Bars that change nothing but the
last traded price are not written: they arrive thousands of times a second, a stale last price is
refreshed by the next bar, and the pending prices ride along with the next write or ``close``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from tradeplane.core.clock import Clock
from tradeplane.core.errors import OperationalError
from tradeplane.core.model import Bar
from tradeplane.venues.sim.matching import PaperMatchingEngine
from tradeplane.venues.sim.model import (
    VenueEvent,
    VenueFill,
    VenueOrderRequest,
    VenueOrderState,
    VenuePosition,
)
from tradeplane.venues.sim.store import SimVenueStore


class SimVenue:
    """Thread-safe façade over ``PaperMatchingEngine`` with optional persistence."""

    def __init__(self, engine: PaperMatchingEngine, store: SimVenueStore | None) -> None:
        self._engine = engine
        self._store = store
        self._lock = threading.Lock()
        self._closed = False
        # Set when a write failed: memory is then ahead of disk and must not be trusted further.
        self._broken: str | None = None

    @classmethod
    def open(
        cls,
        path: Path | None,
        *,
        clock: Clock,
        taker_fee_bps: float = 5.0,
        maker_fee_bps: float = 2.0,
        slippage_bps: float = 1.0,
        max_participation: float | None = None,
    ) -> SimVenue:
        """``path=None`` keeps everything in memory; otherwise open or create the database."""
        store = None if path is None else SimVenueStore.open(Path(path))
        try:
            engine = PaperMatchingEngine(
                clock=clock,
                taker_fee_bps=taker_fee_bps,
                maker_fee_bps=maker_fee_bps,
                slippage_bps=slippage_bps,
                max_participation=max_participation,
                # With a store, history is read back from disk instead of held in memory.
                keep_events=None if store is None else 0,
            )
            if store is not None:
                engine.import_state(store.load())
        except BaseException:
            if store is not None:
                store.close()
            raise
        return cls(engine, store)

    @property
    def path(self) -> Path | None:
        return None if self._store is None else self._store.path

    # ----------------------------------------------------------------------------- commands

    def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        with self._lock:
            self._check_usable()
            return self._persist(self._engine.submit(req))

    def reject(self, req: VenueOrderRequest, reason: str) -> list[VenueEvent]:
        """Record ``req`` as rejected with ``reason`` (fault injection), durably, like a genuine
        venue rejection; see ``PaperMatchingEngine.reject``."""
        with self._lock:
            self._check_usable()
            return self._persist(self._engine.reject(req, reason))

    def cancel(self, client_order_id: str) -> list[VenueEvent]:
        with self._lock:
            self._check_usable()
            return self._persist(self._engine.cancel(client_order_id))

    def on_bar(self, bar: Bar) -> list[VenueEvent]:
        with self._lock:
            self._check_usable()
            events = self._engine.on_bar(bar)
            return self._persist(events) if events else events

    # ------------------------------------------------------------------------------ queries

    def order(self, client_order_id: str) -> VenueOrderState | None:
        with self._lock:
            self._check_open()
            return self._engine.order(client_order_id)

    def open_orders(self) -> list[VenueOrderState]:
        with self._lock:
            self._check_open()
            return self._engine.open_orders()

    def positions(self) -> dict[str, VenuePosition]:
        with self._lock:
            self._check_open()
            return self._engine.positions()

    def fills_for(self, client_order_id: str) -> list[VenueFill]:
        with self._lock:
            self._check_open()
            return self._engine.fills_for(client_order_id)

    def last_price(self, symbol: str) -> float | None:
        with self._lock:
            self._check_open()
            return self._engine.last_price(symbol)

    def events_since(self, seq: int, limit: int = 1000) -> list[VenueEvent]:
        with self._lock:
            self._check_open()
            if self._store is None:
                return self._engine.events_since(seq, limit)
            return self._store.events_since(seq, limit)

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._engine.last_seq

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return self._engine.stats

    # ------------------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Write pending last prices and release the database. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._store is None:
                return
            try:
                if self._broken is None and self._engine.has_unsaved_prices:
                    self._store.commit((), self._engine.take_changes())
            finally:
                self._store.close()

    def __enter__(self) -> SimVenue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------------------ helpers

    def _persist(self, events: list[VenueEvent]) -> list[VenueEvent]:
        if self._store is None:
            self._engine.take_changes()  # nobody reads the change set; do not let it grow
            return events
        try:
            self._store.commit(events, self._engine.take_changes())
        except BaseException as exc:
            self._broken = str(exc)
            raise
        return events

    def _check_open(self) -> None:
        if self._closed:
            where = "in-memory" if self._store is None else str(self._store.path)
            raise OperationalError(f"sim venue ({where}) is closed")

    def _check_usable(self) -> None:
        self._check_open()
        if self._broken is not None:
            raise OperationalError(
                f"sim venue {self.path} refused the call: an earlier write failed and memory may "
                f"be ahead of disk; restart to reload the durable state ({self._broken})"
            )
