"""A fake TWS / IB Gateway speaking the real TWS socket protocol (text protocol, server
versions 176..178), for tests: ib_async's ``IB`` and the tradeplane IB adapter talk to it
unchanged. Wire layouts and plain state records live in ``tws_messages`` and mirror
ib_async 2.1.0 (``client.py`` / ``decoder.py``).

The server runs on its own event-loop thread; use it as a (sync or async) context manager.
Orders, positions and executions persist across client connections. Every control and
inspection method is thread-safe (it runs on the server's loop).

Market model: ``set_price(symbol, p)`` is the last price. MKT (and triggered STP) orders fill
at it; a LMT fills at it when marketable on arrival, else at its limit once a later price
crosses it. ``fill_in_parts(n)`` splits every later fill into n executions. Commission is
``max(min_commission, per_share * shares)`` on an order's first execution and
``per_share * shares`` after; average costs exclude commission. Only STK orders are accepted.
"""

from __future__ import annotations

import asyncio
import calendar
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import tws_messages as m
from .tws_messages import (
    CONNECTIVITY,
    MSG_326,
    BookOrder,
    OrderRecord,
    PlacedOrder,
    PositionRecord,
    WireExecution,
)

__all__ = ["MSG_326", "FakeTws", "OrderRecord", "PlacedOrder", "PositionRecord", "WireExecution"]

T = TypeVar("T")
_CALL_TIMEOUT_S = 5.0
_RATE_WINDOW_S = 0.95  # a "second" with 5% slack for receive-side scheduling jitter
_DURATION_S = {"S": 1, "D": 86_400, "W": 604_800, "M": 2_592_000, "Y": 31_536_000}


@dataclass(eq=False)
class _Session:
    writer: asyncio.StreamWriter
    version: int = 0
    client_id: int | None = None
    ready: bool = False
    held: list[bytes] = field(default_factory=list)  # frames held during a 1100 outage
    msg_times: deque[float] = field(default_factory=deque)
    positions_sub: bool = False
    account_sub: bool = False
    rt_bars: dict[int, str] = field(default_factory=dict)  # reqId -> symbol
    hist_subs: dict[int, tuple[str, bool]] = field(default_factory=dict)  # reqId -> sym, epoch
    hung_up: bool = False  # pacing violated: nothing more is answered


def _parse_end(text: str) -> int:
    """An endDateTime as ib_async sends it: ``yyyymmdd-HH:MM:SS`` (UTC) or with `` UTC``."""
    text = text.strip().removesuffix(" UTC").replace(" ", "-")
    return calendar.timegm(time.strptime(text, "%Y%m%d-%H:%M:%S"))


class FakeTws:
    def __init__(
        self,
        *,
        server_version: int = 178,
        accounts: Iterable[str] = ("DU1234567",),
        commission_per_share: float = 0.005,
        min_commission: float = 1.0,
        farm_notices: bool = True,
        pacing_limit: int | None = None,
        bar_start: int | None = None,
    ) -> None:
        if not 176 <= server_version <= 178:
            raise ValueError("server_version must be within 176..178")
        self.server_version = server_version
        self.accounts = list(accounts)
        self.commission_per_share = commission_per_share
        self.min_commission = min_commission
        self.farm_notices = farm_notices  # send 2104/2106/2158 after each connect
        self.pacing_limit = pacing_limit  # above it: error 100 and hang up, as TWS does
        self.bar_clock = bar_start if bar_start is not None else int(time.time()) // 60 * 60
        self.host = "127.0.0.1"
        self.port = 0
        self.internal_errors: list[str] = []  # exceptions raised while handling a request
        # The account's values (reqAccountUpdates 6, reqAccountUpdatesMulti 76, account summary
        # 62), in USD, as TWS reports them: strings.
        self.account_values = {"NetLiquidation": "1000000", "TotalCashValue": "1000000"}
        self._lock = threading.Lock()  # guards the observation lists
        self._received: list[tuple[int | None, int, list[str]]] = []  # clientId, msgId, fields
        self._placed: list[PlacedOrder] = []
        self._max_rate = 0
        # everything below is touched on the server loop only
        self._sessions: list[_Session] = []
        self._orders: dict[int, BookOrder] = {}  # permId -> order
        self._by_client: dict[tuple[int, int], BookOrder] = {}
        self._max_order_id: dict[int, int] = {}
        self._positions: dict[tuple[str, int], tuple[dict[str, str], float, float]] = {}
        self._executions: list[WireExecution] = []
        self._prices: dict[str, float] = {}
        self._symbols: dict[str, str] = {}  # conId -> symbol, for conId-only lookups
        self._bars = m.BarBook()
        self._next_perm = 1_000_000_001
        self._exec_seq = 0
        self._parts = 1
        self._lost = False
        self._silent = False
        self._reject: tuple[int, str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeTws:
        self._loop = loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="FakeTws", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(_CALL_TIMEOUT_S)
        return self

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_CALL_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(_CALL_TIMEOUT_S)
        loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for s in list(self._sessions):
            s.writer.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> FakeTws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeTws:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the server loop and return its result (thread-safe entry point)."""
        if self._loop is None or threading.current_thread() is self._thread:
            return fn(*args)
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # re-raised in the calling thread
                fut.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return fut.result(_CALL_TIMEOUT_S)

    # ----------------------------------------------------------------- observation
    @property
    def received(self) -> list[tuple[int, list[str]]]:
        """Every client message after the handshake: (msg_id, fields incl. the id)."""
        with self._lock:
            return [(i, f) for _, i, f in self._received]

    def received_from(self, client_id: int) -> list[tuple[int, list[str]]]:
        with self._lock:
            return [(i, f) for c, i, f in self._received if c == client_id]

    @property
    def placed_orders(self) -> list[PlacedOrder]:
        with self._lock:
            return list(self._placed)

    @property
    def max_client_msgs_per_s(self) -> int:
        """Most messages one connection sent within any 0.95 s window (the 5% slack keeps
        two throttled bursts 1 s apart from being counted together because of jitter)."""
        with self._lock:
            return self._max_rate

    def orders(self) -> list[OrderRecord]:
        return self._call(lambda: [o.record() for o in self._orders.values()])

    def positions(self) -> list[PositionRecord]:
        return self._call(
            lambda: [
                PositionRecord(acct, c["symbol"], con, qty, avg)
                for (acct, con), (c, qty, avg) in self._positions.items()
            ]
        )

    def executions(self) -> list[WireExecution]:
        return self._call(lambda: list(self._executions))

    def client_ids(self) -> list[int | None]:
        """Client ids of the API connections currently open."""
        return self._call(lambda: [s.client_id for s in self._sessions if s.ready])

    def wait_for(self, predicate: Callable[[], object], timeout: float = 3.0) -> None:
        """Poll ``predicate`` from a sync test thread (bounded)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("FakeTws.wait_for: condition not met")
            time.sleep(0.01)

    # ----------------------------------------------------------------- control
    def set_price(self, symbol: str, price: float, volume: float = 0.0) -> None:
        """Set the last price (fills crossing orders; feeds bars)."""
        self._call(self._set_price, symbol, price, volume)

    def set_account_values(self, net_liquidation: float, total_cash: float) -> None:
        """What later account requests report (a subscription already answered keeps its own)."""
        values = {"NetLiquidation": f"{net_liquidation:.2f}", "TotalCashValue": f"{total_cash:.2f}"}
        self._call(self.account_values.update, values)

    def set_position(
        self, symbol: str, quantity: float, avg_cost: float, account: str | None = None
    ) -> None:
        c = m.stock_contract(symbol)
        key = (account or self.accounts[0], int(c["conId"]))
        self._call(self._positions.__setitem__, key, (c, quantity, avg_cost))

    def fill_in_parts(self, n: int) -> None:
        """Split every later fill into n executions (1 = whole fills)."""
        self._call(setattr, self, "_parts", max(1, n))

    def reject_next_order(self, code: int = 201, msg: str = "Order rejected - reason:") -> None:
        self._call(setattr, self, "_reject", (code, msg))

    def set_silent(self, silent: bool) -> None:
        """Keep reading (and recording) but send nothing at all, handshake included."""
        self._call(setattr, self, "_silent", silent)

    def error(self, req_id: int, code: int, msg: str) -> None:
        """Push an error message to every connected client."""

        def run() -> None:
            for s in self._ready():
                self._send(s, self._err(s, req_id, code, msg))

        self._call(run)

    def connectivity_lost(self) -> None:
        """Error 1100 to every client, then hold everything (the sockets stay up)."""

        def run() -> None:
            for s in self._ready():
                self._send(s, self._err(s, -1, 1100, CONNECTIVITY[1100]))
            self._lost = True

        self._call(run)

    def connectivity_restored(self, data_lost: bool = False, *, drop_held: bool = False) -> None:
        """1101 (data lost) or 1102 (maintained), then deliver what was held — or, with
        ``drop_held``, discard it: state such as executions stays queryable either way."""

        def run() -> None:
            self._lost = False
            code = 1101 if data_lost else 1102
            for s in self._ready():
                held, s.held = s.held, []
                self._send(s, self._err(s, -1, code, CONNECTIVITY[code]))
                for data in [] if drop_held else held:
                    s.writer.write(data)

        self._call(run)

    def disconnect_all(self) -> None:
        """Close every client socket (state is kept)."""

        def run() -> None:
            for s in self._sessions:
                s.writer.close()

        self._call(run)

    def push_realtime_bar(self, symbol: str, fields: list[str]) -> None:
        """A realtimeBar (msg 50) to every subscription of ``symbol`` with these raw fields
        (time, open, high, low, close, volume, wap, count): malformed ones on command."""

        def run() -> None:
            for s in self._ready():
                for req_id, sym in s.rt_bars.items():
                    if sym == symbol:
                        self._send(s, [50, 3, req_id, *fields])

        self._call(run)

    def advance_bars(self, n: int = 1) -> None:
        """Advance the bar clock by n x 5 s: each step pushes a realtimeBar per subscription
        and a historicalDataUpdate per keepUpToDate request."""
        for _ in range(n):
            self._call(self._bar_step)

    # ----------------------------------------------------------------- transport
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = _Session(writer)
        self._sessions.append(s)
        try:
            if await reader.readexactly(4) != b"API\0":
                return
            size = int.from_bytes(await reader.readexactly(4), "big")
            text = (await reader.readexactly(size)).decode().split(" ")[0]  # "v157..178"
            low, high = (int(v) for v in text.lstrip("v").split(".."))
            if not low <= self.server_version <= high:
                return
            s.version = self.server_version
            self._send(s, [s.version, m.stamp(time.time())])
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                fields = m.split_payload(await reader.readexactly(size))
                if fields and fields[0].isdigit() and self._record(s, fields):
                    self._dispatch(s, int(fields[0]), fields)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._sessions.remove(s)
            writer.close()

    def _record(self, s: _Session, fields: list[str]) -> bool:
        """Log the message and measure the rate; False when pacing hung up on the client."""
        if s.hung_up:
            return False
        now = time.monotonic()
        s.msg_times.append(now)
        while now - s.msg_times[0] > _RATE_WINDOW_S:
            s.msg_times.popleft()
        with self._lock:
            self._received.append((s.client_id, int(fields[0]), fields))
            self._max_rate = max(self._max_rate, len(s.msg_times))
        if self.pacing_limit is not None and len(s.msg_times) > self.pacing_limit:
            text = f"Max rate of messages per second has been exceeded:max={self.pacing_limit}"
            self._send(s, self._err(s, -1, 100, text))
            # Half-close and read on until the client goes: closing with its messages unread
            # would reset the connection, and a reset can destroy the 100 before it is read.
            s.hung_up = True
            s.writer.write_eof()
            return False
        return True

    def _send(self, s: _Session, fields: list[Any]) -> None:
        if self._silent or s.hung_up or s.writer.is_closing():
            return
        data = m.frame(fields)
        if self._lost and s.ready:
            s.held.append(data)
        else:
            s.writer.write(data)

    def _err(self, s: _Session, req_id: int, code: int, msg: str) -> list[str]:
        return m.encode_error(req_id, code, msg, s.version)

    def _ready(self) -> list[_Session]:
        return [s for s in self._sessions if s.ready]

    def _owners(self, o: BookOrder) -> list[_Session]:
        return [s for s in self._ready() if s.client_id == o.client_id]

    # ----------------------------------------------------------------- requests
    def _dispatch(self, s: _Session, msg_id: int, f: list[str]) -> None:
        if msg_id == 71 and not s.ready:
            self._start_api(s, int(f[2]))
            return
        handler = self._HANDLERS.get(msg_id)
        if handler is None or not s.ready:
            return  # unsupported requests are recorded and ignored
        try:
            handler(self, s, f)
        except Exception as exc:  # a fake bug or a malformed request: keep serving
            self.internal_errors.append(f"msg {msg_id}: {exc!r}")

    def _start_api(self, s: _Session, client_id: int) -> None:
        if any(o.client_id == client_id and o.ready for o in self._sessions):
            self._send(s, self._err(s, -1, 326, MSG_326))
            s.writer.close()
            return
        s.client_id = client_id
        self._send(s, [15, 1, ",".join(self.accounts)])
        self._send(s, [9, 1, self._max_order_id.get(client_id, 0) + 1])
        if self._lost:
            self._send(s, self._err(s, -1, 1100, CONNECTIVITY[1100]))
        s.ready = True
        for code, text in m.FARM_NOTICES if self.farm_notices else ():
            self._send(s, self._err(s, -1, code, text))

    def _req_current_time(self, s: _Session, f: list[str]) -> None:
        # TWS's clock is the market's: the bar clock when a test moves it faster than ours.
        self._send(s, [49, 1, max(int(time.time()), self.bar_clock)])

    def _req_ids(self, s: _Session, f: list[str]) -> None:
        self._send(s, [9, 1, self._max_order_id.get(s.client_id or 0, 0) + 1])

    def _req_managed(self, s: _Session, f: list[str]) -> None:
        self._send(s, [15, 1, ",".join(self.accounts)])

    def _req_positions(self, s: _Session, f: list[str]) -> None:
        s.positions_sub = f[0] == "61"  # 64 = cancelPositions
        if s.positions_sub:
            for (acct, _), (c, qty, avg) in self._positions.items():
                self._send(s, m.encode_position(acct, c, qty, avg))
            self._send(s, [62, 1])

    def _req_account_updates(self, s: _Session, f: list[str]) -> None:
        s.account_sub = f[2] == "1"
        acct = f[3] or self.accounts[0]
        if not s.account_sub:
            return
        for tag, value in self.account_values.items():
            self._send(s, [6, 2, tag, value, "USD", acct])
        for (a, _), (c, qty, avg) in self._positions.items():
            if a == acct:
                price = self._prices.get(c["symbol"], avg)
                self._send(s, m.encode_portfolio(a, c, qty, price, avg))
        self._send(s, [8, 1, time.strftime("%H:%M", time.gmtime())])
        self._send(s, [54, 1, acct])

    def _req_account_multi(self, s: _Session, f: list[str]) -> None:
        acct = f[3] or self.accounts[0]
        for tag, value in self.account_values.items():
            self._send(s, [73, 1, f[2], acct, f[4], tag, value, "USD"])
        self._send(s, [74, 1, f[2]])

    def _req_account_summary(self, s: _Session, f: list[str]) -> None:
        for acct in self.accounts:
            for tag, value in self.account_values.items():
                self._send(s, [63, 1, f[2], acct, tag, value, "USD"])
        self._send(s, [64, 1, f[2]])

    def _req_open_orders(self, s: _Session, f: list[str]) -> None:
        for o in self._orders.values():  # 5: this client's orders, 16: every client's
            if o.is_open and (f[0] == "16" or o.client_id == s.client_id):
                self._send(s, self._open_order(o, s))
                self._send(s, self._order_status(o))
        self._send(s, [53, 1])

    def _req_completed(self, s: _Session, f: list[str]) -> None:
        for o in self._orders.values():
            if not o.is_open:
                extra = {"permId": str(o.perm_id), "status": o.status,
                         "completedTime": o.completed[0], "completedStatus": o.completed[1],
                         "filledQuantity": m.num(o.filled)}  # fmt: skip
                self._send(s, m.encode_completed_order(o.wire, extra, s.version))
        self._send(s, [102])

    def _req_executions(self, s: _Session, f: list[str]) -> None:
        req_id = int(f[2])
        client, acct, _time, sym, sec, _exch, side = [*f, *[""] * 10][3:10]
        side = {"BUY": "BOT", "SELL": "SLD"}.get(side, side)
        for ex in self._executions:
            wanted = (
                (client in ("", "0") or int(client) == ex.client_id)
                and acct in ("", ex.account)
                and sym in ("", ex.contract["symbol"])
                and sec in ("", ex.contract["secType"])
                and side in ("", ex.side)
            )
            if wanted:
                self._send(s, m.encode_exec_details(req_id, ex, s.version))
                self._send(s, m.encode_commission(ex))
        self._send(s, [55, 1, req_id])

    def _req_contract_details(self, s: _Session, f: list[str]) -> None:
        req_id, c = int(f[2]), m.parse_contract(f[3:])
        symbol = c["symbol"] or self._symbols.get(c["conId"], "")
        if c["secType"] not in ("STK", "") or not symbol:
            text = "No security definition has been found for the request"
            self._send(s, self._err(s, req_id, 200, text))
            return
        stock = self._stock(symbol, c["currency"]) | {"exchange": c["exchange"] or "SMART"}
        self._send(s, m.encode_contract_details(req_id, stock, stock["primaryExchange"]))
        self._send(s, [52, 1, req_id])

    def _stock(self, symbol: str, currency: str = "USD") -> dict[str, str]:
        c = m.stock_contract(symbol, currency)
        self._symbols[c["conId"]] = symbol
        return c

    # ----------------------------------------------------------------- orders
    def _open_order(self, o: BookOrder, s: _Session) -> list[str]:
        extra = {"clientId": str(o.client_id), "permId": str(o.perm_id), "status": o.status}
        return m.encode_open_order(o.wire, o.order_id, extra, s.version)

    def _order_status(self, o: BookOrder) -> list[str]:
        remaining = max(0.0, o.quantity - o.filled)
        return m.encode_order_status(
            o.order_id, o.status, o.filled, remaining, o.avg_price, o.perm_id, o.last_price,
            o.client_id, o.val("parentId"),
        )  # fmt: skip

    def _notify(self, o: BookOrder, with_open: bool = True) -> None:
        for s in self._owners(o):
            if with_open:
                self._send(s, self._open_order(o, s))
            self._send(s, self._order_status(o))

    def _place_order(self, s: _Session, f: list[str]) -> None:
        client_id = s.client_id or 0
        p = m.parse_place_order(f, s.version)
        existing = self._by_client.get((client_id, p.order_id))
        if p.order["whatIf"] == "1":  # margin preview: answer, keep nothing
            extra = {"status": "PreSubmitted", "initMarginChange": "0", "maintMarginChange": "0"}
            wire = m.WireOrder(p.contract, p.order)
            self._send(s, m.encode_open_order(wire, p.order_id, extra, s.version))
            return
        if existing is not None and existing.is_open:  # modification
            existing.wire.order.update(p.order)
            self._log_placed(client_id, p, existing)
            self._notify(existing)
            self._try_fill(existing, arrival=True)
            return
        if existing is not None or p.order_id <= self._max_order_id.get(client_id, 0):
            self._send(s, self._err(s, p.order_id, 103, f"Duplicate order id: {p.order_id}"))
            return
        self._max_order_id[client_id] = p.order_id
        if p.is_bag or p.contract["secType"] not in ("STK", ""):
            self._send(s, self._err(s, p.order_id, 321, "FakeTws supports stock orders only"))
            return
        contract = self._stock(p.contract["symbol"], p.contract["currency"])
        contract |= {k: v for k, v in p.contract.items() if v and k != "conId"}
        p.order["account"] = p.order["account"] or self.accounts[0]
        p.order["tif"] = p.order["tif"] or "DAY"
        wire = m.WireOrder(contract, p.order, p.algo_params, p.conditions)
        o = BookOrder(self._next_perm, client_id, p.order_id, wire)
        self._next_perm += 1
        self._orders[o.perm_id] = self._by_client[(client_id, p.order_id)] = o
        self._log_placed(client_id, p, o)
        if self._reject is not None:
            (code, text), self._reject = self._reject, None
            self._finish(o, "Cancelled", f"Rejected: {text}")
            self._send(s, self._err(s, p.order_id, code, text))
            return
        self._notify(o)
        if p.order["transmit"] != "0" and not self._try_fill(o, arrival=True):
            o.status = "Submitted"
            self._notify(o)

    def _log_placed(self, client_id: int, p: m.ParsedOrder, o: BookOrder) -> None:
        r = o.record()
        placed = PlacedOrder(
            client_id, p.order_id, o.perm_id, r.symbol, r.action, r.quantity, r.order_type,
            r.lmt_price, r.order_ref, r.account, dict(p.order),
        )  # fmt: skip
        with self._lock:
            self._placed.append(placed)

    def _cancel_order(self, s: _Session, f: list[str]) -> None:
        order_id = int(f[2])
        o = self._by_client.get((s.client_id or 0, order_id))
        if o is None:
            self._send(s, self._err(s, order_id, 135, f"Can't find order with id ={order_id}"))
        elif not o.is_open:
            text = "Cancel attempted when order is not in a cancellable state."
            self._send(s, self._err(s, order_id, 161, f"{text} Order permId ={o.perm_id}"))
        else:
            self._cancel(o)

    def _cancel(self, o: BookOrder) -> None:
        self._finish(o, "Cancelled", "Cancelled by Trader")
        self._notify(o, with_open=False)
        for s in self._owners(o):
            self._send(s, self._err(s, o.order_id, 202, "Order Canceled - reason:"))

    def _global_cancel(self, s: _Session, f: list[str]) -> None:
        for o in list(self._orders.values()):
            if o.is_open:
                self._cancel(o)

    def _finish(self, o: BookOrder, status: str, why: str) -> None:
        o.status = status
        o.completed = (m.stamp(time.time()), why)

    def _try_fill(self, o: BookOrder, arrival: bool) -> bool:
        price = self._prices.get(o.symbol)
        if price is None or o.val("transmit") == "0":
            return False
        fill_price = o.fill_price(price, arrival)
        if fill_price is None:
            return False
        for qty in m.split_quantity(o.quantity - o.filled, self._parts):
            self._execute(o, qty, fill_price)
        return True

    def _execute(self, o: BookOrder, qty: float, price: float) -> None:
        commission = self.commission_per_share * qty
        if o.filled == 0:
            commission = max(self.min_commission, commission)
        o.avg_price = (o.avg_price * o.filled + price * qty) / (o.filled + qty)
        o.filled += qty
        o.last_price = price
        realized = self._apply_position(o, qty, price)
        self._exec_seq += 1
        now = time.time()
        ex = WireExecution(
            f"0000e0d5.{int(now):08x}.{self._exec_seq:02d}.01", o.order_id, o.client_id,
            o.perm_id, o.wire.contract | {"exchange": "ISLAND"}, m.stamp(now), o.val("account"),
            "ISLAND", "BOT" if o.val("action") == "BUY" else "SLD", qty, price, o.filled,
            o.avg_price, o.val("orderRef"), round(commission, 6), o.wire.contract["currency"],
            None if realized is None else realized - commission,
        )  # fmt: skip
        self._executions.append(ex)
        done = o.filled >= o.quantity - 1e-9
        if done:
            self._finish(o, "Filled", f"Filled Size: {m.num(o.filled)}")
        else:
            o.status = "Submitted"
        for s in self._owners(o):  # TWS order: execDetails, status, then commission
            self._send(s, m.encode_exec_details(-1, ex, s.version))
            if done:
                self._send(s, self._open_order(o, s))
            self._send(s, self._order_status(o))
            self._send(s, m.encode_commission(ex))

    def _apply_position(self, o: BookOrder, qty: float, price: float) -> float | None:
        key = (o.val("account"), int(o.wire.contract["conId"]))
        c, pos, avg = self._positions.get(key, (self._stock(o.symbol), 0.0, 0.0))
        signed = qty if o.val("action") == "BUY" else -qty
        new, avg, realized = m.apply_fill(pos, avg, signed, price)
        self._positions[key] = (c, new, avg)
        for s in self._ready():  # reqPositions / reqAccountUpdates are subscriptions
            if s.positions_sub:
                self._send(s, m.encode_position(key[0], c, new, avg))
            if s.account_sub:
                self._send(s, m.encode_portfolio(key[0], c, new, price, avg))
        return realized

    # ----------------------------------------------------------------- market data
    def _set_price(self, symbol: str, price: float, volume: float) -> None:
        self._prices[symbol] = price
        self._bars.tick(symbol, price, volume)
        for o in sorted(self._orders.values(), key=lambda x: x.perm_id):
            if o.symbol == symbol and o.is_open:
                self._try_fill(o, arrival=False)

    def _req_rt_bars(self, s: _Session, f: list[str]) -> None:
        s.rt_bars[int(f[2])] = m.parse_contract(f[3:])["symbol"]

    def _req_historical(self, s: _Session, f: list[str]) -> None:
        """1-min bars up to the bar clock's minute (or the request's end, if earlier), flat at
        the symbol's price (or 100)."""
        req_id, c = int(f[1]), m.parse_contract(f[2:])
        end_text, _size, duration, _rth, _what, fmt_date = f[15:21]
        n, unit = [*duration.split(), "D"][:2] if duration else ("1", "D")
        count = max(1, min(int(n) * _DURATION_S.get(unit, 86_400) // 60, 5000))
        price, epoch = self._prices.get(c["symbol"], 100.0), fmt_date == "2"
        end = now = self.bar_clock // 60 * 60
        if end_text:  # an explicit end (UTC): bars up to it, none past the bar clock
            end = min(now, _parse_end(end_text) // 60 * 60)
        self._send(s, m.encode_historical_data(req_id, end, count, price, epoch))
        if len(f) > 21 and f[21] == "1" and not end_text:  # keepUpToDate
            s.hist_subs[req_id] = (c["symbol"], epoch)

    def _cancel_sub(self, s: _Session, f: list[str]) -> None:
        s.rt_bars.pop(int(f[2]), None)
        s.hist_subs.pop(int(f[2]), None)

    def _bar_step(self) -> None:
        start, flat = self.bar_clock, [100.0] * 4 + [0.0]
        self.bar_clock += 5
        bars = self._bars.close_5s(start)
        for s in self._ready():
            for req_id, sym in s.rt_bars.items():
                bar = m.encode_bar_fields(bars.get(sym, flat), 0)
                self._send(s, [50, 3, req_id, start, *bar])
            for req_id, (sym, epoch) in s.hist_subs.items():
                m_start, m_bar = self._bars.minute.get(sym, (start // 60 * 60, flat))
                self._send(s, m.encode_historical_update(req_id, m_start, m_bar, epoch))

    _HANDLERS: dict[int, Callable[[FakeTws, _Session, list[str]], None]] = {
        3: _place_order, 4: _cancel_order, 5: _req_open_orders, 6: _req_account_updates,
        7: _req_executions, 8: _req_ids, 9: _req_contract_details, 16: _req_open_orders,
        17: _req_managed, 20: _req_historical, 25: _cancel_sub, 49: _req_current_time,
        50: _req_rt_bars, 51: _cancel_sub, 58: _global_cancel, 61: _req_positions,
        62: _req_account_summary, 64: _req_positions, 76: _req_account_multi,
        99: _req_completed,
    }  # fmt: skip
