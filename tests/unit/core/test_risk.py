from tradeplane.core.clock import ManualClock
from tradeplane.core.model import Fill, Intent, OrderDenied, OrderType, Side, SubmitOrder
from tradeplane.core.risk import RiskEngine, RiskLimits

_n = 0


def intent(side: Side = Side.BUY, qty: float = 1.0, limit: float | None = None) -> Intent:
    global _n
    _n += 1
    otype = OrderType.LIMIT if limit else OrderType.MARKET
    return Intent(f"i{_n}", f"tpi{_n}", "d", "s", "AAA", side, qty, otype, limit, 0.0, "t")


def engine(**limits: float) -> RiskEngine:
    e = RiskEngine(RiskLimits(**limits), clock=ManualClock())
    e.mark("AAA", 100.0)
    return e


def test_within_limits_then_submit_order_with_reference_price() -> None:
    d = engine(max_order_value=1000).check(intent(qty=5))
    assert isinstance(d, SubmitOrder) and d.reference_price == 100.0


def test_order_value_over_limit_then_denied_with_reason_and_figures() -> None:
    d = engine(max_order_value=1000).check(intent(qty=11))
    assert isinstance(d, OrderDenied)
    assert d.reason == "MAX_ORDER_VALUE"
    assert d.figures["order_value"] == 1100 and d.figures["limit"] == 1000


def test_limit_price_used_for_order_value() -> None:
    d = engine(max_order_value=1000).check(intent(qty=5, limit=250.0))
    assert isinstance(d, OrderDenied) and d.figures["price"] == 250.0


def test_no_price_seen_then_denied_no_price() -> None:
    e = RiskEngine(RiskLimits(), clock=ManualClock())
    d = e.check(intent())
    assert isinstance(d, OrderDenied) and d.reason == "NO_PRICE"


def test_working_orders_count_toward_position_limit() -> None:
    e = engine(max_position_value=1000)
    assert isinstance(e.check(intent(qty=6)), SubmitOrder)
    d = e.check(intent(qty=6))  # 12 x 100 with the first still working
    assert isinstance(d, OrderDenied) and d.reason == "MAX_POSITION_VALUE"


def test_reducing_order_over_limit_then_still_approved() -> None:
    e = engine(max_position_value=1000)
    e.restore({"AAA": 50.0}, {})  # already over the limit (e.g. the limit was lowered)
    assert isinstance(e.check(intent(Side.SELL, qty=10)), SubmitOrder)
    assert isinstance(e.check(intent(Side.BUY, qty=1)), OrderDenied)


def test_fill_moves_working_to_position_and_close_releases_rest() -> None:
    e = engine(max_position_value=1000)
    sub = e.check(intent(qty=8))
    assert isinstance(sub, SubmitOrder)
    coid = sub.intent.client_order_id
    e.on_fill(Fill("f", coid, "i", "s", "AAA", Side.BUY, 3, 100.0, 0.0, 0.0))
    assert e.position("AAA") == 3 and e.working_quantity("AAA") == 5
    e.on_order_closed(coid)
    assert e.working_quantity("AAA") == 0


def test_unset_limits_are_reported_disabled() -> None:
    assert RiskLimits(max_order_value=1.0).disabled() == ["max_position_value"]
