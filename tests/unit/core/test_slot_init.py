"""``slot_init``: a frozen slotted dataclass keeps its fields, defaults, factories, checks and
immutability; only how its fields are first set changes."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from tradeplane.backtest.engine import Decision
from tradeplane.core.model import (
    CancelIntent,
    Fill,
    Intent,
    OrderDenied,
    OrderType,
    Position,
    Side,
    SubmitOrder,
)
from tradeplane.core.slot_init import slot_init
from tradeplane.venues.base import (
    VenueEvent,
    VenueFill,
    VenueOrderRequest,
    VenueOrderState,
    VenuePosition,
)

DECORATED = [
    Intent,
    CancelIntent,
    SubmitOrder,
    OrderDenied,
    Fill,
    Position,
    VenueOrderRequest,
    VenueFill,
    VenueOrderState,
    VenueEvent,
    VenuePosition,
    Decision,
]


@pytest.mark.parametrize("cls", DECORATED, ids=lambda c: c.__name__)
def test_decorated_class_then_same_parameters_and_defaults_as_its_fields(cls: type) -> None:
    params = inspect.signature(cls).parameters
    fields = dataclasses.fields(cls)
    assert [p for p in params] == [f.name for f in fields]
    for f in fields:
        if f.default is not dataclasses.MISSING:
            assert params[f.name].default == f.default
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert cls.__init__.__code__.co_filename == "<string>"  # ours, not the dataclass's


def test_fields_set_positionally_or_by_keyword_and_defaults_filled() -> None:
    a = Fill("f", "c", "i", "s", "AAA", Side.BUY, 2.0, 10.0, 0.1, 5.0)
    b = Fill(
        fill_id="f",
        client_order_id="c",
        intent_id="i",
        strategy="s",
        symbol="AAA",
        side=Side.BUY,
        quantity=2.0,
        price=10.0,
        fee=0.1,
        ts=5.0,
    )
    assert a == b
    assert (a.venue_order_id, a.liquidity) == (None, "taker")
    assert dataclasses.astuple(a)[:10] == ("f", "c", "i", "s", "AAA", Side.BUY, 2.0, 10.0, 0.1, 5.0)


def test_default_factory_then_a_fresh_value_per_instance() -> None:
    intent = Intent("i", "c", "d", "s", "AAA", Side.BUY, 1.0, OrderType.MARKET, None, 0.0, "t")
    one, two = OrderDenied(intent, "R", "m"), OrderDenied(intent, "R", "m")
    assert one.figures == {} and one.figures is not two.figures


def test_post_init_checks_still_run() -> None:
    with pytest.raises(ValueError, match="quantity"):
        Intent("i", "c", "d", "s", "AAA", Side.BUY, 0.0, OrderType.MARKET, None, 0.0, "t")
    req = VenueOrderRequest("c", "AAA", "buy", 1.0, "market")  # type: ignore[arg-type]
    assert req.side is Side.BUY and req.order_type is OrderType.MARKET


def test_still_frozen() -> None:
    p = Position("AAA", 1.0, 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.quantity = 3.0  # type: ignore[misc]


def test_a_class_it_does_not_fit_then_refused() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        x: int

    for cls in (Mutable, NoSlots, KeywordOnly):
        with pytest.raises(TypeError):
            slot_init(cls)
