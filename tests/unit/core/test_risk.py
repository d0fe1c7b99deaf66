"""Pre-trade limits: one test per limit and reason code, denied with its figures and approved
just under the limit."""

import dataclasses
import itertools

import pytest

from tradeplane.core.clock import ManualClock
from tradeplane.core.model import Fill, Intent, OrderDenied, OrderType, Side, SubmitOrder
from tradeplane.core.risk import DenyReason, RiskEngine, RiskLimits, TradingState

_ids = itertools.count(1)


def intent(
    side: Side = Side.BUY,
    qty: float = 1.0,
    limit: float | None = None,
    symbol: str = "AAA",
    strategy: str = "s",
) -> Intent:
    n = next(_ids)
    otype = OrderType.LIMIT if limit else OrderType.MARKET
    return Intent(f"i{n}", f"tpi{n}", "d", strategy, symbol, side, qty, otype, limit, 0.0, "t")


def engine(clock: ManualClock | None = None, **limits: object) -> RiskEngine:
    e = RiskEngine(RiskLimits(**limits), clock=clock or ManualClock())  # type: ignore[arg-type]
    e.mark("AAA", 100.0)
    return e


def fill(coid: str, side: Side, qty: float, price: float, symbol: str = "AAA") -> Fill:
    return Fill(f"f-{coid}-{qty}", coid, "i", "s", symbol, side, qty, price, 0.0, 0.0)


def approved(d: SubmitOrder | OrderDenied) -> SubmitOrder:
    assert isinstance(d, SubmitOrder), d
    return d


def denied(d: SubmitOrder | OrderDenied, reason: DenyReason) -> OrderDenied:
    assert isinstance(d, OrderDenied), d
    assert d.reason == reason.value, d
    assert d.message
    return d


# -- basics (kept from the first version) ----------------------------------------------------


def test_within_limits_then_submit_order_with_reference_price() -> None:
    d = approved(engine(max_order_value=1000).check(intent(qty=5)))
    assert d.reference_price == 100.0


def test_limit_price_used_for_order_value() -> None:
    d = denied(
        engine(max_order_value=1000).check(intent(qty=5, limit=250.0)), DenyReason.MAX_ORDER_VALUE
    )
    assert d.figures["price"] == 250.0


def test_no_price_seen_then_denied_no_price() -> None:
    e = RiskEngine(RiskLimits(), clock=ManualClock())
    d = denied(e.check(intent()), DenyReason.NO_PRICE)
    assert d.figures["symbol"] == "AAA"


def test_fill_moves_working_to_position_and_close_releases_rest() -> None:
    e = engine(max_position_value=1000)
    coid = approved(e.check(intent(qty=8))).intent.client_order_id
    e.on_fill(fill(coid, Side.BUY, 3, 100.0))
    assert e.position("AAA") == 3 and e.working_quantity("AAA") == 5
    e.on_order_closed(coid)
    assert e.working_quantity("AAA") == 0


def test_unset_limits_are_reported_disabled() -> None:
    off = RiskLimits(max_order_value=1.0).disabled()
    assert "max_order_value" not in off
    assert {"max_position_value", "max_daily_loss", "allowed_symbols", "blocked_symbols"} <= set(
        off
    )


# -- order size ------------------------------------------------------------------------------


def test_order_value_over_limit_then_denied_with_reason_and_figures() -> None:
    e = engine(max_order_value=1000)
    d = denied(e.check(intent(qty=11)), DenyReason.MAX_ORDER_VALUE)
    assert d.figures == {"order_value": 1100, "limit": 1000, "price": 100.0}
    approved(e.check(intent(qty=10)))


def test_order_quantity_over_limit_then_denied_with_figures() -> None:
    e = engine(max_order_quantity=5)
    d = denied(e.check(intent(qty=5.5)), DenyReason.MAX_ORDER_QUANTITY)
    assert d.figures == {"order_quantity": 5.5, "limit": 5}
    approved(e.check(intent(qty=5)))


# -- position and exposure -------------------------------------------------------------------


def test_position_value_over_limit_then_denied_and_just_under_approved() -> None:
    e = engine(max_position_value=1000)
    d = denied(e.check(intent(qty=10.5)), DenyReason.MAX_POSITION_VALUE)
    assert d.figures["position_value_after"] == 1050 and d.figures["limit"] == 1000
    approved(e.check(intent(qty=10)))


def test_working_orders_count_toward_position_limit() -> None:
    e = engine(max_position_value=1000)
    approved(e.check(intent(qty=6)))
    denied(e.check(intent(qty=6)), DenyReason.MAX_POSITION_VALUE)  # 12 x 100 with 6 working


def test_position_quantity_over_limit_then_denied_with_figures() -> None:
    e = engine(max_position_quantity=10)
    e.restore({"AAA": 8.0}, {})
    d = denied(e.check(intent(qty=3)), DenyReason.MAX_POSITION_QUANTITY)
    assert d.figures == {"position_quantity_after": 11, "limit": 10, "position": 8.0}
    approved(e.check(intent(qty=2)))


def test_short_position_limit_counts_absolute_quantity() -> None:
    e = engine(max_position_quantity=10)
    approved(e.check(intent(Side.SELL, qty=10)))
    denied(e.check(intent(Side.SELL, qty=1)), DenyReason.MAX_POSITION_QUANTITY)


def test_reducing_order_over_position_limits_then_still_approved() -> None:
    e = engine(
        max_position_value=1000, max_position_quantity=5, max_gross_exposure=10, max_positions=1
    )
    e.restore({"AAA": 50.0, "BBB": 5.0}, {})  # already over every limit (limits were lowered)
    e.mark("BBB", 10.0)
    approved(e.check(intent(Side.SELL, qty=10)))
    denied(e.check(intent(Side.BUY, qty=1)), DenyReason.MAX_POSITION_QUANTITY)


def test_sell_beyond_flat_that_grows_short_exposure_then_checked() -> None:
    e = engine(max_position_quantity=10)
    e.restore({"AAA": 5.0}, {})
    approved(e.check(intent(Side.SELL, qty=15)))  # 5 long -> 10 short: |10| > |5| but at limit
    denied(e.check(intent(Side.SELL, qty=1)), DenyReason.MAX_POSITION_QUANTITY)


def test_gross_exposure_over_limit_then_denied_with_figures() -> None:
    e = engine(max_gross_exposure=2000)
    e.mark("BBB", 50.0)
    e.restore({"BBB": -20.0}, {})  # 1000 of short exposure
    d = denied(e.check(intent(qty=10.5)), DenyReason.MAX_GROSS_EXPOSURE)
    assert d.figures["gross_exposure_after"] == pytest.approx(2050) and d.figures["limit"] == 2000
    approved(e.check(intent(qty=10)))


def test_gross_exposure_counts_working_orders_of_other_symbols() -> None:
    e = engine(max_gross_exposure=2000)
    e.mark("BBB", 50.0)
    approved(e.check(intent(qty=15, symbol="BBB")))  # 750 working
    denied(e.check(intent(qty=13)), DenyReason.MAX_GROSS_EXPOSURE)  # + 1300 > 2000
    approved(e.check(intent(qty=12)))


def test_max_positions_reached_then_new_symbol_denied_but_existing_symbol_approved() -> None:
    e = engine(max_positions=2)
    e.mark("BBB", 10.0)
    e.mark("CCC", 10.0)
    e.restore({"AAA": 1.0}, {})
    approved(e.check(intent(symbol="BBB")))  # the second symbol (working)
    d = denied(e.check(intent(symbol="CCC")), DenyReason.MAX_POSITIONS)
    assert d.figures == {"positions": 2, "limit": 2, "symbol": "CCC"}
    approved(e.check(intent(symbol="AAA")))


# -- price ---------------------------------------------------------------------------------


def test_limit_price_far_from_last_mark_then_denied_price_deviation() -> None:
    e = engine(max_price_deviation_pct=5)
    d = denied(e.check(intent(limit=106.0)), DenyReason.PRICE_DEVIATION)
    assert d.figures["deviation_pct"] == pytest.approx(6.0)
    assert (
        d.figures["limit"] == 5 and d.figures["mark"] == 100.0 and d.figures["limit_price"] == 106
    )
    approved(e.check(intent(limit=95.5)))


def test_market_order_is_not_subject_to_price_deviation() -> None:
    approved(engine(max_price_deviation_pct=1).check(intent()))


def test_limit_order_without_mark_when_deviation_checked_then_no_price() -> None:
    e = RiskEngine(RiskLimits(max_price_deviation_pct=5), clock=ManualClock())
    denied(e.check(intent(limit=100.0)), DenyReason.NO_PRICE)


def test_last_mark_older_than_staleness_limit_then_denied_stale_data() -> None:
    clock = ManualClock()
    e = engine(clock, max_data_staleness_s=30)
    clock.advance(30)
    approved(e.check(intent()))
    clock.advance(0.5)
    d = denied(e.check(intent()), DenyReason.STALE_DATA)
    assert d.figures["age_s"] == pytest.approx(30.5) and d.figures["limit"] == 30
    e.mark("AAA", 101.0)
    approved(e.check(intent()))


# -- symbols ---------------------------------------------------------------------------------


def test_symbol_not_in_allowed_symbols_then_denied() -> None:
    e = engine(allowed_symbols=("AAA",))
    e.mark("BBB", 1.0)
    d = denied(e.check(intent(symbol="BBB")), DenyReason.SYMBOL_NOT_ALLOWED)
    assert d.figures["symbol"] == "BBB"
    approved(e.check(intent(symbol="AAA")))


def test_symbol_in_blocked_symbols_then_denied() -> None:
    e = engine(blocked_symbols=("AAA",))
    e.mark("BBB", 1.0)
    d = denied(e.check(intent()), DenyReason.SYMBOL_BLOCKED)
    assert d.figures["symbol"] == "AAA"
    approved(e.check(intent(symbol="BBB")))


# -- pace and duplicates ---------------------------------------------------------------------


def test_more_orders_per_second_than_limit_then_denied_rate_limit_per_second() -> None:
    clock = ManualClock()
    e = engine(clock, max_orders_per_second=2)
    approved(e.check(intent()))
    approved(e.check(intent()))
    d = denied(e.check(intent()), DenyReason.RATE_LIMIT)
    assert d.figures == {"window": "per_second", "count": 2, "limit": 2}
    clock.advance(1.0)
    approved(e.check(intent()))


def test_more_orders_per_minute_than_limit_then_denied_rate_limit_per_minute() -> None:
    clock = ManualClock()
    e = engine(clock, max_orders_per_minute=3)
    for _ in range(3):
        approved(e.check(intent()))
        clock.advance(10)
    d = denied(e.check(intent()), DenyReason.RATE_LIMIT)
    assert d.figures == {"window": "per_minute", "count": 3, "limit": 3}
    clock.advance(30)  # the first approval leaves the 60 s window
    approved(e.check(intent()))


def test_denials_do_not_count_toward_rate_limit() -> None:
    e = engine(max_orders_per_second=1, max_order_quantity=5)
    denied(e.check(intent(qty=6)), DenyReason.MAX_ORDER_QUANTITY)
    approved(e.check(intent()))


def test_same_order_within_duplicate_window_then_denied_duplicate_order() -> None:
    clock = ManualClock()
    e = engine(clock, duplicate_order_window_s=5)
    approved(e.check(intent(qty=2)))
    clock.advance(4.9)
    d = denied(e.check(intent(qty=2)), DenyReason.DUPLICATE_ORDER)
    assert d.figures["age_s"] == pytest.approx(4.9) and d.figures["window_s"] == 5
    clock.advance(0.1)
    approved(e.check(intent(qty=2)))


def test_duplicate_window_is_side_quantity_and_strategy_aware() -> None:
    e = engine(duplicate_order_window_s=5)
    approved(e.check(intent(Side.BUY, qty=2)))
    approved(e.check(intent(Side.SELL, qty=2)))
    approved(e.check(intent(Side.BUY, qty=3)))
    approved(e.check(intent(Side.BUY, qty=2, strategy="other")))
    approved(e.check(intent(Side.BUY, qty=2, limit=99.0)))


def test_no_duplicate_window_then_same_order_approved_and_none_remembered() -> None:
    e = engine()
    approved(e.check(intent(qty=2)))
    approved(e.check(intent(qty=2)))
    assert e.export_state()["duplicates"] == []


def test_duplicate_window_switched_off_then_next_approval_forgets_remembered_orders() -> None:
    clock = ManualClock()
    e = engine(clock, duplicate_order_window_s=5)
    approved(e.check(intent(qty=2)))
    e.limits = dataclasses.replace(e.limits, duplicate_order_window_s=None)
    clock.advance(1.0)
    approved(e.check(intent(qty=3)))
    e.limits = dataclasses.replace(e.limits, duplicate_order_window_s=5)
    clock.advance(1.0)

    approved(e.check(intent(qty=2)))  # within 5 s of the first, which was forgotten


def test_same_client_order_id_twice_then_denied_duplicate_intent() -> None:
    e = engine()
    first = intent()
    approved(e.check(first))
    d = denied(e.check(first), DenyReason.DUPLICATE_INTENT)
    assert d.figures["client_order_id"] == first.client_order_id
    e.on_order_closed(first.client_order_id)
    denied(e.check(first), DenyReason.DUPLICATE_INTENT)  # still remembered after it closed


# -- reconciling and order of checks -------------------------------------------------------


def test_submit_while_reconciling_then_denied_reconciling() -> None:
    e = engine()
    e.set_reconciling(True)
    d = denied(e.check(intent()), DenyReason.RECONCILING)
    assert d.figures["trading_state"] == TradingState.ACTIVE.value
    e.set_reconciling(False)
    approved(e.check(intent()))


def test_reconciling_is_checked_before_symbol_and_symbol_before_size() -> None:
    e = engine(blocked_symbols=("AAA",), max_order_quantity=1)
    e.set_reconciling(True)
    denied(e.check(intent(qty=2)), DenyReason.RECONCILING)
    e.set_reconciling(False)
    denied(e.check(intent(qty=2)), DenyReason.SYMBOL_BLOCKED)


def test_denials_are_counted_by_reason() -> None:
    e = engine(max_order_quantity=1)
    denied(e.check(intent(qty=2)), DenyReason.MAX_ORDER_QUANTITY)
    approved(e.check(intent()))
    assert e.denied == {"MAX_ORDER_QUANTITY": 1} and e.approved == 1
    assert e.summary()["denied"] == {"MAX_ORDER_QUANTITY": 1}


# -- market hours --------------------------------------------------------------------------

SUNDAY_NOON = 1795348800.0  # 2026-11-22 12:00 UTC: NYSE closed
TUESDAY_10_ET = 1795532400.0  # 2026-11-24 15:00 UTC (10:00 New York): NYSE open
MONDAY_OPEN = 1795444200.0  # 2026-11-23 14:30 UTC (09:30 New York)


def nyse_engine(at: float, **limits: object) -> RiskEngine:
    from tradeplane.core.session import make_calendar

    e = RiskEngine(
        RiskLimits(**limits),  # type: ignore[arg-type]
        clock=ManualClock(at),
        calendar=make_calendar("XNYS"),
    )
    e.mark("AAA", 100.0)
    return e


def test_nyse_closed_then_denied_market_closed_with_the_next_open() -> None:
    d = denied(nyse_engine(SUNDAY_NOON).check(intent()), DenyReason.MARKET_CLOSED)
    assert d.figures["next_open"] == MONDAY_OPEN
    assert "2026-11-23T14:30:00+00:00" in d.message


def test_nyse_open_or_the_check_switched_off_then_approved() -> None:
    approved(nyse_engine(TUESDAY_10_ET).check(intent()))
    approved(nyse_engine(SUNDAY_NOON, deny_when_market_closed=False).check(intent()))


def test_always_open_calendar_then_never_market_closed() -> None:
    approved(engine(ManualClock(SUNDAY_NOON)).check(intent()))
