import dataclasses
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.model import Bar, BarBatch, Fill, Intent, OrderType, Side, trusted_bar

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


def test_fill_signed_quantity_when_buy_then_positive() -> None:
    f = Fill("f", "c", "i", "s", "AAA", Side.BUY, 2.0, 10.0, 0.1, 0.0)
    assert f.signed_quantity == 2.0


def test_fill_signed_quantity_when_side_is_not_a_side_then_raises() -> None:
    f = Fill("f", "c", "i", "s", "AAA", "buy", 2.0, 10.0, 0.1, 0.0)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        _ = f.signed_quantity


def test_bar_when_pickled_then_equal_and_frozen() -> None:
    bar = Bar("BTC-USDT", datetime(2024, 1, 1, tzinfo=UTC), 100.0, 101.0, 99.0, 100.5, 3.0)

    back = pickle.loads(pickle.dumps(bar))

    assert back == bar and back.ts.isoformat() == bar.ts.isoformat()
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.close = 1.0  # type: ignore[misc]


def test_bar_batch_when_pickled_then_a_plain_list_of_the_same_bars_in_order() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    other_offset = datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # same instant
    bars = [
        Bar(s, ts, 100.0 + i, 101.0 + i, 99.0, 100.5, float(i))
        for i, (s, ts) in enumerate(
            [("A", t0), ("B", t0), ("A", t0 + timedelta(minutes=1)), ("C", other_offset)]
        )
    ]

    back = pickle.loads(pickle.dumps(BarBatch(bars)))

    assert type(back) is list
    assert back == bars
    assert [b.ts.isoformat() for b in back] == [b.ts.isoformat() for b in bars]


def test_bar_batch_when_empty_then_pickles_to_an_empty_list() -> None:
    assert pickle.loads(pickle.dumps(BarBatch())) == []


def test_trusted_bar_then_equal_to_the_checked_bar_and_still_frozen() -> None:
    ts = datetime(2026, 1, 5, tzinfo=UTC)
    bar = trusted_bar("AAA", ts, 100.0, 101.0, 99.0, 100.5, 10.0)
    assert type(bar) is Bar
    assert bar == Bar("AAA", ts, 100.0, 101.0, 99.0, 100.5, 10.0)
    assert hash(bar) == hash(Bar("AAA", ts, 100.0, 101.0, 99.0, 100.5, 10.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        bar.close = 1.0  # type: ignore[misc]


def test_bar_built_by_keyword_then_checked_as_before() -> None:
    ts = datetime(2026, 1, 5, tzinfo=UTC)
    bar = Bar(symbol="AAA", ts=ts, open=1.0, high=2.0, low=0.5, close=1.5, volume=0.0)
    assert (bar.open, bar.volume) == (1.0, 0.0)
    with pytest.raises(InvalidMarketData, match="inconsistent"):
        Bar(symbol="AAA", ts=ts, open=1.0, high=0.9, low=0.5, close=0.8, volume=1.0)
