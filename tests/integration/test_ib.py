"""Interactive Brokers through the whole actor pipeline against the fake TWS (the real TWS socket
protocol on loopback, ib_async in the broker and the feed): bars from IB's real-time bars,
orders with orderRef = client order id, and across a lost IB link (1100, then 1102 with the
held events dropped) no order is lost or doubled: fills made meanwhile are found on resync."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import live_status, running, strategy, wait_for_kind
from tests.standins.tws import FakeTws
from tradeplane.journal.reader import JournalReader

pytestmark = pytest.mark.usefixtures("ray_session")


@contextmanager
def minutes_passing(fake: FakeTws, every_s: float = 0.4) -> Iterator[None]:
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every_s):
            fake.advance_bars(12)  # one minute of 5-second bars

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def test_ib_orders_then_journal_and_tws_agree_exactly_across_a_lost_link(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with FakeTws() as fake, minutes_passing(fake):
        fake.set_price("SPY", 500.0)
        cfg = make_config(
            state,
            symbols=("SPY",),
            strategies=[
                strategy("flip", "Flipper", ["SPY"], every=1),
                # A buy resting below the market until the price falls during the outage.
                strategy("rest", "BuyOnce", ["SPY"], quantity=5, limit_fraction=0.95),
            ],
            venue={
                "kind": "ib",
                "ib": {"host": "127.0.0.1", "port": fake.port, "client_id": 31, "symbols": ["SPY"]},
            },
        )
        with running(cfg) as run:
            wait_for_kind(state, "order_filled", 3)
            eventually(lambda: _resting(fake), timeout_s=20, what="the limit buy resting at TWS")
            fake.connectivity_lost()
            eventually(
                lambda: live_status(run.name).get("broker", {}).get("resyncing"),
                timeout_s=20,
                what="the broker gates orders while IB is away",
            )
            fake.set_price("SPY", 400.0)  # resting limit buys fill while TWS cannot tell us
            fake.connectivity_restored(data_lost=False, drop_held=True)
            eventually(
                lambda: not live_status(run.name).get("broker", {}).get("resyncing"),
                timeout_s=30,
                what="resynced with IB and trading again",
            )
            filled = wait_for_kind(state, "order_filled", 1)
            wait_for_kind(state, "order_filled", filled + 2)
        tws_fills = fake.executions()
        placed = [p.order_ref for p in fake.placed_orders]
    with JournalReader.open(state) as j:
        fills = j.fills()
        orders = {o["client_order_id"]: o for o in j.orders()}
    assert len(placed) == len(set(placed)), "an order was placed twice"
    assert set(placed) <= set(orders), "an order at TWS is missing from the journal"
    journal_exec = sorted(f["fill_id"] for f in fills)
    tws_exec = sorted(e.exec_id for e in tws_fills if e.order_ref in orders)
    rested = [e for e in tws_fills if e.order_ref == orders_by_strategy(orders, "rest")]
    assert rested and rested[0].price == pytest.approx(475.0), "the resting buy did not fill"
    assert journal_exec == tws_exec, "fills lost or doubled between TWS and the journal"
    fees = {f["fill_id"]: f["fee"] for f in fills}
    assert all(fees[e.exec_id] == pytest.approx(e.commission) for e in tws_fills)


def _resting(fake: FakeTws) -> bool:
    return any(o.order_type == "LMT" for o in fake.placed_orders)


def orders_by_strategy(orders: dict[str, dict[str, object]], name: str) -> str:
    (coid,) = [c for c, o in orders.items() if o["strategy"] == name]
    return coid
