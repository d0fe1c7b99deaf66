"""Session calendars: the 24/7 risk day and exchange sessions with holidays and early closes."""

import json
import time
from datetime import UTC, datetime

import pytest

from tradeplane.core.session import (
    AlwaysOpenCalendar,
    ExchangeSessionCalendar,
    make_calendar,
    validate_calendar_name,
)


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC).isoformat()


# -- 24/7 ----------------------------------------------------------------------------------


def test_always_open_risk_day_is_the_utc_date_rolling_at_midnight() -> None:
    cal = make_calendar("24/7")
    assert isinstance(cal, AlwaysOpenCalendar)
    assert cal.risk_day(ts("2026-11-20T23:59:59")) == "2026-11-20"
    assert cal.risk_day(ts("2026-11-21T00:00:00")) == "2026-11-21"
    assert iso(cal.next_boundary(ts("2026-11-20T23:59:59"))) == "2026-11-21T00:00:00+00:00"
    assert iso(cal.next_boundary(ts("2026-11-21T00:00:00"))) == "2026-11-22T00:00:00+00:00"


def test_always_open_is_open_and_has_no_next_open_or_close() -> None:
    cal = make_calendar()
    t = ts("2026-12-25T12:00:00")
    assert cal.is_open(t) and cal.next_open(t) is None and cal.next_close(t) is None


def test_describe_is_json_safe_with_iso_times() -> None:
    d = make_calendar().describe(ts("2026-11-20T10:00:00"))
    assert json.loads(json.dumps(d)) == {
        "calendar": "24/7",
        "is_open": True,
        "risk_day": "2026-11-20",
        "next_boundary": "2026-11-21T00:00:00+00:00",
        "next_open": None,
        "next_close": None,
    }


# -- XNYS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xnys() -> ExchangeSessionCalendar:
    cal = make_calendar("XNYS")
    assert isinstance(cal, ExchangeSessionCalendar)
    return cal


def test_calendars_are_cached(xnys: ExchangeSessionCalendar) -> None:
    assert make_calendar("XNYS") is xnys


def test_xnys_regular_session_opens_0930_and_closes_1600_eastern(
    xnys: ExchangeSessionCalendar,
) -> None:
    t = ts("2026-11-24T15:00:00")  # Tuesday 10:00 ET
    assert xnys.is_open(t) and xnys.risk_day(t) == "2026-11-24"
    assert iso(xnys.next_close(t)) == "2026-11-24T21:00:00+00:00"
    assert iso(xnys.next_boundary(t)) == "2026-11-24T21:00:00+00:00"
    assert not xnys.is_open(ts("2026-11-24T14:29:59"))
    assert xnys.is_open(ts("2026-11-24T14:30:00"))


def test_xnys_time_after_close_belongs_to_the_next_session(xnys: ExchangeSessionCalendar) -> None:
    t = ts("2026-11-24T21:00:00")  # the close itself starts the next risk day
    assert not xnys.is_open(t)
    assert xnys.risk_day(t) == "2026-11-25"
    assert xnys.risk_day(ts("2026-11-25T03:00:00")) == "2026-11-25"
    assert iso(xnys.next_open(t)) == "2026-11-25T14:30:00+00:00"


def test_xnys_thanksgiving_is_not_a_session_and_the_day_after_closes_early(
    xnys: ExchangeSessionCalendar,
) -> None:
    thanksgiving = ts("2026-11-26T16:00:00")
    assert not xnys.is_open(thanksgiving)
    assert xnys.risk_day(thanksgiving) == "2026-11-27"
    assert iso(xnys.next_boundary(thanksgiving)) == "2026-11-27T18:00:00+00:00"  # 13:00 ET
    assert xnys.is_open(ts("2026-11-27T17:59:59"))
    assert not xnys.is_open(ts("2026-11-27T18:00:00"))
    assert xnys.risk_day(ts("2026-11-27T18:00:00")) == "2026-11-30"


def test_xnys_christmas_2026_is_not_a_session(xnys: ExchangeSessionCalendar) -> None:
    christmas = ts("2026-12-25T15:00:00")
    assert not xnys.is_open(christmas)
    assert xnys.risk_day(christmas) == "2026-12-28"
    assert iso(xnys.next_open(christmas)) == "2026-12-28T14:30:00+00:00"
    assert iso(xnys.next_boundary(ts("2026-12-24T12:00:00"))) == "2026-12-24T18:00:00+00:00"


def test_xnys_weekend_belongs_to_monday(xnys: ExchangeSessionCalendar) -> None:
    assert xnys.risk_day(ts("2026-11-21T12:00:00")) == "2026-11-23"


def test_xnys_handles_summer_time(xnys: ExchangeSessionCalendar) -> None:
    t = ts("2026-07-15T14:00:00")  # 10:00 EDT
    assert xnys.is_open(t)
    assert iso(xnys.next_close(t)) == "2026-07-15T20:00:00+00:00"


def test_xnys_far_timestamps_widen_the_schedule(xnys: ExchangeSessionCalendar) -> None:
    far_future = time.time() + 3.5 * 365 * 86_400
    far_past = ts("2015-01-02T15:00:00")
    assert xnys.risk_day(far_future) >= datetime.fromtimestamp(far_future, UTC).date().isoformat()
    assert xnys.is_open(far_past) and xnys.risk_day(far_past) == "2015-01-02"


def test_xnys_describe_names_the_next_open_and_close(xnys: ExchangeSessionCalendar) -> None:
    d = xnys.describe(ts("2026-11-26T16:00:00"))
    assert d == {
        "calendar": "XNYS",
        "is_open": False,
        "risk_day": "2026-11-27",
        "next_boundary": "2026-11-27T18:00:00+00:00",
        "next_open": "2026-11-27T14:30:00+00:00",
        "next_close": "2026-11-27T18:00:00+00:00",
    }


# -- names ---------------------------------------------------------------------------------


def test_unknown_calendar_name_then_value_error_with_hint() -> None:
    with pytest.raises(ValueError, match=r"unknown calendar 'XNYZ'.*XNYS"):
        validate_calendar_name("XNYZ")
    with pytest.raises(ValueError, match="unknown calendar"):
        make_calendar("nyse")


def test_lunch_break_calendar_is_closed_during_the_break() -> None:
    xhkg = make_calendar("XHKG")
    day = "2026-11-24"  # Tuesday: HKT 09:30-12:00 and 13:00-16:00 (UTC+8)
    assert xhkg.is_open(ts(f"{day}T02:00:00"))
    assert not xhkg.is_open(ts(f"{day}T04:30:00"))
    assert iso(xhkg.next_open(ts(f"{day}T04:30:00"))) == f"{day}T05:00:00+00:00"
    assert iso(xhkg.next_close(ts(f"{day}T02:00:00"))) == f"{day}T04:00:00+00:00"
    assert xhkg.risk_day(ts(f"{day}T04:30:00")) == day
