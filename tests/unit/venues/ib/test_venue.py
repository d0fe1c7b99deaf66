"""The IB venue client against the fake TWS: the broker's ordered event stream from TWS's order
states, executions and commissions; nothing lost or doubled across a lost link."""

from __future__ import annotations

import asyncio

import pytest

from tests.standins.tws import FakeTws
from tests.unit.venues.support import until
from tradeplane.config.venues import IbConfig
from tradeplane.core.errors import TransientError
from tradeplane.core.model import OrderType, Side
from tradeplane.venues.ib.core import Link, account_figures
from tradeplane.venues.ib.venue import IbVenueClient
from tradeplane.venues.sim import VenueOrderRequest
from tradeplane.venues.sim.model import VenueEvent


def client_for(fake: FakeTws, client_id: int = 11) -> IbVenueClient:
    return IbVenueClient(
        IbConfig(host="127.0.0.1", port=fake.port, client_id=client_id, connect_timeout_s=3)
    )


def order(coid: str, qty: float = 10, limit: float | None = None) -> VenueOrderRequest:
    return VenueOrderRequest(
        client_order_id=coid,
        symbol="SPY",
        side=Side.BUY,
        quantity=qty,
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        limit_price=limit,
    )


async def all_events(client: IbVenueClient) -> list[VenueEvent]:
    return await client.events_since(0, 10_000, 0)


def test_market_order_then_accepted_and_filled_with_commission_in_seq_order() -> None:
    async def main() -> None:
        async with FakeTws() as fake:
            fake.set_price("SPY", 500.0)
            client = client_for(fake)
            await client.open(41)  # the broker's journaled cursor
            await client.submit(order("tpAAA"))
            await until(lambda: any(e.kind == "order_filled" for e in client._events))
            events = await all_events(client)
            assert [e.kind for e in events] == ["order_accepted", "order_filled"]
            assert [e.seq for e in events] == [42, 43]
            fill = events[1].fill
            assert fill is not None and fill.quantity == 10 and fill.price == 500.0
            assert fill.fee > 0 and fill.client_order_id == "tpAAA"
            state = await client.order("tpAAA")
            assert state is not None and state.status == "filled"
            assert (await client.positions())["SPY"].quantity == 10
            client.close()

    asyncio.run(main())


def test_limit_order_resting_then_cancelled_event_and_open_orders_empty() -> None:
    async def main() -> None:
        async with FakeTws() as fake:
            fake.set_price("SPY", 500.0)
            client = client_for(fake)
            await client.open(0)
            await client.submit(order("tpLMT", limit=450.0))
            await until(lambda: any(e.kind == "order_accepted" for e in client._events))
            assert [o.client_order_id for o in await client.open_orders()] == ["tpLMT"]
            await client.cancel("tpLMT")
            await until(lambda: any(e.kind == "order_cancelled" for e in client._events))
            assert await client.open_orders() == []
            client.close()

    asyncio.run(main())


def test_link_lost_while_a_resting_order_fills_then_gated_and_the_fill_found_once_on_resync() -> (
    None
):
    async def main() -> None:
        async with FakeTws() as fake:
            fake.set_price("SPY", 500.0)
            client = client_for(fake)
            await client.open(0)
            await client.submit(order("tpGAP", limit=490.0))
            await until(lambda: any(e.kind == "order_accepted" for e in client._events))
            fake.connectivity_lost()
            await until(lambda: client.session.link.state is Link.LOST)
            with pytest.raises(TransientError, match="link lost"):
                await client.submit(order("tpNOT"))
            fake.set_price("SPY", 480.0)  # fills while TWS cannot tell us
            fake.connectivity_restored(data_lost=False, drop_held=True)
            await until(lambda: client.session.link.state is Link.RESYNCING)
            await client.resync()
            await client.resync()  # twice: still one fill
            fills = [e for e in await all_events(client) if e.kind == "order_filled"]
            assert len(fills) == 1 and fills[0].client_order_id == "tpGAP"
            assert client.connected
            assert all(p.order_ref != "tpNOT" for p in fake.placed_orders)
            client.close()

    asyncio.run(main())


def test_order_rejected_by_tws_then_rejected_event_with_the_reason() -> None:
    async def main() -> None:
        async with FakeTws() as fake:
            fake.set_price("SPY", 500.0)
            fake.reject_next_order(code=201, msg="Order rejected - reason: margin")
            client = client_for(fake)
            await client.open(0)
            await client.submit(order("tpREJ"))
            await until(lambda: any(e.kind == "order_rejected" for e in client._events))
            rejected = [e for e in await all_events(client) if e.kind == "order_rejected"]
            assert rejected[0].client_order_id == "tpREJ" and "margin" in (rejected[0].reason or "")
            client.close()

    asyncio.run(main())


def test_tws_silent_then_heartbeat_unanswered_link_down_and_reconnected_once_it_speaks() -> None:
    async def main() -> None:
        async with FakeTws() as fake:
            client = IbVenueClient(
                IbConfig(
                    host="127.0.0.1",
                    port=fake.port,
                    client_id=12,
                    connect_timeout_s=1,
                    heartbeat_s=0.5,
                )
            )
            await client.open(0)
            upkeep = asyncio.ensure_future(client.maintain())
            await until(lambda: heartbeats(fake) >= 2, timeout_s=5)
            assert client.connected and fake.client_ids() == [12]  # answered: still the one link
            fake.set_silent(True)
            await until(lambda: client.session.link.state is Link.DOWN, timeout_s=5)
            assert "TWS silent" in client.session.link.events[-1][1]
            assert not client.connected
            fake.set_silent(False)
            await until(lambda: client.connected, timeout_s=10)
            upkeep.cancel()
            client.close()

    asyncio.run(main())


def heartbeats(fake: FakeTws) -> int:
    return sum(1 for msg_id, _ in fake.received_from(12) if msg_id == 49)  # reqCurrentTime


def test_account_values_then_net_liquidation_and_cash_from_tws() -> None:
    async def main() -> None:
        async with FakeTws() as fake:
            fake.set_account_values(net_liquidation=250_000.5, total_cash=120_000.25)
            client = client_for(fake)
            await client.start()
            figures = await client.account_values()
            assert figures == {
                "net_liquidation": 250_000.5,
                "total_cash": 120_000.25,
                "currency": "USD",
            }
            client.close()

    asyncio.run(main())


def test_account_figures_when_base_row_given_then_it_wins_and_junk_is_left_out() -> None:
    rows = [
        ("DU1", "NetLiquidation", "100.5", "USD"),
        ("DU1", "TotalCashValue", "40", "USD"),
        ("DU1", "TotalCashValue", "55", "BASE"),
        ("DU1", "TotalCashValue", "7", "EUR"),
        ("DU2", "NetLiquidation", "999", "USD"),
        ("DU1", "NetLiquidation", "n/a", "BASE"),
        ("DU1", "BuyingPower", "400", "USD"),
    ]
    assert account_figures(rows, "DU1") == {
        "net_liquidation": 100.5,
        "total_cash": 55.0,
        "currency": "USD",
    }
    assert account_figures([], "DU1") == {}
