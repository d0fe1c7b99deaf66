"""The risk core under a wall-clock step (NTP, an operator): the pace windows (rate, duplicates,
venue rejections) and data staleness are durations within the process, on the monotonic clock;
the risk day is the wall clock's by nature and only ever rolls forward."""

import itertools
from datetime import UTC, datetime

import pytest

from tradeplane.core.clock import ManualClock
from tradeplane.core.model import Intent, OrderDenied, OrderType, Side, SubmitOrder
from tradeplane.core.risk import (
    DenyReason,
    KillSwitchActivated,
    KillSwitchPolicy,
    RiskDayRolledOver,
    RiskEngine,
    RiskLimits,
)

HOUR = 3600.0
_ids = itertools.count(1)


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def intent(qty: float = 1.0) -> Intent:
    n = next(_ids)
    return Intent(f"i{n}", f"c{n}", "d", "s", "AAA", Side.BUY, qty, OrderType.MARKET, None, 0, "t")


def engine(
    clock: ManualClock, policy: KillSwitchPolicy | None = None, **limits: object
) -> RiskEngine:
    e = RiskEngine(RiskLimits(**limits), clock=clock, policy=policy)  # type: ignore[arg-type]
    e.mark("AAA", 100.0)
    return e


def approved(d: SubmitOrder | OrderDenied) -> SubmitOrder:
    assert isinstance(d, SubmitOrder), d
    return d


def denied(d: SubmitOrder | OrderDenied, reason: DenyReason) -> OrderDenied:
    assert isinstance(d, OrderDenied), d
    assert d.reason == reason.value, d
    return d


# -- rate limit ----------------------------------------------------------------------------------


def test_wall_clock_steps_back_an_hour_then_rate_window_still_empties_after_a_minute() -> None:
    clock = ManualClock()
    e = engine(clock, max_orders_per_minute=2)
    approved(e.check(intent()))
    approved(e.check(intent()))
    clock.step_wall(-HOUR)
    denied(e.check(intent()), DenyReason.RATE_LIMIT)
    clock.advance(60.0)
    approved(e.check(intent()))  # a minute later, not an hour


def test_wall_clock_steps_forward_an_hour_then_rate_window_not_forgotten() -> None:
    clock = ManualClock()
    e = engine(clock, max_orders_per_minute=2)
    approved(e.check(intent()))
    approved(e.check(intent()))
    clock.step_wall(HOUR)
    d = denied(e.check(intent()), DenyReason.RATE_LIMIT)
    assert d.figures["count"] == 2


# -- duplicate orders ----------------------------------------------------------------------------


def test_wall_clock_steps_forward_an_hour_then_duplicate_window_still_holds() -> None:
    clock = ManualClock()
    e = engine(clock, duplicate_order_window_s=5)
    approved(e.check(intent(qty=2)))
    clock.advance(1.0)
    clock.step_wall(HOUR)
    d = denied(e.check(intent(qty=2)), DenyReason.DUPLICATE_ORDER)
    assert d.figures["age_s"] == pytest.approx(1.0)
    assert d.figures["previous_ts"] == pytest.approx(clock.now() - 1.0)


def test_wall_clock_steps_back_an_hour_then_duplicate_window_ends_on_time() -> None:
    clock = ManualClock()
    e = engine(clock, duplicate_order_window_s=5)
    approved(e.check(intent(qty=2)))
    clock.step_wall(-HOUR)
    denied(e.check(intent(qty=2)), DenyReason.DUPLICATE_ORDER)
    clock.advance(5.0)
    approved(e.check(intent(qty=2)))


# -- venue rejections ----------------------------------------------------------------------------


def test_wall_clock_steps_forward_an_hour_then_venue_rejections_in_the_window_still_trip() -> None:
    clock = ManualClock()
    e = engine(clock, KillSwitchPolicy(max_venue_rejections=2, venue_rejection_window_s=10))
    assert e.on_venue_rejection("c1") == []
    clock.step_wall(HOUR)
    [ev] = e.on_venue_rejection("c2")
    assert isinstance(ev, KillSwitchActivated) and ev.reason == "max_venue_rejections"


def test_wall_clock_steps_back_an_hour_then_old_venue_rejections_still_leave_the_window() -> None:
    clock = ManualClock()
    e = engine(clock, KillSwitchPolicy(max_venue_rejections=2, venue_rejection_window_s=10))
    assert e.on_venue_rejection("c1") == []
    clock.step_wall(-HOUR)
    clock.advance(10.0)
    assert e.on_venue_rejection("c2") == []


# -- data staleness ------------------------------------------------------------------------------


def test_wall_clock_steps_forward_an_hour_then_a_fresh_price_is_not_stale() -> None:
    clock = ManualClock()
    e = engine(clock, max_data_staleness_s=30)
    clock.advance(1.0)
    clock.step_wall(HOUR)
    approved(e.check(intent()))


def test_wall_clock_steps_back_an_hour_then_a_stale_price_still_denied_on_time() -> None:
    clock = ManualClock()
    e = engine(clock, max_data_staleness_s=30)
    clock.step_wall(-HOUR)
    clock.advance(30.0)
    approved(e.check(intent()))
    clock.advance(0.5)
    d = denied(e.check(intent()), DenyReason.STALE_DATA)
    assert d.figures["age_s"] == pytest.approx(30.5)
    assert d.figures["mark_ts"] == pytest.approx(clock.now() - 30.5)


# -- the risk day --------------------------------------------------------------------------------


def test_wall_clock_steps_forward_across_midnight_then_the_day_rolls_once() -> None:
    clock = ManualClock(ts("2026-11-20T23:30:00"))
    e = engine(clock)
    approved(e.check(intent()))
    clock.step_wall(HOUR)
    [ev] = e.mark("AAA", 100.0)
    assert isinstance(ev, RiskDayRolledOver) and ev.day == "2026-11-21"
    assert e.mark("AAA", 100.0) == [] and e.summary()["orders_today"] == 0


def test_wall_clock_steps_back_across_midnight_then_the_day_neither_unrolls_nor_rolls_twice() -> (
    None
):
    clock = ManualClock(ts("2026-11-20T23:59:00"))
    e = engine(clock)
    clock.advance(120.0)  # 00:01: the day rolls
    [ev] = e.mark("AAA", 100.0)
    assert isinstance(ev, RiskDayRolledOver) and ev.day == "2026-11-21"
    approved(e.check(intent()))
    clock.step_wall(-HOUR)  # 23:01 of the day before
    assert e.mark("AAA", 100.0) == [] and e.risk_day == "2026-11-21"
    clock.advance(HOUR)  # past the earlier midnight again: no second roll
    assert e.mark("AAA", 100.0) == [] and e.risk_day == "2026-11-21"
    assert e.summary()["orders_today"] == 1
    clock.advance(ts("2026-11-22T00:00:00") - clock.now())  # the day's own end
    [ev] = e.mark("AAA", 100.0)
    assert isinstance(ev, RiskDayRolledOver) and (ev.previous_day, ev.day) == (
        "2026-11-21",
        "2026-11-22",
    )


def test_restart_after_wall_clock_stepped_back_across_midnight_then_saved_day_goes_on() -> None:
    clock = ManualClock(ts("2026-11-21T00:10:00"))
    before = engine(clock, max_orders_per_minute=5)
    approved(before.check(intent()))
    saved = before.export_state()
    clock.step_wall(-HOUR)  # 23:10 of the day before
    after = RiskEngine(RiskLimits(max_orders_per_minute=5), clock=clock)
    assert after.restore_state(saved) == []
    assert after.risk_day == "2026-11-21" and after.summary()["orders_today"] == 1


# -- the record ----------------------------------------------------------------------------------


def test_restart_after_wall_step_back_then_saved_approvals_count_a_minute_not_an_hour() -> None:
    clock = ManualClock()
    before = engine(clock, max_orders_per_minute=2)
    approved(before.check(intent()))
    approved(before.check(intent()))
    saved = before.export_state()
    clock.step_wall(-HOUR)  # the saved approvals are an hour in the future now
    after = RiskEngine(RiskLimits(max_orders_per_minute=2), clock=clock)
    after.restore_state(saved)
    after.mark("AAA", 100.0)
    denied(after.check(intent()), DenyReason.RATE_LIMIT)
    clock.advance(60.0)
    approved(after.check(intent()))


def test_exported_pace_windows_are_wall_times_of_their_age_after_a_wall_step() -> None:
    clock = ManualClock()
    e = engine(clock, max_orders_per_minute=5)
    approved(e.check(intent()))
    clock.advance(10.0)
    clock.step_wall(-HOUR)
    [approval] = e.export_state()["approvals"]
    assert approval == pytest.approx(clock.now() - 10.0)


def test_order_history_merged_twice_then_counted_once() -> None:
    clock = ManualClock()
    e = engine(clock, max_orders_per_minute=5)
    history = [clock.now() - 5.0, clock.now() - 3.0]
    e.restore_order_history(history)
    clock.advance(1.0)
    e.restore_order_history(history)
    assert len(e.export_state()["approvals"]) == 2
