"""Bars per year from the session calendar and the bar interval (``backtest.annualise``): 24/7
minutes for crypto, the exchange's actual sessions (holidays, early closes) for equities."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradeplane.backtest.annualise import bars_in_year, periods_per_year


def epoch(year: int, month: int = 6, day: int = 1) -> float:
    return datetime(year, month, day, tzinfo=UTC).timestamp()


def test_always_open_one_minute_bars_then_minutes_in_a_julian_year() -> None:
    assert periods_per_year("24/7", 60.0, epoch(2025)) == 525_960.0  # 365.25 x 1440


def test_always_open_one_hour_bars_then_hours_in_a_julian_year() -> None:
    assert periods_per_year("24/7", 3600.0, epoch(2025)) == 8_766.0


def test_nyse_one_minute_bars_then_the_years_sessions_and_early_closes() -> None:
    # 2025: 250 sessions (the market also closed on 9 January, a national day of mourning),
    # 247 full days of 390 minutes and 3 early closes at 13:00 (210 minutes: 3 July, 28 November,
    # 24 December): 247 x 390 + 3 x 210 = 96,960.
    assert periods_per_year("XNYS", 60.0, epoch(2025)) == 96_960.0


def test_nyse_one_hour_bars_then_a_short_last_bar_counts() -> None:
    # A 6.5-hour day holds 7 one-hour bars (the last 30 minutes long), an early close 4:
    # 247 x 7 + 3 x 4 = 1,741.
    assert periods_per_year("XNYS", 3600.0, epoch(2025)) == 1_741.0


def test_nyse_backtest_over_two_years_then_the_mean_of_both() -> None:
    # 2024: 252 sessions, 3 early closes: 249 x 390 + 3 x 210 = 97,740.
    assert bars_in_year("XNYS", 60.0, 2024) == 97_740
    assert periods_per_year("XNYS", 60.0, epoch(2024), epoch(2025)) == (97_740 + 96_960) / 2


def test_nyse_daily_bars_then_sessions_per_year() -> None:
    assert periods_per_year("XNYS", 86_400.0, epoch(2025)) == 250.0


def test_calendar_with_a_lunch_break_then_both_parts_counted() -> None:
    # Hong Kong: 09:30-12:00 and 13:00-16:00, 330 minutes on a full day; fewer than NYSE's 390.
    minutes = periods_per_year("XHKG", 60.0, epoch(2025))
    assert 240 * 330 * 0.95 < minutes < 250 * 330


@pytest.mark.parametrize("interval", [0.0, -60.0, float("nan"), float("inf")])
def test_bad_interval_then_refused(interval: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        periods_per_year("24/7", interval, epoch(2025))


def test_unknown_calendar_then_refused() -> None:
    with pytest.raises(ValueError, match="unknown calendar"):
        periods_per_year("NOPE", 60.0, epoch(2025))


def test_last_bar_before_first_then_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        periods_per_year("XNYS", 60.0, epoch(2025), epoch(2024))
