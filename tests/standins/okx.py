"""A protocol-level OKX stand-in: real HTTP + WebSocket on 127.0.0.1, for tests.

It speaks the wire formats of ``GET /api/v5/market/candles`` and the ``candle1m`` channel of
``/ws/v5/business`` (see /work/shared/venues.md section 3), so code under test talks to it
exactly as it would to OKX. Candles are a seeded random walk per instId on minute boundaries of
a virtual clock that only moves on ``advance``. The server runs on its own event loop thread:
use it as a context manager from sync or async tests.

Deliberate simplifications: one bar size (1m); the evolving bar is pushed once when it opens
(o=h=l=c=previous close, volume 0) and once, confirmed, when ``advance`` closes it; a
subscription is followed by one push of the current evolving bar; with only ``before`` the
NEWEST ``limit`` rows after it are returned; ``refuse_connections`` answers HTTP 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

CANDLES_PATH = "/api/v5/market/candles"
HISTORY_CANDLES_PATH = "/api/v5/market/history-candles"
WS_PATH = "/ws/v5/business"
MINUTE_MS = 60_000
HISTORY_BARS = 1440
DEFAULT_START_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z
_CALL_TIMEOUT_S = 5.0
_ENDS = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
T = TypeVar("T")


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _fmt(value: float) -> str:
    return f"{value:.8g}"


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    conn_id: str
    subs: set[str] = field(default_factory=set)


class OkxStandin:
    def __init__(
        self,
        symbols: Iterable[str] = ("BTC-USDT", "ETH-USDT"),
        *,
        start_ms: int = DEFAULT_START_MS,
        seed: int = 0,
        idle_timeout_s: float = 30.0,
        history_bars: int = HISTORY_BARS,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self._open_ms = start_ms - start_ms % MINUTE_MS
        self._rngs: dict[str, random.Random] = {}
        self._close: dict[str, float] = {}
        self._rows: dict[str, list[list[str]]] = {}
        for sym in symbols:
            rng = self._rngs[sym] = random.Random(f"okx-standin:{seed}:{sym}")
            self._close[sym] = float(_fmt(10 ** rng.uniform(1.0, 4.8)))
            self._rows[sym] = []
            for i in range(max(history_bars, HISTORY_BARS), 0, -1):
                self._rows[sym].append(self._next_row(sym, self._open_ms - i * MINUTE_MS))
        self._lock = threading.Lock()
        self._rate_left, self._rate_429 = 0, False
        self._silent = self._refuse_ws = self._refuse_rest = False
        self._rest_requests: list[dict[str, str]] = []
        self._subscriptions: list[str] = []
        self._ws_connections = self._pings = 0
        self._conns: set[_Conn] = set()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._conn_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.rest_url = self.ws_url = ""

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> OkxStandin:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="okx-standin")
        self._thread.daemon = True
        self._thread.start()
        port = self._call(self._start())
        self.rest_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}{WS_PATH}"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        try:
            self._call(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_CALL_TIMEOUT_S)
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "use OkxStandin as a context manager"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT_S)

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_get(CANDLES_PATH, self._candles)
        app.router.add_get(HISTORY_CANDLES_PATH, self._history_candles)
        app.router.add_get(WS_PATH, self._ws)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------ candles

    def _next_row(self, sym: str, ts: int) -> list[str]:
        """Close the bar opened at ``ts``: the next step of ``sym``'s random walk."""
        rng, o = self._rngs[sym], self._close[sym]
        c = float(_fmt(o * math.exp(rng.gauss(0.0, 0.0015))))
        h = max(o, c) * (1 + abs(rng.gauss(0.0, 0.0007)))
        low = min(o, c) * (1 - abs(rng.gauss(0.0, 0.0007)))
        vol = rng.uniform(0.5, 50.0)
        self._close[sym] = c
        quote = _fmt(vol * c)
        return [str(ts), _fmt(o), _fmt(h), _fmt(low), _fmt(c), _fmt(vol), quote, quote, "1"]

    def _evolving_row(self, sym: str) -> list[str]:
        px = _fmt(self._close[sym])
        return [str(self._open_ms), px, px, px, px, "0", "0", "0", "0"]

    @property
    def now_ms(self) -> int:
        """The virtual clock: the open time of the evolving bar."""
        return self._open_ms

    def closed_rows(self, inst_id: str) -> list[list[str]]:
        """Every closed row generated so far for ``inst_id``, oldest first (for assertions)."""
        return [list(row) for row in self._rows[inst_id]]

    def advance(self, minutes: int = 1) -> None:
        """Close the evolving bar(s) and open new ones; push both to subscribers."""
        self._call(self._advance(minutes))

    async def _advance(self, minutes: int) -> None:
        for _ in range(minutes):
            pushes: list[tuple[str, list[str]]] = []
            for sym in self._rows:
                closed = self._next_row(sym, self._open_ms)
                self._rows[sym].append(closed)
                pushes.append((sym, closed))
            self._open_ms += MINUTE_MS
            pushes += [(sym, self._evolving_row(sym)) for sym in self._rows]
            if not self._silent:
                for sym, row in pushes:
                    await self._push(sym, row)

    async def _push(self, sym: str, row: list[str], conns: Iterable[_Conn] = ()) -> None:
        msg = _dumps({"arg": {"channel": "candle1m", "instId": sym}, "data": [row]})
        for conn in list(conns) or [c for c in self._conns if sym in c.subs]:
            await self._send(conn, msg)

    @staticmethod
    async def _send(conn: _Conn, text: str) -> None:
        # A connection going away is the handler's to clean up.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(text)

    # ------------------------------------------------------------ REST

    async def _candles(self, request: web.Request) -> web.Response:
        return await self._answer_candles(request, HISTORY_BARS, 300)

    async def _history_candles(self, request: web.Request) -> web.Response:
        """As ``candles``, over the whole history the stand-in holds, at most 100 a page."""
        return await self._answer_candles(request, None, 100)

    async def _answer_candles(
        self, request: web.Request, keep: int | None, max_limit: int
    ) -> web.Response:
        query = dict(request.query)
        with self._lock:
            self._rest_requests.append(query)
            limited, as_429 = self._rate_left > 0, self._rate_429
            self._rate_left = max(0, self._rate_left - 1)
            refuse = self._refuse_rest
        if refuse:
            return web.Response(status=503, text="Service Unavailable")
        if limited:
            retry = {"Retry-After": "1"} if as_429 else None
            return _answer("50011", "Too Many Requests", status=429 if as_429 else 200, hd=retry)
        inst = query.get("instId", "")
        if not inst:
            return _answer("50014", "Parameter instId can not be empty")
        if query.get("bar", "1m") != "1m":
            return _answer("51000", "Parameter bar error")
        if inst not in self._rows:
            return _answer("51001", "Instrument ID does not exist")
        try:
            limit = int(query.get("limit", "100"))
            after = int(query["after"]) if "after" in query else None
            before = int(query["before"]) if "before" in query else None
        except ValueError:
            return _answer("51000", "Parameter limit, after or before error")
        if limit < 1:
            return _answer("51000", "Parameter limit error")
        held = self._rows[inst] if keep is None else self._rows[inst][-keep:]
        rows = [self._evolving_row(inst), *reversed(held)]
        lo, hi = before if before is not None else -1, after if after is not None else 1 << 62
        return _answer("0", "", [r for r in rows if lo < int(r[0]) < hi][: min(limit, max_limit)])

    # ------------------------------------------------------------ WebSocket

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self._refuse_ws:
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)
        await ws.prepare(request)
        conn = _Conn(ws, request.transport, f"{next(self._conn_ids):08x}")
        self._conns.add(conn)
        with self._lock:
            self._ws_connections += 1
        try:
            while not ws.closed:
                try:
                    msg = await ws.receive(timeout=self.idle_timeout_s)
                except TimeoutError:
                    await ws.close(message=b"idle")
                    break
                if msg.type is WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                elif msg.type in _ENDS:
                    break
        finally:
            self._conns.discard(conn)
        return ws

    async def _on_text(self, conn: _Conn, text: str) -> None:
        if text == "ping":
            with self._lock:
                self._pings += 1
            await self._send(conn, "pong")
            return
        try:
            req = json.loads(text)
            op, args = req["op"], req["args"]
            if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
                raise TypeError(op)
        except (ValueError, KeyError, TypeError):
            err = {"event": "error", "code": "60012", "msg": f"Invalid request: {text[:200]}"}
            await self._send(conn, _dumps({**err, "connId": conn.conn_id}))
            return
        for arg in args:
            inst = arg.get("instId") if isinstance(arg, dict) else None
            if (
                not isinstance(arg, dict)
                or arg.get("channel") != "candle1m"
                or inst not in self._rows
            ):
                msg = f"Wrong URL or channel:{_dumps(arg)}, doesn't exist"
                err = {"event": "error", "code": "60018", "msg": msg, "connId": conn.conn_id}
                await self._send(conn, _dumps(err))
                continue
            ack: dict[str, Any] = {"id": req["id"]} if "id" in req else {}
            ack |= {"event": op, "arg": {"channel": "candle1m", "instId": inst}}
            await self._send(conn, _dumps({**ack, "connId": conn.conn_id}))
            if op == "unsubscribe":
                conn.subs.discard(inst)
                continue
            conn.subs.add(inst)
            with self._lock:
                self._subscriptions.append(inst)
            if not self._silent:
                await self._push(inst, self._evolving_row(inst), [conn])

    # ------------------------------------------------------------ faults (any thread)

    def rate_limit(self, n: int, *, http_429: bool = False) -> None:
        """The next ``n`` REST calls answer code 50011 (HTTP 429 + Retry-After: 1 if asked)."""
        with self._lock:
            self._rate_left, self._rate_429 = n, http_429

    def disconnect_all(self, *, abrupt: bool = False) -> None:
        """Close every websocket (close frame 1001), or drop the TCP connections if ``abrupt``.

        Does not wait for the clients' close replies, so it is safe from an async test."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._disconnect_all, abrupt)

    def _disconnect_all(self, abrupt: bool) -> None:
        assert self._loop is not None
        for conn in list(self._conns):
            if abrupt and conn.transport is not None:
                conn.transport.abort()
            elif not abrupt:
                task = self._loop.create_task(conn.ws.close(code=1001, message=b"going away"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def set_silent(self, silent: bool) -> None:
        """While silent no candle is pushed (the clock still moves; pongs are still sent)."""
        self._silent = silent

    def send_raw(self, text: str) -> None:
        """Send ``text`` as is to every connection with a subscription."""

        async def send() -> None:
            for conn in [c for c in self._conns if c.subs]:
                await self._send(conn, text)

        self._call(send())

    def refuse_connections(self, refuse: bool, *, rest: bool = False) -> None:
        """Answer new websocket upgrades (and REST calls too if ``rest``) with HTTP 503."""
        with self._lock:
            self._refuse_ws, self._refuse_rest = refuse, refuse and rest

    # ------------------------------------------------------------ observation

    @property
    def rest_requests(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._rest_requests)

    @property
    def ws_connections(self) -> int:
        with self._lock:
            return self._ws_connections

    @property
    def subscriptions(self) -> list[str]:
        with self._lock:
            return list(self._subscriptions)

    @property
    def pings(self) -> int:
        with self._lock:
            return self._pings

    @property
    def open_connections(self) -> int:
        return len(self._conns)


def _answer(
    code: str, msg: str, data: list[list[str]] | None = None, status: int = 200, hd: Any = None
) -> web.Response:
    body = {"code": code, "msg": msg, "data": data or []}
    return web.json_response(body, status=status, headers=hd, dumps=_dumps)
