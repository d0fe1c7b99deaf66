"""``tradeplane reconcile --example``: startup reconciliation shown end to end, offline.

No Ray, no credentials, no network: a journal and a simulated venue in a work directory, driven
the way the broker drives them, then the venue drifts the way real accounts do (a hand-placed
order, a position changed outside tradeplane, an order cancelled without the journal hearing of
it) and reconciliation names each difference.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tradeplane.actors.records import order_record
from tradeplane.core.clock import ManualClock
from tradeplane.core.execution import ExecutionCore, OrderEvent
from tradeplane.core.ids import client_order_id, intent_id, start_trigger
from tradeplane.core.model import Bar, Intent, OrderType, Side, SubmitOrder
from tradeplane.core.reconcile import (
    Holdings,
    ReconciliationReport,
    expected_from_journal,
    reconcile,
)
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.store import JournalStore
from tradeplane.protocol.events import EventKind
from tradeplane.venues.sim.model import VenueEvent, VenueOrderRequest
from tradeplane.venues.sim.snapshot import live_holdings, sim_venue_db
from tradeplane.venues.sim.venue import SimVenue

DEPLOYMENT = "reconcile-example"
STRATEGY = "example"
RUN_ID = "example-run"
BAR_S = 60.0


class _Broker:
    """The broker actor's submit path and venue stream, without the actor: every order is
    journaled as submitting before it leaves, and every venue event is journaled after."""

    def __init__(self, clock: ManualClock, journal: JournalStore, venue: SimVenue) -> None:
        self.clock = clock
        self.journal = journal
        self.venue = venue
        self.core = ExecutionCore(clock)
        self._ordinal = 0

    def place(
        self, symbol: str, side: Side, quantity: float, limit_price: float | None = None
    ) -> str:
        self._ordinal += 1
        iid = intent_id(DEPLOYMENT, STRATEGY, start_trigger(RUN_ID), self._ordinal)
        order_type = OrderType.MARKET if limit_price is None else OrderType.LIMIT
        now = self.clock.now()
        intent = Intent(
            intent_id=iid,
            client_order_id=client_order_id(iid),
            deployment=DEPLOYMENT,
            strategy=STRATEGY,
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit_price,
            ts=now,
            trigger=start_trigger(RUN_ID),
        )
        begun = self.core.begin_submit(SubmitOrder(intent, approved_ts=now, reference_price=None))
        if begun is None:
            raise RuntimeError(f"{intent.client_order_id} was already submitted")
        self.journal.commit([order_record(DEPLOYMENT, begun)])  # durable before it leaves
        request = VenueOrderRequest(
            intent.client_order_id, symbol, side, quantity, order_type, limit_price
        )
        events = self.venue.submit(request)
        self._journal(events, self.core.submitted(intent.client_order_id))
        return intent.client_order_id

    def bar(self, bar: Bar) -> None:
        self._journal(self.venue.on_bar(bar))

    def _journal(self, events: list[VenueEvent], submitted: OrderEvent | None = None) -> None:
        records = [] if submitted is None else [order_record(DEPLOYMENT, submitted)]
        for ev in events:
            for oe in self.core.apply_venue_event(ev):
                if oe.kind != EventKind.ORDER_FILL_DUPLICATE:
                    records.append(order_record(DEPLOYMENT, oe, venue_seq=ev.seq))
        if records:
            self.journal.commit(records)


def _next_bar(clock: ManualClock, symbol: str, price: float) -> Bar:
    """A closed one-minute bar around ``price``, ending now; the clock moves a minute on."""
    clock.advance(BAR_S)
    opened = datetime.fromtimestamp(clock.now() - BAR_S, tz=UTC)
    return Bar(symbol, opened, price, price * 1.01, price * 0.99, price, 1_000_000.0)


def _expected(state_dir: Path) -> Holdings:
    with JournalReader.open(state_dir) as reader:
        return expected_from_journal(reader.positions(), reader.orders(open_only=True))


def run_example(workdir: Path) -> tuple[ReconciliationReport, ReconciliationReport]:
    """Returns (report at a clean start, report after the venue drifted)."""
    state_dir = Path(workdir) / "state"
    clock = ManualClock()
    journal = JournalStore.open(state_dir, DEPLOYMENT)
    try:
        with SimVenue.open(sim_venue_db(state_dir), clock=clock) as venue:
            broker = _Broker(clock, journal, venue)
            broker.place("AAA", Side.BUY, 10.0)  # market: fills on the next bar
            resting = broker.place("AAA", Side.BUY, 5.0, limit_price=90.0)  # stays open
            broker.bar(_next_bar(clock, "AAA", 100.0))
            at_start = reconcile(
                _expected(state_dir), live_holdings(venue), checked_at=clock.now(), venue="sim"
            )

            # Drift, as it happens to real accounts; none of it reaches the journal.
            clock.advance(BAR_S)
            by_hand = [
                VenueOrderRequest("manual-1", "AAA", Side.SELL, 3.0, OrderType.LIMIT, 120.0),
                VenueOrderRequest("manual-2", "AAA", Side.BUY, 4.0, OrderType.MARKET),
                VenueOrderRequest("manual-3", "BBB", Side.BUY, 2.0, OrderType.MARKET),
            ]
            for request in by_hand:
                venue.submit(request)
            venue.on_bar(_next_bar(clock, "AAA", 100.0))
            venue.on_bar(_next_bar(clock, "BBB", 50.0))
            venue.cancel(resting)  # e.g. cancelled in the venue's web UI
            after_drift = reconcile(
                _expected(state_dir), live_holdings(venue), checked_at=clock.now(), venue="sim"
            )
    finally:
        journal.close()
    return at_start, after_drift
