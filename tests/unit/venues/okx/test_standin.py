"""The OKX stand-in driven by real clients (httpx, websockets) and the real OKX parsers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.standins.okx import OkxStandin
from tradeplane.venues.okx.candles import (
    CandleBatch,
    CandlePush,
    Malformed,
    OkxError,
    OkxRateLimited,
    Pong,
    Subscribed,
    WsError,
    WsMessage,
    candles_path,
    parse_rest_candles,
    parse_ws_message,
    subscribe_message,
)

pytestmark = pytest.mark.timeout(10)

START_MS = 1_717_200_030_000  # 2024-06-01T00:00:30Z: the clock floors to the minute
OPEN_MS = 1_717_200_000_000
MIN = 60_000
WAIT_S = 1.5
T = TypeVar("T")


def dt(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def okx() -> Iterator[OkxStandin]:
    with OkxStandin(symbols=["BTC-USDT", "ETH-USDT"], start_ms=START_MS) as standin:
        yield standin


def rest(okx: OkxStandin, inst_id: str = "BTC-USDT", **kw: int) -> CandleBatch:
    response = httpx.get(okx.rest_url + candles_path(inst_id, **kw), timeout=WAIT_S)
    return parse_rest_candles(
        inst_id, response.status_code, response.content, response.headers.get("Retry-After")
    )


def rest_rows(okx: OkxStandin, **params: str) -> list[list[str]]:
    response = httpx.get(okx.rest_url + "/api/v5/market/candles", params=params, timeout=WAIT_S)
    doc = response.json()
    assert doc["code"] == "0", doc
    return list(doc["data"])


async def recv(ws: ClientConnection) -> WsMessage:
    text = await asyncio.wait_for(ws.recv(), WAIT_S)
    assert isinstance(text, str)
    return parse_ws_message(text)


async def subscribed(okx: OkxStandin, *inst_ids: str) -> ClientConnection:
    """A connection subscribed to ``inst_ids``, past the acks and the initial evolving pushes."""
    ws = await connect(okx.ws_url, ping_interval=None, open_timeout=WAIT_S)
    await ws.send(subscribe_message(list(inst_ids), "1"))
    for inst_id in inst_ids:
        assert await recv(ws) == Subscribed(inst_id)
        first = await recv(ws)
        assert isinstance(first, CandlePush) and first.batch.open_bar_ts == dt(okx.now_ms)
    return ws


# ---------------------------------------------------------------- REST


def test_rest_rows_come_newest_first_with_the_evolving_bar_first(okx: OkxStandin) -> None:
    rows = rest_rows(okx, instId="BTC-USDT", bar="1m")
    assert len(rows) == 100  # the default limit
    assert rows[0][0] == str(OPEN_MS) and rows[0][8] == "0"
    assert all(r[8] == "1" for r in rows[1:])
    assert [int(r[0]) for r in rows] == [OPEN_MS - i * MIN for i in range(100)]


def test_rest_through_the_parser_gives_closed_bars_oldest_first_and_the_open_time(
    okx: OkxStandin,
) -> None:
    batch = rest(okx, limit=5)
    assert [b.ts for b in batch.bars] == [dt(OPEN_MS - i * MIN) for i in range(4, 0, -1)]
    assert batch.open_bar_ts == dt(OPEN_MS) and batch.rejected == []


def test_rest_pages_back_through_exactly_1440_closed_bars_with_after(okx: OkxStandin) -> None:
    seen: list[datetime] = []
    after: int | None = None
    while True:
        batch = rest(okx, limit=300, **({} if after is None else {"after_ms": after}))
        if not batch.bars:
            break
        seen = [b.ts for b in batch.bars] + seen
        after = int(batch.bars[0].ts.timestamp() * 1000)
    assert len(seen) == 1440 == len(set(seen))
    assert seen[0] == dt(OPEN_MS - 1440 * MIN) and seen[-1] == dt(OPEN_MS - MIN)


def test_rest_before_returns_only_newer_rows(okx: OkxStandin) -> None:
    rows = rest_rows(okx, instId="ETH-USDT", before=str(OPEN_MS - 3 * MIN))
    assert [int(r[0]) for r in rows] == [OPEN_MS, OPEN_MS - MIN, OPEN_MS - 2 * MIN]


def test_rest_limit_caps_at_300(okx: OkxStandin) -> None:
    assert len(rest_rows(okx, instId="BTC-USDT", limit="1000")) == 300


def test_rest_unknown_inst_id_answers_51001(okx: OkxStandin) -> None:
    with pytest.raises(OkxError) as info:
        rest(okx, "NOPE-USDT")
    assert info.value.code == "51001" and info.value.msg == "Instrument ID does not exist"


def test_rest_bar_other_than_1m_answers_51000(okx: OkxStandin) -> None:
    response = httpx.get(okx.rest_url + "/api/v5/market/candles?instId=BTC-USDT&bar=1M")
    with pytest.raises(OkxError) as info:
        parse_rest_candles("BTC-USDT", response.status_code, response.content)
    assert info.value.code == "51000"


def test_rest_rate_limit_answers_50011_for_the_next_n_calls_then_recovers(
    okx: OkxStandin,
) -> None:
    okx.rate_limit(2)
    for _ in range(2):
        with pytest.raises(OkxRateLimited) as info:
            rest(okx)
        assert info.value.code == "50011" and info.value.retry_after_s == 1.0
    assert rest(okx).bars
    assert len(okx.rest_requests) == 3


def test_rest_rate_limit_as_http_429_carries_retry_after(okx: OkxStandin) -> None:
    okx.rate_limit(1, http_429=True)
    response = httpx.get(okx.rest_url + candles_path("BTC-USDT"))
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    with pytest.raises(OkxRateLimited) as info:
        parse_rest_candles("BTC-USDT", 429, response.content, response.headers["Retry-After"])
    assert info.value.retry_after_s == 1.0


def test_rest_requests_records_the_query_params(okx: OkxStandin) -> None:
    rest(okx, "ETH-USDT", limit=7, after_ms=OPEN_MS)
    assert okx.rest_requests == [
        {"instId": "ETH-USDT", "bar": "1m", "limit": "7", "after": str(OPEN_MS)}
    ]


def test_same_seed_and_start_give_the_same_candles_and_symbols_differ() -> None:
    with OkxStandin(["BTC-USDT", "ETH-USDT"], start_ms=START_MS, seed=3) as a:
        with OkxStandin(["BTC-USDT"], start_ms=START_MS, seed=3) as b:
            assert a.closed_rows("BTC-USDT") == b.closed_rows("BTC-USDT")
            assert rest(a).bars == rest(b).bars
        assert a.closed_rows("BTC-USDT")[-1][1:] != a.closed_rows("ETH-USDT")[-1][1:]


def test_refused_rest_answers_503_which_is_a_parse_error(okx: OkxStandin) -> None:
    okx.refuse_connections(True, rest=True)
    with pytest.raises(OkxError) as info:
        rest(okx)
    assert info.value.code == "parse"
    okx.refuse_connections(False)
    assert rest(okx).bars


# ---------------------------------------------------------------- WebSocket


def test_ws_subscribe_is_acked_then_the_evolving_bar_is_pushed(okx: OkxStandin) -> None:
    async def scenario() -> None:
        async with await connect(okx.ws_url, ping_interval=None) as ws:
            await ws.send(subscribe_message(["BTC-USDT"], "42"))
            ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            assert ack["id"] == "42" and ack["event"] == "subscribe" and ack["connId"]
            assert ack["arg"] == {"channel": "candle1m", "instId": "BTC-USDT"}
            first = await recv(ws)
            assert isinstance(first, CandlePush) and first.batch.bars == []
            assert first.batch.open_bar_ts == dt(OPEN_MS)

    run(scenario())
    assert okx.subscriptions == ["BTC-USDT"] and okx.ws_connections == 1


def test_ws_unknown_inst_id_is_answered_with_error_60018(okx: OkxStandin) -> None:
    async def scenario() -> None:
        async with await connect(okx.ws_url, ping_interval=None) as ws:
            await ws.send(subscribe_message(["NOPE-USDT"], "1"))
            message = await recv(ws)
            assert isinstance(message, WsError) and message.code == "60018"

    run(scenario())
    assert okx.subscriptions == []


def test_advance_pushes_the_closed_bar_confirmed_then_the_new_evolving_bar(
    okx: OkxStandin,
) -> None:
    async def scenario() -> None:
        async with await subscribed(okx, "BTC-USDT") as ws:
            okx.advance()
            closed, opened = await recv(ws), await recv(ws)
            assert isinstance(closed, CandlePush) and isinstance(opened, CandlePush)
            assert [b.ts for b in closed.batch.bars] == [dt(OPEN_MS)]
            assert closed.batch.open_bar_ts is None
            assert opened.batch.bars == [] and opened.batch.open_bar_ts == dt(OPEN_MS + MIN)
            # REST agrees with what was pushed.
            assert rest(okx, limit=2).bars == closed.batch.bars

    run(scenario())
    assert okx.now_ms == OPEN_MS + MIN


def test_ping_is_answered_with_pong_and_counted(okx: OkxStandin) -> None:
    async def scenario() -> None:
        async with await connect(okx.ws_url, ping_interval=None) as ws:
            for _ in range(2):
                await ws.send("ping")
                assert await recv(ws) == Pong()

    run(scenario())
    assert okx.pings == 2


def test_server_closes_a_connection_that_sent_nothing_for_the_idle_timeout() -> None:
    async def scenario(okx: OkxStandin) -> None:
        async with await connect(okx.ws_url, ping_interval=None) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT_S)

    with OkxStandin(["BTC-USDT"], idle_timeout_s=0.3) as okx:
        run(scenario(okx))


def test_pings_keep_a_connection_past_the_idle_timeout() -> None:
    async def scenario(okx: OkxStandin) -> None:
        async with await connect(okx.ws_url, ping_interval=None) as ws:
            for _ in range(6):  # 6 x 0.1 s > 0.4 s idle timeout
                await ws.send("ping")
                assert await recv(ws) == Pong()
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.1)

    with OkxStandin(["BTC-USDT"], idle_timeout_s=0.4) as okx:
        run(scenario(okx))


def test_disconnect_all_closes_every_websocket(okx: OkxStandin) -> None:
    async def scenario() -> None:
        first = await subscribed(okx, "BTC-USDT")
        second = await subscribed(okx, "ETH-USDT")
        okx.disconnect_all()
        for ws in (first, second):
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT_S)
        abrupt = await subscribed(okx, "BTC-USDT")
        okx.disconnect_all(abrupt=True)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(abrupt.recv(), WAIT_S)

    run(scenario())
    assert okx.ws_connections == 3


def test_silent_stops_pushes_but_not_pongs_and_rest_still_has_the_missed_bars(
    okx: OkxStandin,
) -> None:
    async def scenario() -> None:
        async with await subscribed(okx, "BTC-USDT") as ws:
            okx.set_silent(True)
            okx.advance(minutes=3)
            await ws.send("ping")
            assert await recv(ws) == Pong()  # no push was queued ahead of it
            okx.set_silent(False)
            okx.advance()
            closed = await recv(ws)
            assert isinstance(closed, CandlePush)
            assert [b.ts for b in closed.batch.bars] == [dt(OPEN_MS + 3 * MIN)]
            missed = rest(okx, before_ms=OPEN_MS - MIN).bars
            assert [b.ts for b in missed] == [dt(OPEN_MS + i * MIN) for i in range(4)]

    run(scenario())


def test_send_raw_reaches_subscribers_and_parses_as_malformed(okx: OkxStandin) -> None:
    async def scenario() -> None:
        async with await subscribed(okx, "ETH-USDT") as ws:
            okx.send_raw('{"arg":{"channel":"candle1m","instId":"ETH-USDT"},"data":[["17')
            message = await recv(ws)
            assert isinstance(message, Malformed) and "not JSON" in message.reason

    run(scenario())


def test_refused_connections_fail_the_handshake_until_allowed_again(okx: OkxStandin) -> None:
    async def scenario() -> None:
        okx.refuse_connections(True)
        with pytest.raises(InvalidStatus) as info:
            await connect(okx.ws_url, open_timeout=WAIT_S)
        assert info.value.response.status_code == 503
        assert rest(okx).bars  # REST is untouched unless asked
        okx.refuse_connections(False)
        async with await subscribed(okx, "BTC-USDT"):
            pass

    run(scenario())
    assert okx.ws_connections == 1


def test_websocket_on_any_other_path_is_404(okx: OkxStandin) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            await connect(okx.ws_url.replace("/business", "/public"), open_timeout=WAIT_S)
        assert info.value.response.status_code == 404

    run(scenario())


def test_standin_can_be_entered_inside_an_async_test() -> None:
    async def scenario() -> None:
        with OkxStandin(["BTC-USDT"], start_ms=START_MS) as okx:
            async with await subscribed(okx, "BTC-USDT") as ws:
                okx.advance()
                message = await recv(ws)
                assert isinstance(message, CandlePush) and message.batch.bars

    run(scenario())
