from datetime import UTC, datetime

import pytest

from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.model import Bar, Fill, Intent, OrderType, Side

TS = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def bar(**kw: object) -> Bar:
    fields: dict[str, object] = dict(
        symbol="AAA", ts=TS, open=10.0, high=11.0, low=9.5, close=10.5, volume=100.0
    )
    fields.update(kw)
    return Bar(**fields)  # type: ignore[arg-type]


def test_bar_with_consistent_ohlc_then_accepted() -> None:
    assert bar().close == 10.5


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0.0])
def test_bar_with_non_finite_or_non_positive_price_then_rejected(field: str, value: float) -> None:
    with pytest.raises(InvalidMarketData, match=field):
        bar(**{field: value})


def test_bar_with_negative_volume_then_rejected() -> None:
    with pytest.raises(InvalidMarketData, match="volume"):
        bar(volume=-1.0)


def test_bar_with_high_below_close_then_rejected_as_inconsistent() -> None:
    with pytest.raises(InvalidMarketData, match="inconsistent"):
        bar(high=10.2)


def test_bar_with_naive_timestamp_then_rejected() -> None:
    with pytest.raises(InvalidMarketData, match="timezone"):
        bar(ts=datetime(2026, 1, 5, 14, 30))


def test_bar_with_string_price_then_rejected_with_type() -> None:
    with pytest.raises(InvalidMarketData, match="number"):
        bar(open="10")


def _intent(**kw: object) -> Intent:
    fields: dict[str, object] = dict(
        intent_id="i",
        client_order_id="tpi",
        deployment="d",
        strategy="s",
        symbol="AAA",
        side=Side.BUY,
        quantity=1.0,
        order_type=OrderType.MARKET,
        limit_price=None,
        ts=0.0,
        trigger="t",
    )
    fields.update(kw)
    return Intent(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("qty", [0.0, -1.0, float("nan")])
def test_intent_with_bad_quantity_then_rejected(qty: float) -> None:
    with pytest.raises(ValueError, match="quantity"):
        _intent(quantity=qty)


def test_limit_intent_without_price_then_rejected() -> None:
    with pytest.raises(ValueError, match="limit_price"):
        _intent(order_type=OrderType.LIMIT)


def test_market_intent_with_price_then_rejected() -> None:
    with pytest.raises(ValueError, match="market"):
        _intent(limit_price=10.0)


def test_fill_signed_quantity_follows_side() -> None:
    f = Fill("f", "c", "i", "s", "AAA", Side.SELL, 2.0, 10.0, 0.1, 0.0)
    assert f.signed_quantity == -2.0
