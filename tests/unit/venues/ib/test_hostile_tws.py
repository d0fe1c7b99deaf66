"""Hostile input at scale, TWS: ib_async's decoder swallows its own errors and leaves a field it
could not read at its default (``""``, ``0``, ``0.0``, the epoch, TWS's unset markers), so what
reaches our adapter are decoded objects with defaulted or hostile fields. Generated ones go to
the adapter's handlers (order status, execution with commission, open order state, position);
and execDetails/commissionReport frames with fields broken or cut off go through ib_async's own
decoder and wrapper into the adapter (an exception out of our handlers, which ib_async would
swallow and log, fails the test).

The adapter never acts on a defaulted field: an order status or an execution whose fields are
not all usable appends no event (no status change, no fill) and is rejected with a reason that
names the message kind and a field that is wrong; a position or order state with one raises
``IbMessageUnusable`` (ours, a ``TransientError``: asked again, never guessed) naming it.
Nothing else escapes. And no registered credential reaches ib_async's own loggers.

Profile and case counts: tests/fuzz.py (``TRADEPLANE_FUZZ_PROFILE=soak`` for 10,000 each).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import ib_async
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import fuzz_settings, run_cases
from tradeplane.config.venues import IbConfig
from tradeplane.core.redact import REDACTOR, register_secrets
from tradeplane.venues.ib.checks import UNSET_DOUBLE, UNSET_INTEGER, IbMessageUnusable
from tradeplane.venues.ib.core import IB_STATUS
from tradeplane.venues.ib.session import IB_ASYNC_LOGGERS
from tradeplane.venues.ib.venue import IbVenueClient

# Each field: values we may act on, and values that must stop us (defaults and garbage).
BAD_NUMBER: list[Any] = [0.0, -1.0, math.nan, math.inf, -math.inf, UNSET_DOUBLE, None, "10", True]
BAD_ID: list[Any] = [0, -1, UNSET_INTEGER, None, "12", 1.5]
BAD_TEXT: list[Any] = ["", " ", None, 7]
positive = st.floats(min_value=1e-6, max_value=1e9)
not_positive = st.floats(max_value=0.0) | st.sampled_from(BAD_NUMBER)
an_id = st.integers(1, UNSET_INTEGER - 1)
not_an_id = st.one_of(
    st.integers(max_value=0), st.integers(min_value=UNSET_INTEGER), st.sampled_from(BAD_ID)
)
a_time = st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))
a_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(str.strip)
FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "execId": (a_text, st.sampled_from(BAD_TEXT)),
    "side": (st.sampled_from(["BOT", "SLD"]), st.sampled_from(["", "BUY", "S", None, "bot"])),
    "shares": (positive, not_positive),
    "price": (positive, not_positive),
    "permId": (an_id, not_an_id),
    "orderId": (an_id, not_an_id),
    "time": (
        a_time,
        st.sampled_from(
            [datetime(1970, 1, 1, tzinfo=UTC), None, "20261204 15:30:00", datetime(2026, 12, 4)]
        ),
    ),
    "symbol": (a_text, st.sampled_from(BAD_TEXT)),
    "commission": (
        st.floats(min_value=0.0, max_value=1e6),
        st.floats(max_value=-1e-9) | st.sampled_from([math.nan, math.inf, UNSET_DOUBLE, None, "1"]),
    ),
    # A status we do not know is no default: it maps to "unknown" (asked again).
    "status": (st.sampled_from(list(IB_STATUS)) | a_text, st.sampled_from(["", None, 3])),
    "action": (st.sampled_from(["BUY", "SELL", "buy"]), st.sampled_from(["", "HOLD", None, 1])),
    "totalQuantity": (positive, not_positive),
}
EXAMPLE = {
    "execId": "0001.01", "side": "BOT", "shares": 1.0, "price": 500.0, "permId": 1234567,
    "orderId": 42, "time": datetime(2026, 12, 4, 15, 30, tzinfo=UTC), "symbol": "SPY",
    "commission": 0.0, "status": "Submitted", "action": "BUY", "totalQuantity": 10.0,
}  # fmt: skip
# The word a rejection of a bad field must contain (lower case).
WORDS = {
    "execId": "execid",
    "side": "side",
    "shares": "shares",
    "price": "price",
    "permId": "permid",
    "orderId": "permid",  # "permId and orderId missing": only when both are
    "time": "time",
    "symbol": "symbol",
    "commission": "commission",
    "status": "status",
    "action": "action",
    "totalQuantity": "totalquantity",
}


def field_values(names: list[str]) -> st.SearchStrategy[dict[str, tuple[Any, bool]]]:
    """For each field, (value, usable)."""

    def one(name: str) -> st.SearchStrategy[tuple[Any, bool]]:
        good, bad = FIELDS[name]
        return st.one_of(good.map(lambda v: (v, True)), bad.map(lambda v: (v, False)))

    return st.fixed_dictionaries({n: one(n) for n in names})


def bad_fields(values: dict[str, tuple[Any, bool]]) -> set[str]:
    bad = {n for n, (_, ok) in values.items() if not ok}
    if {"permId", "orderId"} <= bad:
        return bad  # no id at all
    return bad - {"permId", "orderId"}  # one of the two is enough


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()


def new_client() -> IbVenueClient:
    return IbVenueClient(IbConfig(host="127.0.0.1", port=4002, client_id=9))


def fresh(client: IbVenueClient) -> IbVenueClient:
    """``client`` as new (one ib_async.IB per test, not per case: building one is slow)."""
    client._events.clear()
    client._emitted.clear()
    client.take_rejected()
    return client


def make_fill(v: dict[str, Any], coid: str = "tpAAA") -> Any:
    ex = ib_async.Execution(orderRef=coid)
    for name in ("execId", "side", "shares", "price", "permId", "orderId", "time"):
        setattr(ex, name, v[name])
    report = ib_async.CommissionReport(execId=v["execId"] or "pending")
    report.commission = v["commission"]
    contract = ib_async.Stock(v["symbol"], "SMART", "USD")
    return ib_async.Fill(contract, ex, report, datetime.now(UTC))


def make_trade(v: dict[str, Any], coid: str = "tpAAA") -> Any:
    order = ib_async.MarketOrder(v.get("action", "BUY"), v.get("totalQuantity", 10.0))
    order.orderRef, order.permId, order.orderId = coid, v["permId"], v["orderId"]
    status = ib_async.OrderStatus(status=v["status"])
    contract = ib_async.Stock(v.get("symbol", "SPY"), "SMART", "USD")
    return ib_async.Trade(contract, order, status, [], [])


def assert_rejected_naming(client: IbVenueClient, kind: str, bad: set[str]) -> None:
    ((reason, raw),) = client.take_rejected()
    assert reason.startswith(kind), reason
    assert any(WORDS[n] in reason.lower() for n in bad), (reason, bad)
    assert isinstance(raw, str) and len(raw) <= 300


def test_fuzz_tws_executions_then_a_fill_only_from_usable_fields_else_rejected() -> None:
    counter = [0]
    shared = new_client()
    names = ["execId", "side", "shares", "price", "permId", "orderId", "time", "symbol",
             "commission"]  # fmt: skip

    @fuzz_settings()
    @given(field_values(names))
    def case(values: dict[str, tuple[Any, bool]]) -> None:
        counter[0] += 1
        client = fresh(shared)
        v = {n: value for n, (value, _) in values.items()}
        bad = bad_fields(values)
        client._emit_fill(make_fill(v))
        events = list(client._events)
        if not v["execId"] or not isinstance(v["execId"], str):
            # No execId: not a fill we can name or de-duplicate; never acted on.
            assert events == []
            return
        if bad:
            assert events == [], (bad, events)
            assert_rejected_naming(client, "execDetails", bad)
            return
        (ev,) = events
        fill = ev.fill
        assert fill is not None and ev.kind == "order_filled"
        assert fill.quantity == v["shares"] and fill.price == v["price"]
        assert fill.side.value == {"BOT": "buy", "SLD": "sell"}[v["side"]]
        assert fill.fee == v["commission"] and fill.symbol == v["symbol"]
        assert fill.ts == v["time"].timestamp() and fill.venue_order_id not in ("", "0")
        assert client.take_rejected() == []

    run_cases(case, counter)


def test_fuzz_tws_order_statuses_then_a_status_event_only_from_usable_fields() -> None:
    counter = [0]
    shared = new_client()

    @fuzz_settings()
    @given(field_values(["status", "permId", "orderId"]), st.booleans())
    def case(values: dict[str, tuple[Any, bool]], refused: bool) -> None:
        counter[0] += 1
        client = fresh(shared)
        v = {n: value for n, (value, _) in values.items()}
        bad = bad_fields(values)
        trade = make_trade(v)
        if refused:  # an order TWS refused: its error in the trade's log
            trade.log.append(ib_async.TradeLogEntry(datetime.now(UTC), "", "no margin", 201))
        client._on_status(trade)
        events = list(client._events)
        if bad:
            assert events == []
            assert_rejected_naming(client, "orderStatus", bad)
            return
        assert client.take_rejected() == []
        for ev in events:
            assert ev.client_order_id == "tpAAA" and ev.venue_order_id not in (None, "", "0")
            assert ev.kind in ("order_accepted", "order_cancelled", "order_rejected")

    run_cases(case, counter)


def test_fuzz_tws_open_orders_and_positions_then_states_only_from_usable_fields(
    loop: asyncio.AbstractEventLoop,
) -> None:
    counter = [0]
    names = ["status", "permId", "orderId", "action", "totalQuantity", "symbol", "price"]
    shared = new_client()

    @fuzz_settings()
    @given(field_values(names))
    def case(values: dict[str, tuple[Any, bool]]) -> None:
        counter[0] += 1
        client = fresh(shared)
        v = {n: value for n, (value, _) in values.items()}
        trade = make_trade(v)
        position = ib_async.Position("DU1", trade.contract, v["totalQuantity"], v["price"])
        client.ib.isConnected = lambda: True
        if not client.session.link.may_send:
            client.session.link.connected()
        client.ib.openTrades = lambda: [trade]

        async def positions() -> list[Any]:
            return [position]

        client.ib.reqPositionsAsync = positions
        bad_order = bad_fields(values) - {"price"}
        if isinstance(v["status"], str):
            bad_order.discard("status")  # an unknown state is "unknown": asked again
        try:
            (state,) = loop.run_until_complete(client.open_orders())
        except IbMessageUnusable as exc:
            assert bad_order, exc
            assert any(WORDS[n] in str(exc).lower() for n in bad_order), (exc, bad_order)
        else:
            assert not bad_order, bad_order
            assert state.quantity == v["totalQuantity"] and state.symbol == v["symbol"]
        bad_position = bad_fields({n: values[n] for n in ("symbol", "totalQuantity", "price")})
        bad_position -= {"totalQuantity", "price"} - _not_finite(v["totalQuantity"], v["price"])
        try:
            got = loop.run_until_complete(client.positions())
        except IbMessageUnusable as exc:
            assert bad_position, exc
        else:
            assert not bad_position, bad_position
            for p in got.values():
                assert math.isfinite(p.quantity) and math.isfinite(p.avg_price)

    run_cases(case, counter)


def _not_finite(quantity: Any, avg_cost: Any) -> set[str]:
    """A position may be 0 or short and its cost 0: only a non-number is bad there."""

    def bad(x: Any) -> bool:
        ok = isinstance(x, int | float) and not isinstance(x, bool)
        return not ok or not math.isfinite(x) or x == UNSET_DOUBLE

    return {n for n, x in (("totalQuantity", quantity), ("price", avg_cost)) if bad(x)}


# -- explicit examples (the defaults ib_async fills in) -------------------------------------


def test_execution_decoded_without_side_then_not_a_sell_but_rejected() -> None:
    client = new_client()
    v = dict(EXAMPLE)
    v["side"] = ""  # ib_async's default; this used to read as a sell
    client._emit_fill(make_fill(v))
    assert list(client._events) == []
    ((reason, _),) = client.take_rejected()
    assert reason == "execDetails tpAAA 0001.01: side '' is neither BOT nor SLD"


def test_execution_decoded_without_time_then_not_a_fill_at_the_epoch_but_rejected() -> None:
    client = new_client()
    v = dict(EXAMPLE)
    v["time"] = datetime(1970, 1, 1, tzinfo=UTC)  # ib_async's default
    client._emit_fill(make_fill(v))
    assert list(client._events) == []
    ((reason, _),) = client.take_rejected()
    assert reason == "execDetails tpAAA 0001.01: time missing"


def test_execution_with_unset_commission_then_rejected_not_a_fee_of_1e308() -> None:
    client = new_client()
    v = dict(EXAMPLE)
    v["commission"] = UNSET_DOUBLE
    client._emit_fill(make_fill(v))
    assert list(client._events) == []
    assert "commission" in client.take_rejected()[0][0]


def test_order_status_without_any_id_then_rejected_not_an_order_named_0() -> None:
    client = new_client()
    client._on_status(make_trade({"status": "Submitted", "permId": 0, "orderId": 0}))
    assert list(client._events) == []
    assert client.take_rejected()[0][0] == "orderStatus tpAAA: permId and orderId missing"


def test_order_status_decoded_without_status_then_rejected() -> None:
    client = new_client()
    client._on_status(make_trade({"status": "", "permId": 5, "orderId": 5}))
    assert client.take_rejected()[0][0] == "orderStatus tpAAA: status missing"


def test_position_without_a_number_then_unusable_not_flat(
    loop: asyncio.AbstractEventLoop,
) -> None:
    client = new_client()
    client.ib.isConnected = lambda: True
    client.session.link.connected()
    contract = ib_async.Stock("SPY", "SMART", "USD")

    async def positions() -> list[Any]:
        return [ib_async.Position("DU1", contract, math.nan, 500.0)]

    client.ib.reqPositionsAsync = positions
    with pytest.raises(IbMessageUnusable, match="position SPY: position missing"):
        loop.run_until_complete(client.positions())


# -- no credential in ib_async's log --------------------------------------------------------


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture()
def secret() -> Iterator[str]:
    value = "okx-secret-7f3a9c1e2b"
    register_secrets([value])
    yield value
    REDACTOR.clear()


def test_frame_carrying_a_credential_then_ib_async_logs_it_masked(secret: str) -> None:
    client = new_client()  # installs the filter on ib_async's loggers
    capture = Capture()
    loggers = [logging.getLogger(n) for n in IB_ASYNC_LOGGERS]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:  # a handler on ib_async's own logger, as logToConsole-like setups do
        lg.addHandler(capture)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
    try:
        decoder = client.ib.client.decoder
        decoder.serverVersion = 178
        # A frame ib_async cannot decode: it logs the fields and the traceback.
        decoder.interpret(["3", "1", f"Filled {secret}", "x"])
        # An error text from TWS quoting the value: the wrapper logs it.
        client.ib.wrapper.error(-1, 2104, f"farm ok {secret}", "")
        # A status for an unknown order: logged with its ids.
        decoder.interpret(["11", "-1", "1", "0", secret])
    finally:
        for lg, level, propagate in saved:
            lg.removeHandler(capture)
            lg.setLevel(level)
            lg.propagate = propagate
    assert capture.lines, "ib_async logged nothing: the test proves nothing"
    assert not any(secret in line for line in capture.lines), capture.lines
    assert any("***" in line for line in capture.lines)


# -- frames through ib_async's decoder -------------------------------------------------------

FRAME_VALUES = [
    "", " ", "nan", "NaN", "inf", "-1", "0", "abc", "1.7976931348623157E308", "2147483647",
    "99999999999999999999", "1e999", "20261204 15:30:00 UTC", "BOT", "SLD", "tpAAA", "\x00",
]  # fmt: skip


SIDE_FIELD = 18  # of execDetails (server version 178)


class Errors(logging.Handler):
    """Records that carry an exception (what ib_async and eventkit log when a handler raised)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[2] is not None:
            import traceback

            self.tracebacks.append("".join(traceback.format_exception(*record.exc_info)))


def good_frames() -> tuple[list[str], list[str]]:
    from tests.standins.tws_messages import (
        WireExecution,
        encode_commission,
        encode_exec_details,
        stamp,
        stock_contract,
    )

    ex = WireExecution(
        exec_id="0001.01", order_id=5, client_id=9, perm_id=777, contract=stock_contract("SPY"),
        time=stamp(1_796_000_000), account="DU1", exchange="ISLAND", side="BOT", shares=10,
        price=500.0, cum_qty=10, avg_price=500.0, order_ref="tpAAA", commission=1.0,
        currency="USD", realized_pnl=None,
    )  # fmt: skip
    return encode_exec_details(-1, ex, 178), encode_commission(ex)


def test_fuzz_tws_execution_frames_through_the_decoder_then_no_fill_from_a_default() -> None:
    from tradeplane.core.venue_events import check_venue_event

    counter = [0]
    client = new_client()
    wrapper, decoder = client.ib.wrapper, client.ib.client.decoder
    decoder.serverVersion = 178
    exec_frame, comm_frame = good_frames()
    errors = Errors()
    loggers = [logging.getLogger(n) for n in (*IB_ASYNC_LOGGERS, "eventkit.event")]
    saved = [(lg, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(errors)
        lg.propagate = False  # ib_async logs every bad frame: keep the test's output readable

    @fuzz_settings()
    @given(
        st.lists(st.tuples(st.booleans(), st.integers(1, 40), st.sampled_from(FRAME_VALUES)),
                 max_size=3),
        st.integers(0, 6),
    )  # fmt: skip
    def case(edits: list[tuple[bool, int, str]], cut: int) -> None:
        counter[0] += 1
        fresh(client)
        wrapper.fills.clear()
        order = ib_async.MarketOrder("BUY", 10)
        order.orderRef, order.permId, order.orderId, order.clientId = "tpAAA", 777, 5, 9
        trade = ib_async.Trade(
            ib_async.Stock("SPY", "SMART", "USD"), order, ib_async.OrderStatus(5, "Submitted")
        )
        wrapper.trades[wrapper.orderKey(9, 5, 777)] = trade
        wrapper.permId2Trade[777] = trade
        frames = [list(exec_frame), list(comm_frame)]
        for in_comm, index, value in edits:
            fields = frames[in_comm]
            fields[index % (len(fields) - 1) + 1] = value  # never the message id
        if cut:
            frames[cut % 2] = frames[cut % 2][:-cut]
        for fields in frames:
            decoder.interpret(fields)
        if not edits and not cut:  # the good frames: one fill, or the test proves nothing
            assert [e.kind for e in client._events] == ["order_filled"]
        ours = [t for t in errors.tracebacks if "tradeplane" in t]
        assert not ours, ours[0]  # an exception out of our handlers, swallowed by ib_async
        for ev in client._events:
            assert check_venue_event(ev) is None, ev
            fill = ev.fill
            assert fill is not None and fill.fee < 1e300 and fill.ts > 86_400
            side_token = frames[0][SIDE_FIELD] if len(frames[0]) > SIDE_FIELD else ""
            assert side_token in ("BOT", "SLD"), f"a fill from side {side_token!r}"
            assert fill.side.value == {"BOT": "buy", "SLD": "sell"}[side_token]
        for reason, _ in client.take_rejected():
            assert reason.startswith("execDetails"), reason

    try:
        run_cases(case, counter)
    finally:
        for lg, propagate in saved:
            lg.removeHandler(errors)
            lg.propagate = propagate
