"""The Binance stand-in, driven by real clients (httpx, websockets, aiohttp) and our parsers."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable

import aiohttp
import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from tests.standins.binance import DEFAULT_START_MS, BinanceStandin
from tradeplane.venues.binance.klines import (
    BinanceError,
    BinanceRateLimited,
    KlineUpdate,
    Malformed,
    SubscribeResult,
    WsMessage,
    klines_path,
    parse_rest_klines,
    parse_ws_message,
    stream_path,
)

MIN = 60_000
pytestmark = pytest.mark.timeout(10)


def _get(bn: BinanceStandin, path: str) -> httpx.Response:
    with httpx.Client(base_url=bn.rest_url, trust_env=False, timeout=2) as client:
        return client.get(path)


def _parse(bn: BinanceStandin, symbol: str, response: httpx.Response) -> list[int]:
    """Open times (ms) of the closed bars in a klines response."""
    batch = parse_rest_klines(
        symbol,
        response.status_code,
        response.content,
        now_ms=bn.now_ms,
        retry_after=response.headers.get("Retry-After"),
    )
    assert batch.rejected == []
    return [int(b.ts.timestamp() * 1000) for b in batch.bars]


def _connect(bn: BinanceStandin, path: str) -> websockets.connect:
    return websockets.connect(
        bn.ws_url + path, proxy=None, ping_interval=None, open_timeout=2, close_timeout=1
    )


async def _recv(ws: ClientConnection) -> WsMessage:
    return parse_ws_message(str(await asyncio.wait_for(ws.recv(), 1.5)))


async def _until(condition: Callable[[], bool], timeout: float = 1.5) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


# -------------------------------------------------------------------------------------- REST


def test_rest_default_returns_500_ascending_rows_ending_with_the_open_kline() -> None:
    with BinanceStandin() as bn:
        response = _get(bn, "/api/v3/klines?symbol=BTCUSDT&interval=1m")
        rows = response.json()
        assert response.status_code == 200
        assert len(rows) == 500
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        assert rows[-1][0] == DEFAULT_START_MS  # the kline still open at the stand-in's now
        assert rows[-1][6] >= bn.now_ms
        assert _parse(bn, "BTCUSDT", response) == [r[0] for r in rows[:-1]]


def test_rest_limit_is_capped_at_1000_and_at_least_1000_closed_minutes_exist() -> None:
    with BinanceStandin() as bn:
        assert len(_parse(bn, "BTCUSDT", _get(bn, klines_path("BTCUSDT")))) == 999
        capped = _get(bn, "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5000").json()
        assert len(capped) == 1000
        assert len(bn.klines("BTCUSDT")) > 1000


def test_rest_start_and_end_time_select_rows_by_open_time() -> None:
    with BinanceStandin() as bn:
        start = bn.now_ms - 10 * MIN
        rows = _get(bn, klines_path("BTCUSDT", limit=3, start_ms=start)).json()
        assert [r[0] for r in rows] == [start, start + MIN, start + 2 * MIN]
        rows = _get(bn, klines_path("BTCUSDT", limit=2, end_ms=start)).json()
        assert [r[0] for r in rows] == [start - MIN, start]
        rows = _get(bn, klines_path("BTCUSDT", start_ms=start, end_ms=start + MIN)).json()
        assert [r[0] for r in rows] == [start, start + MIN]


@pytest.mark.parametrize(
    ("query", "code", "msg"),
    [
        ("symbol=DOGEUSDT&interval=1m", -1121, "Invalid symbol."),
        ("symbol=BTCUSDT&interval=5m", -1120, "Invalid interval."),
    ],
)
def test_rest_bad_symbol_or_interval_is_http_400_with_binance_code(
    query: str, code: int, msg: str
) -> None:
    with BinanceStandin() as bn:
        response = _get(bn, f"/api/v3/klines?{query}")
        assert response.status_code == 400
        with pytest.raises(BinanceError) as info:
            _parse(bn, "BTCUSDT", response)
        assert (info.value.code, info.value.msg) == (code, msg)


def test_rest_rate_limit_answers_429_with_retry_after_then_recovers() -> None:
    with BinanceStandin() as bn:
        bn.rate_limit(2, retry_after_s=3)
        for _ in range(2):
            response = _get(bn, klines_path("BTCUSDT", limit=5))
            assert (response.status_code, response.headers["Retry-After"]) == (429, "3")
            with pytest.raises(BinanceRateLimited) as info:
                _parse(bn, "BTCUSDT", response)
            assert (info.value.retry_after_s, info.value.banned) == (3.0, False)
        assert len(_parse(bn, "BTCUSDT", _get(bn, klines_path("BTCUSDT", limit=5)))) == 4


def test_rest_ban_answers_418_parsed_as_banned() -> None:
    with BinanceStandin() as bn:
        bn.rate_limit(1, ban=True, retry_after_s=90)
        response = _get(bn, klines_path("BTCUSDT"))
        assert response.status_code == 418
        with pytest.raises(BinanceRateLimited) as info:
            _parse(bn, "BTCUSDT", response)
        assert (info.value.banned, info.value.retry_after_s) == (True, 90.0)


def test_rest_requests_are_recorded_and_used_weight_reported() -> None:
    with BinanceStandin() as bn:
        _get(bn, klines_path("BTCUSDT", limit=5))
        second = _get(bn, klines_path("BTCUSDT", limit=7, start_ms=bn.now_ms))
        assert second.headers["X-MBX-USED-WEIGHT-1m"] == "4"
        assert bn.rest_requests == [
            {"symbol": "BTCUSDT", "interval": "1m", "limit": "5"},
            {"symbol": "BTCUSDT", "interval": "1m", "limit": "7", "startTime": str(bn.now_ms)},
        ]


def test_same_seed_gives_same_klines_and_the_clock_is_minute_aligned() -> None:
    start = DEFAULT_START_MS + 30_000
    first = BinanceStandin(["BTCUSDT", "ETHUSDT"], start_ms=start).klines("ETHUSDT")
    assert first == BinanceStandin(["BTCUSDT", "ETHUSDT"], start_ms=start).klines("ETHUSDT")
    assert first != BinanceStandin(["BTCUSDT", "ETHUSDT"], seed=8).klines("ETHUSDT")
    assert first[-1][0] == DEFAULT_START_MS
    assert all(b[0] - a[0] == MIN for a, b in itertools.pairwise(first))


# ---------------------------------------------------------------------------------- streams


def test_ws_single_stream_advance_pushes_closed_bar_then_new_open_kline() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            opened = bn.now_ms
            bn.advance()
            closed, fresh = await _recv(ws), await _recv(ws)
            assert isinstance(closed, KlineUpdate) and closed.closed
            assert closed.open_ms == opened and closed.bar is not None
            assert fresh == KlineUpdate("BTCUSDT", None, closed=False, open_ms=opened + MIN)
            rest = parse_rest_klines(
                "BTCUSDT", 200, json.dumps(bn.klines("BTCUSDT")), now_ms=bn.now_ms
            )
            assert rest.bars[-1] == closed.bar

    with BinanceStandin(["BTCUSDT", "ETHUSDT"]) as bn:
        asyncio.run(scenario(bn))
        assert bn.streams == ["btcusdt@kline_1m"]


def test_ws_combined_stream_wraps_every_symbols_updates() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT", "ETHUSDT"])) as ws:
            bn.advance()
            texts = [json.loads(await asyncio.wait_for(ws.recv(), 1.5)) for _ in range(4)]
            assert {t["stream"] for t in texts} == {"btcusdt@kline_1m", "ethusdt@kline_1m"}
            updates = [parse_ws_message(json.dumps(t)) for t in texts]
            assert all(isinstance(u, KlineUpdate) for u in updates)
            closed = [u for u in updates if isinstance(u, KlineUpdate) and u.bar is not None]
            assert sorted(u.symbol for u in closed) == ["BTCUSDT", "ETHUSDT"]

    with BinanceStandin(["BTCUSDT", "ETHUSDT"]) as bn:
        asyncio.run(scenario(bn))


def test_ws_tick_pushes_an_intermediate_update_for_the_open_kline() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            bn.tick()
            assert await _recv(ws) == KlineUpdate("BTCUSDT", None, False, bn.now_ms)

    with BinanceStandin() as bn:
        asyncio.run(scenario(bn))


def test_ws_live_subscribe_is_acknowledged_and_adds_the_stream() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            request = {"method": "SUBSCRIBE", "params": ["ethusdt@kline_1m"], "id": 1}
            await ws.send(json.dumps(request))
            assert await _recv(ws) == SubscribeResult(1, None)
            bn.advance()
            updates = [await _recv(ws) for _ in range(4)]
            symbols = {u.symbol for u in updates if isinstance(u, KlineUpdate)}
            assert symbols == {"BTCUSDT", "ETHUSDT"}

    with BinanceStandin(["BTCUSDT", "ETHUSDT"]) as bn:
        asyncio.run(scenario(bn))
        assert bn.streams == ["btcusdt@kline_1m", "ethusdt@kline_1m"]


# ------------------------------------------------------------------------------- keepalive


def test_ws_client_answering_pings_stays_connected_past_pong_timeout() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            began = time.monotonic()
            await _until(lambda: bn.pongs >= 6)  # >= 0.3 s: longer than the pong timeout
            assert time.monotonic() - began > bn.pong_timeout_s
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            assert await _recv(ws) == SubscribeResult(2, ["btcusdt@kline_1m"])
            assert bn.open_connections == 1

    with BinanceStandin(ping_interval_s=0.05, pong_timeout_s=0.2) as bn:
        asyncio.run(scenario(bn))


def test_ws_client_not_answering_pings_is_dropped_after_pong_timeout() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(bn.ws_url + stream_path(["BTCUSDT"]), autoping=False) as ws,
        ):
            kinds = []
            while not ws.closed:
                msg = await asyncio.wait_for(ws.receive(), 1.5)
                kinds.append(msg.type)
            assert aiohttp.WSMsgType.PING in kinds
            assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert bn.pongs == 0

    with BinanceStandin(ping_interval_s=0.05, pong_timeout_s=0.2) as bn:
        asyncio.run(scenario(bn))


def test_ws_connection_is_closed_after_max_connection_s() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            began = time.monotonic()
            await asyncio.wait_for(ws.wait_closed(), 1.5)
            assert time.monotonic() - began >= 0.25
            assert ws.close_code == 1001

    with BinanceStandin(max_connection_s=0.3) as bn:
        asyncio.run(scenario(bn))


# ----------------------------------------------------------------------------------- faults


def test_ws_disconnect_all_closes_every_connection_and_reconnect_works() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as a, _connect(bn, "/ws") as b:
            await _until(lambda: bn.open_connections == 2)
            bn.disconnect_all()
            for ws in (a, b):
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 1.5)
        await _until(lambda: bn.open_connections == 0)
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            bn.advance()
            assert isinstance(await _recv(ws), KlineUpdate)
        assert bn.ws_connections == 3

    with BinanceStandin() as bn:
        asyncio.run(scenario(bn))


def test_ws_abrupt_disconnect_drops_without_close_frame() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            bn.disconnect_all(abrupt=True)
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 1.5)
            assert ws.close_code is None or ws.close_code == 1006

    with BinanceStandin() as bn:
        asyncio.run(scenario(bn))


def test_ws_send_raw_malformed_text_reaches_client_and_parses_as_malformed() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            bn.send_raw('{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":')
            assert isinstance(await _recv(ws), Malformed)
            bn.send_raw(json.dumps({"e": "kline", "s": "BTCUSDT", "k": {"o": "NaN"}}))
            assert isinstance(await _recv(ws), Malformed)

    with BinanceStandin() as bn:
        asyncio.run(scenario(bn))


def test_ws_silent_server_pushes_nothing_until_resumed() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        async with _connect(bn, stream_path(["BTCUSDT"])) as ws:
            bn.set_silent(True)
            bn.advance()
            bn.set_silent(False)
            bn.send_raw("marker")  # the first frame the client sees: nothing came before it
            assert await asyncio.wait_for(ws.recv(), 1.5) == "marker"

    with BinanceStandin() as bn:
        asyncio.run(scenario(bn))


def test_ws_refused_connections_get_http_503_until_allowed_again() -> None:
    async def scenario(bn: BinanceStandin) -> None:
        bn.refuse_connections(True)
        with pytest.raises(InvalidStatus) as info:
            async with _connect(bn, stream_path(["BTCUSDT"])):
                pass
        assert info.value.response.status_code == 503
        bn.refuse_connections(False)
        async with _connect(bn, stream_path(["BTCUSDT"])):
            assert bn.ws_connections == 1

    with BinanceStandin() as bn:
        asyncio.run(scenario(bn))
