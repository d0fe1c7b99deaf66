import pytest

from tradeplane.core.errors import IllegalTransition, InvariantError
from tradeplane.core.model import Fill, Intent, OrderType, Side
from tradeplane.core.orders import (
    ORDER_STATUS,
    TERMINAL_STATUSES,
    Order,
    OrderStatus,
    OrderTracker,
)

S = OrderStatus


def make_order(qty: float = 10.0) -> Order:
    intent = Intent("i1", "tpi1", "d", "s", "AAA", Side.BUY, qty, OrderType.MARKET, None, 0.0, "t")
    return Order.from_intent(intent, 0.0)


def fill(fid: str, qty: float, price: float = 10.0, coid: str = "tpi1") -> Fill:
    return Fill(fid, coid, "i1", "s", "AAA", Side.BUY, qty, price, 0.01, 1.0)


def test_terminal_statuses_are_filled_cancelled_rejected_expired() -> None:
    assert {S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED} == TERMINAL_STATUSES


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
@pytest.mark.parametrize("target", list(OrderStatus))
def test_terminal_status_then_every_transition_raises(terminal: S, target: S) -> None:
    with pytest.raises(IllegalTransition):
        ORDER_STATUS.check(terminal, target)


def test_pending_submit_to_filled_directly_then_raises() -> None:
    with pytest.raises(IllegalTransition, match="pending_submit -> filled"):
        make_order().with_status(S.FILLED, 1.0)


def test_unknown_resolves_to_any_venue_outcome() -> None:
    for target in (S.ACCEPTED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED):
        assert ORDER_STATUS.allowed(S.UNKNOWN, target)


def test_partial_then_complete_fills_then_filled_with_average_price() -> None:
    o = make_order().with_status(S.SUBMITTED, 0.5).with_status(S.ACCEPTED, 0.6)
    o = o.with_fill(fill("f1", 4.0, 10.0))
    assert o.status is S.PARTIALLY_FILLED and o.remaining_quantity == 6.0
    o = o.with_fill(fill("f2", 6.0, 11.0))
    assert o.status is S.FILLED
    assert o.avg_fill_price == pytest.approx(10.6)
    assert o.fees == pytest.approx(0.02)


def test_same_fill_id_twice_then_applied_once() -> None:
    o = make_order().with_status(S.SUBMITTED, 0.5).with_fill(fill("f1", 4.0))
    assert o.with_fill(fill("f1", 4.0)) is o


def test_fill_beyond_order_quantity_then_invariant_error() -> None:
    o = make_order().with_status(S.SUBMITTED, 0.5).with_fill(fill("f1", 8.0))
    with pytest.raises(InvariantError, match="overfill"):
        o.with_fill(fill("f2", 3.0))


def test_tracker_add_same_client_order_id_twice_then_invariant_error() -> None:
    t = OrderTracker()
    t.add(make_order())
    with pytest.raises(InvariantError):
        t.add(make_order())


def test_tracker_fill_for_unknown_order_then_invariant_error() -> None:
    with pytest.raises(InvariantError, match="unknown order"):
        OrderTracker().apply_fill(fill("f1", 1.0, coid="nope"))


def test_tracker_open_orders_excludes_terminal() -> None:
    t = OrderTracker()
    t.add(make_order())
    assert len(t.open_orders()) == 1
    t.update_status("tpi1", S.REJECTED, 1.0, reason="X")
    assert t.open_orders() == [] and t.get("tpi1").reason == "X"  # type: ignore[union-attr]
