"""Bars per year, the ``P`` that annualises volatility, Sharpe and Sortino (issue 16).

- ``"24/7"`` (crypto, the simulator): every second of a 365.25-day year is trading time, so
  ``365.25 x 86,400 / interval_s`` bars: 525,960 one-minute bars, 8,766 one-hour bars.
- an exchange calendar (``"XNYS"``...): the bars that fit in the exchange's actual sessions,
  from ``exchange_calendars``, holidays and early closes included. Each session (each part of
  it, for calendars with a lunch break) holds ``ceil(length / interval_s)`` bars, the last one
  possibly short: a regular NYSE day is 390 one-minute or 7 one-hour bars, a 13:00 early close
  210 or 4. The figure is the mean over the calendar years the backtest touches, each year
  counted whole, so a one-week backtest is annualised by its year's sessions, not by a
  hard-coded 252.
"""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime
from functools import cache

from tradeplane.core.session import ALWAYS_OPEN, DAY_S, validate_calendar_name

YEAR_S = 365.25 * DAY_S


def periods_per_year(
    calendar: str, interval_s: float, first_ts: float, last_ts: float | None = None
) -> float:
    """Bars of ``interval_s`` seconds per year on ``calendar``, for a backtest whose bars run
    from epoch ``first_ts`` to ``last_ts`` (default: the same year)."""
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"bar interval must be finite and > 0 seconds, got {interval_s}")
    if calendar == ALWAYS_OPEN:
        return YEAR_S / interval_s
    validate_calendar_name(calendar)
    first_year = _year(first_ts)
    last_year = first_year if last_ts is None else _year(last_ts)
    if last_year < first_year:
        raise ValueError("the backtest's last bar is before its first")
    years = range(first_year, last_year + 1)
    return sum(bars_in_year(calendar, interval_s, y) for y in years) / len(years)


def _year(ts: float) -> int:
    return datetime.fromtimestamp(ts, tz=UTC).year


@cache
def bars_in_year(calendar: str, interval_s: float, year: int) -> int:
    """Bars of ``interval_s`` seconds in the sessions of ``calendar`` labelled in ``year``."""
    import exchange_calendars as xcals
    import pandas as pd

    with warnings.catch_warnings():
        # exchange_calendars 4.13 uses pandas APIs that pandas 3.1 deprecates: not ours to fix.
        warnings.filterwarnings("ignore", module=r"exchange_calendars(\.|$)")
        warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
        cal = xcals.get_calendar(calendar, start=f"{year}-01-01", end=f"{year}-12-31")
        sched = cal.schedule
    bars = 0
    for open_, close, b_start, b_end in zip(
        sched["open"], sched["close"], sched["break_start"], sched["break_end"], strict=True
    ):
        if pd.isna(b_start) or pd.isna(b_end):
            parts = [(open_, close)]
        else:
            parts = [(open_, b_start), (b_end, close)]
        for start, end in parts:
            seconds = (end - start).total_seconds()
            if seconds > 0:
                bars += math.ceil(seconds / interval_s - 1e-9)
    return bars
