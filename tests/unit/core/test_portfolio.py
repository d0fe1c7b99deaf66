import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeplane.core.model import Fill, Side
from tradeplane.core.portfolio import VirtualPortfolio

_n = 0


def fill(side: Side, qty: float, price: float, fee: float = 0.0, symbol: str = "AAA") -> Fill:
    global _n
    _n += 1
    return Fill(f"f{_n}", "c", "i", "s", symbol, side, qty, price, fee, 0.0)


def test_long_then_mark_up_then_unrealized_gain() -> None:
    p = VirtualPortfolio(1000.0)
    p.apply_fill(fill(Side.BUY, 10, 10.0, fee=1.0))
    p.mark("AAA", 12.0)
    assert p.cash == pytest.approx(1000 - 100 - 1)
    assert p.unrealized_pnl == pytest.approx(20.0)
    assert p.equity == pytest.approx(1000 - 1 + 20)


def test_short_then_price_falls_then_equity_rises() -> None:
    p = VirtualPortfolio(1000.0)
    p.apply_fill(fill(Side.SELL, 10, 10.0))
    assert p.position("AAA").quantity == -10
    assert p.cash == pytest.approx(1100.0)
    p.mark("AAA", 8.0)
    assert p.equity == pytest.approx(1000 + 20)
    assert p.unrealized_pnl == pytest.approx(20.0)


def test_short_then_price_rises_then_equity_falls() -> None:
    p = VirtualPortfolio(1000.0)
    p.apply_fill(fill(Side.SELL, 10, 10.0))
    p.mark("AAA", 13.0)
    assert p.equity == pytest.approx(970.0)


def test_close_long_then_realized_pnl_and_flat() -> None:
    p = VirtualPortfolio(1000.0)
    p.apply_fill(fill(Side.BUY, 10, 10.0))
    p.apply_fill(fill(Side.SELL, 10, 12.0))
    assert p.positions() == {}
    assert p.realized_pnl == pytest.approx(20.0)


def test_flip_long_to_short_then_remainder_opens_at_fill_price() -> None:
    p = VirtualPortfolio(1000.0)
    p.apply_fill(fill(Side.BUY, 10, 10.0))
    p.apply_fill(fill(Side.SELL, 15, 11.0))
    pos = p.position("AAA")
    assert pos.quantity == -5 and pos.avg_price == 11.0
    assert pos.realized_pnl == pytest.approx(10.0)


def test_duplicate_fill_id_then_applied_once() -> None:
    p = VirtualPortfolio(1000.0)
    f = fill(Side.BUY, 1, 10.0)
    assert p.apply_fill(f) and not p.apply_fill(f)
    assert p.position("AAA").quantity == 1


def test_snapshot_restore_round_trip() -> None:
    p = VirtualPortfolio(1000.0)
    p.apply_fill(fill(Side.BUY, 3, 10.0, fee=0.5))
    p.apply_fill(fill(Side.SELL, 2, 20.0, symbol="BBB"))
    p.mark("AAA", 11.0)
    q = VirtualPortfolio.restore(p.snapshot())
    assert q.summary() == p.summary()
    assert q.positions() == p.positions()


trades = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.floats(0.01, 100, allow_nan=False),
        st.floats(1, 1000, allow_nan=False),
        st.floats(0, 5, allow_nan=False),
    ),
    max_size=40,
)


@given(trades, st.floats(1, 1000, allow_nan=False))
def test_equity_identity_holds_for_any_trade_sequence(
    seq: list[tuple[Side, float, float, float]], mark: float
) -> None:
    """equity == start + realized + unrealized - fees, long or short, whatever the path."""
    p = VirtualPortfolio(10_000.0)
    for side, qty, price, fee in seq:
        p.apply_fill(fill(side, qty, price, fee))
    p.mark("AAA", mark)
    expected = p.starting_cash + p.realized_pnl + p.unrealized_pnl - p.fees
    assert p.equity == pytest.approx(expected, rel=1e-9, abs=1e-6)
    signed = sum(q if s is Side.BUY else -q for s, q, _, _ in seq)
    assert p.position("AAA").quantity == pytest.approx(signed, abs=1e-9)
