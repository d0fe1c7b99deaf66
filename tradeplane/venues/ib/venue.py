"""The broker's venue for Interactive Brokers: orders placed with ``orderRef`` = our client order
id, and TWS's order states, executions and commissions turned into the broker's ordered event
stream (``events_since``), the same shape the sim venue gives.

TWS has no replayable stream, so after every connect and every 1101/1102 the client asks for
the whole picture (all open orders, completed orders, executions with their commissions) and
appends it as events. The broker applies an order state it already passed as a no-op and a fill
id (execId) it knows as a duplicate, so this replay is idempotent: executions missed while the
link was down are found, and none is counted twice. A fill is passed on with its commission
(which TWS sends after the execution).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

import ib_async
from tenacity import RetryCallState, wait_fixed

from tradeplane.config.venues import IbConfig
from tradeplane.core.errors import TransientError
from tradeplane.core.model import OrderType, Side
from tradeplane.core.retry import Backoff, failure, retrying
from tradeplane.protocol.events import VenueEventKind
from tradeplane.venues.base import (
    OrderLookup,
    VenueEvent,
    VenueFill,
    VenueOrderRequest,
    VenueOrderState,
    VenuePosition,
)
from tradeplane.venues.ib.checks import (
    ACTIONS,
    SIDES,
    IbMessageUnusable,
    describe,
    execution_problem,
    order_state_problem,
    position_problem,
    status_problem,
    venue_order_id,
)
from tradeplane.venues.ib.core import ORDER_ERRORS_BENIGN, Link, account_figures, map_status
from tradeplane.venues.ib.session import IbSession

log = logging.getLogger("tradeplane.venues.ib")
EVENT_MEMORY = 20_000
REJECTED_MEMORY = 1_000  # unusable messages kept for the broker to journal (bounded)
EXTERNAL_PREFIX = "ib-perm-"  # an order without our orderRef, named by IB's permanent id
_STATUS_EVENT = {
    "accepted": VenueEventKind.ORDER_ACCEPTED,
    "cancelled": VenueEventKind.ORDER_CANCELLED,
}


class IbVenueClient:
    def __init__(self, cfg: IbConfig, *, session: IbSession | None = None) -> None:
        self.cfg = cfg
        self.session = session or IbSession(cfg)
        self.ib = self.session.ib
        self._events: deque[VenueEvent] = deque(maxlen=EVENT_MEMORY)
        self._seq = 0
        self._changed = asyncio.Event()
        self._contracts: dict[str, Any] = {}
        self._emitted: set[tuple[str, str]] = set()  # (coid, kind or fill id) already streamed
        # Messages not acted on, with why: the broker journals them (rate-bounded).
        self._rejected: deque[tuple[str, str]] = deque(maxlen=REJECTED_MEMORY)
        self.rejected_messages = 0
        self.ib.orderStatusEvent += self._on_status
        self.ib.commissionReportEvent += self._on_commission

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self, cursor: int) -> None:
        """Connect and resync; new events are numbered after the broker's journaled ``cursor``
        (it survives our restarts)."""
        self._seq = max(self._seq, cursor)
        await self.start()

    async def start(self) -> str:
        account = await self.session.connect()
        await self.resync()
        return account

    async def resync(self) -> None:
        """The whole picture from TWS, as events (idempotent for the broker); then trade on."""
        trades = await self.ib.reqAllOpenOrdersAsync()
        completed = await self.ib.reqCompletedOrdersAsync(apiOnly=False)
        fills = await self.ib.reqExecutionsAsync()
        for trade in [*trades, *completed]:
            self._on_status(trade)
        for fill in fills:
            self._emit_fill(fill)
        if self.session.link.state is Link.RESYNCING:
            self.session.link.resynced()

    async def maintain(self) -> None:
        """Keep the link: reconnect (and resync) after the socket dropped or TWS stopped
        answering heartbeats, resync after TWS regained IB (1101/1102). Runs for the broker's
        lifetime."""
        backoff = Backoff(0.5, 30.0)
        # Any failure: try again later (the usual 0.25 s tick after the backoff), the gate
        # stays shut meanwhile.
        upkeep = retrying(backoff + wait_fixed(0.25), on=(Exception,), before_sleep=self._failed)
        while True:
            await asyncio.sleep(0.25)
            await upkeep(self._upkeep, backoff)

    async def _upkeep(self, backoff: Backoff) -> None:
        if self.session.link.state is Link.DOWN:
            await self.start()
            backoff.reset()
        elif self.session.link.state is Link.RESYNCING:
            await self.resync()
        else:
            await self.session.heartbeat_if_due()

    def _failed(self, retry_state: RetryCallState) -> None:
        log.warning("IB link upkeep failed: %s", failure(retry_state))
        with contextlib.suppress(Exception):
            self.session.disconnect()

    @property
    def connected(self) -> bool:
        return self.session.connected

    @property
    def final_lookups(self) -> bool:
        # TWS can show an order after saying it has none (a placeOrder still on its way, a
        # reconnect replaying): "not there" is never final, the grace period applies.
        return False

    @property
    def incarnation(self) -> int | None:
        return None

    def close(self) -> None:
        self.session.disconnect()

    def on_bars(self, bars: list[Any]) -> None:
        return  # IB matches against its own market

    # -- orders --------------------------------------------------------------------------------

    def _check_link(self, what: str) -> None:
        if not self.session.connected:
            raise TransientError(f"IB {what}: link {self.session.link.state.value}")

    async def _contract(self, symbol: str) -> Any:
        contract = self._contracts.get(symbol)
        if contract is None:
            (contract,) = await self.ib.qualifyContractsAsync(
                ib_async.Stock(symbol, "SMART", "USD")
            )
            self._contracts[symbol] = contract
        return contract

    async def submit(self, req: VenueOrderRequest) -> list[VenueEvent]:
        self._check_link("submit")
        contract = await self._contract(req.symbol)
        action = "BUY" if req.side is Side.BUY else "SELL"
        order: Any
        if req.order_type is OrderType.LIMIT:
            if req.limit_price is None:
                raise ValueError(f"{req.client_order_id}: a limit order without a limit price")
            order = ib_async.LimitOrder(action, req.quantity, req.limit_price)
        else:
            order = ib_async.MarketOrder(action, req.quantity)
        order.orderRef = req.client_order_id
        order.account = self.session.account or ""
        self.ib.placeOrder(contract, order)
        return []  # TWS answers on the stream

    async def cancel(self, client_order_id: str) -> list[VenueEvent]:
        self._check_link("cancel")
        trade = self._trade(client_order_id)
        if trade is not None:
            self.ib.cancelOrder(trade.order)
        return []

    def _trade(self, coid: str) -> Any | None:
        for trade in self.ib.trades():
            if trade.order.orderRef == coid:
                return trade
        return None

    async def order(self, client_order_id: str) -> VenueOrderState | None:
        self._check_link("order")
        trade = self._trade(client_order_id)
        return None if trade is None else self._checked_state(trade)

    async def lookup(self, client_order_id: str) -> OrderLookup:
        return OrderLookup(await self.order(client_order_id))

    async def open_orders(self) -> list[VenueOrderState]:
        self._check_link("open orders")
        # Every open order of the account, ours or not: reconciliation must see one placed by
        # hand or by another program (it has no orderRef; it goes by IB's permanent id).
        return [self._checked_state(t) for t in self.ib.openTrades()]

    def _checked_state(self, trade: Any) -> VenueOrderState:
        problem = order_state_problem(trade)
        if problem is not None:
            self._reject(problem, trade)
            raise IbMessageUnusable(f"IB: {problem}")
        return _state(trade)

    async def positions(self) -> dict[str, VenuePosition]:
        self._check_link("positions")
        out: dict[str, VenuePosition] = {}
        for p in await self.ib.reqPositionsAsync():
            if self.session.account and p.account != self.session.account:
                continue
            problem = position_problem(p)
            if problem is not None:  # a position left out would read as flat: ask again
                self._reject(problem, p)
                raise IbMessageUnusable(f"IB: {problem}")
            if p.position:
                out[p.contract.symbol] = VenuePosition(
                    p.contract.symbol, float(p.position), float(p.avgCost)
                )
        return out

    async def account_values(self) -> dict[str, Any]:
        """The account's net liquidation value and total cash (``account_figures``): from the
        account updates TWS streams since connect, else from an account summary request."""
        self._check_link("account values")
        account = self.session.account or ""
        rows = [(v.account, v.tag, v.value, v.currency) for v in self.ib.accountValues(account)]
        figures = account_figures(rows, account)
        if "net_liquidation" not in figures:
            summary = await self.ib.accountSummaryAsync(account)
            figures = account_figures(
                [(v.account, v.tag, v.value, v.currency) for v in summary], account
            )
        return figures

    # -- the event stream ----------------------------------------------------------------------

    async def events_since(self, seq: int, limit: int, wait_s: float) -> list[VenueEvent]:
        if not self.session.connected and self.session.link.state.value != "resyncing":
            raise TransientError(f"IB link {self.session.link.state.value}")
        events = self._after(seq, limit)
        if not events and wait_s > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._changed.wait()
            events = self._after(seq, limit)
        return events

    def _after(self, seq: int, limit: int) -> list[VenueEvent]:
        return [e for e in self._events if e.seq > seq][:limit]

    async def last_seq(self) -> int:
        return self._seq

    def _append(self, **fields: Any) -> None:
        self._seq += 1
        self._events.append(VenueEvent(seq=self._seq, ts=time.time(), **fields))
        self._changed.set()

    def _reject(self, reason: str, obj: Any) -> None:
        self.rejected_messages += 1
        self._rejected.append((reason, describe(obj)))
        self._changed.set()

    def take_rejected(self) -> list[tuple[str, str]]:
        """The messages not acted on since the last call, as (reason, description)."""
        out = list(self._rejected)
        self._rejected.clear()
        return out

    def _on_status(self, trade: Any) -> None:
        order = getattr(trade, "order", None)
        if not getattr(order, "orderRef", None):
            return  # not ours (placed by another client or by hand)
        problem = status_problem(trade)
        if problem is not None:
            self._reject(problem, trade)
            return
        coid = trade.order.orderRef
        status = map_status(trade.orderStatus.status).value
        kind = _STATUS_EVENT.get(status)
        reason = None
        # ib_async reports an order TWS refused (error 201 and the like) as Cancelled with the
        # error in its log; an answer to our own cancel is error 202.
        refusal = [
            e
            for e in trade.log
            if getattr(e, "errorCode", 0) and e.errorCode not in ORDER_ERRORS_BENIGN
        ]
        if status == "rejected" or (status == "cancelled" and refusal):
            kind = VenueEventKind.ORDER_REJECTED
            messages = [
                e.message
                for e in (refusal or trade.log)
                if isinstance(getattr(e, "message", None), str) and e.message
            ]
            reason = messages[-1] if messages else "rejected by IB"
        if kind is None or (coid, kind) in self._emitted:
            return
        self._emitted.add((coid, kind))
        self._append(
            kind=kind,
            client_order_id=coid,
            venue_order_id=venue_order_id(trade.order) or venue_order_id(trade.orderStatus),
            reason=reason,
        )

    def _on_commission(self, trade: Any, fill: Any, report: Any) -> None:
        self._emit_fill(fill)

    def _emit_fill(self, fill: Any) -> None:
        ex: Any = getattr(fill, "execution", None)
        coid = getattr(ex, "orderRef", "") or ""
        exec_id = getattr(ex, "execId", "")
        if not coid or (coid, exec_id) in self._emitted:
            return  # not ours, or streamed already
        report: Any = getattr(fill, "commissionReport", None)
        if report is None or not getattr(report, "execId", ""):
            return  # its commission comes next; the fill goes out with it
        problem = execution_problem(fill)
        if problem is not None:
            self._reject(problem, fill)
            return
        self._emitted.add((coid, exec_id))
        vid = venue_order_id(ex) or ""  # never empty: execution_problem checked it
        self._append(
            kind=VenueEventKind.ORDER_FILLED,
            client_order_id=coid,
            venue_order_id=vid,
            fill=VenueFill(
                fill_id=exec_id,
                client_order_id=coid,
                venue_order_id=vid,
                symbol=fill.contract.symbol,
                side=Side.BUY if SIDES[ex.side] == "buy" else Side.SELL,
                quantity=float(ex.shares),
                price=float(ex.price),
                fee=float(report.commission),
                ts=ex.time.timestamp(),
                liquidity="taker",
            ),
        )


def _state(trade: Any) -> VenueOrderState:
    o, s = trade.order, trade.orderStatus
    now = time.time()
    return VenueOrderState(
        client_order_id=o.orderRef or f"{EXTERNAL_PREFIX}{o.permId or o.orderId}",
        venue_order_id=str(o.permId or o.orderId),
        symbol=trade.contract.symbol,
        side=Side.BUY if ACTIONS[o.action.upper()] == "buy" else Side.SELL,
        quantity=float(o.totalQuantity),
        order_type=OrderType.LIMIT if o.orderType == "LMT" else OrderType.MARKET,
        limit_price=float(o.lmtPrice) if o.orderType == "LMT" else None,
        status=map_status(s.status).value,
        filled_quantity=float(s.filled or 0.0),
        avg_fill_price=float(s.avgFillPrice or 0.0),
        fees=sum(float(f.commissionReport.commission or 0.0) for f in trade.fills),
        reason=None,
        created_ts=now,
        updated_ts=now,
    )
