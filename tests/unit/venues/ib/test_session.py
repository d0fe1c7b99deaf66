"""The IB session against the fake TWS (real TWS socket protocol on loopback, ib_async's own
client): identity checks, client id in use, connectivity codes, pacing."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.standins.tws import FakeTws
from tests.unit.venues.support import until
from tradeplane.config.venues import IbConfig
from tradeplane.core.orders import OrderStatus
from tradeplane.venues.ib.core import Link, LinkState, map_status
from tradeplane.venues.ib.session import (
    IbClientIdInUse,
    IbIdentityRefused,
    IbSession,
    IbUnavailable,
)


def cfg(fake: FakeTws, **extra: object) -> IbConfig:
    settings: dict[str, object] = {"connect_timeout_s": 3, **extra}
    return IbConfig(host="127.0.0.1", port=fake.port, **settings)  # type: ignore[arg-type]


def test_paper_account_then_connected_with_the_account_and_link_up() -> None:
    async def main() -> None:
        async with FakeTws() as fake:
            session = IbSession(cfg(fake, client_id=3))
            assert await session.connect() == "DU1234567"
            assert session.connected and session.link.state is Link.UP
            session.disconnect()
            assert session.link.state is Link.DOWN

    asyncio.run(main())


def test_client_id_in_use_then_clear_error_at_once_not_a_timeout() -> None:
    async def main() -> None:
        async with FakeTws() as fake:
            first = IbSession(cfg(fake, client_id=5))
            await first.connect()
            # A connect that waited out its timeout would raise IbUnavailable instead; how soon
            # the refusal comes is measured by bench/promptness.py.
            second = IbSession(cfg(fake, client_id=5, connect_timeout_s=20))
            with pytest.raises(IbClientIdInUse, match="client id already in use"):
                await second.connect()
            assert not second.ib.isConnected()
            assert first.connected
            first.disconnect()

    asyncio.run(main())


def test_live_account_when_paper_configured_then_refused_and_disconnected() -> None:
    async def main() -> None:
        async with FakeTws(accounts=("U7654321",)) as fake:
            session = IbSession(cfg(fake))
            with pytest.raises(IbIdentityRefused, match="not a paper"):
                await session.connect()
            assert not session.ib.isConnected()
            live = IbSession(cfg(fake, live=True, client_id=2))
            assert await live.connect() == "U7654321"
            live.disconnect()

    asyncio.run(main())


def test_nothing_listening_then_unavailable_a_transient_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session = IbSession(IbConfig(port=port, connect_timeout_s=1))
    with pytest.raises(IbUnavailable):
        asyncio.run(session.connect())


def test_1100_then_1102_then_link_lost_then_resyncing_and_no_sending_meanwhile() -> None:
    async def main() -> None:
        async with FakeTws() as fake:
            session = IbSession(cfg(fake, client_id=9))
            await session.connect()
            fake.connectivity_lost()
            await until(lambda: session.link.state is Link.LOST)
            assert not session.connected
            fake.connectivity_restored(data_lost=True)
            await until(lambda: session.link.state is Link.RESYNCING)
            assert session.link.needs_resubscribe and not session.connected
            session.link.resynced()
            assert session.connected
            session.disconnect()

    asyncio.run(main())


def test_status_mapping_then_every_tws_state_has_ours_and_unknown_stays_unknown() -> None:
    assert map_status("Submitted") is OrderStatus.ACCEPTED
    assert map_status("PreSubmitted") is OrderStatus.ACCEPTED
    assert map_status("Filled") is OrderStatus.FILLED
    assert map_status("Cancelled") is OrderStatus.CANCELLED
    assert map_status("Inactive") is OrderStatus.REJECTED
    assert map_status("SomethingNew") is OrderStatus.UNKNOWN


def test_link_codes_out_of_place_then_ignored() -> None:
    link = LinkState()
    link.connected()
    assert not link.on_code(1102)  # restored without having been lost: nothing to do
    assert link.on_code(1100) and not link.on_code(1100)
    assert link.state is Link.LOST


def test_every_message_paced_under_the_configured_rate_by_ib_asyncs_throttle() -> None:
    async def main() -> None:
        async with FakeTws(pacing_limit=30) as fake:  # TWS hangs up above 30/s here
            session = IbSession(cfg(fake, client_id=5, max_messages_per_s=20))
            await session.connect()  # connecting and syncing send messages too: all counted
            for _ in range(45):  # raw requests no code of ours paces
                session.ib.client.reqCurrentTime()
            await until(lambda: sum(1 for i, _ in fake.received if i == 49) == 45, 5)
            assert session.connected
            assert fake.max_client_msgs_per_s <= 21
            session.disconnect()

    asyncio.run(main())
