"""Interactive Brokers through the whole actor pipeline against the fake TWS (the real TWS socket
protocol on loopback, ib_async in the broker and the feed): bars from IB's real-time bars,
orders with orderRef = client order id, and across a lost IB link (1100, then 1102 with the
held events dropped) no order is lost or doubled: fills made meanwhile are found on resync."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import ib_async
import pytest

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import (
    bars_seen,
    feed_source,
    live_status,
    market_moving,
    running,
    strategy,
    wait_for_kind,
)
from tests.standins.tws import FakeTws
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.errors import OperationalError
from tradeplane.journal.reader import JournalReader
from tradeplane.supervisor import deployment

pytestmark = pytest.mark.usefixtures("ray_session")


def minutes_passing(fake: FakeTws, every_s: float = 0.4) -> AbstractContextManager[None]:
    return market_moving(lambda: fake.advance_bars(12), every_s)  # 12 five-second bars


def ib_config(state: Path, fake: FakeTws, client_id: int, **sections: Any) -> TradeplaneConfig:
    ib = {"host": "127.0.0.1", "port": fake.port, "client_id": client_id, "connect_timeout_s": 2}
    return make_config(
        state,
        symbols=("SPY",),
        venue={"kind": "ib", "ib": ib},
        # The fake TWS trades at any hour: the test must not depend on the NYSE being open.
        session={"calendar": "24/7"},
        **sections,
    )


def test_ib_orders_then_journal_and_tws_agree_exactly_across_a_lost_link(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with FakeTws() as fake, minutes_passing(fake):
        fake.set_price("SPY", 500.0)
        cfg = ib_config(
            state,
            fake,
            31,
            strategies=[
                strategy("flip", "Flipper", ["SPY"], every=1),
                # A buy resting below the market until the price falls during the outage.
                strategy("rest", "BuyOnce", ["SPY"], quantity=5, limit_fraction=0.95),
            ],
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


def test_client_id_in_use_at_deploy_then_start_refused_with_the_reason_and_nothing_left(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with FakeTws() as fake:
        other = ib_async.IB()
        other.connect("127.0.0.1", fake.port, clientId=33, timeout=5)  # another app on our id
        try:
            cfg = ib_config(state, fake, 33, strategies=[strategy("flip", "Flipper", ["SPY"])])
            with pytest.raises(OperationalError) as refused:
                deployment.deploy(cfg, timeout_s=60)
        finally:
            other.disconnect()
        placed = fake.placed_orders
    message = str(refused.value)
    assert "client id already in use (error 326)" in message and "venue.ib.client_id" in message
    assert "Traceback" not in message and "ray::" not in message
    assert deployment.leftover_children(cfg) == []
    with JournalReader.open(state) as j:
        (failed,) = j.events(kinds=["deployment_failed"])
    assert "error 326" in failed["data"]["reason"] and "Traceback" not in failed["data"]["reason"]
    assert placed == []


def test_ib_socket_drop_silence_and_data_loss_then_health_says_so_and_bars_stay_whole(
    tmp_path: Path,
) -> None:
    """TWS closes the socket, then goes silent, then loses market data (1101): each is seen in
    the health, recovered from without the operator, and the strategy still sees every minute
    exactly once and in order (the lost ones backfilled from history). API pacing holds."""
    state = tmp_path / "state"
    with FakeTws() as fake, minutes_passing(fake):
        fake.set_price("SPY", 500.0)
        cfg = ib_config(
            state,
            fake,
            35,
            strategies=[strategy("flip", "Flipper", ["SPY"], every=1)],
            supervisor={"feed_silence_s": 3.0, "recovery_cooldown_s": 0.1},
        )
        with running(cfg) as run:
            filled = wait_for_kind(state, "order_filled", 2)
            fake.set_silent(True)  # TWS hangs and drops every API socket: no one gets back in
            fake.disconnect_all()  # until it answers again
            eventually(
                lambda: live_status(run.name).get("health") == "broker_disconnected",
                timeout_s=20,
                what="the dropped socket seen",
            )
            fake.set_silent(False)
            eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=60)
            filled = wait_for_kind(state, "order_filled", filled + 2)

            fake.set_silent(True)
            eventually(
                lambda: live_status(run.name).get("health") in ("feed_silent", "recovering"),
                timeout_s=30,
                what="the silence seen",
            )
            fake.set_silent(False)
            eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=90)
            filled = wait_for_kind(state, "order_filled", filled + 2)

            backfilled = feed_source(run.name)["backfilled_bars"]
            fake.connectivity_lost()
            lost_at = fake.bar_clock
            eventually(lambda: fake.bar_clock >= lost_at + 180, timeout_s=10, what="3 minutes")
            fake.connectivity_restored(data_lost=True, drop_held=True)
            eventually(
                lambda: feed_source(run.name)["backfilled_bars"] >= backfilled + 2,
                timeout_s=30,
                what="the minutes lost in the 1101 backfilled",
            )
            eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=60)
            wait_for_kind(state, "order_filled", filled + 2)
        busiest = fake.max_client_msgs_per_s
    with JournalReader.open(state) as j:
        changes = [e["data"]["health"] for e in j.events(kinds=["health_changed"])]
    assert {"broker_disconnected", "feed_silent"} <= set(changes), changes
    seen = bars_seen(state, "flip")
    assert len(seen) >= 10
    gaps = [(a, b) for a, b in pairwise(seen) if b - a != timedelta(minutes=1)]
    assert gaps == [], f"minutes skipped, repeated or out of order: {gaps}"
    assert busiest < 45, f"{busiest} API messages in one second from one client"


def test_shadow_command_on_ib_then_nyse_session_in_every_line_and_no_order_reaches_tws(
    ray_address: str, tmp_path: Path
) -> None:
    from tests.integration.test_run_cli import run_env, run_shadow
    from tradeplane.core.session import make_calendar

    state = tmp_path / "shadow"
    nyse = make_calendar("XNYS")
    with FakeTws() as fake, minutes_passing(fake, every_s=0.3):
        fake.set_price("SPY", 500.0)
        env = run_env()
        env.update(IB_HOST="127.0.0.1", IB_PORT=str(fake.port), IB_CLIENT_ID="40")
        open_before = nyse.is_open(time.time())
        _, lines = run_shadow(ray_address, state, "ib", "SPY", env)
        open_after = nyse.is_open(time.time())
        placed, broker_msgs = fake.placed_orders, fake.received_from(40)
        feed_msgs = fake.received_from(41)
    if open_before == open_after:  # the bell did not ring during the run
        session, health = ("open", "ok") if open_before else ("closed", "idle_market_closed")
        assert all(f"session={session}" in ln for ln in lines), lines
        assert f"health={health}" in lines[-1], lines
    assert any("recent_intents=" in ln and "SPY" in ln for ln in lines), lines
    assert placed == [] and broker_msgs == [], "shadow mode sent something to TWS"
    assert any(msg_id == 50 for msg_id, _ in feed_msgs)  # the feed asked for real-time bars
    with JournalReader.open(state) as j:
        started = j.events(kinds=["deployment_started"])[-1]["data"]
        fills = j.fills()
        decisions = {i["decision"] for i in j.intents()}
        reasons = {i["reason"] for i in j.intents() if i["decision"] == "denied"}
    assert started["mode"] == "shadow"
    if open_before and open_after:
        assert fills  # virtual fills only
    elif not open_before and not open_after:  # risk holds every order until the open
        assert not fills and decisions == {"denied"} and reasons == {"MARKET_CLOSED"}


def test_ib_account_changed_by_hand_then_reconciliation_blocks_the_strict_start_else_adopts(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with FakeTws() as fake, minutes_passing(fake):
        fake.set_price("SPY", 500.0)
        cfg = ib_config(state, fake, 37, strategies=[strategy("once", "BuyOnce", ["SPY"])])
        with running(cfg):
            wait_for_kind(state, "order_filled", 1)
        # By hand in TWS while tradeplane is down: more shares, and an order of its own.
        fake.set_position("SPY", 130, 500.0)
        by_hand = ib_async.IB()
        by_hand.connect("127.0.0.1", fake.port, clientId=90, timeout=5)
        (spy,) = by_hand.qualifyContracts(ib_async.Stock("SPY", "SMART", "USD"))
        by_hand.placeOrder(spy, ib_async.LimitOrder("BUY", 2, 100.0))
        fake.wait_for(lambda: len(fake.placed_orders) == 2)
        by_hand.disconnect()

        strict = cfg.model_copy(
            update={
                "supervisor": cfg.supervisor.model_copy(
                    update={"fail_on_reconciliation_mismatch": True}
                )
            }
        )
        with pytest.raises(OperationalError, match="reconciliation mismatch"):
            deployment.deploy(strict, timeout_s=60)
        with running(cfg) as run:
            eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=30)
    with JournalReader.open(state) as j:
        reports = [e["data"] for e in j.events(kinds=["reconciliation"])]
    assert [r["action"] for r in reports] == ["none", "block_start", "adopt_venue"]
    blocked = reports[1]
    (mismatch,) = blocked["quantity_mismatches"]
    assert (mismatch["symbol"], mismatch["expected"], mismatch["venue"]) == ("SPY", 100, 130)
    (external,) = blocked["unexpected_orders"]
    assert external["symbol"] == "SPY" and external["client_order_id"].startswith("ib-perm-")
