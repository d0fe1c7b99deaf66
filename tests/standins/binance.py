"""A protocol-level Binance spot stand-in: real HTTP + WebSocket on 127.0.0.1, own loop thread.

Speaks ``GET /api/v3/klines`` and the ``<symbol>@kline_1m`` streams (``/ws/<stream>``,
``/stream?streams=a/b``, live SUBSCRIBE) with deterministic random-walk klines on the minute
boundaries of an injectable clock. It never imports tradeplane: it checks the wire format
independently of the client code. Control and observation methods are callable from any thread.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

MINUTE_MS = 60_000
DEFAULT_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_BASE_PRICES = {"BTCUSDT": 50_000.0, "ETHUSDT": 3_000.0}
T = TypeVar("T")


@dataclass
class _Kline:
    open_ms: int
    o: float
    h: float
    lo: float
    c: float
    v: float = 0.0
    n: int = 0

    def step(self, rng: random.Random) -> None:
        self.c = round(max(self.c * (1 + rng.gauss(0, 0.0005)), 0.01), 2)
        self.h, self.lo = max(self.h, self.c), min(self.lo, self.c)
        self.v = round(self.v + rng.uniform(0.01, 2.0), 5)
        self.n += rng.randint(1, 20)

    def row(self) -> list[Any]:
        q = f"{self.v * self.c:.8f}"
        return [self.open_ms, *self._prices(), self.open_ms + MINUTE_MS - 1, q, self.n,
                f"{self.v / 2:.8f}", f"{self.v * self.c / 2:.8f}", "0"]  # fmt: skip

    def _prices(self) -> list[str]:
        return [f"{x:.8f}" for x in (self.o, self.h, self.lo, self.c, self.v)]

    def payload(self, symbol: str, event_ms: int, closed: bool) -> dict[str, Any]:
        o, h, lo, c, v = self._prices()
        k = {"t": self.open_ms, "T": self.open_ms + MINUTE_MS - 1, "s": symbol, "i": "1m",
             "f": 100, "L": 100 + self.n, "o": o, "c": c, "h": h, "l": lo, "v": v, "n": self.n,
             "x": closed, "q": f"{self.v * self.c:.8f}", "V": "0", "Q": "0", "B": "0"}  # fmt: skip
        return {"e": "kline", "E": event_ms, "s": symbol, "k": k}


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    combined: bool
    request: web.Request
    streams: set[str] = field(default_factory=set)
    pong: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class BinanceStandin:
    """``with BinanceStandin(symbols=["BTCUSDT"]) as bn:`` → ``bn.rest_url``, ``bn.ws_url``."""

    def __init__(
        self,
        symbols: Iterable[str] = ("BTCUSDT",),
        *,
        start_ms: int = DEFAULT_START_MS,
        seed: int = 7,
        history_minutes: int = 1500,
        ping_interval_s: float = 20.0,
        pong_timeout_s: float = 60.0,
        max_connection_s: float = 24 * 3600,
    ) -> None:
        self.symbols = [s.upper() for s in symbols]
        self.now_ms = start_ms
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.max_connection_s = max_connection_s
        self._rngs = {s: random.Random(f"{seed}:{s}") for s in self.symbols}
        self._closed: dict[str, list[_Kline]] = {}
        self._open: dict[str, _Kline] = {}
        current = start_ms - start_ms % MINUTE_MS
        for s in self.symbols:
            price = _BASE_PRICES.get(s, 100.0) * (1 + self._rngs[s].uniform(-0.05, 0.05))
            self._closed[s] = []
            for i in range(history_minutes, 0, -1):
                self._closed[s].append(self._new_kline(s, current - i * MINUTE_MS, price, 5))
                price = self._closed[s][-1].c
            self._open[s] = self._new_kline(s, current, price, 1)
        self._conns: set[_Conn] = set()
        self._rest_requests: list[dict[str, str]] = []
        self._stream_log: list[str] = []
        self._accepted = self._pongs = self._weight = 0
        self._limit = (0, False, 1)  # (calls left, ban, Retry-After seconds)
        self._silent = self._refuse = False
        self._runner: web.AppRunner | None = None
        self.rest_url = self.ws_url = ""

    def _new_kline(self, symbol: str, open_ms: int, price: float, steps: int) -> _Kline:
        kline = _Kline(open_ms, price, price, price, price)
        for _ in range(steps):
            kline.step(self._rngs[symbol])
        return kline

    def __enter__(self) -> BinanceStandin:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._call(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/time", self._time)
        for path in ("/ws", "/ws/{stream}", "/stream"):
            app.router.add_get(path, self._ws)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.rest_url, self.ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"

    async def _stop(self) -> None:
        await self._disconnect(abrupt=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def advance(self, minutes: int = 1) -> None:
        """Close the open kline (push ``x: true``), open the next (push ``x: false``)."""
        self._call(self._advance(minutes))

    async def _advance(self, minutes: int) -> None:
        for _ in range(minutes):
            self.now_ms += MINUTE_MS
            self._weight = 0
            for s in self.symbols:
                done = self._open[s]
                for _ in range(3):
                    done.step(self._rngs[s])
                self._closed[s].append(done)
                self._open[s] = self._new_kline(s, done.open_ms + MINUTE_MS, done.c, 1)
                await self._push(s, done.payload(s, self.now_ms, True))
                await self._push(s, self._open[s].payload(s, self.now_ms, False))

    def tick(self) -> None:
        """A trade moves every open kline; push an intermediate ``x: false`` update."""
        self._call(self._tick())

    async def _tick(self) -> None:
        for s in self.symbols:
            self._open[s].step(self._rngs[s])
            await self._push(s, self._open[s].payload(s, self.now_ms, False))

    def rate_limit(self, n: int, *, ban: bool = False, retry_after_s: int = 1) -> None:
        """The next ``n`` REST calls answer 429 (or 418 when ``ban``) with ``Retry-After``."""

        self._limit = (n, ban, retry_after_s)  # one atomic store

    def disconnect_all(self, *, abrupt: bool = False) -> None:
        """Close every WebSocket (close frame 1001, or drop the TCP connection if ``abrupt``)."""
        self._call(self._disconnect(abrupt=abrupt))

    async def _disconnect(self, *, abrupt: bool) -> None:
        for conn in list(self._conns):
            if abrupt and conn.request.transport is not None:
                conn.request.transport.abort()
            elif conn.ws.prepared:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"disconnect")

    def set_silent(self, silent: bool) -> None:
        """Silent: the server sends nothing at all (no data, replies, pings or pongs)."""
        self._silent = silent

    def refuse_connections(self, refuse: bool) -> None:
        """New WebSocket handshakes get HTTP 503; open connections and REST are unaffected."""
        self._refuse = refuse

    def send_raw(self, text: str) -> None:
        """Send ``text`` verbatim to every open WebSocket."""
        self._call(self._push(None, text))

    @property
    def rest_requests(self) -> list[dict[str, str]]:
        """Query parameters of every klines request, in order (rate-limited ones included)."""
        return list(self._rest_requests)

    @property
    def ws_connections(self) -> int:
        """WebSocket connections accepted so far (reconnects count again)."""
        return self._accepted

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    @property
    def streams(self) -> list[str]:
        """Every stream subscribed (by URL or SUBSCRIBE), in order, across all connections."""
        return list(self._stream_log)

    @property
    def pongs(self) -> int:
        return self._pongs

    def klines(self, symbol: str) -> list[list[Any]]:
        """All REST rows for ``symbol``: closed history then the open kline."""
        return [k.row() for k in [*self._closed[symbol], self._open[symbol]]]

    async def _time(self, request: web.Request) -> web.Response:
        """The stand-in's clock: the open kline is the one forming now."""
        return web.json_response({"serverTime": self.now_ms})

    async def _klines(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self._rest_requests.append(query)
        self._weight += 2
        headers = {"X-MBX-USED-WEIGHT-1m": str(self._weight)}
        left, ban, retry_after = self._limit
        if left > 0:
            self._limit = (left - 1, ban, retry_after)
            headers["Retry-After"] = str(retry_after)
            msg = "IP banned" if ban else "Too many requests; please use the websocket."
            body = {"code": -1003, "msg": msg}
            return web.json_response(body, status=418 if ban else 429, headers=headers)

        def error(code: int, msg: str) -> web.Response:
            return web.json_response({"code": code, "msg": msg}, status=400, headers=headers)

        symbol, interval = query.get("symbol"), query.get("interval")
        if not symbol or not interval:
            return error(-1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
        if symbol not in self._open:
            return error(-1121, "Invalid symbol.")
        if interval != "1m":
            return error(-1120, "Invalid interval.")
        try:
            limit = min(int(query.get("limit", "500")), 1000)
            start = int(query["startTime"]) if "startTime" in query else None
            end = int(query["endTime"]) if "endTime" in query else None
        except ValueError:
            return error(-1100, "Illegal characters found in a parameter.")
        if limit < 1:
            return error(-1100, "Illegal value for parameter 'limit'.")
        rows = [
            k.row()
            for k in [*self._closed[symbol], self._open[symbol]]
            if (start is None or k.open_ms >= start) and (end is None or k.open_ms <= end)
        ]
        rows = rows[:limit] if start is not None else rows[-limit:]
        return web.json_response(rows, headers=headers)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self._refuse:
            return web.Response(status=503, text="connections refused")
        combined = request.path == "/stream"
        names = request.query.get("streams", "") if combined else request.match_info.get("stream")
        ws = web.WebSocketResponse(autoping=False, timeout=1.0)
        # Registered before the handshake answer: a push right after connect() is not lost.
        conn = _Conn(ws, combined, request, {n for n in (names or "").split("/") if n})
        self._conns.add(conn)
        self._accepted += 1
        self._stream_log.extend(sorted(conn.streams))
        tasks = [asyncio.create_task(self._keepalive(conn)), asyncio.create_task(self._expire(ws))]
        try:
            await ws.prepare(request)
            conn.ready.set()
            async for msg in ws:
                if msg.type is WSMsgType.PING and not self._silent:
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    self._pongs += 1
                    conn.pong.set()
                elif msg.type is WSMsgType.TEXT and not self._silent:
                    await self._send(conn, json.dumps(self._request(conn, msg.data)))
        finally:
            conn.ready.set()
            self._conns.discard(conn)
            for task in tasks:
                task.cancel()
        return ws

    def _request(self, conn: _Conn, text: str) -> dict[str, Any]:
        try:
            req = json.loads(text)
        except ValueError:
            return {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}
        ident = req.get("id") if isinstance(req, dict) else None
        method = req.get("method") if isinstance(req, dict) else None
        params = req.get("params", []) if isinstance(req, dict) else None
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.streams), "id": ident}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return {"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": ident}
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return {"error": {"code": 1, "msg": "Invalid value type: expected array of strings"},
                    "id": ident}  # fmt: skip
        if method == "SUBSCRIBE":
            self._stream_log.extend(p for p in params if p not in conn.streams)
            conn.streams.update(params)
        else:
            conn.streams.difference_update(params)
        return {"result": None, "id": ident}

    async def _keepalive(self, conn: _Conn) -> None:
        """Ping every ``ping_interval_s``; drop a connection that misses ``pong_timeout_s``."""
        while not conn.ws.closed:
            await asyncio.sleep(self.ping_interval_s)
            if self._silent:
                continue
            conn.pong.clear()
            try:
                await conn.ws.ping(b"standin")
                await asyncio.wait_for(conn.pong.wait(), self.pong_timeout_s)
            except TimeoutError:
                await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"pong timeout")
            except (ConnectionError, RuntimeError):  # closing under us
                return

    async def _expire(self, ws: web.WebSocketResponse) -> None:
        await asyncio.sleep(self.max_connection_s)
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"max connection lifetime")

    async def _push(self, symbol: str | None, payload: dict[str, Any] | str) -> None:
        """A kline event to the subscribers of ``symbol``, or raw text to everyone."""
        name = f"{(symbol or '').lower()}@kline_1m"
        for conn in list(self._conns):
            if isinstance(payload, str):
                await self._send(conn, payload)
            elif name in conn.streams and not self._silent:
                data = {"stream": name, "data": payload} if conn.combined else payload
                await self._send(conn, json.dumps(data))

    async def _send(self, conn: _Conn, text: str) -> None:
        await conn.ready.wait()
        if conn.ws.prepared and not conn.ws.closed:
            try:
                await conn.ws.send_str(text)
            except ConnectionError:
                if conn.request.transport is not None:
                    conn.request.transport.abort()
