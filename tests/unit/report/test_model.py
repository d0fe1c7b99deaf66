"""The report's plain data helpers (``tradeplane.report.model``)."""

from __future__ import annotations

import pytest

from tradeplane.report.model import Series, downsample, drawdown, total_return


def test_downsample_keeps_first_and_last_within_the_limit() -> None:
    ts = [float(i) for i in range(10_001)]
    s = downsample(ts, ts, limit=100)
    assert len(s) == 100
    assert s.ts[0] == 0.0 and s.ts[-1] == 10_000.0
    assert list(s.ts) == sorted(s.ts)


def test_a_short_series_is_kept_whole() -> None:
    assert downsample([1.0, 2.0], [3.0, 4.0]).values == (3.0, 4.0)


def test_drawdown_is_the_fraction_below_the_running_peak() -> None:
    s = Series("x", (1, 2, 3, 4), (100.0, 120.0, 90.0, 130.0))
    assert drawdown(s).values == pytest.approx((0.0, 0.0, 0.25, 0.0))


def test_drawdown_of_a_pnl_curve_is_the_amount_below_its_peak() -> None:
    s = Series("x", (1, 2, 3), (0.0, -50.0, 20.0))
    assert drawdown(s, absolute=True).values == (0.0, 50.0, 0.0)


def test_total_return_of_a_curve_and_of_one_starting_at_zero() -> None:
    assert total_return(Series("x", (1, 2), (100.0, 110.0))) == pytest.approx(0.1)
    assert total_return(Series("x", (1, 2), (0.0, 10.0))) is None


def test_a_series_with_unequal_lengths_is_refused() -> None:
    with pytest.raises(ValueError, match="2 times, 1 values"):
        Series("x", (1, 2), (1.0,))
