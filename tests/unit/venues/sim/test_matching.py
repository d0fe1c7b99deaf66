from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeplane.core.clock import ManualClock
from tradeplane.core.model import Bar, OrderType, Side
from tradeplane.venues.sim.matching import PaperMatchingEngine
from tradeplane.venues.sim.model import (
    VenueEvent,
    VenueOrderRequest,
    VenuePosition,
    apply_fill_to_position,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bar(
    o: float,
    h: float,
    low: float,
    c: float,
    *,
    volume: float = 1_000.0,
    symbol: str = "ACME",
    minute: int = 0,
) -> Bar:
    return Bar(symbol, T0 + timedelta(minutes=minute), o, h, low, c, volume)


def market(coid: str, side: Side, qty: float, symbol: str = "ACME") -> VenueOrderRequest:
    return VenueOrderRequest(coid, symbol, side, qty, OrderType.MARKET, None)


def limit(
    coid: str, side: Side, qty: float, price: float | None, symbol: str = "ACME"
) -> VenueOrderRequest:
    return VenueOrderRequest(coid, symbol, side, qty, OrderType.LIMIT, price)


def engine(**kwargs: float | None) -> PaperMatchingEngine:
    return PaperMatchingEngine(clock=ManualClock(), **kwargs)  # type: ignore[arg-type]


def only(events: list[VenueEvent]) -> VenueEvent:
    assert len(events) == 1, events
    return events[0]


# ------------------------------------------------------------------------------ market orders


def test_market_buy_fills_at_next_open_with_slippage_and_taker_fee() -> None:
    eng = engine(taker_fee_bps=5.0, slippage_bps=10.0)
    assert only(eng.submit(market("m1", Side.BUY, 2.0))).kind == "order_accepted"

    event = only(eng.on_bar(bar(100.0, 105.0, 95.0, 101.0)))

    assert event.kind == "order_filled" and event.fill is not None
    assert event.fill.price == pytest.approx(100.0 * 1.001)
    assert event.fill.fee == pytest.approx(2.0 * 100.1 * 5.0 / 1e4)
    assert event.fill.liquidity == "taker"
    state = eng.order("m1")
    assert state is not None and state.status == "filled" and state.filled_quantity == 2.0


def test_market_sell_receives_open_minus_slippage() -> None:
    eng = engine(slippage_bps=10.0)
    eng.submit(market("m1", Side.SELL, 1.0))
    fill = only(eng.on_bar(bar(100.0, 105.0, 95.0, 101.0))).fill
    assert fill is not None and fill.price == pytest.approx(99.9)


def test_market_order_does_not_fill_on_submit_nor_on_another_symbols_bar() -> None:
    eng = engine()
    eng.submit(market("m1", Side.BUY, 1.0))
    assert eng.on_bar(bar(50.0, 51.0, 49.0, 50.0, symbol="OTHER")) == []
    assert eng.order("m1").status == "accepted"  # type: ignore[union-attr]
    assert eng.positions() == {}


# ------------------------------------------------------------------------------- limit orders


def test_buy_limit_when_bar_low_touches_limit_then_fills_at_limit_as_maker() -> None:
    eng = engine(maker_fee_bps=2.0, slippage_bps=50.0)
    eng.submit(limit("l1", Side.BUY, 3.0, 99.0))
    fill = only(eng.on_bar(bar(100.0, 101.0, 99.0, 100.5))).fill
    assert fill is not None
    assert (fill.price, fill.liquidity) == (99.0, "maker")  # no slippage on limit fills
    assert fill.fee == pytest.approx(3.0 * 99.0 * 2.0 / 1e4)


def test_buy_limit_when_bar_opens_below_limit_then_fills_at_open_as_taker() -> None:
    eng = engine(taker_fee_bps=5.0)
    eng.submit(limit("l1", Side.BUY, 1.0, 99.0))
    fill = only(eng.on_bar(bar(97.0, 98.0, 96.0, 97.5))).fill
    assert fill is not None
    assert (fill.price, fill.liquidity) == (97.0, "taker")
    assert fill.fee == pytest.approx(97.0 * 5.0 / 1e4)


def test_buy_limit_when_bar_low_stays_above_limit_then_keeps_resting() -> None:
    eng = engine()
    eng.submit(limit("l1", Side.BUY, 1.0, 99.0))
    assert eng.on_bar(bar(100.0, 101.0, 99.01, 100.0)) == []
    assert [o.client_order_id for o in eng.open_orders()] == ["l1"]


def test_sell_limit_when_bar_high_touches_limit_then_fills_at_limit_as_maker() -> None:
    eng = engine()
    eng.submit(limit("l1", Side.SELL, 1.0, 101.0))
    fill = only(eng.on_bar(bar(100.0, 101.0, 99.0, 100.0))).fill
    assert fill is not None and (fill.price, fill.liquidity) == (101.0, "maker")


def test_sell_limit_when_bar_opens_above_limit_then_fills_at_open_as_taker() -> None:
    eng = engine()
    eng.submit(limit("l1", Side.SELL, 1.0, 101.0))
    fill = only(eng.on_bar(bar(103.0, 104.0, 102.0, 103.0))).fill
    assert fill is not None and (fill.price, fill.liquidity) == (103.0, "taker")


def test_sell_limit_when_bar_high_stays_below_limit_then_keeps_resting() -> None:
    eng = engine()
    eng.submit(limit("l1", Side.SELL, 1.0, 101.0))
    assert eng.on_bar(bar(100.0, 100.99, 99.0, 100.0)) == []


def test_after_best_order_leaves_then_deeper_order_is_not_filled_by_a_bar_above_it() -> None:
    eng = engine()
    eng.submit(limit("near", Side.BUY, 1.0, 100.0))
    eng.submit(limit("deep", Side.BUY, 1.0, 90.0))
    eng.cancel("near")
    assert eng.on_bar(bar(96.0, 97.0, 95.0, 96.0)) == []
    assert only(eng.on_bar(bar(91.0, 92.0, 89.0, 90.0, minute=1))).client_order_id == "deep"


def test_after_market_order_and_best_sell_leave_then_remaining_limits_screened_correctly() -> None:
    eng = engine()
    eng.submit(limit("deep-buy", Side.BUY, 1.0, 90.0))
    eng.submit(limit("near-sell", Side.SELL, 1.0, 101.0))
    eng.submit(limit("far-sell", Side.SELL, 1.0, 110.0))
    eng.submit(market("mkt", Side.BUY, 1.0))
    filled = eng.on_bar(bar(100.0, 102.0, 99.0, 100.0))
    assert [e.client_order_id for e in filled] == ["near-sell", "mkt"]
    assert eng.on_bar(bar(100.0, 109.0, 91.0, 100.0, minute=1)) == []
    late = eng.on_bar(bar(100.0, 111.0, 89.0, 100.0, minute=2))
    assert [e.client_order_id for e in late] == ["deep-buy", "far-sell"]
    assert eng.open_orders() == []


def test_several_orders_filled_by_one_bar_then_in_arrival_order() -> None:
    eng = engine()
    eng.submit(limit("b", Side.BUY, 1.0, 95.0))
    eng.submit(market("a", Side.BUY, 1.0))
    eng.submit(limit("c", Side.SELL, 1.0, 104.0))
    events = eng.on_bar(bar(100.0, 105.0, 94.0, 100.0))
    assert [e.client_order_id for e in events] == ["b", "a", "c"]


# ------------------------------------------------------------------------------ participation


def test_max_participation_then_fills_spread_over_bars_with_partial_status() -> None:
    eng = engine(max_participation=0.1)
    eng.submit(market("m1", Side.BUY, 25.0))

    first = only(eng.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=100.0)))
    assert first.fill is not None and first.fill.quantity == pytest.approx(10.0)
    state = eng.order("m1")
    assert state is not None and state.status == "partially_filled"

    only(eng.on_bar(bar(101.0, 102.0, 100.0, 101.0, volume=100.0, minute=1)))
    last = only(eng.on_bar(bar(102.0, 103.0, 101.0, 102.0, volume=100.0, minute=2)))
    assert last.fill is not None and last.fill.quantity == pytest.approx(5.0)

    state = eng.order("m1")
    assert state is not None and state.status == "filled" and state.filled_quantity == 25.0
    assert [f.fill_id for f in eng.fills_for("m1")] == [
        "SIM-m1-1",
        "SIM-m1-2",
        "SIM-m1-3",
    ]
    assert state.avg_fill_price == pytest.approx((10 * 100.01 + 10 * 101.0101 + 5 * 102.0102) / 25)
    assert eng.positions()["ACME"].quantity == pytest.approx(25.0)


def test_max_participation_with_zero_volume_bar_then_nothing_fills() -> None:
    eng = engine(max_participation=0.5)
    eng.submit(limit("l1", Side.BUY, 1.0, 100.0))
    assert eng.on_bar(bar(100.0, 100.0, 99.0, 99.5, volume=0.0)) == []
    assert eng.order("l1").status == "accepted"  # type: ignore[union-attr]


def test_participation_unlimited_then_whole_order_fills_on_one_bar() -> None:
    eng = engine()
    eng.submit(market("m1", Side.BUY, 1e6))
    fill = only(eng.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=1.0))).fill
    assert fill is not None and fill.quantity == 1e6


# -------------------------------------------------------------------------- submit validation


@pytest.mark.parametrize("quantity", [0.0, -1.0, math.nan, math.inf])
def test_submit_invalid_quantity_then_rejected_with_reason(quantity: float) -> None:
    eng = engine()
    event = only(eng.submit(market("x", Side.BUY, quantity)))
    assert (event.kind, event.reason, event.venue_order_id) == (
        "order_rejected",
        "INVALID_QUANTITY",
        None,
    )
    assert eng.order("x").status == "rejected"  # type: ignore[union-attr]
    assert eng.open_orders() == []


@pytest.mark.parametrize(
    "request_",
    [
        limit("x", Side.BUY, 1.0, None),
        limit("x", Side.BUY, 1.0, math.nan),
        limit("x", Side.BUY, 1.0, -5.0),
        limit("x", Side.BUY, 1.0, 0.0),
        VenueOrderRequest("x", "ACME", Side.BUY, 1.0, OrderType.MARKET, 100.0),
    ],
)
def test_submit_invalid_price_then_rejected_with_reason(request_: VenueOrderRequest) -> None:
    event = only(engine().submit(request_))
    assert (event.kind, event.reason) == ("order_rejected", "INVALID_PRICE")


def test_submit_empty_symbol_or_client_order_id_then_rejected() -> None:
    eng = engine()
    assert only(eng.submit(market("x", Side.BUY, 1.0, symbol=""))).reason == "INVALID_SYMBOL"
    assert only(eng.submit(market("", Side.BUY, 1.0))).reason == "INVALID_CLIENT_ORDER_ID"
    assert only(eng.submit(market("", Side.BUY, 1.0))).reason == "INVALID_CLIENT_ORDER_ID"
    assert eng.stats["duplicate_submits"] == 0


def test_request_with_unknown_side_then_value_error_not_a_venue_reject() -> None:
    with pytest.raises(ValueError):
        VenueOrderRequest("x", "ACME", "hold", 1.0, OrderType.MARKET)  # type: ignore[arg-type]


def test_submit_same_client_order_id_twice_then_second_rejected_and_counted() -> None:
    eng = engine()
    eng.submit(limit("dup", Side.BUY, 1.0, 90.0))
    original = eng.order("dup")

    event = only(eng.submit(limit("dup", Side.SELL, 5.0, 110.0)))
    assert (event.kind, event.reason) == ("order_rejected", "DUPLICATE_CLIENT_ORDER_ID")
    only(eng.submit(market("dup", Side.BUY, 1.0)))

    assert eng.order("dup") == original
    assert eng.stats == {
        "submits": 3,
        "duplicate_submits": 2,
        "rejects": 2,
        "fills": 0,
        "cancels": 0,
    }


@pytest.mark.parametrize("finish", ["filled", "cancelled", "rejected"])
def test_submit_reusing_id_of_terminal_order_then_duplicate_rejected(finish: str) -> None:
    eng = engine()
    if finish == "rejected":
        eng.submit(market("x", Side.BUY, -1.0))
    else:
        eng.submit(market("x", Side.BUY, 1.0))
        if finish == "filled":
            eng.on_bar(bar(100.0, 101.0, 99.0, 100.0))
        else:
            eng.cancel("x")
    assert eng.order("x").status == finish  # type: ignore[union-attr]
    assert only(eng.submit(market("x", Side.BUY, 1.0))).reason == "DUPLICATE_CLIENT_ORDER_ID"
    assert eng.stats["duplicate_submits"] == 1


def test_accepted_orders_then_sequential_venue_order_ids() -> None:
    eng = engine()
    eng.submit(market("a", Side.BUY, 1.0))
    eng.submit(market("bad", Side.BUY, 0.0))
    eng.submit(market("b", Side.BUY, 1.0))
    assert eng.order("a").venue_order_id == "SIM-000001"  # type: ignore[union-attr]
    assert eng.order("bad").venue_order_id is None  # type: ignore[union-attr]
    assert eng.order("b").venue_order_id == "SIM-000002"  # type: ignore[union-attr]


# ------------------------------------------------------------------------- forced rejection


def test_reject_then_order_recorded_rejected_with_reason_and_event_is_next_seq() -> None:
    eng = engine()
    eng.submit(market("a", Side.BUY, 1.0))
    event = only(eng.reject(limit("x", Side.SELL, 2.0, 110.0), "INJECTED_REJECT"))
    assert (event.seq, event.kind, event.client_order_id, event.reason) == (
        2,
        "order_rejected",
        "x",
        "INJECTED_REJECT",
    )
    assert event.venue_order_id is None
    order = eng.order("x")
    assert order is not None and (order.status, order.reason) == ("rejected", "INJECTED_REJECT")
    assert eng.events_since(1) == [event]
    assert eng.open_orders() == [eng.order("a")]
    assert (eng.stats["submits"], eng.stats["rejects"]) == (2, 1)


def test_rejected_order_never_fills_and_its_id_cannot_be_reused() -> None:
    eng = engine()
    eng.reject(market("x", Side.BUY, 1.0), "INJECTED_REJECT")
    assert eng.on_bar(bar(100.0, 101.0, 99.0, 100.0)) == []
    assert only(eng.submit(market("x", Side.BUY, 1.0))).reason == "DUPLICATE_CLIENT_ORDER_ID"
    assert eng.positions() == {}


def test_reject_of_duplicate_or_invalid_request_then_the_genuine_reason_wins() -> None:
    eng = engine()
    eng.submit(limit("dup", Side.BUY, 1.0, 90.0))
    original = eng.order("dup")
    assert only(eng.reject(market("dup", Side.BUY, 1.0), "X")).reason == (
        "DUPLICATE_CLIENT_ORDER_ID"
    )
    assert eng.order("dup") == original
    assert only(eng.reject(market("bad", Side.BUY, -1.0), "X")).reason == "INVALID_QUANTITY"


@pytest.mark.parametrize("reason", ["", None])
def test_reject_without_a_reason_then_value_error_and_nothing_recorded(reason: str) -> None:
    eng = engine()
    with pytest.raises(ValueError, match="reason"):
        eng.reject(market("x", Side.BUY, 1.0), reason)
    assert eng.order("x") is None and eng.last_seq == 0


# -------------------------------------------------------------------------------------- cancel


def test_cancel_working_order_then_cancelled_and_no_longer_fills() -> None:
    eng = engine()
    eng.submit(market("m1", Side.BUY, 1.0))
    event = only(eng.cancel("m1"))
    assert (event.kind, event.venue_order_id) == ("order_cancelled", "SIM-000001")
    assert eng.on_bar(bar(100.0, 101.0, 99.0, 100.0)) == []
    assert eng.order("m1").status == "cancelled"  # type: ignore[union-attr]
    assert eng.stats["cancels"] == 1


def test_cancel_partially_filled_order_then_cancelled_keeping_filled_quantity() -> None:
    eng = engine(max_participation=0.5)
    eng.submit(market("m1", Side.BUY, 10.0))
    eng.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=4.0))
    only(eng.cancel("m1"))
    state = eng.order("m1")
    assert state is not None and state.status == "cancelled" and state.filled_quantity == 2.0


def test_cancel_unknown_order_then_cancel_rejected_unknown_order() -> None:
    eng = engine()
    event = only(eng.cancel("ghost"))
    assert (event.kind, event.reason) == ("cancel_rejected", "UNKNOWN_ORDER")
    assert eng.order("ghost") is None
    assert eng.stats["cancels"] == 0


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("filled", "ORDER_ALREADY_FILLED"),
        ("cancelled", "ORDER_ALREADY_CANCELLED"),
        ("rejected", "ORDER_ALREADY_REJECTED"),
    ],
)
def test_cancel_terminal_order_then_cancel_rejected_and_nothing_changes(
    finish: str, reason: str
) -> None:
    eng = engine()
    eng.submit(market("x", Side.BUY, 1.0 if finish != "rejected" else 0.0))
    if finish == "filled":
        eng.on_bar(bar(100.0, 101.0, 99.0, 100.0))
    elif finish == "cancelled":
        eng.cancel("x")
    before = (eng.order("x"), eng.positions(), eng.fills_for("x"), eng.stats)

    event = only(eng.cancel("x"))

    assert (event.kind, event.reason) == ("cancel_rejected", reason)
    assert (eng.order("x"), eng.positions(), eng.fills_for("x"), eng.stats) == before


# ----------------------------------------------------------------------------------- positions


def test_position_flips_long_to_short_then_avg_price_is_flip_fill_price() -> None:
    eng = engine(slippage_bps=0.0)
    eng.submit(market("buy", Side.BUY, 2.0))
    eng.on_bar(bar(100.0, 101.0, 99.0, 100.0))
    assert eng.positions() == {"ACME": VenuePosition("ACME", 2.0, 100.0)}

    eng.submit(market("sell", Side.SELL, 5.0))
    eng.on_bar(bar(110.0, 111.0, 109.0, 110.0, minute=1))
    assert eng.positions() == {"ACME": VenuePosition("ACME", -3.0, 110.0)}


def test_position_closed_to_flat_then_not_listed() -> None:
    eng = engine()
    eng.submit(market("buy", Side.BUY, 2.0))
    eng.on_bar(bar(100.0, 101.0, 99.0, 100.0))
    eng.submit(market("sell", Side.SELL, 2.0))
    eng.on_bar(bar(100.0, 101.0, 99.0, 100.0, minute=1))
    assert eng.positions() == {}


def test_apply_fill_to_position_adds_averages_reduces_and_flips() -> None:
    pos = apply_fill_to_position(None, "X", 1.0, 100.0)
    pos = apply_fill_to_position(pos, "X", 3.0, 200.0)
    assert (pos.quantity, pos.avg_price) == (4.0, pytest.approx(175.0))
    pos = apply_fill_to_position(pos, "X", -1.0, 300.0)
    assert (pos.quantity, pos.avg_price) == (3.0, pytest.approx(175.0))
    pos = apply_fill_to_position(pos, "X", -4.0, 50.0)
    assert (pos.quantity, pos.avg_price) == (-1.0, 50.0)
    pos = apply_fill_to_position(pos, "X", -1.0, 70.0)
    assert (pos.quantity, pos.avg_price) == (-2.0, pytest.approx(60.0))
    assert apply_fill_to_position(pos, "X", 2.0, 10.0).quantity == 0.0


# ------------------------------------------------------------------------- events and queries


def test_event_seq_is_gap_free_across_all_event_kinds() -> None:
    eng = engine()
    events = [
        *eng.submit(market("a", Side.BUY, 1.0)),
        *eng.submit(market("a", Side.BUY, 1.0)),
        *eng.submit(limit("b", Side.SELL, 1.0, 500.0)),
        *eng.cancel("nope"),
        *eng.on_bar(bar(100.0, 101.0, 99.0, 100.0)),
        *eng.cancel("b"),
        *eng.cancel("b"),
    ]
    assert [e.seq for e in events] == list(range(1, 8))
    assert [e.kind for e in events] == [
        "order_accepted",
        "order_rejected",
        "order_accepted",
        "cancel_rejected",
        "order_filled",
        "order_cancelled",
        "cancel_rejected",
    ]
    assert eng.last_seq == 7
    assert eng.events_since(0) == events
    assert eng.events_since(4, limit=2) == events[4:6]
    assert eng.events_since(7) == []


def test_keep_events_bounds_memory_and_returns_only_retained_events() -> None:
    eng = PaperMatchingEngine(clock=ManualClock(), keep_events=3)
    for i in range(20):
        eng.submit(market(f"o{i}", Side.BUY, 1.0))
    retained = eng.events_since(0)
    assert 3 <= len(retained) <= 6
    assert [e.seq for e in retained] == list(range(21 - len(retained), 21))
    assert [e.seq for e in eng.events_since(18)] == [19, 20]


def test_fill_and_event_timestamps_come_from_the_injected_clock() -> None:
    clock = ManualClock(start=1_000.0)
    eng = PaperMatchingEngine(clock=clock)
    accepted = only(eng.submit(market("m", Side.BUY, 1.0)))
    clock.advance(60.0)
    filled = only(eng.on_bar(bar(100.0, 101.0, 99.0, 100.0)))
    assert accepted.ts == 1_000.0
    assert filled.ts == 1_060.0 and filled.fill is not None and filled.fill.ts == 1_060.0
    state = eng.order("m")
    assert state is not None and (state.created_ts, state.updated_ts) == (1_000.0, 1_060.0)


def test_on_bar_records_last_price_even_without_orders() -> None:
    eng = engine()
    assert eng.last_price("ACME") is None
    assert eng.on_bar(bar(100.0, 101.0, 99.0, 100.5)) == []
    assert eng.last_price("ACME") == 100.5
    assert eng.last_seq == 0


def test_export_then_import_into_fresh_engine_then_identical_state_and_seq_continues() -> None:
    eng = engine(max_participation=0.5)
    eng.submit(market("a", Side.BUY, 10.0))
    eng.submit(limit("b", Side.SELL, 1.0, 1_000.0))
    eng.submit(market("c", Side.BUY, -1.0))
    eng.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=4.0))

    copy = engine(max_participation=0.5)
    copy.import_state(eng.export_state())

    for coid in ("a", "b", "c"):
        assert copy.order(coid) == eng.order(coid)
        assert copy.fills_for(coid) == eng.fills_for(coid)
    assert (copy.positions(), copy.open_orders(), copy.stats, copy.last_seq) == (
        eng.positions(),
        eng.open_orders(),
        eng.stats,
        eng.last_seq,
    )
    assert copy.last_price("ACME") == 100.0
    next_fill = only(copy.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=4.0, minute=1)))
    assert next_fill.seq == eng.last_seq + 1
    assert next_fill.fill is not None and next_fill.fill.fill_id == "SIM-a-2"
    assert only(copy.submit(market("c", Side.BUY, 1.0))).reason == "DUPLICATE_CLIENT_ORDER_ID"


def test_fill_id_when_other_orders_came_first_then_unchanged() -> None:
    alone = engine()
    alone.submit(market("mine", Side.BUY, 1.0))
    crowded = engine()
    for other in ("x", "y", "z"):
        crowded.submit(market(other, Side.SELL, 1.0))
    crowded.submit(market("mine", Side.BUY, 1.0))
    alone.on_bar(bar(100.0, 101.0, 99.0, 100.0))
    crowded.on_bar(bar(100.0, 101.0, 99.0, 100.0))
    assert [f.fill_id for f in alone.fills_for("mine")] == ["SIM-mine-1"]
    assert [f.fill_id for f in crowded.fills_for("mine")] == ["SIM-mine-1"]
    assert alone.order("mine").venue_order_id != crowded.order("mine").venue_order_id  # type: ignore[union-attr]


def test_order_with_old_form_fill_ids_from_a_store_then_keeps_that_form() -> None:
    eng = engine(max_participation=0.5)
    eng.submit(market("a", Side.BUY, 10.0))
    eng.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=4.0))
    state = eng.export_state()
    old = [replace(f, fill_id=f"{f.venue_order_id}-{i}") for i, f in enumerate(state.fills, 1)]
    copy = engine(max_participation=0.5)
    copy.import_state(replace(state, fills=old))
    copy.submit(market("b", Side.BUY, 1.0))

    events = copy.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=4.0, minute=1))

    assert [e.fill.fill_id for e in events if e.fill] == ["SIM-000001-2", "SIM-b-1"]


# ---------------------------------------------------------------------------- property based

_prices = st.floats(min_value=50.0, max_value=150.0, allow_nan=False)


@st.composite
def _bars(draw: st.DrawFn) -> Bar:
    o, c = draw(_prices), draw(_prices)
    high = max(o, c) + draw(st.floats(min_value=0.0, max_value=10.0))
    low = min(o, c) - draw(st.floats(min_value=0.0, max_value=10.0))
    symbol = draw(st.sampled_from(["A", "B"]))
    return Bar(symbol, T0, o, high, low, c, draw(st.floats(min_value=0.0, max_value=50.0)))


_requests = st.builds(
    lambda coid, symbol, side, qty, px, is_limit: VenueOrderRequest(
        f"c{coid}",
        symbol,
        side,
        qty,
        OrderType.LIMIT if is_limit else OrderType.MARKET,
        px if is_limit else None,
    ),
    st.integers(0, 15),
    st.sampled_from(["A", "B"]),
    st.sampled_from(list(Side)),
    st.floats(min_value=0.01, max_value=40.0),
    _prices,
    st.booleans(),
)

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), _requests),
        st.tuples(st.just("cancel"), st.integers(0, 15).map(lambda i: f"c{i}")),
        st.tuples(st.just("bar"), _bars()),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(operations=_operations, participation=st.one_of(st.none(), st.just(0.3)))
def test_any_sequence_then_positions_equal_signed_fill_sums_and_no_overfill(
    operations: list[tuple[str, object]], participation: float | None
) -> None:
    eng = engine(max_participation=participation)
    events: list[VenueEvent] = []
    for op, arg in operations:
        if op == "submit":
            assert isinstance(arg, VenueOrderRequest)
            events += eng.submit(arg)
        elif op == "cancel":
            assert isinstance(arg, str)
            events += eng.cancel(arg)
        else:
            assert isinstance(arg, Bar)
            events += eng.on_bar(arg)

    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    net: dict[str, float] = defaultdict(float)
    for event in events:
        if event.fill is not None:
            net[event.fill.symbol] += event.fill.signed_quantity
    positions = eng.positions()
    for symbol in ("A", "B"):
        held = positions[symbol].quantity if symbol in positions else 0.0
        assert held == pytest.approx(net[symbol], abs=1e-6)
    for coid in {f"c{i}" for i in range(16)}:
        state = eng.order(coid)
        if state is None:
            continue
        filled = sum(f.quantity for f in eng.fills_for(coid))
        assert state.filled_quantity <= state.quantity
        assert filled == pytest.approx(state.filled_quantity)
        assert (state.status == "filled") == (state.filled_quantity == state.quantity)
